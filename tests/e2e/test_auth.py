"""What the tool asks of its tokens and of the target connection before it writes anything.

Clients here are real clients of the local tenant with real client grants (`POST /clients`,
`POST /client-grants` through the SDK), so a token carries exactly the scopes granted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.auth0.scopes import OPERATIONS, needed_operations
from auth0_migrate.errors import AuthenticationError, InsufficientScopeError, UsageError
from auth0_migrate.model import PlanResult
from auth0_migrate.pipeline import plan
from auth0_migrate.tenant.oauth import ALL_SCOPES

from .conftest import SOURCE, TARGET, World, dump, migrate, options
from .test_organizations import seed_orgs

EXPORTS = "POST /api/v2/jobs/users-exports"
IMPORTS = "POST /api/v2/jobs/users-imports"


def granted_client(world: World, scopes: list[str] | None, name: str = "migrator") -> dict[str, str]:
    """A new machine-to-machine client of `world`, with a Management API grant of `scopes` (None: no grant)."""
    async def go() -> dict[str, str]:
        admin = world.client()
        try:
            made = await admin.sdk.clients.create(name=name, app_type="non_interactive")
            if scopes is not None:
                await admin.sdk.client_grants.create(client_id=made.client_id, audience=f"{world.base_url}/api/v2/",
                                                     scope=scopes)
            return {"client_id": str(made.client_id), "client_secret": str(made.client_secret)}
        finally:
            await admin.aclose()
    return asyncio.run(go())


def without(*scopes: str) -> list[str]:
    return [s for s in ALL_SCOPES if s not in scopes]


def jobs_started(world: World) -> tuple[int, int]:
    """(export jobs, import jobs) the tenant has been asked for so far."""
    return world.tenant.stats.get(EXPORTS, 0), world.tenant.stats.get(IMPORTS, 0)


def run_plan(source: World, target: World | None, opts: Any, **source_client: str) -> PlanResult:
    async def go() -> PlanResult:
        src = source.client(**source_client)
        dst = target.client() if target is not None else None
        try:
            return await plan(opts, source=src, target=dst)
        finally:
            await src.aclose()
            if dst is not None:
                await dst.aclose()
    return asyncio.run(go())


def test_a_token_without_read_roles_stops_the_run_before_anything_is_written(world: World, tmp_path) -> None:
    world.seed(users=4)
    world.connection(TARGET)
    weak = granted_client(world, without("read:roles"))
    before = jobs_started(world)
    with pytest.raises(InsufficientScopeError) as info:
        migrate(world, options(tmp_path), **weak)
    assert info.value.scopes == ["read:roles"]
    assert "read:roles (to list roles)" in str(info.value)
    assert jobs_started(world) == before
    assert world.users(TARGET) == [] and not (tmp_path / "state.sqlite").exists()


def test_create_role_members_is_accepted_instead_of_update_roles(world: World, tmp_path) -> None:
    seeded = world.seed(users=30)
    world.connection(TARGET)
    fine = granted_client(world, without("update:roles"))
    assert "create:role_members" in ALL_SCOPES
    result = migrate(world, options(tmp_path), **fine)
    assert result.exit_code == 0, dump(result)
    assert seeded.role_members > 0 and result.grants["roles_restored"] == seeded.role_members
    # The same token without either scope is refused, naming both ways to fix it.
    neither = granted_client(world, without("update:roles", "create:role_members"), name="neither")
    with pytest.raises(InsufficientScopeError, match="update:roles or create:role_members") as info:
        migrate(world, options(tmp_path, state=str(tmp_path / "other.sqlite")), **neither)
    assert info.value.scopes == ["update:roles"]


ORG_READS = ["read:organizations", "read:organization_members", "read:organization_member_roles"]
"""What reading the source's organization members with their roles takes (`stages/organizations.py`)."""


def test_plan_in_one_tenant_needs_read_scopes_only(world: World, tmp_path) -> None:
    world.seed(users=5)
    world.connection(TARGET)
    reader = granted_client(world, ["read:users", "read:roles", "read:connections", *ORG_READS,
                                    "read:authentication_methods", "read:organization_connections"])
    result = run_plan(world, None, options(tmp_path), **reader)
    assert result.users["selected"] == 5 and result.users["will_import"] == 5


