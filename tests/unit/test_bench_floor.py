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
    """Issue 9's formula, by hand: reads overlap the import jobs; DIRECT permissions are read back for P users."""
    inputs = FloorInputs(users=1000, role_members=[120, 50, 0], users_with_permissions=400,
                         import_bytes=1_300_000, role_members_in_target=[240, 100, 0])
    f = floor(inputs, "regenerate", rate=50, job_seconds=3)
    files = math.ceil(1_300_000 / 512_000)
    assert f.import_files == files == 3
    reads = 1 + (2 + 1 + 1) + 1000                # ceil(R/100); member pages (an empty role still takes one); N
    writes = (2 + 1 + 0) + 400                    # assignment batches of 100, permission writes
    verify = (3 + 1 + 1) + 400                    # members in the target (M_r), permissions of the P users
    expected = 1 + 2 + 3 + reads + 2 * files + 3 + writes + verify
    assert f.calls == expected
    # J + max(reads / rate, J x ceil(F/2)) + J + (writes + verification reads) / rate
    assert f.seconds == pytest.approx(3 + max(reads / 50, 3 * 2) + 3 + (writes + verify) / 50)
    # Few users and long jobs: the import jobs, not the reads, set the time.
    slow_jobs = floor(inputs, "regenerate", rate=50, job_seconds=30)
    assert slow_jobs.seconds == pytest.approx(30 + 30 * 2 + 30 + (writes + verify) / 50)


def test_keep_is_regenerate_plus_the_connection_delete_and_its_confirming_read() -> None:
    inputs = FloorInputs(users=200, role_members=[100], users_with_permissions=80, import_bytes=100_000,
                         role_members_in_target=[100])
    regenerate = floor(FloorInputs(users=200, role_members=[100], users_with_permissions=80, import_bytes=100_000,
                                   role_members_in_target=[200]), "regenerate", rate=10, job_seconds=1)
    keep = floor(inputs, "keep", rate=10, job_seconds=1)
    # keep: grants written and verified once, after cutover; the role in the target then lists the target copies
    # alone (1 page, not regenerate's 2), and the connection's DELETE and the read confirming it are added.
    assert keep.calls == regenerate.calls - 1 + 1 + 1
    assert keep.seconds == pytest.approx(regenerate.seconds + (-1 + 1 + 1) / 10)
    assert not [item for item in keep.by_item if "re-" in item]


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
        assert r["user_counts"]["verified"] == 30
        assert r["http_413"] == 0 and r["import_files"] == len(r["import_file_bytes"]) >= 1
        assert r["users"] == 30 and len(r["role_members"]) == len(r["role_members_in_target"]) > 0
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
    w = r["work_only"]  # the same work with nothing written: every hash line read, every user joined to its hash
    assert (w["hash_rows"], w["ready_users"]) == (300, 300)
    assert abs(w["seconds"] - w["hashes_seconds"] - w["export_seconds"]) <= 0.02
    left = os.listdir(tmp_path)
    assert "offline.sqlite" in left and not [n for n in left if ".again" in n or ".work-only" in n], left
    with Ledger.open(state, lock=False, create=False) as ledger:
        for f in ledger.files():
            assert len(import_body(ledger.users_of_file(f.file_id))) == f.bytes
