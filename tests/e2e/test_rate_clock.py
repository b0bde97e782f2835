"""The governor against Auth0's clock and buckets: a tenant whose clock is an hour off the tool's, a
reset header that lies, and per-endpoint buckets that must not be mistaken for one another.

Waits are read from the tool's injected clock (every `sleep` it was asked for), never wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from auth0_migrate.clock import ManualClock
from auth0_migrate.tenant import TenantConfig, create_app

from .conftest import SOURCE, TARGET, World, dump, migrate, options

HOUR = 3600.0


class RecordingClock(ManualClock):
    """A ManualClock that remembers every sleep asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


def skewed_world(oas_wrap: Any, clock: ManualClock, **config: Any) -> World:
    base_url = "http://tenant.local"
    app = create_app(TenantConfig(name="tenant.local", client_id="e2e-client", client_secret="e2e-secret",
                                  clock=clock, base_url=base_url, **config))
    return World(app, clock, base_url, "e2e-client", "e2e-secret", oas_wrap)


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
def make(oas_wrap: Any, clock: RecordingClock) -> Iterator[Any]:
    worlds: list[World] = []

    def build(**config: Any) -> World:
        worlds.append(skewed_world(oas_wrap, clock, **config))
        return worlds[-1]

    yield build
    for w in worlds:
        w.tenant.close()


def _governed_run(world: World, tmp_path: Any, users: int) -> tuple[Any, Any]:
    """Seed (unlimited), then migrate under a bucket of 1 refilled every 2 s: every call waits on a reset."""
    from auth0_migrate.auth0 import client as client_module
    from auth0_migrate.tenant.ratelimit import RateLimiter

    seeded = world.seed(users=users)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    tenant = world.tenant
    tenant.limiter = RateLimiter(TenantConfig(rate=0.5, burst=1), tenant.clock)  # the tenant's (skewed) clock
    governors: list[Any] = []
    original = client_module.TenantClient.aclose

    async def aclose(self: Any) -> None:
        governors.append(self.governor)
        await original(self)

    client_module.TenantClient.aclose = aclose
    try:
        result = migrate(world, options(tmp_path, password_hashes=hashes))
    finally:
        client_module.TenantClient.aclose = original
    assert result.exit_code == 0, dump(result)
    assert result.users["verified"] == seeded.users
    return result, governors[0]


@pytest.mark.parametrize("skew", [HOUR, -HOUR], ids=["tenant-an-hour-ahead", "tenant-an-hour-behind"])
def test_skewed_clock_neither_parks_nor_hammers(make: Any, clock: RecordingClock, tmp_path: Any,
                                                skew: float) -> None:
    world = make(clock_skew=skew)
    clock.sleeps.clear()
    started = clock.now()
    _, gov = _governed_run(world, tmp_path, users=4)
    # The skew is real: the tenant's Date and reset headers are an hour off the tool's clock.
    assert abs(world.tenant.clock.now() - clock.now() - skew) < 1e-6
    calls = gov.stats.total
    assert calls >= 30
    # No wait near an hour: none longer than the bucket's 2 s interval plus the Date header's second.
    assert max(clock.sleeps) <= 3.0, sorted(clock.sleeps)[-5:]
    # No hammering: a 429 is the exception (the reset is read on the tenant's clock, not taken for the past).
    assert gov.stats.http_429 <= calls // 10, (gov.stats.http_429, calls)
    # And the run took about what the bucket allows: one call per 2 s.
    assert clock.now() - started <= calls * 2 * 1.5
    # The governor found the skew out from the Date headers (to within their whole second).
    assert abs(gov.offset.seconds - skew) <= 1.0


