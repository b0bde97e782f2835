"""The run against a misbehaving tenant: 429 storms, 5xx, dropped connections, failed and expired jobs,
expired links, jobs pending for many polls, search lag, and a tenant on the Free plan's 2 req/s."""

from __future__ import annotations

import pytest

from auth0_migrate.errors import TransientError

from .conftest import SOURCE, TARGET, World, dump, migrate, options


def _ready(world: World, tmp_path, users: int = 25):
    seeded = world.seed(users=users)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    return seeded, options(tmp_path, password_hashes=hashes)


def _all_there(world: World, seeded, result) -> None:
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] + result.users["already_in_target"] == seeded.users
    assert result.users["verified"] == seeded.users
    emails = [u["email"] for u in world.users(TARGET)]
    assert len(emails) == len(set(emails)) == seeded.users


FAULTS = {
    "429 storm on every endpoint": lambda f: f.fail_call("*", nth=1, action=429, times=25),
    "503 on import job creation": lambda f: f.fail_call("POST /api/v2/jobs/users-imports", nth=1, action=503, times=2),
    "500 on job polls": lambda f: f.fail_call("GET /api/v2/jobs/{id}", nth=1, action=500, times=3),
    "dropped connection on permission reads": lambda f: f.fail_call("GET /api/v2/users/{id}/permissions", nth=3,
                                                                    action="drop", times=2),
    "dropped connection on role assignment": lambda f: f.fail_call("POST /api/v2/roles/{id}/users", nth=1,
                                                                   action="drop"),
    "502 on permission writes": lambda f: f.fail_call("POST /api/v2/users/{id}/permissions", nth=2, action=502,
                                                      times=3),
    "first export job fails": lambda f: f.fail_jobs.add(1),
    "import job fails": lambda f: f.fail_jobs.add(2),
    "export job expires": lambda f: f.expire_jobs.add(1),
    "jobs stay pending for 4 polls": lambda f: setattr(f, "job_pending_polls", 4),
    "search lag": lambda f: setattr(f, "search_lag", 120.0),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_run_survives(world: World, tmp_path, name: str) -> None:
    seeded, opts = _ready(world, tmp_path)
    FAULTS[name](world.tenant.faults)
    result = migrate(world, opts)
    _all_there(world, seeded, result)


def test_free_plan_rate_limit(world: World, tmp_path) -> None:
    """At 2 req/s (burst 2) the governor learns the pace from the headers and keeps 429s rare."""
    from auth0_migrate.tenant.config import TenantConfig
    from auth0_migrate.tenant.ratelimit import RateLimiter

    seeded, opts = _ready(world, tmp_path, users=20)
    world.tenant.limiter = RateLimiter(TenantConfig(plan="free"), world.clock)
    statuses: dict[int, int] = {}
    from auth0_migrate.auth0 import client as client_module

    original_aclose = client_module.TenantClient.aclose

    async def aclose(self):
        for status, n in self.governor.stats.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
        await original_aclose(self)

    client_module.TenantClient.aclose = aclose
    try:
        started = world.clock.now()
        result = migrate(world, opts)
    finally:
        client_module.TenantClient.aclose = original_aclose
    _all_there(world, seeded, result)
    calls = sum(statuses.values())
    assert statuses.get(429, 0) <= max(3, calls // 20), statuses
    # At 2 req/s the run cannot be faster than calls / 2 (clock seconds), and should not be much slower.
    elapsed = world.clock.now() - started
    assert calls / 2 * 0.8 <= elapsed <= calls / 2 * 3 + 60, (calls, elapsed)


def test_expired_links_stop_the_run_then_it_resumes(world: World, tmp_path) -> None:
    seeded, opts = _ready(world, tmp_path)
    world.tenant.faults.expire_links_now = True
    with pytest.raises(TransientError, match="download"):
        migrate(world, opts)
    assert world.users(TARGET) == []
    world.tenant.faults.expire_links_now = False
    _all_there(world, seeded, migrate(world, opts))


def test_link_expiring_between_poll_and_download_is_refetched(world: World, tmp_path, monkeypatch) -> None:
    """The 60 s link runs out before the download starts: a fresh link is fetched from the job."""
    from auth0_migrate.auth0 import jobs

    seeded, opts = _ready(world, tmp_path)
    original = jobs.download_export
    delayed = {"n": 0}

    async def late(client, job, **kwargs):
        if delayed["n"] == 0:
            delayed["n"] += 1
            world.clock.advance(61)
        return await original(client, job, **kwargs)

    monkeypatch.setattr(jobs, "download_export", late)
    _all_there(world, seeded, migrate(world, opts))
    assert delayed["n"] == 1
    assert SOURCE
