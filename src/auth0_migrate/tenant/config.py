"""The knobs of a local tenant: plan, credentials, where state lives, and the clock it reads.

Example::

    config = TenantConfig(plan="free", client_id="cli", client_secret="s3cret")
    app = create_app(config)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Literal

from ..clock import SYSTEM_CLOCK, Clock, SkewedClock

Plan = Literal["free", "essentials", "enterprise", "unlimited"]
PLANS: tuple[Plan, ...] = ("free", "essentials", "enterprise", "unlimited")


@dataclass
class TenantConfig:
    """Everything a local tenant is started with; the same fields back `tenant serve`'s flags."""

    name: str = "local-tenant"
    plan: Plan = "unlimited"
    db_path: str | None = None
    """SQLite file; None keeps state in a temporary file that goes when the app is closed."""
    client_id: str | None = None
    client_secret: str | None = None
    """The machine-to-machine client created at start-up; generated when not given."""
    client_scopes: tuple[str, ...] | None = None
    """The scopes of that client's grant for the Management API; None grants every scope the tenant checks."""
    base_url: str = "http://tenant.local"
    """Where the tenant is reached; audience is f"{base_url}/api/v2/" and download links start here."""
    clock: Clock = field(default=SYSTEM_CLOCK)
    clock_skew: float = 0.0
    """Seconds the tenant's clock is ahead of `clock` (negative: behind). It stands for Auth0's clock
    disagreeing with the tool's machine: every time the tenant reads (rate-limit resets, the `Date`
    header, token and link expiry, jobs) is `clock.now() + clock_skew`."""
    rate: float | None = None
    """A sustained request rate (req/s) for one global bucket, overriding the plan's buckets."""
    burst: int | None = None
    """The bucket size that goes with `rate` (default: max(1, rate))."""
    latency: float = 0.0
    """Seconds added to every Management API call, to stand in for Auth0's network latency."""
    job_seconds: float = 0.0
    """How long an import or export job takes to process, in clock seconds."""
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    download_content_encoding: bool = False
    """Export downloads also say `Content-Encoding: gzip`, so an HTTP client decodes them on the way
    (Auth0 does not say which its storage sends); off, they are plain `application/gzip` bytes."""

    def __post_init__(self) -> None:
        if self.plan not in PLANS:
            raise ValueError(f"unknown plan {self.plan!r}; expected one of {', '.join(PLANS)}")
        self.base_url = self.base_url.rstrip("/")
        if self.clock_skew:
            self.clock = SkewedClock(self.clock, self.clock_skew)

    @property
    def audience(self) -> str:
        return f"{self.base_url}/api/v2/"
