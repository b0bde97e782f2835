"""`--user-ids keep` in one tenant: the grants are written once and verified once, after cutover.

The target copy shares its source copy's id, and grants are keyed by the id: before cutover the shared id
holds the source's grants already (writing them is a no-op, reading them back reads the source copy), and
the local tenant drops them when the source copy is deleted (the pessimistic reading of what Auth0 does).
So the run writes each user's roles and DIRECT permissions after its source copy is deleted, and reads them
back after that: P permission writes, sum_r ceil(m_r/100) role batches and P read-backs in all, wherever the
run is stopped, and whichever cutover (per user, or the whole connection) deletes the source copies.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from typing import Any

import pytest

from auth0_migrate.errors import TransientError
from auth0_migrate.model import MigrationOptions, RunResult
from auth0_migrate.pipeline import status
from auth0_migrate.seed import API_IDENTIFIER, disable_connection_for_clients
from auth0_migrate.stages import cutover

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options, sdk

WRITE_PERMISSIONS = "POST /api/v2/users/{id}/permissions"
ASSIGN_ROLE = "POST /api/v2/roles/{id}/users"
READ_PERMISSIONS = "GET /api/v2/users/{id}/permissions"
GRANT_WRITES = (WRITE_PERMISSIONS, ASSIGN_ROLE)


class Killed(BaseException):
    pass


class _Recorder:
    """An ASGI app in front of the tenant that notes each request (method, path) in order."""

    def __init__(self, app: Any, log: list[tuple[str, str]]) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.log.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def _setup(world: World, tmp_path: Any, users: int = 30, **kwargs: Any) -> tuple[Any, dict[str, str], Any, Any]:
    """Seeded source, its ids by email, the grants of a sample of its users, and the keep options."""
    seeded = world.seed(users=users)
    world.connection(TARGET)
    ids = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    with_permissions = {r["user_id"] for r in world.tenant.store.query("SELECT DISTINCT user_id FROM user_permissions")}
    # The sample: users holding DIRECT permissions (and roles where they have some), so a lost grant shows.
    sample = {e: grants_of(world, i) for e, i in sorted(ids.items()) if i in with_permissions}
    assert len(sample) == seeded.users_with_permissions > 0
    opts = options(tmp_path, user_ids="keep", password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")),
                   **kwargs)
    return seeded, ids, sample, opts


def _role_batches(world: World) -> int:
    """sum_r ceil(m_r / 100): the role-assignment batches the source's memberships take."""
    members = Counter(r["role_id"] for r in world.tenant.store.query("SELECT role_id FROM role_members"))
    assert members, "the seed gave nobody a role"
    return sum(math.ceil(n / 100) for n in members.values())


def _calls_since(world: World, before: dict[str, int]) -> Counter[str]:
    return Counter({k: v - before.get(k, 0) for k, v in world.tenant.stats.items() if v != before.get(k, 0)})


def _all_there(world: World, ids: dict[str, str], sample: dict[str, Any], result: RunResult) -> None:
    assert result.exit_code == 0, dump(result)
    assert result.users["verified"] == result.users["deleted_from_source"] == len(ids), dump(result)
    assert result.users["grants_after_cutover"] == 0
    assert world.users(SOURCE) == []
    assert {u["email"]: u["user_id"] for u in world.users(TARGET)} == ids
    for email, held in sample.items():
        assert grants_of(world, ids[email]) == held, email


def _disable_source_connection(world: World) -> None:
    async def go() -> None:
        client = world.client()
        try:
            await disable_connection_for_clients(client, SOURCE)
        finally:
            await client.aclose()
    asyncio.run(go())


def test_grants_are_written_and_read_back_once_after_the_source_copies_are_deleted(world: World, tmp_path) -> None:
    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_users=True)
    batches = _role_batches(world)
    roles = len(world.tenant.store.query("SELECT id FROM roles"))
    log: list[tuple[str, str]] = []
    result = migrate(world, opts, app=_Recorder(world.app, log))
    _all_there(world, ids, sample, result)

    def at(method: str, pattern: str) -> list[int]:
        return [n for n, (m, path) in enumerate(log) if m == method and re.fullmatch(pattern, path)]

    deletes = at("DELETE", r"/api/v2/connections/[^/]+/users")
    writes = at("POST", r"/api/v2/users/[^/]+/permissions")
    assigns = at("POST", r"/api/v2/roles/[^/]+/users")
    assert len(deletes) == seeded.users
    # Once each: P permission writes and sum_r ceil(m_r/100) role batches, all after the last deletion.
    assert (len(writes), len(assigns)) == (seeded.users_with_permissions, batches)
    assert min(writes + assigns) > max(deletes)
    # Read back once, after the deletions: the P users' permissions and each role's members (one page each here).
    permission_reads = at("GET", r"/api/v2/users/[^/]+/permissions")
    assert len(permission_reads) == seeded.users + seeded.users_with_permissions  # N in the source, P read back
    assert len([n for n in permission_reads if n > max(writes)]) == seeded.users_with_permissions
    assert len([n for n in at("GET", r"/api/v2/roles/[^/]+/users") if n > max(deletes)]) == roles
    assert result.grants["permissions_restored"] == seeded.permissions
    assert result.grants["roles_restored"] == seeded.role_members


