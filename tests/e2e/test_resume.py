"""Kill a run anywhere, run it again: every user migrated once, none lost, none deleted before verification.

A kill is modelled by raising `Killed` (a BaseException, which no code of ours catches) at a stage
boundary or at the Nth call of an operation; the next run starts from the ledger alone, with new
clients, as a new process would. `test_cli_sigkill` in test_sigkill.py does it with a real SIGKILL.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from auth0_migrate.auth0 import client as client_module
from auth0_migrate.auth0 import jobs
from auth0_migrate.model import QuietReporter, RunResult
from auth0_migrate.pipeline import run
from auth0_migrate.stages import cutover, export, grants, hashes, idmap, import_jobs, restore, transform, verify

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options


class Killed(BaseException):
    pass


STAGES = [(hashes, "load_hashes"), (export, "export_source"), (hashes, "join_hashes"), (grants, "read_grants"),
          (transform, "transform_users"), (transform, "pack_users"), (import_jobs, "import_users"), (idmap, "map_ids"),
          (restore, "restore_grants"), (verify, "verify_grants"), (cutover, "delete_source_copies"),
          (cutover, "grants_after_cutover")]
BEFORE_CUTOVER_ONLY = ("restore_grants", "verify_grants")
"""Stages a keep run in one tenant does not walk (its grants are written and verified after cutover): killed
after them, a regenerate run resumes."""


def _setup(world: World, tmp_path, users: int = 30, user_ids: str = "keep"):
    seeded = world.seed(users=users)
    world.connection(TARGET)
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    sample = sorted(before)[:6]
    grants = {e: grants_of(world, before[e]) for e in sample}
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    opts = options(tmp_path, user_ids=user_ids, password_hashes=hashes, delete_source_users=True,
                   record_source_id="legacy_user_id")
    return seeded, before, grants, opts


def _nobody_lost(world: World, before: dict[str, str]) -> None:
    """At any moment: a user gone from the source is in the target (and was verified first)."""
    in_source = {u["email"] for u in world.users(SOURCE)}
    in_target = [u["email"] for u in world.users(TARGET)]
    assert len(in_target) == len(set(in_target)), "a user was imported twice"
    for email in set(before) - in_source:
        assert email in in_target, f"{email} left the source but is not in the target"


def _finished(world: World, seeded, before, grants, result, *, kept_ids: bool = True) -> None:
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] + result.users["already_in_target"] == seeded.users
    assert result.users["verified"] == result.users["deleted_from_source"] == seeded.users
    assert result.users["grants_after_cutover"] == 0
    moved = {u["email"]: u["user_id"] for u in world.users(TARGET)}
    assert sorted(moved) == sorted(before)  # every user once
    if kept_ids:
        assert moved == before  # with its id
    assert world.users(SOURCE) == []
    for email, held in grants.items():
        assert grants_of(world, moved[email]) == held
    assert result.grants["permissions_restored"] == seeded.permissions
    assert result.grants["roles_restored"] == seeded.role_members


@pytest.mark.parametrize("module,name", STAGES, ids=[n for _, n in STAGES])
def test_killed_after_each_stage(world: World, tmp_path, monkeypatch, module, name) -> None:
    keep = name not in BEFORE_CUTOVER_ONLY
    seeded, before, grants, opts = _setup(world, tmp_path, user_ids="keep" if keep else "regenerate")
    original = getattr(module, name)

    if name in ("load_hashes", "join_hashes", "transform_users", "pack_users"):
        def killed(job, *a, **k):
            original(job, *a, **k)
            raise Killed(name)
    else:
        async def killed(job, *a, **k):
            await original(job, *a, **k)
            raise Killed(name)

    monkeypatch.setattr(module, name, killed)
    with pytest.raises(Killed):
        migrate(world, opts)
    _nobody_lost(world, before)
    monkeypatch.setattr(module, name, original)
    _finished(world, seeded, before, grants, migrate(world, opts), kept_ids=keep)


KILL_POINTS = [("start a users import", 1), ("read job", 2), ("read permissions of", 7), ("assign role", 1),
               ("restore permissions of", 4), ("delete ", 5), ("read errors of job", 1)]


@pytest.mark.parametrize("operation,nth", KILL_POINTS, ids=[f"{o.strip()}#{n}" for o, n in KILL_POINTS])
def test_killed_at_the_nth_call(world: World, tmp_path, monkeypatch, operation, nth) -> None:
    """Killed right after the Nth call of an operation reached the tenant, before the answer was recorded."""
    seeded, before, grants, opts = _setup(world, tmp_path)
    if operation == "read errors of job":
        # Make one import user fail so that the errors endpoint is read: an existing target user.
        email = sorted(before)[0]
        target = world.client()
        import asyncio

        async def pre_create() -> None:
            try:
                await target.sdk.users.create(connection=TARGET, email=email, password="Another-pass-1!",
                                              user_id=before[email].split("|", 1)[1])
            finally:
                await target.aclose()
        asyncio.run(pre_create())
    original = client_module.TenantClient.call
    seen = {"n": 0}

    async def call(self, op, fn, *args, **kwargs):
        result = await original(self, op, fn, *args, **kwargs)
        if op.startswith(operation):
            seen["n"] += 1
            if seen["n"] == nth:
                raise Killed(f"{op} #{nth}")
        return result

    monkeypatch.setattr(client_module.TenantClient, "call", call)
    with pytest.raises(Killed, match=f"#{nth}$"):  # killed at the intended call (others may be in flight)
        migrate(world, opts)
    _nobody_lost(world, before)
    monkeypatch.setattr(client_module.TenantClient, "call", original)
    result = migrate(world, opts)
    if operation == "read errors of job":
        # The pre-created user is recognised as already in the target: not a failure, not imported twice.
        # Its target copy is someone else's profile (the import did not overwrite it), so verification
        # names it, exit 4, and its source copy is kept: every other user went through to the end.
        assert (result.exit_code, result.failures) == (4, []), dump(result)
        assert [(d["email"], d["user_id"]) for d in result.differences] == [(email, before[email])]
        assert {k: result.users[k] for k in ("imported", "already_in_target", "verified", "deleted_from_source")} \
            == {"imported": seeded.users - 1, "already_in_target": 1, "verified": seeded.users - 1,
                "deleted_from_source": seeded.users - 1}, dump(result)
        assert [u["email"] for u in world.users(SOURCE)] == [email]
        return
    _finished(world, seeded, before, grants, result)


def test_import_submitted_but_not_recorded(world: World, tmp_path, monkeypatch) -> None:
    """The POST of an import reached the tenant but the process died before writing the job id down."""
    seeded, before, grants, opts = _setup(world, tmp_path)
    original = jobs.submit_import

    async def submit_then_die(*args, **kwargs):
        await original(*args, **kwargs)
        raise Killed("after submit")

    monkeypatch.setattr(jobs, "submit_import", submit_then_die)
    seeding_jobs = _import_jobs(world)
    with pytest.raises(Killed):
        migrate(world, opts)
    # The lost job runs on the tenant's clock; the next run settles the `submitting` file from the target.
    monkeypatch.setattr(jobs, "submit_import", original)
    result = migrate(world, opts)
    # Its users were made by the lost job: recorded as imported, and the file was not sent a second time.
    assert (result.users["imported"], result.users["already_in_target"]) == (seeded.users, 0), dump(result)
    assert _import_jobs(world) - seeding_jobs == _files(opts) == 1
    _finished(world, seeded, before, grants, result)


def _killed_before_the_upload_reached_the_tenant(world: World, opts, monkeypatch) -> None:
    """A run killed with its file recorded `submitting` and its upload not yet at the tenant: no job exists, and
    nothing in the ledger can tell that apart from a job Auth0 has queued (a SIGKILL in that window)."""
    async def die_before_sending(*args, **kwargs):
        raise Killed("before the upload reached the tenant")

    monkeypatch.setattr(jobs, "submit_import", die_before_sending)
    with pytest.raises(Killed):
        migrate(world, opts)
    monkeypatch.undo()
    with sqlite3.connect(opts.state) as db:
        assert db.execute("SELECT status FROM files").fetchall() == [("submitting",)]


def _resume(world: World, opts) -> tuple[RunResult, list[str], float]:
    """The next run, as a new process: its result, its warnings, and how long it took on the tenant's clock."""
    reporter = QuietReporter()
    started = world.clock.now()

    async def go() -> RunResult:
        client = world.client()
        try:
            return await run(opts, source=client, reporter=reporter)
        finally:
            await client.aclose()
    result = asyncio.run(go())
    return result, [m for m in reporter.messages if m.startswith("warning: ")], world.clock.now() - started


