"""`--create-missing-roles`: across tenants, a role the target lacks is created there (with the source role's
permissions, the API scopes they need added first) before its members are restored; `plan` lists it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from auth0_migrate.auth0.scopes import OPERATIONS, needed_operations
from auth0_migrate.errors import UsageError
from auth0_migrate.ledger import Ledger
from auth0_migrate.model import PlanResult
from auth0_migrate.pipeline import plan
from auth0_migrate.seed import API_IDENTIFIER, API_SCOPES, ROLES

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options

AUDIT_API = "https://audit.example.com/"


def call(world: World, fn: Any) -> Any:
    async def go() -> Any:
        client = world.client()
        try:
            return await fn(client.sdk)
        finally:
            await client.aclose()
    return asyncio.run(go())


def run_plan(source: World, target: World, opts: Any) -> PlanResult:
    async def go() -> PlanResult:
        src, dst = source.client(), target.client()
        try:
            return await plan(opts, source=src, target=dst)
        finally:
            await src.aclose()
            await dst.aclose()
    return asyncio.run(go())


def role_permissions(world: World) -> dict[str, set[tuple[str, str]]]:
    async def go(sdk: Any) -> dict[str, set[tuple[str, str]]]:
        found = {}
        for role in (await sdk.roles.list(per_page=100)).items:
            perms = (await sdk.roles.permissions.list(role.id, per_page=100)).items
            found[role.name] = {(p.resource_server_identifier, p.permission_name) for p in perms}
        return found
    return call(world, go)


def api_scopes(world: World) -> dict[str, set[str]]:
    async def go(sdk: Any) -> dict[str, set[str]]:
        return {a.identifier: {s.value for s in a.scopes or []}
                for a in (await sdk.resource_servers.list(per_page=100)).items if not a.is_system}
    return call(world, go)


def setup(world: World, other_world: World) -> str:
    """Source: the seeded roles plus `auditor` (a permission of an API the target lacks, and one of the example
    API), given to one user. Target: the example API without two scopes, and only the roles `viewer`, `editor`."""
    world.seed(users=16)
    auditor_member = sorted(u["user_id"] for u in world.users(SOURCE))[0]

    async def source(sdk: Any) -> None:
        await sdk.resource_servers.create(name="Audit", identifier=AUDIT_API,
                                          scopes=[{"value": "read:audit", "description": "read the audit"}])
        role = await sdk.roles.create(name="auditor", description="reads the audit trail")
        await sdk.roles.permissions.add(role.id, permissions=[
            {"resource_server_identifier": AUDIT_API, "permission_name": "read:audit"},
            {"resource_server_identifier": API_IDENTIFIER, "permission_name": "read:reports"}])
        await sdk.roles.users.assign(role.id, users=[auditor_member])

    async def target(sdk: Any) -> None:
        kept = [s for s in API_SCOPES if s not in ("delete:reports", "admin:users")]
        await sdk.resource_servers.create(name="Example API", identifier=API_IDENTIFIER,
                                          scopes=[{"value": s, "description": s} for s in kept])
        for name in ("viewer", "editor"):
            role = await sdk.roles.create(name=name)
            await sdk.roles.permissions.add(role.id, permissions=[
                {"resource_server_identifier": API_IDENTIFIER, "permission_name": s} for s in ROLES[name]])

    call(world, source)
    call(other_world, target)
    other_world.connection(TARGET)
    return auditor_member


def test_missing_roles_are_planned_then_created_with_their_permissions(world: World, other_world: World,
                                                                       tmp_path) -> None:
    auditor_member = setup(world, other_world)
    opts = options(tmp_path, create_missing_roles=True)
    planned = run_plan(world, other_world, opts)
    assert planned.roles_missing_in_target == ["admin", "auditor", "billing"]
    assert planned.as_dict()["roles_to_create"] == [
        {"name": "admin", "permissions": sorted(f"{API_IDENTIFIER} {s}" for s in ROLES["admin"]),
         "scopes_to_add": {API_IDENTIFIER: ["admin:users", "delete:reports"]}, "apis_missing": []},
        {"name": "auditor", "permissions": [f"{API_IDENTIFIER} read:reports"], "scopes_to_add": {},
         "apis_missing": [AUDIT_API]},
        {"name": "billing", "permissions": sorted(f"{API_IDENTIFIER} {s}" for s in ROLES["billing"]),
         "scopes_to_add": {}, "apis_missing": []}]
    assert set(role_permissions(other_world)) == {"viewer", "editor"}  # plan wrote nothing

    before = dict(other_world.tenant.stats)
    result = migrate(world, opts, target=other_world)
    after = dict(other_world.tenant.stats)
    # The audit API is not in the target: its permission is named, so the run is not clean (exit 3).
    assert result.exit_code == 3, dump(result)
    assert [p["ref"] for p in result.reports["problems"]["api-missing-in-target"]] == [f"auditor {AUDIT_API}"]
    assert set(result.reports["problems"]) == {"api-missing-in-target"}
    assert result.reports["roles_created"] == ["admin", "auditor", "billing"]
    assert result.users["verified"] == result.users["imported"] == 16
    source_roles, target_roles = role_permissions(world), role_permissions(other_world)
    for name in ("admin", "billing", "viewer", "editor"):
        assert target_roles[name] == source_roles[name], name
    assert target_roles["auditor"] == {(API_IDENTIFIER, "read:reports")}
    assert api_scopes(other_world)[API_IDENTIFIER] == set(API_SCOPES)
    assert AUDIT_API not in api_scopes(other_world)
    # Every member got its role in the target, the created ones included.
    target_ids = {u["email"]: u["user_id"] for u in other_world.users(TARGET)}
    for user in world.users(SOURCE):
        assert grants_of(other_world, target_ids[user["email"]])[0] == grants_of(world, user["user_id"])[0]
    auditor_email = next(u["email"] for u in world.users(SOURCE) if u["user_id"] == auditor_member)
    assert "auditor" in grants_of(other_world, target_ids[auditor_email])[0]
    # What it called on the target is what the scope table declares for the flag.
    called = {tuple(name.replace("/api/v2", "", 1).replace("{id:path}", "{id}").split(" ", 1))
              for name, n in after.items() if n > before.get(name, 0) and " /api/v2/" in name}
    declared = {(OPERATIONS[n].method, OPERATIONS[n].path)
                for n in needed_operations("run", "target", cross_tenant=True, create_missing_roles=True)}
    assert {("POST", "/roles"), ("POST", "/roles/{id}/permissions"), ("PATCH", "/resource-servers/{id}")} <= called
    assert called <= declared, sorted(called - declared)


def test_a_run_stopped_after_creating_a_role_gives_it_its_permissions_on_resume(world: World, other_world: World,
                                                                                 tmp_path) -> None:
    setup(world, other_world)
    opts = options(tmp_path, create_missing_roles=True)
    other_world.tenant.faults.fail_call("POST /api/v2/roles/{id}/permissions", nth=1, action=503, times=100)
    with pytest.raises(Exception, match="give role admin its permissions"):
        migrate(world, opts, target=other_world)
    assert other_world.tenant.faults.injected["POST /api/v2/roles/{id}/permissions"] >= 1  # the fault fired
    assert role_permissions(other_world)["admin"] == set()  # created, without its permissions yet
    with Ledger.open_readonly(opts.state or "") as ledger:
        assert ledger.get_meta("roles_being_created") == ["admin", "auditor", "billing"]
    other_world.tenant.faults.calls.clear()
    result = migrate(world, opts, target=other_world)
    assert result.users["verified"] == 16, dump(result)
    target_roles = role_permissions(other_world)
    assert target_roles["admin"] == role_permissions(world)["admin"]
    assert sorted(target_roles) == ["admin", "auditor", "billing", "editor", "viewer"]  # none made twice


def test_without_the_flag_a_missing_role_is_only_reported(world: World, other_world: World, tmp_path) -> None:
    setup(world, other_world)
    result = migrate(world, options(tmp_path), target=other_world)
    assert result.exit_code == 4 and result.differences  # the members lack their roles in the target
    assert sorted(p["ref"] for p in result.reports["problems"]["role-missing-in-target"]) == [
        "admin", "auditor", "billing"]
    assert sorted(role_permissions(other_world)) == ["editor", "viewer"]
    assert "roles_created" not in result.reports


def test_the_flag_is_refused_in_one_tenant(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    with pytest.raises(UsageError, match="--create-missing-roles applies across tenants"):
        migrate(world, options(tmp_path, create_missing_roles=True))