def test_a_lying_reset_never_parks_the_run(make: Any, clock: RecordingClock, tmp_path: Any) -> None:
    """A 429 whose reset says "in two hours" (clocks agree): one wait is at most 60 s, then a re-check."""
    world = make()
    seeded = world.seed(users=2)
    world.tenant.faults.fail_call("GET /api/v2/users", nth=1, action=429, times=3)
    lies = {"n": 0}

    class LyingReset(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            if response.status_code == 429:
                lies["n"] += 1
                await response.aread()
                headers = dict(response.headers)
                headers["x-ratelimit-reset"] = str(int(clock.now() + 2 * HOUR))
                return httpx.Response(429, headers=headers, content=response.content)
            return response

    async def go() -> int:
        from auth0_migrate.auth0.client import TenantClient, TenantCredentials

        inner = LyingReset(world.oas_wrap(httpx.ASGITransport(app=world.app)))
        client = TenantClient(TenantCredentials(world.base_url, world.client_id, world.client_secret),
                              transport=inner, clock=clock, concurrency=4)
        try:
            found = await asyncio.gather(*[client.sdk.users.list(per_page=1) for _ in range(8)])
            return len(found)
        finally:
            await client.aclose()

    clock.sleeps.clear()
    started = clock.now()
    assert asyncio.run(go()) == 8
    assert lies["n"] == 3  # the fault fired: three 429s said "two hours"
    assert max(clock.sleeps) <= 60.0
    assert clock.now() - started <= 3 * 61
    assert seeded.users == 2


def test_endpoint_buckets_are_paced_apart(make: Any, clock: RecordingClock) -> None:
    """Essentials: Read Connections (5, 50/minute) runs dry while Read Users (40) has room. Alternating
    the two, no user read waits for the connections bucket, and no connection read trusts the users'
    headers (which show plenty left) to go before its own bucket has a request back."""
    world = make(plan="essentials")
    world.connection(TARGET)

    async def go() -> tuple[float, float, int, int]:
        client = world.client(concurrency=1)
        try:
            await client.sdk.users.list(per_page=1)  # the governor learns which bucket answers user reads
            while world.tenant.limiter.buckets["read-connections"].tokens > 0:
                await client.sdk.connections.list()
            users_waited = connections_waited = 0.0
            for _ in range(6):
                first = len(clock.sleeps)
                await client.sdk.connections.list()
                connections_waited += sum(clock.sleeps[first:])
                first = len(clock.sleeps)
                await client.sdk.users.list(per_page=1)
                users_waited += sum(clock.sleeps[first:])
            return users_waited, connections_waited, client.governor.stats.http_429, len(client.governor.pacers)
        finally:
            await client.aclose()

    users_waited, connections_waited, refused, buckets = asyncio.run(go())
    assert buckets == 2  # read-connections (5) and read-users (40), each paced by its own headers
    assert refused == 0  # connection reads waited for their own bucket, not for the users' room
    assert connections_waited >= 6 * 1.2 - 1.0  # one request back per 1.2 s (reset given in whole seconds)
    assert users_waited == 0.0  # no user read waited for the empty connections bucket


def test_clock_offset_follows_a_stepped_clock(make: Any, clock: RecordingClock) -> None:
    """The offset is a running estimate from every Date header: when the tenant's clock is stepped (an
    hour behind, then an hour ahead), the estimate follows instead of averaging the two."""
    world = make(clock_skew=-HOUR)

    async def go() -> tuple[float, float]:
        client = world.client(concurrency=1)
        try:
            for _ in range(3):
                await client.sdk.users.list(per_page=1)
                clock.advance(0.37)
            behind = client.governor.offset.seconds
            world.tenant.clock.skew = HOUR  # the tenant's clock is stepped two hours forward
            for _ in range(3):
                await client.sdk.users.list(per_page=1)
                clock.advance(0.37)
            return behind, client.governor.offset.seconds
        finally:
            await client.aclose()

    behind, ahead = asyncio.run(go())
    assert abs(behind + HOUR) <= 1.0
    assert abs(ahead - HOUR) <= 1.0


def test_an_endpoint_not_yet_routed_to_a_bucket_sends_one_request_first(clock: RecordingClock) -> None:
    """Sixteen calls at once to an endpoint no answer has placed in a bucket yet: one goes, the rest wait for its
    answer (whose headers say which bucket, and how much is left), instead of sixteen into a bucket of ten."""
    from auth0_migrate.auth0.governor import GovernedTransport, Governor

    sent: list[str] = []
    release = asyncio.Event()

    class Slow(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.url.path)
            await release.wait()
            left = max(0, 10 - len(sent))
            return httpx.Response(200, json={}, headers={"x-ratelimit-limit": "10", "x-ratelimit-remaining": str(left),
                                                         "x-ratelimit-reset": str(int(clock.now()) + 1)})

    async def go() -> tuple[int, int]:
        transport = GovernedTransport(Slow(), Governor(clock=clock, concurrency=16))
        async with httpx.AsyncClient(transport=transport, base_url="http://t.local") as http:
            calls = [asyncio.ensure_future(http.get(f"/api/v2/users/u{n}/permissions")) for n in range(16)]
            for _ in range(20):
                await asyncio.sleep(0)
            before_answer = len(sent)
            release.set()
            await asyncio.gather(*calls)
            return before_answer, len(sent)

    before_answer, total = asyncio.run(go())
    assert before_answer == 1
    assert total == 16


def test_a_whole_run_on_essentials_buckets_meets_few_429s(make: Any, clock: RecordingClock, tmp_path) -> None:
    """Essentials: roles, jobs and permissions share the "all other endpoints" bucket (10, 150/minute). Each
    endpoint's first request goes alone until its answer says which bucket it draws on, and a bucket whose rate
    is not learned yet lets one request go per reset: 16 requests at once into 10 tokens came back 429."""
    world = make(plan="essentials")
    seeded = world.seed(users=30)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    stats: dict[str, int] = {}

    async def go() -> Any:
        from auth0_migrate.pipeline import run

        client = world.client()
        try:
            return await run(options(tmp_path, password_hashes=hashes), source=client)
        finally:
            stats.update(calls=client.governor.stats.total, refused=client.governor.stats.http_429)
            await client.aclose()

    result = asyncio.run(go())
    assert result.exit_code == 0 and result.users["verified"] == seeded.users, dump(result)
    assert stats["calls"] > 60
    assert stats["refused"] <= stats["calls"] // 100, stats


def _user_ids(world: World, n: int) -> list[str]:
    return [str(u["user_id"]) for u in world.users(SOURCE)[:n]]


def _bucket_world(make: Any, latency: float, **limits: Any) -> tuple[World, list[str]]:
    """A tenant with 20 users (seeded without a limit), then under `limits` (a plan, or a rate and burst).

    `latency` is real seconds the tenant adds to every call: requests are then in flight while others queue,
    as against Auth0. The injected clock stands still meanwhile (it moves only when someone sleeps), so a
    test that reads the time taken runs with no latency: the time is then what the governor waited."""
    from auth0_migrate.tenant.ratelimit import RateLimiter

    world = make(latency=latency)
    world.seed(users=20)
    world.tenant.limiter = RateLimiter(TenantConfig(**limits), world.tenant.clock)
    return world, _user_ids(world, 20)


def _read_grants_at_once(world: World, user_ids: list[str], calls: int) -> dict[str, float]:
    """`calls` reads split between two endpoints of one bucket (a user's permissions and a user's roles), all
    started at once through one client at its default concurrency; the governor's counts and the time taken."""
    from auth0_migrate.auth0.paging import offset_items
    from auth0_migrate.stages.grants import direct_permissions

    async def roles(client: Any, user_id: str) -> int:
        return len([r async for r in offset_items(client, "roles", client.sdk.users.roles.list, user_id)])

    async def go() -> dict[str, float]:
        client = world.client()
        started = world.clock.now()
        try:
            await asyncio.gather(*[direct_permissions(client, user_ids[n % len(user_ids)]) if n % 2
                                   else roles(client, user_ids[n % len(user_ids)]) for n in range(calls)])
            stats = client.governor.stats
            return {"calls": stats.total, "refused": stats.http_429, "seconds": world.clock.now() - started}
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_two_endpoints_sharing_the_essentials_other_bucket_meet_few_429s(make: Any) -> None:
    """Essentials: a user's permissions and a user's roles both draw on "all other endpoints" (10, 150/minute).
    300 reads of the two at once, answered after some latency: at most 1 % come back 429. (A governor that,
    not knowing the refill rate yet, lets every queued sender go at the reset, which brings ONE request back,
    had more than a third of its calls refused here.)"""
    world, ids = _bucket_world(make, 0.01, plan="essentials")
    got = _read_grants_at_once(world, ids, 300)
    assert got["calls"] >= 300
    assert got["refused"] <= got["calls"] // 100, got


@pytest.mark.parametrize(("limits", "calls", "size", "per_second"), [
    ({"plan": "essentials"}, 300, 10, 2.5),
    ({"rate": 50, "burst": 50}, 1000, 50, 50.0),
], ids=["essentials-other-bucket", "fifty-a-second"])
def test_the_governor_waits_no_longer_than_the_bucket_asks(make: Any, limits: dict[str, Any], calls: int,
                                                           size: int, per_second: float) -> None:
    """The reads take at most 10 % more than the bucket allows ((calls - its size) / its rate), with no 429 to
    speak of. The bucket of 50 refilled at 50 a second reports its reset in whole seconds, by which time it is
    full again: a governor that sends one request per reset until it knows the rate, and cannot learn it
    because every answer it reads is from a full bucket, would crawl there."""
    world, ids = _bucket_world(make, 0.0, **limits)
    got = _read_grants_at_once(world, ids, calls)
    assert got["refused"] <= got["calls"] // 100, got
    assert got["seconds"] <= (got["calls"] - size) / per_second * 1.10, got
