"""A token the tenant stops accepting mid-run (its signing key rotated, or a local tenant restarted) is
replaced once and the run goes on; a tenant that refuses the new token too ends the run with a clear error."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.errors import AuthenticationError
from auth0_migrate.model import MigrationOptions, RunResult
from auth0_migrate.pipeline import run

from .conftest import TARGET, World, dump, options


class KeyRotation(httpx.AsyncBaseTransport):
    """Between the tool and the tenant: rotates the tenant's signing key after the `after`-th Management API
    answer (once), or after every token it issues; counts what happened so a test can see the fault fired."""

    def __init__(self, inner: httpx.AsyncBaseTransport, world: World, *, after: int | None = None,
                 every_token: bool = False) -> None:
        self.inner, self.world, self.after, self.every_token = inner, world, after, every_token
        self.api_calls = self.refused = self.tokens = self.rotations = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.startswith("/api/v2/"):
            self.api_calls += 1
            self.refused += response.status_code == 401
            if self.api_calls == self.after:
                self._rotate()
        elif request.url.path == "/oauth/token":
            self.tokens += 1
            if self.every_token:
                self._rotate()
        return response

    def _rotate(self) -> None:
        self.world.tenant.rotate_signing_key()
        self.rotations += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def _migrate(world: World, opts: MigrationOptions, **rotation: Any) -> tuple[KeyRotation, RunResult | Exception]:
    transport = KeyRotation(world.oas_wrap(httpx.ASGITransport(app=world.app)), world, **rotation)

    async def go() -> RunResult:
        client = TenantClient(TenantCredentials(world.base_url, world.client_id, world.client_secret),
                              transport=transport, clock=world.clock)
        try:
            return await run(opts, source=client)
        finally:
            await client.aclose()
    try:
        return transport, asyncio.run(go())
    except AuthenticationError as exc:
        return transport, exc


def test_a_token_rejected_mid_run_is_renewed_once_and_the_run_goes_on(world: World, tmp_path) -> None:
    seeded = world.seed(users=25)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    rotation, result = _migrate(world, options(tmp_path, password_hashes=hashes), after=40)
    # The fault fired: the key changed mid-run and the tenant refused the old token at least once.
    assert rotation.rotations == 1 and rotation.refused >= 1
    assert rotation.api_calls > 40
    # One new token, however many calls in flight saw the old one refused.
    assert rotation.tokens == 2
    assert isinstance(result, RunResult), result
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == result.users["verified"] == seeded.users
    emails = [u["email"] for u in world.users(TARGET)]
    assert len(emails) == len(set(emails)) == seeded.users


def test_a_new_token_refused_too_is_an_authentication_error(world: World, tmp_path) -> None:
    world.seed(users=3)
    world.connection(TARGET)
    rotation, result = _migrate(world, options(tmp_path), every_token=True)
    assert isinstance(result, AuthenticationError), result
    assert result.status == 401 and "Invalid token" in str(result)
    # Exactly one renewal: the first call was refused, a new token fetched, the call sent again and refused.
    assert (rotation.tokens, rotation.api_calls, rotation.refused) == (2, 2, 2)
    assert world.users(TARGET) == []


def test_other_refusals_go_once(world: World) -> None:
    """Only a 401 renews the token: a 404 goes once and stands."""
    transport = KeyRotation(world.oas_wrap(httpx.ASGITransport(app=world.app)), world)

    async def go() -> int:
        client = TenantClient(TenantCredentials(world.base_url, world.client_id, world.client_secret),
                              transport=transport, clock=world.clock)
        try:
            response = await client.http.get("/api/v2/users/auth0|nobody",
                                             headers={"authorization": f"Bearer {await client.token()}"})
            return response.status_code
        finally:
            await client.aclose()
    assert asyncio.run(go()) == 404
    assert (transport.tokens, transport.api_calls, transport.refused) == (1, 1, 0)
