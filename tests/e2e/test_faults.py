"""The run against a misbehaving tenant: 429 storms, 5xx, dropped connections, failed and expired jobs,
expired links, jobs pending for many polls, search lag, and a tenant on the Free plan's 2 req/s."""

from __future__ import annotations

import json

import pytest

from auth0_migrate.errors import TransientError

from .conftest import TARGET, World, dump, migrate, options


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


DOWNLOAD = "GET /exports/{id}/{file}"

# name: (switch it on, the key it counts under in `faults.injected`, how many times it must fire;
# a negative count means "at least that many": pending polls depend on how often the tool polls).
FAULTS = {
    "429 storm on every endpoint": (lambda f: f.fail_call("*", nth=1, action=429, times=25), "*", 25),
    "503 on import job creation": (lambda f: f.fail_call("POST /api/v2/jobs/users-imports", nth=1, action=503,
                                                         times=2), "POST /api/v2/jobs/users-imports", 2),
    "500 on job polls": (lambda f: f.fail_call("GET /api/v2/jobs/{id}", nth=1, action=500, times=3),
                         "GET /api/v2/jobs/{id}", 3),
    "dropped connection on permission reads": (
        lambda f: f.fail_call("GET /api/v2/users/{id}/permissions", nth=3, action="drop", times=2),
        "GET /api/v2/users/{id}/permissions", 2),
    "dropped connection on role assignment": (
        lambda f: f.fail_call("POST /api/v2/roles/{id}/users", nth=1, action="drop"),
        "POST /api/v2/roles/{id}/users", 1),
    "502 on permission writes": (lambda f: f.fail_call("POST /api/v2/users/{id}/permissions", nth=2, action=502,
                                                       times=3), "POST /api/v2/users/{id}/permissions", 3),
    "503 on the export download": (lambda f: f.fail_call(DOWNLOAD, nth=1, action=503), DOWNLOAD, 1),
    "dropped export downloads": (lambda f: f.fail_call(DOWNLOAD, nth=1, action="drop", times=2), DOWNLOAD, 2),
    "export downloads cut short (200, half the gzip)": (
        lambda f: f.fail_call(DOWNLOAD, nth=1, action="truncated", times=2), DOWNLOAD, 2),
    "the first 3 download links born expired": (lambda f: setattr(f, "expire_links", 3), "expire_links", 3),
    # Job ordinals count from the tenant's start, and seeding made jobs too: the run's first job (the
    # source export) is `jobs_created + 1`, its import the next one.
    "first export job fails": (lambda f: f.fail_jobs.add(f.jobs_created + 1), "fail_jobs", 1),
    "import job fails": (lambda f: f.fail_jobs.add(f.jobs_created + 2), "fail_jobs", 1),
    "export job expires": (lambda f: f.expire_jobs.add(f.jobs_created + 1), "expire_jobs", 1),
    "jobs stay pending for 4 polls": (lambda f: setattr(f, "job_pending_polls", 4), "job_pending_polls", -4),
}
# No "search lag" case: the tool never searches (exports and users-by-email only), so that switch
# cannot fire in a run; tests/tenant/test_users.py checks the switch itself.


def _fired(world: World, key: str) -> int:
    injected = world.tenant.faults.injected
    return sum(injected.values()) if key == "*" else injected[key]


@pytest.mark.parametrize("name", list(FAULTS))
def test_run_survives(world: World, tmp_path, name: str) -> None:
    seeded, opts = _ready(world, tmp_path)
    switch_on, key, times = FAULTS[name]
    switch_on(world.tenant.faults)
    result = migrate(world, opts)
    if times > 0:
        assert _fired(world, key) == times, world.tenant.faults.injected
    else:
        assert _fired(world, key) >= -times, world.tenant.faults.injected
    _all_there(world, seeded, result)


def test_a_failed_download_is_fetched_again(world: World, tmp_path) -> None:
    """A 503 from the CDN on the export file: the tool gets a fresh link and downloads the export again."""
    seeded, opts = _ready(world, tmp_path)
    world.tenant.faults.fail_call(DOWNLOAD, nth=1, action=503)
    before = world.tenant.stats.get(DOWNLOAD, 0)  # seeding downloaded an export too
    result = migrate(world, opts)
    assert world.tenant.faults.injected == {DOWNLOAD: 1}
    # the source export twice (refused, then served), the target's export for the id map once
    assert world.tenant.stats[DOWNLOAD] - before == 3
    _all_there(world, seeded, result)


