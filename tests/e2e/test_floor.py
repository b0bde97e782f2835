"""Issue 9, the new floor: what the run reads back, and that the source's grants are read while the import runs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.pipeline import run, verify
from auth0_migrate.seed import API_IDENTIFIER

from .conftest import SOURCE, TARGET, World, dump, migrate, options

PERMISSION_READS = "GET /api/v2/users/{id}/permissions"


def _target_user_with_extra_permission(target: World, email: str, source_id: str) -> str:
    """A copy the target held before the run (recognisably the source user's: its id in app_metadata), holding a
    DIRECT permission given by someone else."""
    async def go() -> str:
        client = target.client()
        try:
            user = await client.sdk.users.create(connection=TARGET, email=email, password="Another-pass-1!",
                                                 app_metadata={"legacy_user_id": source_id})
            await client.sdk.users.permissions.create(str(user.user_id), permissions=[
                {"resource_server_identifier": API_IDENTIFIER, "permission_name": "admin:users"}])
            return str(user.user_id)
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_permissions_are_read_back_only_for_users_given_some_and_users_there_before(
        world: World, other_world: World, tmp_path) -> None:
    seeded = world.seed(users=40)
    other_world.seed(connection="Elsewhere", users=2, seed=99)  # the same API and roles in the target
    other_world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    source_ids = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    with_permissions = {row["user_id"] for row in world.tenant.store.query(
        "SELECT DISTINCT user_id FROM user_permissions")} & set(source_ids.values())
    assert len(with_permissions) == seeded.users_with_permissions > 0
    # One source user without DIRECT permissions already has a copy in the target, with a permission it lacks.
    email = next(e for e, i in sorted(source_ids.items()) if i not in with_permissions)
    _target_user_with_extra_permission(other_world, email, source_ids[email])
    reads_before = other_world.tenant.stats.get(PERMISSION_READS, 0)
    opts = options(tmp_path, password_hashes=hashes, record_source_id="legacy_user_id")
    result = migrate(world, opts, target=other_world)
    assert result.users["already_in_target"] == 1, dump(result)
    # Read back: the users given permissions, and the one that was there before; never the others.
    assert other_world.tenant.stats[PERMISSION_READS] - reads_before == seeded.users_with_permissions + 1
    # The user that was there before is read, so its stray permission is found.
    assert result.exit_code == 4, dump(result)
    assert [d["email"] for d in result.differences] == [email]  # its older profile differs too
    assert f"permissions extra: {API_IDENTIFIER} admin:users" in result.differences[0]["differences"]

    # The `verify` command, run later when anyone may have changed the target, reads every user again.
    async def verify_later() -> int:
        source, target = world.client(), other_world.client()
        try:
            return (await verify(opts, source=source, target=target)).exit_code
        finally:
            await source.aclose()
            await target.aclose()
    reads_before = other_world.tenant.stats[PERMISSION_READS]
    assert asyncio.run(verify_later()) == 4
    assert other_world.tenant.stats[PERMISSION_READS] - reads_before == seeded.users


class _Recorder:
    """An ASGI app in front of a tenant that notes each request (tenant, method, path) in one shared list."""

    def __init__(self, app: Any, name: str, log: list[tuple[str, str, str]]) -> None:
        self.app, self.name, self.log = app, name, log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.log.append((self.name, scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def test_source_permissions_are_read_while_the_import_job_runs(world: World, other_world: World, tmp_path) -> None:
    seeded = world.seed(users=40)
    other_world.seed(connection="Elsewhere", users=2, seed=99)
    other_world.connection(TARGET)
    other_world.tenant.config.job_seconds = 60  # Auth0 takes a while over an import file
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    log: list[tuple[str, str, str]] = []

    def client(w: World, name: str) -> TenantClient:
        transport = w.oas_wrap(httpx.ASGITransport(app=_Recorder(w.app, name, log)))
        return TenantClient(TenantCredentials(w.base_url, w.client_id, w.client_secret), transport=transport,
                            clock=w.clock)

    async def go() -> Any:
        source, target = client(world, "source"), client(other_world, "target")
        try:
            return await run(options(tmp_path, password_hashes=hashes), source=source, target=target)
        finally:
            await source.aclose()
            await target.aclose()

    result = asyncio.run(go())
    assert result.exit_code == 0, dump(result)
    upload = log.index(("target", "POST", "/api/v2/jobs/users-imports"))
    polls = [n for n, (side, method, path) in enumerate(log)
             if side == "target" and method == "GET" and path.startswith("/api/v2/jobs/job_")
             and not path.endswith("/errors")]
    import_done = max(n for n in polls if n > upload)  # the poll that found the import job completed
    reads = [n for n, (side, method, path) in enumerate(log)
             if side == "source" and method == "GET" and path.endswith("/permissions")]
    assert len(reads) == seeded.users
    during = [n for n in reads if upload < n < import_done]
    assert during, "no source permission read ran while the import job was processing"


def _disable_source_connection(world: World) -> list[str]:
    from auth0_migrate.seed import disable_connection_for_clients

    async def go() -> list[str]:
        client = world.client()
        try:
            return await disable_connection_for_clients(client, SOURCE)
        finally:
            await client.aclose()
    return asyncio.run(go())


def _connections(world: World) -> set[str]:
    return {r["name"] for r in world.tenant.store.query("SELECT name FROM connections")}


def test_keep_deletes_the_source_connection_in_one_call_once_nothing_uses_it(world: World, tmp_path) -> None:
    from .conftest import grants_of

    seeded = world.seed(users=40)
    world.connection(TARGET)
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    grants_before = {e: grants_of(world, i) for e, i in sorted(before.items())[:10]}
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    opts = options(tmp_path, user_ids="keep", password_hashes=hashes, delete_source_connection=True)
    # An application still logs in through the source connection: it is kept, and the run says why.
    result = migrate(world, opts)
    assert result.exit_code == 3, dump(result)
    [kept] = result.reports["problems"]["source-connection-kept"]
    assert "still enabled for application e2e-client" in kept["detail"]
    assert SOURCE in _connections(world) and len(world.users(SOURCE)) == seeded.users
    assert result.users["deleted_from_source"] == 0
    # Profiles verified; the grants are written and verified once the connection is gone (the ids are shared).
    assert (result.users["verified"], result.users["grants_after_cutover"]) == (0, seeded.users), dump(result)
    # The owner switches the application over; the same command deletes the connection, with one call.
    assert _disable_source_connection(world) == ["e2e-client"]
    deletes = world.tenant.stats.get("DELETE /api/v2/connections/{id}", 0)
    result = migrate(world, opts)
    assert result.exit_code == 0, dump(result)
    assert world.tenant.stats["DELETE /api/v2/connections/{id}"] - deletes == 1
    assert world.tenant.stats.get("DELETE /api/v2/connections/{id}/users", 0) == 0  # no per-user delete
    assert SOURCE not in _connections(world)
    assert result.users["deleted_from_source"] == seeded.users
    assert "source-connection-kept" not in result.reports["problems"]
    # The kept ids lost their grants with the source users; the run wrote them then, and verified them.
    assert (result.users["verified"], result.users["grants_after_cutover"]) == (seeded.users, 0)
    assert {u["email"]: u["user_id"] for u in world.users(TARGET)} == before
    for email, grants in grants_before.items():
        assert grants_of(world, before[email]) == grants


def test_a_source_user_the_run_did_not_read_keeps_the_connection(world: World, tmp_path) -> None:
    world.seed(users=12)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    opts = options(tmp_path, password_hashes=hashes, delete_source_connection=True)
    first = migrate(world, opts)  # kept: an application still uses it
    assert first.exit_code == 3 and first.users["verified"] == 12, dump(first)

    async def late_user() -> None:  # created after the run's export: the ledger never read it
        client = world.client()
        try:
            await client.sdk.users.create(connection=SOURCE, email="late@example.com", password="Late-pass-1!")
        finally:
            await client.aclose()
    asyncio.run(late_user())
    _disable_source_connection(world)
    result = migrate(world, opts)
    assert result.exit_code == 3, dump(result)
    [kept] = result.reports["problems"]["source-connection-kept"]
    assert "holds 13 users and this run read 12" in kept["detail"]
    assert "enabled for application" not in kept["detail"]
    assert SOURCE in _connections(world) and len(world.users(SOURCE)) == 13
    assert result.users["deleted_from_source"] == 0


def test_delete_source_connection_is_refused_for_a_subset(world: World, tmp_path) -> None:
    import pytest

    from auth0_migrate.errors import UsageError

    world.seed(users=3)
    world.connection(TARGET)
    users = tmp_path / "users.txt"
    users.write_text(world.users(SOURCE)[0]["email"] + "\n")
    with pytest.raises(UsageError, match="--users migrates only part of it"):
        migrate(world, options(tmp_path, users_file=str(users), delete_source_connection=True))
    assert SOURCE in _connections(world)