def test_a_cross_tenant_plan_needs_read_resource_servers_on_the_source(world: World, other_world: World,
                                                                        tmp_path) -> None:
    world.seed(users=3)
    other_world.connection(TARGET)
    source = granted_client(world, ["read:users", "read:roles", "read:connections", *ORG_READS,
                                    "read:authentication_methods"])
    before = jobs_started(world)
    with pytest.raises(InsufficientScopeError) as info:
        run_plan(world, other_world, options(tmp_path), **source)
    assert info.value.scopes == ["read:resource_servers"]
    assert "the source token" in str(info.value) and "list APIs" in str(info.value)
    assert jobs_started(world) == before  # refused before the first export job
    enough = granted_client(world, ["read:users", "read:roles", "read:connections", "read:resource_servers",
                                    *ORG_READS, "read:authentication_methods"], name="enough")
    assert run_plan(world, other_world, options(tmp_path), **enough).users["selected"] == 3


def test_a_target_connection_enabled_for_no_application_is_refused(world: World, tmp_path) -> None:
    world.seed(users=3)

    async def bare_connection() -> str:
        admin = world.client()
        try:  # made through the API without enabled_clients: enabled for no application, as on Auth0
            return str((await admin.sdk.connections.create(name=TARGET, strategy="auth0")).id)
        finally:
            await admin.aclose()
    connection_id = asyncio.run(bare_connection())
    before = jobs_started(world)
    with pytest.raises(UsageError) as info:
        migrate(world, options(tmp_path))
    assert f"Dashboard > Authentication > Database > {TARGET} > Applications" in str(info.value)
    assert "not enabled for any application" in str(info.value)
    assert jobs_started(world) == before
    assert world.users(TARGET) == [] and not (tmp_path / "state.sqlite").exists()
    from auth0_migrate.tenant import connections

    connections.enable_clients(world.tenant.store, connection_id, [world.client_id])
    result = migrate(world, options(tmp_path))
    assert result.exit_code == 0 and len(world.users(TARGET)) == 3 and len(world.users(SOURCE)) == 3


def _token_error(world: World, credentials: TenantCredentials) -> Exception:
    async def go() -> None:
        client = TenantClient(credentials, transport=world.oas_wrap(httpx.ASGITransport(app=world.app)),
                              clock=world.clock)
        try:
            await client.token()
        finally:
            await client.aclose()
    with pytest.raises(AuthenticationError) as info:
        asyncio.run(go())
    return info.value


def test_a_custom_domain_token_failure_names_the_audience(world: World) -> None:
    custom = TenantCredentials("http://login.example-custom.local", world.client_id, world.client_secret)
    err = _token_error(world, custom)
    assert "'http://login.example-custom.local/api/v2/'" in str(err)
    assert "canonical domain" in str(err) and "AUTH0_AUDIENCE" in str(err)
    assert "CLIENT_SECRET" not in str(err)
    # The same custom domain with the canonical audience (AUTH0_AUDIENCE) gets a token.
    env = {"AUTH0_DOMAIN": "http://login.example-custom.local", "AUTH0_CLIENT_ID": world.client_id,
           "AUTH0_CLIENT_SECRET": world.client_secret, "AUTH0_AUDIENCE": f"{world.base_url}/api/v2/"}
    fixed = TenantCredentials.from_env(env=env)
    assert fixed is not None and fixed.audience == f"{world.base_url}/api/v2/"

    async def scopes() -> frozenset[str]:
        client = TenantClient(fixed, transport=world.oas_wrap(httpx.ASGITransport(app=world.app)), clock=world.clock)
        try:
            return await client.granted_scopes()
        finally:
            await client.aclose()
    assert "read:users" in asyncio.run(scopes())