def test_killed_before_the_upload_left_the_next_run_waits_for_its_job_then_sends_it(world: World, tmp_path,
                                                                                    monkeypatch) -> None:
    """Resumed at once: the job may yet show, so the file is settled for up to `SETTLE_PATIENCE`, saying so."""
    seeded, before, grants, opts = _setup(world, tmp_path)
    _killed_before_the_upload_reached_the_tenant(world, opts, monkeypatch)
    seeding_jobs = _import_jobs(world)
    result, warnings, took = _resume(world, opts)
    assert took >= import_jobs.SETTLE_PATIENCE
    assert any("file 1 was being uploaded when an earlier run stopped" in w and "for up to 10m00s" in w
               for w in warnings), warnings
    assert (result.users["imported"], result.users["already_in_target"]) == (seeded.users, 0), dump(result)
    assert _import_jobs(world) - seeding_jobs == 1  # sent once, after the wait
    _finished(world, seeded, before, grants, result)


def test_resumed_after_the_patience_a_killed_upload_is_not_waited_for_again(world: World, tmp_path,
                                                                             monkeypatch) -> None:
    """Resumed once `SETTLE_PATIENCE` has passed since the send: the users are looked for once, and the file is
    sent again at once (before, the next run waited the whole patience again, counted from its own start)."""
    seeded, before, grants, opts = _setup(world, tmp_path)
    _killed_before_the_upload_reached_the_tenant(world, opts, monkeypatch)
    world.clock.advance(import_jobs.SETTLE_PATIENCE + 1)  # the operator comes back after lunch
    seeding_jobs = _import_jobs(world)
    result, warnings, took = _resume(world, opts)
    assert took < import_jobs.SLOT_POLL  # no settling sleep at all
    assert any("file 1 was being uploaded when an earlier run stopped" in w and "once" in w
               for w in warnings), warnings
    assert (result.users["imported"], result.users["already_in_target"]) == (seeded.users, 0), dump(result)
    assert _import_jobs(world) - seeding_jobs == 1
    _finished(world, seeded, before, grants, result)


