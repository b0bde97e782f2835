"""The benchmark (bench/): the floor formula by hand, and a tiny run of each mode so the suite shows it works.

The targets of issue 4 are measured by `python -m bench`, not asserted here: these runs are far too
small (and this machine too shared) for their timings to mean anything.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.floor import FloorInputs, floor  # noqa: E402


def test_floor_counts_every_call_the_job_needs() -> None:
    inputs = FloorInputs(users=1000, role_members=[120, 50, 0], users_with_permissions=400,
                         import_bytes=1_300_000)
    f = floor(inputs, "regenerate", rate=50, job_seconds=3)
    files = math.ceil(1_300_000 / 512_000)
    assert f.import_files == files == 3
    expected = (1 + 2 + 3 + 1                      # token, connections, source export, role listing
                + (2 + 1 + 1)                      # member pages: ceil(120/100), ceil(50/100), an empty role
                + 1000 + 2 * files + 3             # permission reads, import jobs, id-map export
                + (2 + 1 + 0) + 400                # assignment batches of 100, permission writes
                + (3 + 1 + 1) + 1000)              # verify: members twice over in one tenant, permission reads
    assert f.calls == expected
    assert f.seconds == pytest.approx((expected - 3) / 50 + 3 * (2 + math.ceil(files / 2)))


def test_keep_adds_cutover_and_a_second_round() -> None:
    inputs = FloorInputs(users=200, role_members=[100], users_with_permissions=80, import_bytes=100_000)
    regenerate = floor(inputs, "regenerate", rate=10, job_seconds=1)
    keep = floor(inputs, "keep", rate=10, job_seconds=1)
    # keep: the shared id means the target role lists each member once (1 page, not 2), then deletes
    # (200) each confirmed by a read (200), role batches (1) and permission writes (80) again, and a second
    # verification (1 + 200).
    assert keep.calls == regenerate.calls - 1 + 200 + 200 + 1 + 80 + 1 + 200
    assert keep.seconds > regenerate.seconds
    assert floor(inputs, "prefix", rate=10, job_seconds=1).calls == regenerate.calls


def test_migration_mode_smoke(tmp_path) -> None:  # noqa: ANN001
    """A handful of users through seeding, one strategy run and the floor, in-process (no subprocess)."""
    from bench.migration import Limits, fresh_copy, run_strategy, seed

    seeded = asyncio.run(seed(str(tmp_path), 30))
    limits = Limits(rate=1000.0, burst=1000, latency=0.0, job_seconds=0.0)
    for strategy in ("regenerate", "keep", "prefix"):
        spec = {"name": strategy, "strategy": strategy, "users": 30, "limits": limits.__dict__,
                "db": fresh_copy(seeded, str(tmp_path), strategy), "hashes": seeded["hashes"],
                "state": str(tmp_path / f"{strategy}.sqlite")}
        r = asyncio.run(run_strategy(spec))
        assert r["exit_code"] == 0, r
        assert r["users"]["verified"] == 30
        assert r["http_413"] == 0 and r["import_files"]
        # Nothing retried or lost at this pace: every call the run made is one the floor counts, plus the
        # polls that found a job still running (none should at job_seconds 0) .
        assert r["floor_calls"] <= r["calls"] <= r["floor_calls"] + 4, (r["calls_by_endpoint"], r["floor_by_item"])


def test_baseline_smoke(tmp_path) -> None:  # noqa: ANN001
    from bench.baseline import run_baseline
    from bench.migration import Limits, fresh_copy, seed

    seeded = asyncio.run(seed(str(tmp_path), 12))
    spec = {"name": "baseline", "users": 12, "limits": Limits(rate=1000.0, burst=1000, latency=0.0,
                                                              job_seconds=0.0).__dict__,
            "db": fresh_copy(seeded, str(tmp_path), "baseline"), "hashes": seeded["hashes"],
            "state": str(tmp_path / "baseline.sqlite"), "sample": 6}
    b = asyncio.run(run_baseline(spec))
    assert b["not_found_in_target"] == 0
    assert b["extrapolated"] and b["measured_users"] == 6
    assert b["calls_by_endpoint"]["GET /api/v2/users-by-email"] == 12  # 6 measured, scaled to 12


def test_offline_smoke(tmp_path) -> None:  # noqa: ANN001
    """The local path end to end on 300 users; the packed sizes are those of the bodies the upload builds."""
    from auth0_migrate.ledger import Ledger
    from auth0_migrate.stages.transform import import_body
    from bench.offline import run_local, write_inputs

    export_path, hash_path = write_inputs(str(tmp_path), 300)
    state = str(tmp_path / "offline.sqlite")
    r = asyncio.run(run_local({"users": 300, "export": export_path, "hashes": hash_path, "state": state}))
    assert r["statuses"] == {"ready": 300}
    assert r["with_password_hash"] == 300
    assert r["import_files"] >= 1
    with Ledger.open(state, lock=False, create=False) as ledger:
        for f in ledger.files():
            assert len(import_body(ledger.users_of_file(f.file_id))) == f.bytes