def test_a_client_without_a_grant_is_told_to_authorize_it(world: World) -> None:
    bare = granted_client(world, None)
    err = _token_error(world, TenantCredentials(world.base_url, bare["client_id"], bare["client_secret"]))
    assert "not authorized for the Management API" in str(err) and "Machine to Machine Applications" in str(err)
    assert bare["client_secret"] not in str(err)


# -- the table of needed scopes is what the tool really calls ---------------------------------------

CONDITIONAL = {("GET", "/jobs/{id}/errors"), ("GET", "/users-by-email"), ("GET", "/users/{id}"),
               ("POST", "/users/{id}/identities"), ("DELETE", "/users/{id}/identities/{provider}/{user_id}"),
               ("GET", "/users/{id}/authentication-methods")}
"""Declared but called only when an import job reports failures / the id-map export misses a user / cutover
confirms a deletion by id (under keep in one tenant the id is shared, so it confirms by email instead) / a
migrated user has linked secondaries (one tenant; tests/e2e/test_linked_accounts.py) / a user is enrolled in MFA
(tests/e2e/test_mfa.py counts those calls)."""


def _calls_since(world: World, before: dict[str, int]) -> set[tuple[str, str]]:
    called = set()
    for name, count in world.tenant.stats.items():
        method, path = name.split(" ", 1)
        if count > before.get(name, 0) and path.startswith("/api/v2/"):
            called.add((method, path.removeprefix("/api/v2")))
    return called


def _declared(command: Any, side: Any, **kwargs: Any) -> set[tuple[str, str]]:
    return {(OPERATIONS[n].method, OPERATIONS[n].path) for n in needed_operations(command, side, **kwargs)}


def test_the_scope_table_declares_what_a_cross_tenant_run_and_plan_call(world: World, other_world: World,
                                                                         tmp_path) -> None:
    seeded = world.seed(users=20)
    other_world.seed(connection="Elsewhere", users=2, seed=99)
    target_connection = other_world.connection(TARGET)
    # Organizations with members and roles on both sides, so their reads and writes are made too.
    seed_orgs(world, [u["user_id"] for u in world.users(SOURCE)], names=("acme",),
              connection_ids=(seeded.connection_id,), member_share=0.5, role_share=1.0)
    seed_orgs(other_world, [], names=("acme",), connection_ids=(target_connection,))
    kwargs = {"cross_tenant": True, "delete_source_users": True}
    for command in ("plan", "run"):
        before = (dict(world.tenant.stats), dict(other_world.tenant.stats))
        opts = options(tmp_path, delete_source_users=True, state=str(tmp_path / f"{command}.sqlite"))
        if command == "plan":
            run_plan(world, other_world, opts)
        else:
            assert migrate(world, opts, target=other_world).exit_code == 0
        for side, tenant, seen in (("source", world, before[0]), ("target", other_world, before[1])):
            called, declared = _calls_since(tenant, seen), _declared(command, side, **kwargs)
            assert called <= declared, f"{command} {side}: undeclared calls {sorted(called - declared)}"
            assert declared - called <= CONDITIONAL, f"{command} {side}: declared, never called: " \
                                                     f"{sorted(declared - called - CONDITIONAL)}"


def test_the_scope_table_declares_what_a_keep_run_in_one_tenant_calls(world: World, tmp_path) -> None:
    """In one tenant the two sides share one token: their union is what is checked, and called."""
    seeded = world.seed(users=12)
    target_connection = world.connection(TARGET)
    seed_orgs(world, [u["user_id"] for u in world.users(SOURCE)], names=("acme",),
              connection_ids=(seeded.connection_id, target_connection), member_share=0.5, role_share=1.0)
    before = dict(world.tenant.stats)
    result = migrate(world, options(tmp_path, user_ids="keep", delete_source_users=True))
    assert result.exit_code == 0, dump(result)
    kwargs = {"cross_tenant": False, "delete_source_users": True}
    declared = _declared("run", "source", **kwargs) | _declared("run", "target", **kwargs)
    called = _calls_since(world, before)
    assert called <= declared, f"undeclared calls {sorted(called - declared)}"
    assert declared - called <= CONDITIONAL, f"declared, never called: {sorted(declared - called - CONDITIONAL)}"