def test_a_refused_connection_delete_writes_no_grant_and_says_what_stands(world: World, tmp_path, capsys) -> None:
    from auth0_migrate.cli import main

    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_connection=True)
    batches = _role_batches(world)
    before = dict(world.tenant.stats)
    first = migrate(world, opts)  # an application still uses the source connection: refused
    assert first.exit_code == 3, dump(first)
    assert "source-connection-kept" in first.reports["problems"]
    assert not set(_calls_since(world, before)) & set(GRANT_WRITES)  # nothing written under the shared ids
    # Profiles verified, grants not checked: neither verified nor failed.
    assert (first.users["verified"], first.users["grants_after_cutover"], first.users["failed"]) == \
        (0, seeded.users, 0), dump(first)
    assert first.failures == [] and first.differences == []
    again = status(opts.state or "")
    assert (again.users, again.exit_code) == (first.users, 3)
    capsys.readouterr()
    assert main(["status", "--state", opts.state or ""]) == 3
    said = capsys.readouterr()
    assert f"{seeded.users} users: profile verified; their roles and permissions are written and verified once " \
        "their source copy is deleted" in said.out + said.err

    _disable_source_connection(world)
    before = dict(world.tenant.stats)
    result = migrate(world, opts)
    calls = _calls_since(world, before)  # before `_all_there` reads grants of its own
    _all_there(world, ids, sample, result)
    assert calls["DELETE /api/v2/connections/{id}"] == 1
    assert (calls[WRITE_PERMISSIONS], calls[ASSIGN_ROLE], calls[READ_PERMISSIONS]) == \
        (seeded.users_with_permissions, batches, seeded.users_with_permissions), calls


def test_killed_between_the_connection_delete_and_the_grant_writes(world: World, tmp_path, monkeypatch) -> None:
    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_connection=True)
    _disable_source_connection(world)
    batches = _role_batches(world)

    async def killed(migration: Any) -> None:
        raise Killed("after cutover")

    monkeypatch.setattr(cutover, "grants_after_cutover", killed)
    with pytest.raises(Killed):
        migrate(world, opts)
    monkeypatch.undo()
    stopped = status(opts.state or "")
    assert stopped.users["deleted_from_source"] == seeded.users
    assert (stopped.users["verified"], stopped.users["grants_after_cutover"]) == (0, seeded.users)
    assert stopped.exit_code == 3 and stopped.failures == []
    # The deletion dropped the grants held under the shared ids (the local tenant's reading), and none was written.
    for email in sample:
        assert grants_of(world, ids[email]) == (set(), set())

    before = dict(world.tenant.stats)
    result = migrate(world, opts)
    calls = _calls_since(world, before)  # before `_all_there` reads grants of its own
    _all_there(world, ids, sample, result)
    assert (calls[WRITE_PERMISSIONS], calls[ASSIGN_ROLE], calls[READ_PERMISSIONS]) == \
        (seeded.users_with_permissions, batches, seeded.users_with_permissions), calls


def test_killed_after_the_grant_writes_the_next_run_reads_them_back(world: World, tmp_path, monkeypatch) -> None:
    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_users=True)

    async def killed(migration: Any) -> None:
        raise Killed("before the read-back")

    monkeypatch.setattr(cutover, "verify_after_cutover", killed)
    with pytest.raises(Killed):
        migrate(world, opts)
    monkeypatch.undo()
    stopped = status(opts.state or "")
    assert (stopped.users["verified"], stopped.users["grants_after_cutover"]) == (0, seeded.users)

    before = dict(world.tenant.stats)
    result = migrate(world, opts)
    calls = _calls_since(world, before)  # before `_all_there` reads grants of its own
    _all_there(world, ids, sample, result)
    assert not set(calls) & set(GRANT_WRITES), calls  # written by the first run, not again
    assert calls[READ_PERMISSIONS] == seeded.users_with_permissions


