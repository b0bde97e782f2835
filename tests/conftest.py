"""Fixtures shared by every test: a local tenant in-process, an HTTP client and the official SDK on it.

Temporary files go to a RAM disk where there is one (`/dev/shm`, unless `TMPDIR` or `--basetemp` says
otherwise): each local tenant is a SQLite file in WAL mode, and opening, writing and closing one on a
disk waits on the file system (about 50 ms a tenant here, against 7 ms in RAM; the suite makes one
for most of its 1,300 tests, and a ledger besides for many). What the tests check does not depend on
the medium: no test asserts that data survives a power cut, and a killed process leaves the page cache
as a disk would.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
from auth0.management import Auth0
from starlette.testclient import TestClient

from auth0_migrate.clock import ManualClock
from auth0_migrate.tenant import TenantConfig, create_app

pytest_plugins = ["tests.support.oas_plugin"]

BASE_URL = "http://tenant.local"
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret"

RAM_DISK = "/dev/shm"
RAM_DISK_FREE = 2 << 30
"""Bytes the RAM disk must have free to be used (a whole run's temporary files are about 200 MB)."""


def _ram_disk() -> str | None:
    """`/dev/shm` when it is a writable tmpfs with room to spare, else None."""
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            tmpfs = any(line.split()[1:3] == [RAM_DISK, "tmpfs"] for line in mounts if len(line.split()) > 2)
        free = os.statvfs(RAM_DISK)
    except OSError:
        return None
    if not tmpfs or not os.access(RAM_DISK, os.W_OK | os.X_OK) or free.f_bavail * free.f_frsize < RAM_DISK_FREE:
        return None
    return RAM_DISK


def pytest_configure(config: pytest.Config) -> None:
    """pytest's base temp dir (so `tmp_path`) on the RAM disk, unless the person running the tests chose a
    place (`TMPDIR`, `PYTEST_DEBUG_TEMPROOT`, `--basetemp`; an xdist worker is given its controller's).

    And `sniffio`, when it is not installed, marked missing in `sys.modules`: httpx's `ASGITransport` (every
    in-process call to a tenant) tries `import sniffio` on each request, and a module that is not there is
    searched for again each time, along all of `sys.path` and through pytest's import hook (about 130 µs, for
    some 40,000 calls a run). The import fails as before, only at once."""
    chosen = os.environ.get("TMPDIR") or os.environ.get("PYTEST_DEBUG_TEMPROOT") or config.option.basetemp
    ram = None if chosen else _ram_disk()
    if ram is not None:
        tempfile.tempdir = ram
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


@pytest.fixture(scope="session", autouse=True)
def bcrypt_answers_remembered() -> Iterator[dict[tuple[bytes, bytes], bool]]:
    """`bcrypt.checkpw` answers each (password, hash) pair once a session, then from memory.

    A cost-10 check takes about 0.1 s (what Auth0 stores: the hash file, the import schema and the
    tenant's logins all use cost 10, so the data keep it), and the suite's users share a few seeded
    credentials, so most checks are the same pair again: about half of some 450 checks a run. The answer
    is bcrypt's own, computed the first time; an error (a malformed hash) is raised each time, as before.
    The tenant checks logins in its thread pool, so a pair asked for by two threads at once is computed
    by the first while the other waits for its answer.
    """
    real = bcrypt.checkpw
    answers: dict[tuple[bytes, bytes], bool] = {}
    locks: dict[tuple[bytes, bytes], threading.Lock] = {}
    guard = threading.Lock()

    def checkpw(password: bytes, hashed_password: bytes) -> bool:
        key = (bytes(password), bytes(hashed_password))
        if key not in answers:
            with guard:
                lock = locks.setdefault(key, threading.Lock())
            with lock:
                if key not in answers:
                    answers[key] = real(password, hashed_password)
        return answers[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bcrypt, "checkpw", checkpw)
        yield answers


@pytest.fixture(scope="session", autouse=True)
def temp_files_under_basetemp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every temporary file the code under test makes, here and in the processes tests start (`tenant serve`,
    the CLI), goes in `<basetemp>/tmp`: the tenants' SQLite stores and export downloads land where
    `tmp_path` is, and what a killed process leaves behind goes with pytest's own clean-up."""
    temp = tmp_path_factory.mktemp("tmp", numbered=False)
    saved = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(temp)
    os.environ["TMPDIR"] = str(temp)
    try:
        yield temp
    finally:
        tempfile.tempdir = saved[0]
        if saved[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[1]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tenant_config(clock: ManualClock) -> TenantConfig:
    return TenantConfig(name="test-tenant", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock,
                        base_url=BASE_URL)


@pytest.fixture
def app(tenant_config: TenantConfig) -> Iterator[object]:
    app = create_app(tenant_config)
    yield app
    app.state.tenant.close()


@pytest.fixture
def tenant(app):  # noqa: ANN001, ANN201
    """The app's state: store, faults, clock (`tenant.faults.fail_call(...)`)."""
    return app.state.tenant


@pytest.fixture
def http(app, oas_wrap) -> Iterator[httpx.Client]:  # noqa: ANN001
    """A sync httpx client talking to the tenant in-process; every JSON answer is checked against the OAS."""
    with oas_wrap(TestClient(app, base_url=BASE_URL)) as client:
        yield client


def fetch_token(http: httpx.Client, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> str:
    r = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                         "client_secret": client_secret, "audience": f"{BASE_URL}/api/v2/"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def token(http: httpx.Client) -> str:
    return fetch_token(http)


@pytest.fixture
def auth_headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def mgmt(http: httpx.Client, token: str) -> Auth0:
    """The official auth0-python SDK (sync) pointed at the tenant, with its own retries off."""
    return Auth0(base_url=f"{BASE_URL}/api/v2", token=token, httpx_client=http, max_retries=0)