@pytest.mark.parametrize("encoded", [False, True], ids=["gzip-bytes", "content-encoding-gzip"])
def test_an_export_cut_short_is_never_read_as_the_export(world: World, tmp_path, encoded: bool) -> None:
    """A download answered 200 with half its gzip, every time (sent with `Content-Encoding: gzip` or not, where
    an HTTP client's own decoding would pass it in silence): the run stops as for a network failure, naming the
    export job, having written no user; the same command then finishes once the storage serves the whole file."""
    seeded, opts = _ready(world, tmp_path)
    world.tenant.config.download_content_encoding = encoded
    world.tenant.faults.fail_call(DOWNLOAD, nth=1, action="truncated", times=5)
    with pytest.raises(TransientError, match=r"download of export job_\w+ failed: the gzip data ends before"):
        migrate(world, opts)
    assert world.tenant.faults.injected == {DOWNLOAD: 5}  # every attempt, each with a fresh link
    assert world.users(TARGET) == []
    _all_there(world, seeded, migrate(world, opts))


def test_the_first_links_expire_and_the_run_still_finishes(world: World, tmp_path) -> None:
    seeded, opts = _ready(world, tmp_path)
    world.tenant.faults.expire_links = 2
    before = world.tenant.stats.get(DOWNLOAD, 0)
    result = migrate(world, opts)
    assert world.tenant.faults.injected == {"expire_links": 2}
    assert world.tenant.stats[DOWNLOAD] - before == 2 + 1 + 1  # two refused, then the source's and the target's
    _all_there(world, seeded, result)


def test_a_token_endpoint_fault_stops_the_run_then_it_resumes(world: World, tmp_path) -> None:
    seeded, opts = _ready(world, tmp_path)
    world.tenant.faults.fail_call("POST /oauth/token", nth=1, action=503)
    with pytest.raises(TransientError, match="token"):
        migrate(world, opts)
    assert world.tenant.faults.injected == {"POST /oauth/token": 1}
    assert world.users(TARGET) == []
    _all_there(world, seeded, migrate(world, opts))


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
    world.tenant.faults.expire_links = 1_000_000  # every link, as far as this run goes
    with pytest.raises(TransientError, match="download"):
        migrate(world, opts)
    faults = world.tenant.faults
    born_expired = 1_000_000 - faults.expire_links
    assert faults.injected == {"expire_links": born_expired} and born_expired >= 2  # the tool tried again
    assert world.users(TARGET) == []
    faults.expire_links = 0
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
    before = world.tenant.stats.get(DOWNLOAD, 0)
    result = migrate(world, opts)
    assert delayed["n"] == 1
    # the stale link refused, a fresh one served, then the target's export
    assert world.tenant.stats[DOWNLOAD] - before == 3
    _all_there(world, seeded, result)


def test_an_unexpected_413_splits_the_file_in_two_and_every_user_goes_in(world: World, tmp_path,
                                                                         monkeypatch) -> None:
    """A file within our budget that the tenant refuses as too large anyway (it counts bytes otherwise than we
    inferred): its users are split between two files (the first half stays, the rest move to a new file), both
    imported, nobody lost or sent twice."""
    import asyncio

    from auth0_migrate.ledger import Ledger
    from auth0_migrate.pipeline import plan
    from auth0_migrate.tenant import jobs as tenant_jobs

    seeded, opts = _ready(world, tmp_path)

    async def planned() -> list[int]:
        client = world.client()
        try:
            return (await plan(opts, source=client)).import_files
        finally:
            await client.aclose()

    (size,) = asyncio.run(planned())  # one file of 25 users, `size` bytes of JSON
    monkeypatch.setattr(tenant_jobs, "IMPORT_MAX_BYTES", size)  # the whole file is refused, each half is not
    uploads = "POST /api/v2/jobs/users-imports"
    before = world.tenant.stats.get(uploads, 0)
    result = migrate(world, opts)
    assert world.tenant.stats[uploads] - before == 3  # the refused file, then its two halves
    _all_there(world, seeded, result)
    files = result.reports["import_files"]
    assert [f["users"] for f in files] == [12, 13] and all(f["status"] == "done" for f in files)
    with Ledger.open_readonly(opts.state or "") as ledger:
        assert [len(ledger.users_of_file(f["file_id"])) for f in files] == [12, 13]
        assert [json.loads(f.summary or "{}").get("inserted") for f in ledger.files()] == [12, 13]
