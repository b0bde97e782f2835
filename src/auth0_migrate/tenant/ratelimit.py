"""Auth0's Management API rate limits: a global bucket and per-endpoint buckets, per plan.

Auth0's model (its "Management API Endpoint Rate Limits" policy page): each limit is a bucket of
`size` requests (the burst limit) that gets one request back every 60/y seconds, y being the
sustained limit in requests per minute, until it is full. A request is checked against the API's
global bucket first, then against the bucket of its endpoint group. Every answer carries
`x-ratelimit-limit` (the bucket's size), `x-ratelimit-remaining` and `x-ratelimit-reset` (the UNIX
time, in seconds on the tenant's clock, when the next request is added back); an empty bucket
answers 429. Time comes from the tenant's clock, so tests can move it (and skew it: see
`TenantConfig.clock_skew`).

Source of the table below: auth0/docs-v2 (the auth0.com/docs source), commit 092b879e of
2026-08-20, read on 2026-12-02:
`main/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy/`
`rate-limit-configurations/{free-public,essentials-professional-b2b,enterprise-public}.mdx`
(pages last changed 2026-07-30, 2026-07-24 and 2026-07-24), and `management-api-endpoint-rate-limits.mdx`
for the algorithm. The paths of the endpoint groups come from the Free page (which lists them) and
from the 2020 version of the policy page (which listed them for Enterprise); the current Essentials
and Enterprise pages name the groups and link an endpoint but give no path, so our mapping of group
to paths is a reading, not a quote. Entries we could not confirm say UNCONFIRMED in their note.

Choices where Auth0 is silent:
- A request refused by any bucket takes a token from none (we check every bucket, then take from
  all). Auth0 says the global limit is evaluated first, not whether a request refused by its
  endpoint bucket still spent a global token.
- A 429 describes the bucket that ran out (the global one when both are empty, as it is evaluated
  first); an accepted request describes the most constraining bucket it consulted: the one with the
  fewest requests left after it, the endpoint bucket on a tie.
- `x-ratelimit-reset` is rounded up to the whole second (never earlier than the request comes back)
  and is "now" when the bucket is full.
- Essentials/Professional publish no global Management API limit, only endpoint groups and "All
  other endpoints combined"; we model no global bucket there, and every request falls in exactly one
  group (UNCONFIRMED: a tenant may also have a global bucket above the groups).
- On Free and Enterprise, endpoints with their own bucket also draw on the global bucket (the
  policy page's "global first, then endpoint"; the Enterprise page's "Most Management API endpoints,
  except those listed under 'endpoints', are protected by these rate limit policies" could be read
  the other way: UNCONFIRMED).
- Read Users covers `GET /users`, `GET /users/{id}` and `GET /users-by-email`; Write Users (DELETE)
  also covers `DELETE /connections/{id}/users` (it deletes users). A user's roles and permissions
  are in "all other endpoints" (the page links only the users endpoints themselves).
- `--rate`/`--burst` (`TenantConfig.rate`, `burst`) replace every bucket of the plan with one
  global bucket: the benchmark's knob, not a plan.
- Query-dependent limits ("Read Clients, only applies to the usage of the `q` parameter") are left
  out: our limiter sees the method and path template only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..clock import Clock
from .config import TenantConfig

API = "/api/v2"


@dataclass(frozen=True)
class Limit:
    """One row of a published table: a bucket of `size` refilled at `per_minute` requests a minute."""

    name: str
    size: int
    per_minute: float
    methods: frozenset[str] = frozenset()
    """The methods the row covers (empty: any)."""
    paths: tuple[str, ...] = ()
    """Path templates under /api/v2 ("{}" is one segment, a trailing "/**" any tail); empty: any path."""

    @property
    def interval(self) -> float:
        """Seconds between two requests added back: 60/y."""
        return 60.0 / self.per_minute

    def covers(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        return not self.paths or any(_pattern(p).match(path) for p in self.paths)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(template: str) -> re.Pattern[str]:
    if template not in _PATTERNS:
        tail = template.endswith("/**")
        body = template[:-3] if tail else template
        regex = re.escape(API + body).replace(re.escape("{}"), r"\{[^/]+\}")
        _PATTERNS[template] = re.compile(f"^{regex}{'(/.*)?' if tail else ''}$")
    return _PATTERNS[template]


def _rows(*rows: tuple[str, str, tuple[str, ...], int, float]) -> tuple[Limit, ...]:
    """(name, "GET,POST", paths, burst, per minute) rows, as the published tables list them."""
    return tuple(Limit(name, size, per_minute, frozenset(m for m in methods.split(",") if m), paths)
                 for name, methods, paths, size, per_minute in rows)


SECOND, DAY = 60.0, 1 / 1440  # "n/second" is n * 60 a minute; "n/day" is n / 1440 a minute

_ORGS = "/organizations"
_W = "POST,PATCH,DELETE"


@dataclass(frozen=True)
class PlanLimits:
    global_: Limit | None
    """The Management API's global bucket; every request draws on it."""
    endpoints: tuple[Limit, ...]
    """Endpoint groups with their own bucket; the first that covers a request applies."""
    others: Limit | None = None
    """"All other endpoints combined": the bucket of a request no endpoint group covers."""


