"""The bench's delta measure (`bench.migration.measure_delta`), at a toy size: after a full run, changed users
are carried by `run --refresh`, and the calls counted are the whole refresh's."""

from __future__ import annotations

import asyncio
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def test_delta_smoke(tmp_path) -> None:  # noqa: ANN001
    from bench.migration import Limits, fresh_copy, run_strategy, seed

    seeded = asyncio.run(seed(str(tmp_path), 30))
    limits = Limits(rate=1000.0, burst=1000, latency=0.0, job_seconds=0.0)
    spec = {"name": "regenerate", "strategy": "regenerate", "users": 30, "limits": limits.__dict__,
            "db": fresh_copy(seeded, str(tmp_path), "regenerate"), "hashes": seeded["hashes"],
            "state": str(tmp_path / "regenerate.sqlite"), "delta": True, "delta_share": 0.2}
    r = asyncio.run(run_strategy(spec))
    assert r["exit_code"] == 0, r
    delta = r["delta"]
    changed = delta["changed"]
    assert changed["users"] == changed["metadata_edits"] == delta["updated"] == 6
    assert delta["exit_code"] == 0
    # Every grant the set-up changed in the source is carried, and nothing else.
    assert delta["grants_added"] == changed["roles_added"] + changed["permissions_added"] > 0
    assert delta["grants_removed"] == changed["permissions_removed"]
    by_endpoint = delta["calls_by_endpoint"]
    # One export per side and one upsert job; roles set-wise; DIRECT permissions of the changed users only: read
    # again in the source, then read back in the target by the refresh's verification and by the grants check.
    assert by_endpoint["POST /api/v2/jobs/users-exports"] == 2
    assert by_endpoint["POST /api/v2/jobs/users-imports"] == 1
    assert by_endpoint["GET /api/v2/users/{id}/permissions"] == 3 * changed["users"]
    assert by_endpoint["GET /api/v2/users/{id}/roles"] == changed["users"]
    assert r["delta_calls"] == delta["calls"] == sum(by_endpoint.values())
    assert r["delta_ratio"] == round(delta["calls"] / r["calls"], 4) and 0 < r["delta_ratio"] < 1