def test_a_grant_the_target_lacks_after_cutover_is_a_difference(world: World, tmp_path, monkeypatch) -> None:
    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_users=True)
    email = next(e for e, (_, perms) in sample.items() if perms)
    api, name = sorted(sample[email][1])[0]
    original = cutover.verify_after_cutover

    async def someone_takes_one_away(migration: Any) -> None:
        # Between the writes and the read-back, a DIRECT permission goes from one user (someone else's hand).
        await migration.target.call("take a permission away", migration.target.sdk.users.permissions.delete,
                                    ids[email], permissions=[{"resource_server_identifier": api,
                                                              "permission_name": name}])
        await original(migration)

    monkeypatch.setattr(cutover, "verify_after_cutover", someone_takes_one_away)
    result = migrate(world, opts)
    assert result.exit_code == 4, dump(result)
    [difference] = result.differences
    assert difference["email"] == email
    assert f"permissions missing: {api} {name}" in difference["differences"]
    assert result.users["verified"] == seeded.users - 1
    assert result.users["grants_after_cutover"] == 0  # it was checked: what stands is the difference
    assert api == API_IDENTIFIER


def test_an_outage_on_the_grant_writes_stops_the_run_and_the_next_one_finishes(world: World, tmp_path) -> None:
    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_users=True)
    world.tenant.faults.fail_call(WRITE_PERMISSIONS, nth=1, action=503, times=10_000)
    with pytest.raises(TransientError):
        migrate(world, opts)
    assert world.tenant.faults.injected[WRITE_PERMISSIONS] >= 8  # every attempt of a write answered 503
    world.tenant.faults.calls.clear()
    stopped = status(opts.state or "")
    assert stopped.users["deleted_from_source"] == seeded.users
    assert stopped.users["verified"] == 0 and stopped.users["grants_after_cutover"] == seeded.users
    _all_there(world, ids, sample, migrate(world, opts))


def test_a_user_kept_in_the_source_gets_its_grants_when_a_later_run_deletes_it(world: World, tmp_path,
                                                                               monkeypatch) -> None:
    from auth0_migrate.stages import export

    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_users=True)
    email = next(iter(sample))
    original = export.export_source

    async def then_hold(migration: Any) -> None:
        # It holds an MFA factor that cannot be carried: cutover keeps it until the owner lets the factor go.
        await original(migration)
        ordinal = migration.ledger.ordinals_by_source_id()[ids[email]]
        migration.ledger.add_holdings("mfa-factor", [(ordinal, "webauthn-roaming")])
        migration.ledger.set_holdings("mfa-factor", "cannot", [(ordinal, "webauthn-roaming")],
                                      "WebAuthn keys cannot be imported")

    monkeypatch.setattr(export, "export_source", then_hold)
    first = migrate(world, opts)
    monkeypatch.undo()
    assert first.exit_code == 3, dump(first)
    assert (first.users["kept_in_source"], first.users["verified"], first.users["grants_after_cutover"]) == \
        (1, seeded.users - 1, 1), dump(first)
    assert [f.code for f in first.failures] == ["KEPT_IN_SOURCE"]
    assert grants_of(world, ids[email]) == sample[email]  # the source copy's, under the shared id

    before = dict(world.tenant.stats)
    last = migrate(world, MigrationOptions(**{**opts.__dict__, "allow_loss": ("mfa",)}))
    assert last.exit_code == 0, dump(last)
    assert (last.users["verified"], last.users["grants_after_cutover"]) == (seeded.users, 0)
    calls = _calls_since(world, before)
    # Its source copy deleted (its grants with it), its grants written and read back: its alone.
    assert calls["DELETE /api/v2/connections/{id}/users"] == 1
    assert calls[WRITE_PERMISSIONS] == calls[READ_PERMISSIONS] == 1, calls
    assert grants_of(world, ids[email]) == sample[email]
    assert world.users(SOURCE) == []


def test_across_tenants_keep_writes_and_verifies_the_grants_once(world: World, other_world: World,
                                                                 tmp_path) -> None:
    """Deleting source-tenant users cannot touch the target tenant's grants: nothing is written again there."""
    seeded = world.seed(users=30)
    other_world.seed(connection="Elsewhere", users=2, seed=99)  # the same API and roles in the target
    other_world.connection(TARGET)
    batches = _role_batches(world)
    ids = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    sample = {e: grants_of(world, i) for e, i in sorted(ids.items())[:10]}
    opts = options(tmp_path, user_ids="keep", password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")),
                   delete_source_users=True)
    before = dict(other_world.tenant.stats)
    result = migrate(world, opts, target=other_world)
    assert result.exit_code == 0, dump(result)
    assert result.users["verified"] == result.users["deleted_from_source"] == seeded.users
    calls = _calls_since(other_world, before)
    assert (calls[WRITE_PERMISSIONS], calls[ASSIGN_ROLE], calls[READ_PERMISSIONS]) == \
        (seeded.users_with_permissions, batches, seeded.users_with_permissions), calls
    assert world.users(SOURCE) == []
    for email, held in sample.items():
        assert grants_of(other_world, ids[email]) == held