def _import_jobs(world: World) -> int:
    return int(world.tenant.store.one("SELECT COUNT(*) AS n FROM jobs WHERE type = 'users_import'")["n"])


def _files(opts) -> int:
    import sqlite3

    with sqlite3.connect(opts.state) as db:
        return int(db.execute("SELECT COUNT(*) FROM files").fetchone()[0])


def test_second_run_of_a_finished_migration_changes_nothing(world: World, tmp_path) -> None:
    seeded, before, grants, opts = _setup(world, tmp_path)
    first = migrate(world, opts)
    _finished(world, seeded, before, grants, first)
    calls_before = dict(world.tenant.stats)
    second = migrate(world, opts)
    assert second.as_dict()["users"] == first.as_dict()["users"]
    writes = {k: v - calls_before.get(k, 0) for k, v in world.tenant.stats.items()
              if not k.startswith(("GET", "POST /oauth")) and v != calls_before.get(k, 0)}
    assert writes == {}, writes


def test_ledger_refuses_another_migration(world: World, tmp_path) -> None:
    from auth0_migrate.errors import LedgerError

    seeded, before, grants, opts = _setup(world, tmp_path, users=3)
    _finished(world, seeded, before, grants, migrate(world, opts))
    moved = world.users(TARGET)
    calls_before = dict(world.tenant.stats)
    other = options(tmp_path, user_ids="prefix", id_prefix="x_")
    with pytest.raises(LedgerError, match="user_ids"):
        migrate(world, other)
    # refused before anything was written: no write call reached the tenant, the target is as it was
    writes = {k for k, v in world.tenant.stats.items()
              if not k.startswith(("GET", "POST /oauth")) and v != calls_before.get(k, 0)}
    assert writes == set() and world.users(TARGET) == moved
