"""The tenant's rate limits as Auth0 publishes them: a global bucket, per-endpoint buckets, one request
added back every 60/y seconds, headers that describe the bucket that answered, a `Date` header and
`x-ratelimit-reset` on the tenant's own clock."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime

import pytest
from auth0.management.errors import TooManyRequestsError

from auth0_migrate.clock import ManualClock
from auth0_migrate.tenant import TenantConfig
from auth0_migrate.tenant.ratelimit import ESSENTIALS, RateLimiter

from ..conftest import BASE_URL, CLIENT_ID, CLIENT_SECRET

API = "/api/v2"


def _limits(response) -> tuple[int, int, int]:  # noqa: ANN001
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


@pytest.fixture
def tenant_config(clock: ManualClock, request: pytest.FixtureRequest) -> TenantConfig:
    plan, skew = getattr(request, "param", ("essentials", 0.0))
    return TenantConfig(name="test-tenant", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock,
                        base_url=BASE_URL, plan=plan, clock_skew=skew)


def test_endpoint_bucket_runs_out_while_others_answer(mgmt, http, auth_headers, tenant) -> None:  # noqa: ANN001
    """Essentials: Read Connections (5, 50/minute) empties; Read Users (40, 500/minute) still answers."""
    for expected_left in (4, 3, 2, 1, 0):
        r = http.get(f"{API}/connections", headers=auth_headers)
        assert r.status_code == 200, r.text
        assert _limits(r)[:2] == (5, expected_left)
    with pytest.raises(TooManyRequestsError):
        mgmt.connections.list()
    refused = http.get(f"{API}/connections", headers=auth_headers)
    assert refused.status_code == 429
    assert _limits(refused)[:2] == (5, 0)
    users = http.get(f"{API}/users", headers=auth_headers)
    assert users.status_code == 200
    assert _limits(users)[:2] == (40, 39)
    assert list(mgmt.users.list()) == []  # the SDK is served too: a user read has its own bucket
    roles = http.get(f"{API}/roles", headers=auth_headers)
    assert roles.status_code == 200 and _limits(roles)[:2] == (10, 9)  # "all other endpoints combined"


def test_refill_is_one_request_every_60_over_y_seconds(http, auth_headers, clock: ManualClock) -> None:  # noqa: ANN001
    """Read Connections refills at 50/minute: one request back every 1.2 s of the tenant's clock, up to 5."""
    start = clock.now()
    for _ in range(5):
        assert http.get(f"{API}/connections", headers=auth_headers).status_code == 200
    refused = http.get(f"{API}/connections", headers=auth_headers)
    assert refused.status_code == 429
    assert _limits(refused)[2] == math.ceil(start + 1.2)
    clock.advance(1.1)
    assert http.get(f"{API}/connections", headers=auth_headers).status_code == 429
    clock.advance(0.1)  # 1.2 s: one request is back, and only one
    assert http.get(f"{API}/connections", headers=auth_headers).status_code == 200
    again = http.get(f"{API}/connections", headers=auth_headers)
    assert again.status_code == 429
    assert _limits(again)[2] == math.ceil(start + 2.4)
    clock.advance(60.0)  # far more than 5 intervals: full, never more than the bucket's size
    answers = [http.get(f"{API}/connections", headers=auth_headers) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert _limits(answers[0])[:2] == (5, 4)


@pytest.mark.parametrize("tenant_config", [("free", 0.0)], indirect=True)
def test_free_plan_global_bucket(http, auth_headers, clock: ManualClock) -> None:  # noqa: ANN001
    """Free: one global bucket of 2, refilled at 2/second (one back every 0.5 s)."""
    codes = [http.get(f"{API}/users", headers=auth_headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    clock.advance(0.5)
    r = http.get(f"{API}/roles", headers=auth_headers)
    assert r.status_code == 200 and _limits(r)[:2] == (2, 0)


def test_headers_describe_the_bucket_that_answered() -> None:
    """Enterprise: an organization members read draws on the global bucket (50) and its own (40, 500/min).
    Accepted, it reports the tighter one; refused by its own bucket, it reports that one, with room left
    in the global bucket; refused by the global bucket, the global one."""
    clock = ManualClock()
    limiter = RateLimiter(TenantConfig(plan="enterprise", clock=clock), clock)
    members = ("GET", "/api/v2/organizations/{id}/members")
    allowed, headers = limiter.check(*members)
    assert allowed and headers["x-ratelimit-limit"] == "40" and headers["x-ratelimit-remaining"] == "39"
    allowed, headers = limiter.check("GET", "/api/v2/users")  # global only
    assert allowed and headers["x-ratelimit-limit"] == "50" and headers["x-ratelimit-remaining"] == "48"
    for _ in range(39):
        assert limiter.check(*members)[0]
    allowed, headers = limiter.check(*members)
    assert not allowed and headers["x-ratelimit-limit"] == "40" and headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-reset"] == str(math.ceil(clock.now() + 60 / 500))
    assert limiter.buckets["global"].tokens == 9  # 50 - 41 accepted: room left, and the 429 took none
    for _ in range(9):
        assert limiter.check("GET", "/api/v2/users")[0]
    allowed, headers = limiter.check("GET", "/api/v2/users")
    assert not allowed and headers["x-ratelimit-limit"] == "50" and headers["x-ratelimit-remaining"] == "0"


def test_tables_cover_organizations_per_plan() -> None:
    """The published organization buckets are in the table although the tool does not call them yet."""
    clock = ManualClock()
    essentials = RateLimiter(TenantConfig(plan="essentials", clock=clock), clock)
    names = {method_path: [lim.name for lim in essentials.limits_for(*method_path)] for method_path in [
        ("GET", "/api/v2/organizations"), ("GET", "/api/v2/organizations/{id}"),
        ("GET", "/api/v2/organizations/name/{name}"), ("POST", "/api/v2/organizations/{id}/members"),
        ("GET", "/api/v2/organizations/{id}/members/{user_id}/roles"), ("GET", "/api/v2/users/{id}"),
        ("DELETE", "/api/v2/connections/{id}/users"), ("GET", "/api/v2/roles/{id}/users"),
    ]}
    assert names == {
        ("GET", "/api/v2/organizations"): ["read-organizations"],
        ("GET", "/api/v2/organizations/{id}"): ["read-organizations-by-id"],
        ("GET", "/api/v2/organizations/name/{name}"): ["read-organizations-by-name"],
        ("POST", "/api/v2/organizations/{id}/members"): ["write-organization-members"],
        ("GET", "/api/v2/organizations/{id}/members/{user_id}/roles"): ["read-organization-member-roles"],
        ("GET", "/api/v2/users/{id}"): ["read-users"],
        ("DELETE", "/api/v2/connections/{id}/users"): ["delete-users"],
        ("GET", "/api/v2/roles/{id}/users"): ["other"],
    }
    by_name = {lim.name: lim for lim in ESSENTIALS.endpoints}
    assert (by_name["read-organizations"].size, by_name["read-organizations"].per_minute) == (5, 50)
    assert by_name["write-organizations"].interval == 60 / 25


@pytest.mark.parametrize("tenant_config", [("free", 3600.0), ("free", -3600.0)], indirect=True)
def test_reset_and_date_are_on_the_tenants_clock(http, auth_headers, clock: ManualClock,  # noqa: ANN001
                                                 tenant_config: TenantConfig) -> None:
    """With the tenant's clock an hour off the test's, reset and Date are UNIX times of the tenant's clock."""
    tenant_now = clock.now() + tenant_config.clock_skew
    clock.advance(0.25)
    http.get(f"{API}/users", headers=auth_headers)
    r = http.get(f"{API}/users", headers=auth_headers)
    assert r.status_code == 200 and _limits(r)[1] == 0
    assert _limits(r)[2] == math.ceil(tenant_now + 0.25 + 0.5)
    assert parsedate_to_datetime(r.headers["date"]).timestamp() == math.floor(tenant_now + 0.25)
    token = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                            "client_secret": CLIENT_SECRET, "audience": f"{BASE_URL}/api/v2/"})
    assert parsedate_to_datetime(token.headers["date"]).timestamp() == math.floor(tenant_now + 0.25)
