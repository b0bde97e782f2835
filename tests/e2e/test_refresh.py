"""`run --refresh` / `plan --refresh`: what changed in the source after a migration, carried as a delta.

The source changes after a first run (users signed up, profiles edited, a user deleted, passwords
changed before and after the user's first login to the target), support sends a newer hash file,
and the same command with `--refresh` carries the change: the target then matches the source for
every user the run carries, and each change it cannot carry is named.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from typing import Any

import httpx
import pytest

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.model import MigrationOptions, PlanResult, RunResult
from auth0_migrate.pipeline import plan, run

from .conftest import SOURCE, TARGET, World, dump, options, sdk

NEW_PASSWORD = "Refreshed-Passw0rd!"


class Counting(httpx.AsyncBaseTransport):
    """Counts the Management API calls a client makes (method and path)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v2/"):
            self.calls[f"{request.method} {request.url.path}"] += 1
        return await self.inner.handle_async_request(request)


def go(world: World, opts: MigrationOptions, *, planning: bool = False,
       counter: Counting | None = None) -> Any:
    async def main() -> RunResult | PlanResult:
        transport: Any = Counting(httpx.ASGITransport(app=world.app)) if counter is None else counter
        client = TenantClient(TenantCredentials(world.base_url, world.client_id, world.client_secret),
                              transport=world.oas_wrap(transport), clock=world.clock)
        try:
            if planning:
                return await plan(opts, source=client)
            return await run(opts, source=client)
        finally:
            await client.aclose()
    return asyncio.run(main())


def custom_hash_file(world: World, path: str) -> str:
    """The support file, its bcrypt hashes as `$2y$`: imported as `custom_password_hash` (which an upsert may
    replace before the user's first login)."""
    world.hash_file(path)
    with open(path, encoding="utf-8") as f:
        lines = [line.replace('"$2b$', '"$2y$') for line in f]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return path


def by_email(world: World, connection: str) -> dict[str, dict[str, Any]]:
    users = {}
    for row in world.users(connection):
        profile = json.loads(row["profile"]) if "profile" in row and row["profile"] else {}
        users[row["email"]] = {**row, **profile}
    return users


def profile(world: World, connection: str, email: str) -> dict[str, Any]:
    [user] = [u for u in sdk(world, "users.list_users_by_email", email=email)
              if any(i.connection == connection for i in u.identities or [])]
    data: dict[str, Any] = user.model_dump(mode="json")
    return data


@pytest.fixture
def migrated(world: World, tmp_path: Any) -> tuple[World, Any, dict[str, str], MigrationOptions]:
    """A first run of 10 users (custom bcrypt hashes), finished and verified."""
    seeded = world.seed(users=10, role_share=0.0, permission_share=0.5)
    world.connection(TARGET)
    hashes = custom_hash_file(world, str(tmp_path / "hashes-1.ndjson"))
    opts = options(tmp_path, password_hashes=hashes)
    first = go(world, opts)
    assert first.exit_code == 0, dump(first)
    assert first.users["imported"] == 10 and first.delta is None
    return world, tmp_path, seeded.passwords, opts


def change_the_source(world: World, passwords: dict[str, str]) -> dict[str, str]:
    """New users, edited metadata, a user blocked, one deleted, two passwords changed (one after a login in the
    target). Returns the emails by role in the story."""
    source = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    emails = sorted(e for e in source if e in passwords)
    story = {"edited": emails[0], "blocked": emails[1], "deleted": emails[2], "before_login": emails[3],
             "after_login": emails[4]}
    for n in range(3):
        email = f"newcomer{n}@example.com"
        sdk(world, "users.create", connection=SOURCE, email=email, password=NEW_PASSWORD + str(n),
            user_metadata={"signed_up": "after the first run"})
        story[f"new{n}"] = email
    sdk(world, "users.update", source[story["edited"]], user_metadata={"plan": "gold", "seats": 3},
        given_name="Renamed")
    sdk(world, "users.update", source[story["blocked"]], blocked=True)
    sdk(world, "users.delete", source[story["deleted"]])
    # One user logs in to the target with the old password before changing it in the source.
    assert world.login(TARGET, story["after_login"], passwords[story["after_login"]]) == 200
    for key in ("before_login", "after_login"):
        sdk(world, "users.update", source[story[key]], password=NEW_PASSWORD)
    return story


