"""A grants refresh (`stages/grants_delta.refresh_grants`) after a finished migration: roles and DIRECT
permissions changed in the source are carried to the target as a diff, a grant made in the target by someone
else stays, and a second refresh writes nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from auth0_migrate.auth0.scopes import OPERATIONS, needed_operations
from auth0_migrate.errors import TransientError
from auth0_migrate.ledger import Ledger
from auth0_migrate.model import MigrationOptions, QuietReporter
from auth0_migrate.pipeline import open_migration, status
from auth0_migrate.seed import API_IDENTIFIER
from auth0_migrate.stages.grants_delta import GrantsDelta, refresh_grants

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options

USERS = 16


def refresh(source: World, opts: MigrationOptions, target: World | None = None) -> GrantsDelta:
    async def go() -> GrantsDelta:
        src = source.client()
        dst = target.client() if target is not None else None
        try:
            migration = await open_migration(opts, src, dst, QuietReporter(), command="run")
            try:
                return await refresh_grants(migration)
            finally:
                migration.ledger.close()
        finally:
            await src.aclose()
            if dst is not None:
                await dst.aclose()
    return asyncio.run(go())


def call(world: World, fn: Any) -> Any:
    async def go() -> Any:
        client = world.client()
        try:
            return await fn(client.sdk)
        finally:
            await client.aclose()
    return asyncio.run(go())


def role_ids(world: World) -> dict[str, str]:
    async def go(sdk: Any) -> dict[str, str]:
        return {str(r.name): str(r.id) for r in (await sdk.roles.list(per_page=100)).items}
    return call(world, go)  # type: ignore[no-any-return]


def perm(name: str) -> dict[str, str]:
    return {"resource_server_identifier": API_IDENTIFIER, "permission_name": name}


def ids_by_email(world: World, connection: str) -> dict[str, str]:
    return {u["email"]: u["user_id"] for u in world.users(connection)}


def first_run(source: World, tmp_path: Any, target: World | None = None) -> MigrationOptions:
    source.seed(users=USERS, role_share=0.5, permission_share=0.5)
    if target is not None:
        target.seed(connection="Elsewhere", users=2, seed=99)  # the same API and role names in the target
    (target or source).connection(TARGET)
    opts = options(tmp_path, password_hashes=source.hash_file(str(tmp_path / "hashes.ndjson")))
    result = migrate(source, opts, target=target)
    assert result.exit_code == 0, dump(result)
    return opts


def change_the_source(source: World, target: World) -> dict[str, str]:
    """A role added to one user, a permission removed from another and added to a third, a role removed from
    a fourth; and a role given by hand in the TARGET to a fifth. The emails, by what was done to them."""
    src_ids = ids_by_email(source, SOURCE)
    dst_ids = ids_by_email(target, TARGET)
    grants = {email: grants_of(source, uid) for email, uid in sorted(src_ids.items())}
    chosen: dict[str, str] = {}

    def pick(label: str, ok: Any) -> str:
        email = next(e for e, g in grants.items() if e not in chosen.values() and ok(g))
        chosen[label] = email
        return email

    source_roles, target_roles = role_ids(source), role_ids(target)
    add_role = pick("role added", lambda g: "billing" not in g[0])
    lose_perm = pick("permission removed", lambda g: g[1])
    lose_role = pick("role removed", lambda g: g[0])
    gain_perm = pick("permission added", lambda g: (API_IDENTIFIER, "admin:users") not in g[1])
    by_hand = pick("role given in the target", lambda g: "viewer" not in g[0])
    removed_perm = sorted(grants[lose_perm][1])[0][1]
    removed_role = sorted(grants[lose_role][0])[0]

    async def edit_source(sdk: Any) -> None:
        await sdk.roles.users.assign(source_roles["billing"], users=[src_ids[add_role]])
        await sdk.users.permissions.delete(src_ids[lose_perm], permissions=[perm(removed_perm)])
        await sdk.users.roles.delete(src_ids[lose_role], roles=[source_roles[removed_role]])
        await sdk.users.permissions.create(src_ids[gain_perm], permissions=[perm("admin:users")])

    async def edit_target(sdk: Any) -> None:
        await sdk.users.roles.assign(dst_ids[by_hand], roles=[target_roles["viewer"]])

    call(source, edit_source)
    call(target, edit_target)
    return chosen


def check_target_matches_source(source: World, target: World, chosen: dict[str, str]) -> None:
    src_ids, dst_ids = ids_by_email(source, SOURCE), ids_by_email(target, TARGET)
    assert set(src_ids) == set(dst_ids)
    by_hand = chosen["role given in the target"]
    for email, uid in src_ids.items():
        roles, perms = grants_of(source, uid)
        if email == by_hand:
            roles = roles | {"viewer"}  # someone else's grant in the target: kept
        assert grants_of(target, dst_ids[email]) == (roles, perms), email


def api_calls(world: World, before: dict[str, int]) -> Counter[str]:
    return Counter({name: n - before.get(name, 0) for name, n in world.tenant.stats.items()
                    if n > before.get(name, 0) and " /api/v2/" in name})


def test_a_refresh_in_one_tenant_carries_the_changed_grants_and_keeps_others(world: World, tmp_path) -> None:
    opts = first_run(world, tmp_path)
    chosen = change_the_source(world, world)
    delta = refresh(world, opts)
    assert delta == GrantsDelta(added=2, removed=2)  # a role and a permission each way
    assert delta.as_dict() == {"added": 2, "removed": 2}
    check_target_matches_source(world, world, chosen)
    after = status(opts.state or "")
    assert after.exit_code == 0 and after.differences == [], dump(after)

    # A second refresh finds nothing to do, and only reads the source's grants.
    before = dict(world.tenant.stats)
    assert refresh(world, opts) == GrantsDelta(0, 0)
    calls = api_calls(world, before)
    grant_reads = {name: n for name, n in calls.items() if "/roles" in name or "/permissions" in name}
    assert grant_reads == {"GET /api/v2/roles": 1, "GET /api/v2/roles/{id}/users": 4,
                           "GET /api/v2/users/{id}/permissions": USERS}
    assert not [name for name in calls if not name.startswith("GET ")], calls
    check_target_matches_source(world, world, chosen)


def test_a_refresh_across_two_tenants_matches_roles_and_permissions_by_name(world: World, other_world: World,
                                                                              tmp_path) -> None:
    opts = first_run(world, tmp_path, target=other_world)
    chosen = change_the_source(world, other_world)
    before = dict(other_world.tenant.stats)
    delta = refresh(world, opts, target=other_world)
    assert delta == GrantsDelta(added=2, removed=2)
    check_target_matches_source(world, other_world, chosen)
    # What it called on the target is what the scope table declares for a refresh.
    called = {tuple(name.replace("/api/v2", "", 1).split(" ", 1)) for name in api_calls(other_world, before)}
    declared = {(OPERATIONS[n].method, OPERATIONS[n].path)
                for n in needed_operations("run", "target", cross_tenant=True, refresh=True)}
    assert {("DELETE", "/users/{id}/roles"), ("DELETE", "/users/{id}/permissions"),
            ("GET", "/users/{id}/roles")} <= called
    assert called <= declared, sorted(called - declared)

    before_second = dict(other_world.tenant.stats)
    assert refresh(world, opts, target=other_world) == GrantsDelta(0, 0)
    second = api_calls(other_world, before_second)
    assert not [name for name in second if "/roles" in name or "/permissions" in name], second


def test_a_permission_the_target_lacks_is_a_problem_and_a_verify_difference(world: World, other_world: World,
                                                                           tmp_path) -> None:
    opts = first_run(world, tmp_path, target=other_world)
    src_ids, dst_ids = ids_by_email(world, SOURCE), ids_by_email(other_world, TARGET)
    email = sorted(src_ids)[0]

    async def new_scope(sdk: Any) -> None:
        api = next(a for a in (await sdk.resource_servers.list(per_page=100)).items if a.identifier == API_IDENTIFIER)
        scopes = [{"value": s.value, "description": s.description} for s in api.scopes or []]
        await sdk.resource_servers.update(api.id, scopes=[*scopes, {"value": "export:reports", "description": "x"}])
        await sdk.users.permissions.create(src_ids[email], permissions=[perm("export:reports")])

    call(world, new_scope)
    assert refresh(world, opts, target=other_world) == GrantsDelta(0, 0)
    assert (API_IDENTIFIER, "export:reports") not in grants_of(other_world, dst_ids[email])[1]
    with Ledger.open_readonly(opts.state or "") as ledger:
        assert [p.ref for p in ledger.problems() if p.kind == "permission-missing-in-target"] == \
            [f"{API_IDENTIFIER} export:reports"]
    after = status(opts.state or "")
    assert [d["user_id"] for d in after.differences] == [src_ids[email]]
    assert after.differences[0]["differences"] == [f"permissions missing: {API_IDENTIFIER} export:reports"]


def test_a_refresh_stopped_by_a_refused_write_resumes_without_writing_twice(world: World, tmp_path) -> None:
    opts = first_run(world, tmp_path)
    chosen = change_the_source(world, world)
    world.tenant.faults.fail_call("DELETE /api/v2/users/{id}/permissions", nth=1, action=503, times=8)
    with pytest.raises(TransientError):
        refresh(world, opts)  # every attempt of that DELETE answered 503: the refresh stops
    assert world.tenant.faults.injected["DELETE /api/v2/users/{id}/permissions"] == 8
    before = dict(world.tenant.stats)
    assert refresh(world, opts) == GrantsDelta(added=2, removed=2)  # the first call's writes counted too
    calls = api_calls(world, before)
    assert calls["DELETE /api/v2/users/{id}/permissions"] == 1
    assert calls["POST /api/v2/roles/{id}/users"] == 0 and calls["DELETE /api/v2/users/{id}/roles"] == 0
    check_target_matches_source(world, world, chosen)


def test_a_role_deleted_in_the_source_leaves_the_target_role_without_the_carried_members(
        world: World, other_world: World, tmp_path) -> None:
    opts = first_run(world, tmp_path, target=other_world)
    src_ids, dst_ids = ids_by_email(world, SOURCE), ids_by_email(other_world, TARGET)
    holders = [e for e, uid in sorted(src_ids.items()) if "editor" in grants_of(world, uid)[0]]
    assert holders  # the seed gave the role to some migrated users
    other_member = other_world.users("Elsewhere")[0]["user_id"]
    editor, source_editor = role_ids(other_world)["editor"], role_ids(world)["editor"]
    call(other_world, lambda sdk: sdk.roles.users.assign(editor, users=[other_member]))  # not ours: stays
    call(world, lambda sdk: sdk.roles.delete(source_editor))

    assert refresh(world, opts, target=other_world) == GrantsDelta(added=0, removed=len(holders))
    for email in holders:
        assert "editor" not in grants_of(other_world, dst_ids[email])[0], email
    assert "editor" in grants_of(other_world, other_member)[0]

