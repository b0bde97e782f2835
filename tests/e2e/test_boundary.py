"""The Auth0 boundary: every page of a list in each paging style, and each refusal as its own exception.

Lists longer than one page are read whole (offset paging stops at `total`, checkpoint paging follows
`next`), so `plan` sees every API of a tenant. A status reaches callers as a class (`Conflict`,
`PayloadTooLarge`, `RateLimited`...), and a 413 on an upload still splits the file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from auth0_migrate.auth0 import jobs
from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.auth0.paging import PER_PAGE, checkpoint_items, every, first, offset_items
from auth0_migrate.errors import (
    BadRequest,
    Conflict,
    NotFoundError,
    PayloadTooLarge,
    RateLimited,
    Refused,
    TransientError,
    UsageError,
)
from auth0_migrate.model import PlanResult
from auth0_migrate.pipeline import plan
from auth0_migrate.tenant import jobs as tenant_jobs

from .conftest import TARGET, World, dump, migrate, options

T = TypeVar("T")
ROLES = "GET /api/v2/roles"
CONNECTIONS = "GET /api/v2/connections"
IMPORTS = "POST /api/v2/jobs/users-imports"


def _with_client(world: World, fn: Callable[[TenantClient], Awaitable[T]]) -> T:
    async def go() -> T:
        client = world.client()
        try:
            return await fn(client)
        finally:
            await client.aclose()
    return asyncio.run(go())


def _make_roles(world: World, n: int) -> list[str]:
    names = [f"role-{i:03d}" for i in range(n)]

    async def go(client: TenantClient) -> None:
        for name in names:
            await client.sdk.roles.create(name=name, description=name)
    _with_client(world, go)
    return names


def _make_apis(world: World, n: int) -> list[str]:
    identifiers = [f"https://api{i:03d}.example.com/" for i in range(n)]

    async def go(client: TenantClient) -> None:
        for identifier in identifiers:
            await client.sdk.resource_servers.create(name=identifier, identifier=identifier)
    _with_client(world, go)
    return identifiers


def _calls(world: World, endpoint: str) -> int:
    return int(world.tenant.stats.get(endpoint, 0))


def test_offset_paging_reads_every_page_and_stops_at_the_total(world: World) -> None:
    names = _make_roles(world, 120)
    before = _calls(world, ROLES)
    roles = _with_client(world, lambda c: every(offset_items(c, "list roles", c.sdk.roles.list, per_page=50)))
    assert sorted(r.name for r in roles) == names
    assert _calls(world, ROLES) - before == 3  # 50 + 50 + 20: no fourth, empty page


def test_checkpoint_paging_follows_next_to_the_last_page(world: World) -> None:
    names = sorted(f"Db-{i}" for i in range(5))
    for name in names:
        world.connection(name)
    before = _calls(world, CONNECTIONS)
    found = _with_client(world, lambda c: every(checkpoint_items(c, "list connections", c.sdk.connections.list,
                                                                 take=2)))
    assert sorted(str(c.name) for c in found if str(c.name).startswith("Db-")) == names
    assert len(found) % 2 == 1 and _calls(world, CONNECTIONS) - before == len(found) // 2 + 1  # the last page
    # holds one connection and no `next`
    before = _calls(world, CONNECTIONS)
    one = _with_client(world, lambda c: first(checkpoint_items(c, "list connections", c.sdk.connections.list,
                                                               take=2)))
    assert one is not None and one.name == found[0].name
    assert _calls(world, CONNECTIONS) - before == 1  # `first` asks one page only


def test_a_failure_on_a_later_page_names_the_operation(world: World) -> None:
    _make_roles(world, 120)
    world.tenant.faults.fail_call(ROLES, nth=2, action=429, times=1_000)

    async def go(client: TenantClient) -> list[Any]:
        return await every(offset_items(client, "list roles", client.sdk.roles.list, per_page=50))
    with pytest.raises(RateLimited) as info:
        _with_client(world, go)
    assert world.tenant.faults.injected[ROLES] >= 1  # the fault fired, on the second page
    assert isinstance(info.value, TransientError) and info.value.exit_code == 75
    assert info.value.status == 429 and info.value.operation == "list roles"
    assert str(info.value).startswith("list roles: HTTP 429")


def test_plan_lists_every_api_missing_in_the_target_past_the_first_page(world: World, other_world: World,
                                                                          tmp_path) -> None:
    world.seed(users=3)
    other_world.connection(TARGET)
    created = _make_apis(world, PER_PAGE + 20)

    async def go() -> PlanResult:
        src, dst = world.client(), other_world.client()
        try:
            return await plan(options(tmp_path), source=src, target=dst)
        finally:
            await src.aclose()
            await dst.aclose()
    result = asyncio.run(go())
    missing = set(result.apis_missing_in_target)
    assert set(created) <= missing, sorted(set(created) - missing)[:5]


def test_each_refusal_is_its_own_exception(world: World) -> None:
    async def go(client: TenantClient) -> dict[str, BaseException]:
        seen: dict[str, BaseException] = {}
        sdk = client.sdk
        await client.call("create API", sdk.resource_servers.create, name="Twice", identifier="https://twice/")
        for name, call in [
            ("conflict", client.call("create API", sdk.resource_servers.create, name="Twice",
                                     identifier="https://twice/")),
            ("not found", client.call("read job", sdk.jobs.get, "job_0000000000000000")),
            ("bad request", client.call("read job", sdk.jobs.get, "job_too_short")),
        ]:
            try:
                await call
            except Refused as exc:
                seen[name] = exc
        return seen
    seen = _with_client(world, go)
    assert isinstance(seen["conflict"], Conflict) and seen["conflict"].status == 409
    assert str(seen["conflict"]).startswith("create API: HTTP 409")
    assert isinstance(seen["not found"], NotFoundError) and seen["not found"].status == 404
    assert isinstance(seen["bad request"], BadRequest) and seen["bad request"].status == 400
    assert all(e.exit_code == 1 for e in seen.values())


def test_an_upload_over_the_size_limit_is_payload_too_large(world: World) -> None:
    connection_id = world.connection(TARGET)
    body = json.dumps([{"email": f"u{i}@example.com", "app_metadata": {"pad": "x" * 1000}}
                       for i in range(600)]).encode()
    assert len(body) > tenant_jobs.IMPORT_MAX_BYTES
    with pytest.raises(PayloadTooLarge) as info:
        _with_client(world, lambda c: jobs.submit_import(c, connection_id, body, "too-large"))
    assert info.value.status == 413 and info.value.operation == jobs.UPLOAD
    assert str(info.value).startswith(f"{jobs.UPLOAD}: HTTP 413")


def test_a_file_the_target_finds_too_large_is_split_and_every_user_imported(world: World, tmp_path,
                                                                             monkeypatch) -> None:
    seeded = world.seed(users=30)
    world.connection(TARGET)
    opts = options(tmp_path, password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")))
    posts = _calls(world, IMPORTS)
    jobs_before = int(world.tenant.store.one("SELECT COUNT(*) AS n FROM jobs WHERE type = 'users_import'")["n"])
    monkeypatch.setattr(tenant_jobs, "IMPORT_MAX_BYTES", 8_000)  # this target takes smaller files than Auth0
    result = migrate(world, opts)
    made = int(world.tenant.store.one("SELECT COUNT(*) AS n FROM jobs WHERE type = 'users_import'")["n"]) - jobs_before
    refused = _calls(world, IMPORTS) - posts - made
    assert refused >= 1  # the fault fired: uploads answered 413
    with sqlite3.connect(opts.state) as db:
        files = int(db.execute("SELECT COUNT(*) FROM files").fetchone()[0])
    assert files == made > 1  # split until each file fits, each imported once
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == result.users["verified"] == seeded.users


def test_flags_override_the_environment_and_a_half_given_tenant_is_named(world: World) -> None:
    env = {"AUTH0_DOMAIN": "http://elsewhere.invalid", "AUTH0_CLIENT_ID": world.client_id,
           "AUTH0_CLIENT_SECRET": "not-the-secret"}
    creds = TenantCredentials.from_env(env=env, domain=world.base_url, client_secret=world.client_secret)
    assert creds == TenantCredentials(world.base_url, world.client_id, world.client_secret)

    async def scopes() -> frozenset[str]:
        assert creds is not None
        client = TenantClient(creds, transport=world.oas_wrap(httpx.ASGITransport(app=world.app)), clock=world.clock)
        try:
            return await client.granted_scopes()
        finally:
            await client.aclose()
    assert "read:users" in asyncio.run(scopes())  # the flags' tenant and secret, not the environment's
    assert TenantCredentials.from_env("TARGET_", env=env) is None  # no target: one tenant
    with pytest.raises(UsageError) as info:
        TenantCredentials.from_env("TARGET_", env={"TARGET_AUTH0_CLIENT_SECRET": "s3cret"}, domain="other.example")
    assert str(info.value) == ("TARGET_AUTH0_DOMAIN is set but TARGET_AUTH0_CLIENT_ID is not (set it, or pass its "
                               "command-line flag)")