def test_a_refresh_carries_the_changes_and_names_what_it_cannot(migrated) -> None:
    world, tmp_path, passwords, opts = migrated
    story = change_the_source(world, passwords)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))
    refresh = MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True})

    result = go(world, refresh)

    assert result.delta == {"new": 3, "updated": 4, "deleted_in_source": 1, "grants_added": 0,
                            "grants_removed": 0}, dump(result)
    assert result.exit_code == 3, dump(result)  # changes not carried are named, and count
    assert result.differences == [] and result.failures == []
    named = {p["ref"]: p["detail"] for p in result.reports["problems"]["delta-not-carried"]}
    source_ids = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    assert set(named) == {source_ids[story["blocked"]], source_ids[story["after_login"]]}
    assert "NOT_UPSERTABLE: blocked changed in the source" in named[source_ids[story["blocked"]]]
    assert "PASSWORD_RESET_NEEDED" in named[source_ids[story["after_login"]]]
    assert "logged in" in named[source_ids[story["after_login"]]]
    [gone] = result.reports["problems"]["deleted-in-source"]
    assert story["deleted"] in gone["detail"] and "is kept" in gone["detail"]

    # The target now matches the source for every user the refresh carried.
    edited = profile(world, TARGET, story["edited"])
    assert edited["user_metadata"] == profile(world, SOURCE, story["edited"])["user_metadata"]
    assert edited["user_metadata"]["plan"] == "gold" and edited["given_name"] == "Renamed"
    for n in range(3):
        new = profile(world, TARGET, story[f"new{n}"])
        assert new["user_metadata"] == {"signed_up": "after the first run"}
        assert world.login(TARGET, story[f"new{n}"], NEW_PASSWORD + str(n)) == 200
    assert world.login(TARGET, story["before_login"], NEW_PASSWORD) == 200
    assert world.login(TARGET, story["before_login"], passwords[story["before_login"]]) != 200
    # Auth0 keeps the hash of a user who logged in: the old password still works there, and the user is named.
    assert world.login(TARGET, story["after_login"], passwords[story["after_login"]]) == 200
    assert profile(world, TARGET, story["blocked"]).get("blocked", False) is False  # named, not carried
    assert profile(world, TARGET, story["deleted"])["email"] == story["deleted"]  # kept without --propagate-deletes
    # 10 + 3 new; the user deleted from the source is still in the target, and still matches what was carried.
    assert result.users["imported"] == 13 and result.users["verified"] == 13

    # Run again: nothing new to carry, and nothing written.
    counter = Counting(httpx.ASGITransport(app=world.app))
    again = go(world, refresh, counter=counter)
    assert again.delta == {"new": 0, "updated": 2, "deleted_in_source": 1, "grants_added": 0,
                           "grants_removed": 0}, dump(again)
    assert not any(call.startswith(("POST /api/v2/jobs/users-imports", "DELETE")) for call in counter.calls)


def test_plan_refresh_shows_the_delta_and_writes_nothing(migrated) -> None:
    world, tmp_path, passwords, opts = migrated
    story = change_the_source(world, passwords)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))
    state = opts.state or ""
    with open(state, "rb") as f:
        ledger_before = f.read()
    target_before = world.users(TARGET)
    counter = Counting(httpx.ASGITransport(app=world.app))

    planned = go(world, MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True}),
                 planning=True, counter=counter)

    assert planned.delta is not None
    assert {k: planned.delta[k] for k in ("new", "updated", "deleted_in_source", "password")} == {
        "new": 3, "updated": 4, "deleted_in_source": 1, "password": 2}, planned.as_dict()
    assert planned.users["will_import"] == 3
    assert planned.users["stale_hash"] == 0  # the same users keys as a plain plan: the newer file is not stale
    exceptions = {e["email"]: e["code"] for e in planned.delta["exceptions"]}
    assert exceptions == {story["blocked"]: "NOT_UPSERTABLE"}
    assert world.users(TARGET) == target_before
    with open(state, "rb") as f:
        assert f.read() == ledger_before
    assert not [c for c in counter.calls if c.startswith(("POST /api/v2/jobs/users-imports", "DELETE", "PATCH"))]


def test_propagate_deletes_removes_only_this_migrations_copy_confirmed(migrated) -> None:
    world, tmp_path, passwords, opts = migrated
    story = change_the_source(world, passwords)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))
    counter = Counting(httpx.ASGITransport(app=world.app))

    result = go(world, MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True,
                                           "propagate_deletes": True}), counter=counter)

    assert result.delta is not None and result.delta["deleted_in_source"] == 1
    assert story["deleted"] not in {u["email"] for u in world.users(TARGET)}
    assert len(world.users(TARGET)) == 12
    assert counter.calls[f"DELETE /api/v2/connections/{world_connection_id(world, TARGET)}/users"] == 1
    [gone] = result.reports["problems"]["deleted-in-source"]
    assert "deleted from New-DB too" in gone["detail"]
    assert result.users["verified"] == 12  # 13 carried, less the one deleted from the target
    assert result.exit_code == 3  # the blocked and after-login users are named