# Free (free-public.mdx, 2026-07-30): global 2 burst, 2/second; endpoint rows list their paths.
FREE = PlanLimits(
    global_=Limit("global", 2, 2 * SECOND),
    endpoints=_rows(
        ("verify-custom-domain", "POST", ("/custom-domains/{}/verify",), 5, 5),
        # The page says POST for a GET endpoint (the OAS has GET /connections/{id}/status): any method.
        ("read-status-connection", "", ("/connections/{}/status",), 100, 15 * SECOND),
        ("rotate-signing-keys", "POST", ("/keys/signing/rotate",), 5, 5 * DAY),
        ("write-email-templates", _W, ("/email-templates", "/email-templates/{}"), 5, 25),
        ("read-email-templates", "GET", ("/email-templates", "/email-templates/{}"), 10, 50),
        ("write-email-provider", _W, ("/emails/provider",), 5, 25),
        ("read-email-provider", "GET", ("/emails/provider",), 5, 25),
    ),
)

# Essentials and Professional (essentials-professional-b2b.mdx, 2026-07-24). No global row.
# Order matters: the more specific organization paths come before the generic ones.
ESSENTIALS = PlanLimits(
    global_=None,
    endpoints=_rows(
        ("read-organization-members", "GET", (f"{_ORGS}/{{}}/members",), 40, 500),
        ("write-organization-members", "POST,DELETE", (f"{_ORGS}/{{}}/members",), 20, 200),
        ("read-organization-member-roles", "GET", (f"{_ORGS}/{{}}/members/{{}}/roles",), 20, 200),
        ("write-organization-member-roles", "POST,DELETE", (f"{_ORGS}/{{}}/members/{{}}/roles",), 20, 200),
        ("read-organization-connections", "GET", (f"{_ORGS}/{{}}/enabled_connections/**",), 5, 50),
        ("write-organization-connections", _W, (f"{_ORGS}/{{}}/enabled_connections/**",), 5, 25),
        ("read-organization-client-grants", "GET", (f"{_ORGS}/{{}}/client-grants/**",), 10, 100),
        ("write-organization-client-grants", "POST", (f"{_ORGS}/{{}}/client-grants",), 5, 150),
        ("read-organizations-by-name", "GET", (f"{_ORGS}/name/{{}}",), 10, 100),
        ("read-organizations", "GET", (_ORGS,), 5, 50),
        ("read-organizations-by-id", "GET", (f"{_ORGS}/{{}}",), 20, 200),
        ("write-organizations", _W, (_ORGS, f"{_ORGS}/{{}}"), 5, 25),
        ("read-users", "GET", ("/users", "/users/{}", "/users-by-email"), 40, 500),
        ("write-users", "POST,PATCH", ("/users", "/users/{}"), 20, 200),
        ("delete-users", "DELETE", ("/users/{}", "/connections/{}/users"), 20, 200),
        ("read-logs", "GET", ("/logs", "/logs/{}"), 10, 100),
        ("read-clients", "GET", ("/clients", "/clients/{}"), 5, 100),
        ("read-status-connection", "GET", ("/connections/{}/status",), 100, 15 * SECOND),
        ("read-connections", "GET", ("/connections/**",), 5, 50),
        ("write-device-credentials", "POST,DELETE", ("/device-credentials", "/device-credentials/{}"), 5, 100),
        ("write-custom-domain", "POST", ("/custom-domains/{}/verify",), 5, 5),
        ("write-signing-keys", "POST", ("/keys/signing/rotate",), 5, 5 * DAY),
        ("read-prompt-partials", "GET", ("/prompts/{}/partials",), 5, 5),
        ("write-prompt-partials", "PUT", ("/prompts/{}/partials",), 5, 5),
        ("write-email-templates", _W, ("/email-templates", "/email-templates/{}"), 5, 25),
        ("read-email-templates", "GET", ("/email-templates", "/email-templates/{}"), 10, 50),
        ("write-email-provider", _W, ("/emails/provider",), 5, 25),
        ("read-email-provider", "GET", ("/emails/provider",), 5, 25),
        ("write-token-exchange-profiles", _W, ("/token-exchange-profiles/**",), 5, 100),
        ("read-token-exchange-profiles", "GET", ("/token-exchange-profiles/**",), 20, 200),
    ),
    others=Limit("other", 10, 150),
)

