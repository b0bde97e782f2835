"""`Tenant`: the state behind one local tenant app, shared by every route module.

`app.create_app` builds it (store with every module's tables, the default client, seeded rows);
handlers reach it as `ctx.tenant`.
"""

from __future__ import annotations

import secrets

from ..clock import Clock
from .config import TenantConfig
from .faults import Faults
from .ratelimit import RateLimiter
from .store import Store


class Tenant:
    """Config, store, rate limiter, fault switches and the default client's credentials of one app."""

    def __init__(self, config: TenantConfig, store: Store, client_id: str, client_secret: str) -> None:
        self.config = config
        self.clock: Clock = config.clock
        self.store = store
        self.limiter = RateLimiter(config, config.clock)
        self.faults = Faults()
        self.client_id = client_id
        self.client_secret = client_secret
        self.stats: dict[str, int] = {}
        """Calls served per endpoint ('METHOD /template'), for benchmarks."""

    def rotate_signing_key(self) -> None:
        """Sign tokens with a new key from now on: every token issued before is answered 401 "Invalid token".

        What a real tenant does when its signing key is rotated, and what a restarted local tenant
        does (its key is new each start).
        """
        self.config.signing_key = secrets.token_bytes(32)

    def close(self) -> None:
        self.store.close()
