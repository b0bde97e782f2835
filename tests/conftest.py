"""Fixtures shared by every test: a local tenant in-process, an HTTP client and the official SDK on it."""

from __future__ import annotations

from collections.abc import Iterator

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