# Enterprise, public cloud, production tenant (enterprise-public.mdx, 2026-07-24): global 50 burst,
# 16/second (non-production tenants: 10 burst, 2/second, not modelled).
ENTERPRISE = PlanLimits(
    global_=Limit("global", 50, 16 * SECOND),
    endpoints=_rows(
        ("read-organization-members", "GET", (f"{_ORGS}/{{}}/members",), 40, 500),
        ("write-organization-members", "POST,DELETE", (f"{_ORGS}/{{}}/members",), 20, 200),
        ("read-organization-member-roles", "GET", (f"{_ORGS}/{{}}/members/{{}}/roles",), 20, 200),
        ("write-organization-member-roles", "POST,DELETE", (f"{_ORGS}/{{}}/members/{{}}/roles",), 20, 200),
        ("read-organization-invitations", "GET", (f"{_ORGS}/{{}}/invitations/**",), 20, 200),
        ("write-organization-invitations", "POST", (f"{_ORGS}/{{}}/invitations",), 20, 200),
        ("read-organization-connections", "GET", (f"{_ORGS}/{{}}/enabled_connections/**",), 10, 100),
        ("write-organization-connections", _W, (f"{_ORGS}/{{}}/enabled_connections/**",), 5, 150),
        ("read-organization-client-grants", "GET", (f"{_ORGS}/{{}}/client-grants/**",), 10, 100),
        ("write-organization-client-grants", "POST", (f"{_ORGS}/{{}}/client-grants",), 5, 150),
        ("read-organizations-by-name", "GET", (f"{_ORGS}/name/{{}}",), 20, 200),
        ("read-organizations", "GET", (_ORGS,), 10, 100),
        ("read-organizations-by-id", "GET", (f"{_ORGS}/{{}}",), 10, 100),
        ("write-organizations", _W, (_ORGS, f"{_ORGS}/{{}}"), 5, 150),
        ("read-user-organizations", "GET", ("/users/{}/organizations",), 40, 500),
        ("write-custom-domains", "POST", ("/custom-domains/{}/verify",), 5, 5),
        ("read-status-connection", "GET", ("/connections/{}/status",), 100, 15 * SECOND),
        ("write-signing-keys", "POST", ("/keys/signing/rotate",), 5, 5 * DAY),
        ("read-prompt-partials", "GET", ("/prompts/{}/partials",), 5, 5),
        ("write-prompt-partials", "PUT", ("/prompts/{}/partials",), 5, 5),
        ("write-email-templates", _W, ("/email-templates", "/email-templates/{}"), 10, 100),
        ("read-email-templates", "GET", ("/email-templates", "/email-templates/{}"), 15, 150),
        ("write-email-provider", _W, ("/emails/provider",), 10, 100),
        ("read-email-provider", "GET", ("/emails/provider",), 15, 150),
        ("write-token-exchange-profiles", _W, ("/token-exchange-profiles/**",), 5, 100),
        ("read-token-exchange-profiles", "GET", ("/token-exchange-profiles/**",), 20, 200),
    ),
)

