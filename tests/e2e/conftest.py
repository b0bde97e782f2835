"""End-to-end fixtures: the migration tool, in-process, against one or two local tenants.

`World` holds a tenant app, a `TenantClient` on it (through the OAS-validating transport) and
helpers to seed users and read the result back. Time is a `ManualClock` shared by tool and tenant,
so job polls, rate-limit waits and link expiry cost no real time.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.clock import ManualClock
from auth0_migrate.model import MigrationOptions, QuietReporter, RunResult
from auth0_migrate.pipeline import ingest_source, open_migration, run
from auth0_migrate.seed import Seeded, credential_pool, seed_connection
from auth0_migrate.tenant import TenantConfig, create_app
from auth0_migrate.tenant.support_export import export_hashes

SOURCE, TARGET = "Legacy-DB", "New-DB"
_POOL: list[Any] = []


def pool() -> list[Any]:
    """One credential pool for the whole session: hashing is the slow part of seeding."""
    if not _POOL:
        import random

        _POOL.extend(credential_pool(random.Random(3), size_per_algorithm=1))
    return _POOL


@dataclass
class World:
    app: Any
    clock: ManualClock
    base_url: str
    client_id: str
    client_secret: str
    oas_wrap: Any

    @property
    def tenant(self) -> Any:
        return self.app.state.tenant

    def client(self, app: Any = None, **kwargs: Any) -> TenantClient:
        """An SDK client of this tenant; `app`: an ASGI app to call instead of the tenant's (one that wraps it)."""
        transport = self.oas_wrap(httpx.ASGITransport(app=app or self.app))
        creds = TenantCredentials(self.base_url, kwargs.pop("client_id", self.client_id),
                                  kwargs.pop("client_secret", self.client_secret))
        return TenantClient(creds, transport=transport, clock=self.clock, **kwargs)

    def seed(self, connection: str = SOURCE, users: int = 40, mixed: bool = False, **kwargs: Any) -> Seeded:
        """Seed users; by default all with bcrypt cost 10 (what Auth0's hash file carries), `mixed` adds others."""
        chosen = pool() if mixed else [p for p in pool() if "password_hash" in p[2]]

        async def go() -> Seeded:
            client = self.client()
            try:
                return await seed_connection(client, connection, users=users, pool=chosen, **kwargs)
            finally:
                await client.aclose()
        return asyncio.run(go())

    def connection(self, name: str) -> str:
        from auth0_migrate.seed import ensure_connection

        async def go() -> str:
            client = self.client()
            try:
                return await ensure_connection(client, name)
            finally:
                await client.aclose()
        return asyncio.run(go())

    def hash_file(self, path: str, connection: str = SOURCE) -> str:
        with open(path, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
            export_hashes(self.tenant.store, connection, "test-tenant", out)
        return path

    def users(self, connection: str) -> list[dict[str, Any]]:
        rows = self.tenant.store.query("SELECT u.* FROM users u JOIN connections c ON c.id = u.connection_id "
                                       "WHERE c.name = ? ORDER BY u.pk", (connection,))
        return [dict(r) for r in rows]

    def login(self, connection: str, email: str, password: str) -> int:
        async def go() -> int:
            client = self.client()
            try:
                r = await client.http.post("/oauth/token", data={
                    "grant_type": "http://auth0.com/oauth/grant-type/password-realm", "username": email,
                    "password": password, "realm": connection, "client_id": self.client_id,
                    "client_secret": self.client_secret, "audience": f"{self.base_url}/api/v2/"})
                return r.status_code
            finally:
                await client.aclose()
        return asyncio.run(go())


def make_world(oas_wrap: Any, name: str = "tenant.local", clock: ManualClock | None = None) -> World:
    clock = clock or ManualClock()
    base_url = f"http://{name}"
    app = create_app(TenantConfig(name=name, client_id="e2e-client", client_secret="e2e-secret", clock=clock,
                                  base_url=base_url))
    return World(app, clock, base_url, "e2e-client", "e2e-secret", oas_wrap)


@pytest.fixture
def world(oas_wrap: Any) -> Iterator[World]:
    w = make_world(oas_wrap)
    yield w
    w.tenant.close()


@pytest.fixture
def other_world(oas_wrap: Any, world: World) -> Iterator[World]:
    """A second tenant (for cross-tenant runs), on the same clock."""
    w = make_world(oas_wrap, "other-tenant.local", world.clock)
    yield w
    w.tenant.close()


def migrate(source: World, options: MigrationOptions, target: World | None = None, **client_kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        src = source.client(**client_kwargs)
        dst = target.client(**client_kwargs) if target is not None else None
        try:
            return await run(options, source=src, target=dst)
        finally:
            await src.aclose()
            if dst is not None:
                await dst.aclose()
    return asyncio.run(go())


def ingest_only(world: World, opts: MigrationOptions) -> None:
    """Only the start of `run`: the hash file indexed, the source exported, joined, transformed and packed into
    the ledger at `opts.state`; nothing is written to a tenant."""
    async def go() -> None:
        client = world.client()
        try:
            migration = await open_migration(opts, client, None, QuietReporter())
            try:
                await ingest_source(migration)
            finally:
                migration.ledger.close()
        finally:
            await client.aclose()
    asyncio.run(go())


def sdk(world: World, method: str, *args: Any, **kwargs: Any) -> Any:
    """One SDK call on a tenant, by its dotted name (`"users.create"`), through the tool's client."""
    async def main() -> Any:
        client = world.client()
        try:
            target = client.sdk
            for part in method.split("."):
                target = getattr(target, part)
            return await client.call(method, target, *args, **kwargs)
        finally:
            await client.aclose()
    return asyncio.run(main())


def options(tmp_path: Any, **kwargs: Any) -> MigrationOptions:
    kwargs.setdefault("state", str(tmp_path / "state.sqlite"))
    return MigrationOptions(source_connection=kwargs.pop("source_connection", SOURCE),
                            target_connection=kwargs.pop("target_connection", TARGET), **kwargs)


def grants_of(world: World, user_id: str) -> tuple[set[str], set[tuple[str, str]]]:
    """(role names, DIRECT permissions) held under a user id in a tenant, read through the API."""
    async def go() -> tuple[set[str], set[tuple[str, str]]]:
        from auth0_migrate.auth0.paging import offset_items
        from auth0_migrate.stages.grants import direct_permissions

        client = world.client()
        try:
            roles = {r.name async for r in offset_items(client, f"read roles of {user_id}", client.sdk.users.roles.list,
                                                        user_id)}
            return roles, set(await direct_permissions(client, user_id))
        finally:
            await client.aclose()
    return asyncio.run(go())


def dump(result: RunResult) -> str:
    return json.dumps(result.as_dict(), indent=1, default=str)[:4000]