def world_connection_id(world: World, name: str) -> str:
    return world.connection(name)


def test_cutover_after_a_refresh_deletes_only_users_verified_after_it(migrated) -> None:
    world, tmp_path, passwords, opts = migrated
    story = change_the_source(world, passwords)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))

    result = go(world, MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True,
                                           "delete_source_users": True}))

    left = {u["email"] for u in world.users(SOURCE)}
    # The named users (a change not carried) stay in the source; every other carried user was deleted.
    assert left == {story["blocked"], story["after_login"]}, dump(result)
    assert result.users["deleted_from_source"] == 10  # 9 of the first run still in the source - 2 named + 3 new
    assert result.exit_code == 3


def test_a_small_delta_costs_what_it_changes_not_another_migration(world: World, tmp_path: Any) -> None:
    world.seed(users=60, role_share=0.0, permission_share=0.5)
    world.connection(TARGET)
    hashes = custom_hash_file(world, str(tmp_path / "hashes-1.ndjson"))
    opts = options(tmp_path, password_hashes=hashes)
    full = Counting(httpx.ASGITransport(app=world.app))
    assert go(world, opts, counter=full).exit_code == 0
    source = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    edited = sorted(source)[0]
    sdk(world, "users.update", source[edited], user_metadata={"edited": True})
    sdk(world, "users.create", connection=SOURCE, email="late@example.com", password=NEW_PASSWORD)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))
    small = Counting(httpx.ASGITransport(app=world.app))

    result = go(world, MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True}),
                counter=small)

    assert result.exit_code == 0, dump(result)
    assert result.delta is not None and (result.delta["new"], result.delta["updated"]) == (1, 1)
    per_user = [c for c in small.calls if c.startswith("GET /api/v2/users/") and c.endswith("/permissions")]
    # In the source: the new user's permissions, and the edited user's read again (a grants refresh reads only
    # the changed users' permissions; roles set-wise); in the target: one read for each of the two changed users.
    assert sum(small.calls[c] for c in per_user) == 4, small.calls
    assert sum(small.calls.values()) < sum(full.calls.values()) / 3, (small.calls, full.calls)
    assert small.calls["POST /api/v2/jobs/users-exports"] == 2  # one export on each side


def test_a_ledger_of_the_previous_schema_resumes_and_refreshes(migrated) -> None:
    world, tmp_path, passwords, opts = migrated
    state = opts.state or ""
    con = sqlite3.connect(state)
    for column in ("generation", "delta", "delta_code", "delta_message", "upsert_profile", "upsert_hash",
                   "credential_digest", "target_deleted"):
        con.execute(f"ALTER TABLE users DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    sdk(world, "users.create", connection=SOURCE, email="late@example.com", password=NEW_PASSWORD)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))

    result = go(world, MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True}))

    assert result.exit_code == 0, dump(result)
    assert result.delta is not None and result.delta["new"] == 1 and result.delta["updated"] == 0
    assert world.login(TARGET, "late@example.com", NEW_PASSWORD) == 200


def test_refresh_refuses_a_ledger_with_no_run_and_propagate_without_refresh(world: World, tmp_path: Any) -> None:
    world.seed(users=2)
    world.connection(TARGET)
    from auth0_migrate.errors import LedgerError, UsageError

    with pytest.raises(UsageError, match="only applies with --refresh"):
        go(world, options(tmp_path, propagate_deletes=True))
    with pytest.raises(LedgerError, match="no state file"):
        go(world, options(tmp_path, refresh=True))



def test_a_refresh_killed_after_its_export_resumes_without_exporting_again(migrated, monkeypatch) -> None:
    world, tmp_path, passwords, opts = migrated
    story = change_the_source(world, passwords)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))
    refresh = MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True})
    from auth0_migrate.stages import delta

    real = delta.upsert_changes
    crashes: list[bool] = []

    async def crash(migration: Any) -> None:
        crashes.append(True)
        raise KeyboardInterrupt

    monkeypatch.setattr(delta, "upsert_changes", crash)
    with pytest.raises(KeyboardInterrupt):
        go(world, refresh)
    assert crashes == [True]  # the fault fired: the new users are imported, the upserts not yet sent
    assert profile(world, TARGET, story["new0"])["email"] == story["new0"]
    assert "plan" not in profile(world, TARGET, story["edited"])["user_metadata"]
    monkeypatch.setattr(delta, "upsert_changes", real)
    counter = Counting(httpx.ASGITransport(app=world.app))

    result = go(world, refresh, counter=counter)

    assert result.delta == {"new": 3, "updated": 4, "deleted_in_source": 1, "grants_added": 0,
                            "grants_removed": 0}, dump(result)
    assert counter.calls["POST /api/v2/jobs/users-exports"] == 1  # only the target's: the source's export was kept
    assert profile(world, TARGET, story["edited"])["user_metadata"]["plan"] == "gold"
    assert world.login(TARGET, story["before_login"], NEW_PASSWORD) == 200
    assert len(world.users(TARGET)) == 13