UNCONFIRMED = {
    "essentials": "no global bucket above the endpoint groups (none is published)",
    "read-organization-members": "Essentials lists GET organization members twice (40/500 and 20/200, "
                                 "'Read Organization Members' and 'Read Members of an Organization'); we use the first",
    "paths": "group-to-path mapping of Essentials and Enterprise rows (the pages give a name and a link, no path)",
}
"""What we could not confirm, one entry each, so a wrong one is cheap to change."""

PLAN_LIMITS: dict[str, PlanLimits] = {"free": FREE, "essentials": ESSENTIALS, "enterprise": ENTERPRISE,
                                      "unlimited": PlanLimits(global_=None, endpoints=())}


def plan_limits(config: TenantConfig) -> PlanLimits:
    """The plan's table, or the one global bucket `--rate`/`--burst` ask for."""
    if config.rate is not None:
        burst = config.burst if config.burst is not None else max(1, int(config.rate))
        return PlanLimits(global_=Limit("global", burst, float(config.rate) * SECOND), endpoints=())
    return PLAN_LIMITS[config.plan]


_EPSILON = 1e-6
"""Seconds of float noise forgiven (an epoch near 1.8e9 has a resolution of about 2.4e-7 s)."""


class Bucket:
    """One bucket: `size` requests, one added back every `interval` seconds until full."""

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = limit.size
        self.stamp = now
        """When the last request was added back (or the bucket was last seen full)."""

    def refill(self, now: float) -> None:
        if self.tokens >= self.limit.size:
            self.stamp = now
            return
        ticks = math.floor((now - self.stamp + _EPSILON) / self.limit.interval)
        if ticks > 0:
            self.tokens = min(self.limit.size, self.tokens + ticks)
            self.stamp = now if self.tokens >= self.limit.size else self.stamp + ticks * self.limit.interval

    def headers(self, now: float) -> dict[str, str]:
        full = self.tokens >= self.limit.size
        reset = now if full else self.stamp + self.limit.interval
        return {"x-ratelimit-limit": str(self.limit.size), "x-ratelimit-remaining": str(self.tokens),
                "x-ratelimit-reset": str(math.ceil(reset - _EPSILON))}


class RateLimiter:
    """The buckets of one tenant; `unlimited` has none and reports a bucket that never empties."""

    UNLIMITED = 1_000_000

    def __init__(self, config: TenantConfig, clock: Clock) -> None:
        self.clock = clock
        self.plan = plan_limits(config)
        self.buckets: dict[str, Bucket] = {}
        self._groups: dict[tuple[str, str], Limit | None] = {}

    def limits_for(self, method: str, path_template: str) -> list[Limit]:
        """The limits a request is checked against, global first."""
        key = (method, path_template)
        if key not in self._groups:
            group = next((lim for lim in self.plan.endpoints if lim.covers(method, path_template)), None)
            self._groups[key] = group or self.plan.others
        group = self._groups[key]
        return [lim for lim in (self.plan.global_, group) if lim is not None]

    def _bucket(self, limit: Limit, now: float) -> Bucket:
        if limit.name not in self.buckets:
            self.buckets[limit.name] = Bucket(limit, now)
        return self.buckets[limit.name]

    def check(self, method: str, path_template: str) -> tuple[bool, dict[str, str]]:
        now = self.clock.now()
        limits = self.limits_for(method, path_template)
        if not limits:
            return True, {"x-ratelimit-limit": str(self.UNLIMITED), "x-ratelimit-remaining": str(self.UNLIMITED),
                          "x-ratelimit-reset": str(math.ceil(now))}
        buckets = [self._bucket(lim, now) for lim in limits]
        for bucket in buckets:
            bucket.refill(now)
        for bucket in buckets:
            if bucket.tokens < 1:
                return False, bucket.headers(now)
        for bucket in buckets:
            bucket.tokens -= 1
        # The most constraining: fewest left; on a tie the last consulted (the endpoint's own bucket).
        answering = min(reversed(buckets), key=lambda b: b.tokens)
        return True, answering.headers(now)