def test_a_refresh_writes_a_new_users_grants_once_after_deleting_its_source_copy(world: World, tmp_path) -> None:
    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_users=True)
    _all_there(world, ids, sample, migrate(world, opts))
    # A user signs up in the source after the run, and is given a role and a DIRECT permission there.
    new = sdk(world, "users.create", connection=SOURCE, email="newcomer@example.com", password="Newcomer-pass-1!")
    new_id = str(new.user_id)
    role = world.tenant.store.query("SELECT id FROM roles ORDER BY id")[0]["id"]
    sdk(world, "roles.users.assign", role, users=[new_id])
    sdk(world, "users.permissions.create", new_id, permissions=[{"resource_server_identifier": API_IDENTIFIER,
                                                                  "permission_name": "read:reports"}])
    held = grants_of(world, new_id)
    assert held[0] and held[1]
    refresh = MigrationOptions(**{**opts.__dict__, "refresh": True,
                                  "password_hashes": world.hash_file(str(tmp_path / "hashes-2.ndjson"))})
    log: list[tuple[str, str]] = []
    result = migrate(world, refresh, app=_Recorder(world.app, log))
    assert result.exit_code == 0, dump(result)
    assert result.delta is not None and result.delta["new"] == 1
    # The grants refresh wrote nothing: under the shared id the source copy held them until cutover.
    assert (result.delta["grants_added"], result.delta["grants_removed"]) == (0, 0)
    assert (result.users["verified"], result.users["grants_after_cutover"]) == (seeded.users + 1, 0)
    [delete] = [n for n, (m, path) in enumerate(log) if m == "DELETE"]
    writes = [n for n, (m, path) in enumerate(log) if m == "POST" and re.fullmatch(
        r"/api/v2/(users/[^/]+/permissions|roles/[^/]+/users)", path)]
    assert len(writes) == 2 and min(writes) > delete  # its permission and its role, once each, after the deletion
    read_back = [n for n, (m, path) in enumerate(log) if m == "GET" and path == f"/api/v2/users/{new_id}/permissions"]
    assert read_back and max(read_back) > max(writes)
    assert grants_of(world, new_id) == held
    assert world.users(SOURCE) == []


def test_a_ledger_an_older_version_left_between_cutover_and_its_re_apply_resumes(world: World, tmp_path) -> None:
    """Older versions wrote the grants before cutover and again after it. A ledger one of them left with the source
    copies deleted, one user not yet given its grants again and none read back after cutover: this version writes
    that user's alone, and reads back every user's."""
    import sqlite3

    seeded, ids, sample, opts = _setup(world, tmp_path, delete_source_users=True)
    _all_there(world, ids, sample, migrate(world, opts))
    email = next(iter(sample))
    roles, perms = sample[email]
    # As the older version left it: both rounds' phases but the last two, the user's grants written before cutover
    # (flags 1), verified then, dropped with its source copy, and not re-applied.
    sdk(world, "users.permissions.delete", ids[email], permissions=[
        {"resource_server_identifier": api, "permission_name": name} for api, name in perms])
    role_ids = {r["name"]: r["id"] for r in world.tenant.store.query("SELECT id, name FROM roles")}
    if roles:
        sdk(world, "users.roles.delete", ids[email], roles=[role_ids[n] for n in roles])
    assert grants_of(world, ids[email]) == (set(), set())
    with sqlite3.connect(opts.state or "") as db:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('phase:restore', 'true'), "
                   "('phase:verify', 'true')")
        db.execute("UPDATE users SET reapplied = 1 WHERE deleted = 1")
        db.execute("UPDATE users SET reapplied = 0 WHERE source_id = ?", (ids[email],))
    before = dict(world.tenant.stats)
    result = migrate(world, opts)
    calls = _calls_since(world, before)
    assert calls[WRITE_PERMISSIONS] == 1 and calls[ASSIGN_ROLE] == len(roles), calls
    # Its run never read the grants back after cutover: every user given some is read back now, once.
    assert calls[READ_PERMISSIONS] == seeded.users_with_permissions
    _all_there(world, ids, sample, result)
    again = dict(world.tenant.stats)
    assert migrate(world, opts).exit_code == 0
    assert not set(_calls_since(world, again)) & {*GRANT_WRITES, READ_PERMISSIONS}  # settled once
