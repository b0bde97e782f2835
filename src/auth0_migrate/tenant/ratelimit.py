"""Auth0's Management API rate limits, as token buckets per plan (reference §7.2).

Every answer carries `x-ratelimit-limit` (bucket size), `x-ratelimit-remaining` and
`x-ratelimit-reset` (epoch seconds when the next token is added); an empty bucket answers 429.
Time comes from the tenant's clock, so tests can move it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..clock import Clock
from .config import TenantConfig


@dataclass
class Bucket:
    name: str
    size: int
    rate: float
    """Tokens added per second (the sustained limit)."""
    tokens: float = -1.0
    stamp: float = 0.0

    def refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.stamp = float(self.size), now
            return
        self.tokens = min(float(self.size), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float) -> tuple[bool, dict[str, str]]:
        self.refill(now)
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        missing = 1.0 - (self.tokens % 1.0) if self.tokens < self.size else 0.0
        reset = math.ceil(now + missing / self.rate) if missing else math.ceil(now)
        return allowed, {
            "x-ratelimit-limit": str(self.size),
            "x-ratelimit-remaining": str(max(0, int(self.tokens))),
            "x-ratelimit-reset": str(reset),
        }


# (bucket name, burst, sustained per second, predicate on (method, path template))
def _plan_buckets(config: TenantConfig) -> list[tuple[str, int, float, object]]:
    if config.rate is not None:
        burst = config.burst if config.burst is not None else max(1, int(config.rate))
        return [("global", burst, float(config.rate), None)]
    if config.plan == "free":
        return [("global", 2, 2.0, None)]
    if config.plan == "enterprise":
        return [("global", 50, 16.0, None)]
    if config.plan == "essentials":
        return [("read-users", 40, 500 / 60, "read-users"), ("write-users", 20, 200 / 60, "write-users"),
                ("delete-users", 20, 200 / 60, "delete-users"), ("read-connections", 5, 50 / 60, "read-connections"),
                ("other", 10, 150 / 60, "other")]
    return []


def _essentials_class(method: str, path: str) -> str:
    is_users = path.startswith("/api/v2/users") and "/permissions" not in path and "/roles" not in path
    if is_users or path == "/api/v2/users-by-email":
        return {"GET": "read-users", "DELETE": "delete-users"}.get(method, "write-users")
    if path.startswith("/api/v2/connections/") and path.endswith("/users") and method == "DELETE":
        return "delete-users"
    if path.startswith("/api/v2/connections") and method == "GET":
        return "read-connections"
    return "other"


class RateLimiter:
    """The buckets of one tenant; `unlimited` has none and reports a bucket that never empties."""

    UNLIMITED = 1_000_000

    def __init__(self, config: TenantConfig, clock: Clock) -> None:
        self.clock = clock
        self.buckets = {name: Bucket(name, size, rate) for name, size, rate, _ in _plan_buckets(config)}
        self.per_class = config.rate is None and config.plan == "essentials"

    def check(self, method: str, path_template: str) -> tuple[bool, dict[str, str]]:
        now = self.clock.now()
        if not self.buckets:
            return True, {"x-ratelimit-limit": str(self.UNLIMITED), "x-ratelimit-remaining": str(self.UNLIMITED),
                          "x-ratelimit-reset": str(math.ceil(now))}
        name = _essentials_class(method, path_template) if self.per_class else "global"
        return self.buckets[name].take(now)