def test_a_user_held_back_for_want_of_a_hash_is_carried_by_a_refresh_with_a_newer_file(world: World,
                                                                                       tmp_path: Any) -> None:
    world.seed(users=5, role_share=0.0, permission_share=0.0)
    world.connection(TARGET)
    hashes = custom_hash_file(world, str(tmp_path / "hashes-1.ndjson"))  # taken before the user signed up
    sdk(world, "users.create", connection=SOURCE, email="late@example.com", password=NEW_PASSWORD)
    opts = options(tmp_path, password_hashes=hashes)
    first = go(world, opts)
    assert [(f.email, f.code) for f in first.failures] == [("late@example.com", "NO_PASSWORD_HASH")]
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))

    result = go(world, MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True}))

    assert result.exit_code == 0, dump(result)
    assert result.failures == [] and result.users["held_back"] == 0
    assert result.delta is not None and result.delta["new"] == 1
    assert world.login(TARGET, "late@example.com", NEW_PASSWORD) == 200


def test_a_refresh_carries_grants_changed_in_the_source_and_keeps_the_targets_own(world: World, tmp_path) -> None:
    """Roles and DIRECT permissions added or removed in the source after the run reach the target through
    `run --refresh` (`delta.grants_added`/`grants_removed`); a role someone gave in the target stays."""
    from .conftest import grants_of

    world.seed(users=12, role_share=0.5, permission_share=0.5)
    world.connection(TARGET)
    hashes = custom_hash_file(world, str(tmp_path / "hashes-1.ndjson"))
    opts = options(tmp_path, password_hashes=hashes)
    first = go(world, opts)
    assert first.exit_code == 0, dump(first)

    source = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    held = {email: grants_of(world, user_id) for email, user_id in source.items()}
    roles = {r.name: r.id for r in sdk(world, "roles.list").items or []}
    gains_role = next(e for e in sorted(held) if set(roles) - held[e][0])
    added_role = sorted(set(roles) - held[gains_role][0])[0]
    loses_permission = next(e for e in sorted(held) if held[e][1] and e != gains_role)
    api, permission = sorted(held[loses_permission][1])[0]
    sdk(world, "users.roles.assign", source[gains_role], roles=[roles[added_role]])
    sdk(world, "users.permissions.delete", source[loses_permission],
        permissions=[{"resource_server_identifier": api, "permission_name": permission}])
    target = {u["email"]: u["user_id"] for u in world.users(TARGET)}
    theirs = next(e for e in sorted(target) if e not in (gains_role, loses_permission) and roles.keys() - held[e][0])
    their_role = sorted(set(roles) - held[theirs][0])[0]
    sdk(world, "users.roles.assign", target[theirs], roles=[roles[their_role]])  # someone else's grant

    # A plain refresh compares every user's roles (set-wise) but reads DIRECT permissions only of users whose
    # profile changed, and says so; with --refresh-permissions it reads them all.
    result = go(world, MigrationOptions(**{**opts.__dict__, "refresh": True}))
    assert result.exit_code == 0, dump(result)
    assert result.delta is not None
    assert (result.delta["grants_added"], result.delta["grants_removed"]) == (1, 0), dump(result)
    [note] = result.reports["problems"]["permissions-not-read-again"]
    assert "--refresh-permissions" in note["detail"]
    assert (api, permission) in grants_of(world, target[loses_permission])[1]

    result = go(world, MigrationOptions(**{**opts.__dict__, "refresh": True, "refresh_permissions": True}))

    assert result.exit_code == 0, dump(result)
    assert result.delta is not None
    assert (result.delta["grants_added"], result.delta["grants_removed"]) == (0, 1), dump(result)
    assert "permissions-not-read-again" not in result.reports["problems"]
    assert result.differences == []
    for email in (gains_role, loses_permission):
        assert grants_of(world, target[email]) == grants_of(world, source[email]), email
    assert added_role in grants_of(world, target[gains_role])[0]
    assert (api, permission) not in grants_of(world, target[loses_permission])[1]
    assert their_role in grants_of(world, target[theirs])[0]  # nothing granted in the target by someone else goes
