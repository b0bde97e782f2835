"""One rate governor per tenant: keep every stage just under the Management API's rate limit.

Auth0 limits are token buckets (reference §7): each answer says the bucket size
(`x-ratelimit-limit`), what is left (`x-ratelimit-remaining`) and when the next token comes
(`x-ratelimit-reset`, epoch seconds). The governor sits in the HTTP transport, so every SDK call of
every stage goes through it:

- It runs up to `concurrency` requests at once, which hides Auth0's 100-300 ms latency.
- It paces sends with a client-side token bucket at `rate` x `safety`. When no rate is given, it
  learns the refill rate from the headers (remaining over time, against the answers it got) and,
  until it knows, sends only what the server says remains.
- On 429 it stops every sender until the reset time instead of hammering; 5xx, 408, timeouts and
  dropped connections are retried with exponential back-off and jitter. After `max_attempts` the
  last answer is handed back (the client turns it into `TransientError`).
- A request with the `SEND_ONCE` header (an import upload: a job may exist even when the answer is
  lost) is never re-sent: its answer, 429 included, or its transport error goes back to the caller.

Time comes from an injected clock, so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass, field

import httpx

from ..clock import SYSTEM_CLOCK, Clock

RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})
SEND_ONCE = "x-auth0-migrate-send-once"
"""A request header (taken off before sending) for a request the server may act on even when the answer
is lost, such as an import upload: sent once, every answer and transport error handed back as it came."""
_ID_SEGMENT = re.compile(r"^/api/v2/(users|roles|jobs|connections|resource-servers|clients)/[^/]+")


def endpoint_label(request: httpx.Request) -> str:
    """'METHOD /api/v2/users/{id}/roles' for a request, for the per-endpoint call counts."""
    path = request.url.path
    if not path.startswith("/api/v2/"):
        return f"{request.method} {'/oauth/token' if path == '/oauth/token' else 'download'}"
    if path.startswith("/api/v2/jobs/users-"):
        return f"{request.method} {path}"
    return f"{request.method} {_ID_SEGMENT.sub(lambda m: f'/api/v2/{m.group(1)}/{{id}}', path)}"


@dataclass
class CallStats:
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    transport_errors: int = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def http_429(self) -> int:
        return self.statuses[429]


class Governor:
    """The pacing state of one tenant, shared by every request to it."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, rate: float | None = None, burst: int | None = None,
                 concurrency: int = 16, max_attempts: int = 8, safety: float = 0.97,
                 jitter: random.Random | None = None) -> None:
        self.clock = clock
        self.safety = safety
        self.max_attempts = max_attempts
        self.slots = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.rate = rate * safety if rate else None
        self.learned = False
        self.burst = float(burst) if burst else None
        self.tokens = float(burst) if burst else 1.0
        self.stamp = clock.monotonic()
        self.blocked_until = 0.0
        self.remaining: int | None = None
        self.limit: int | None = None
        self.reset = 0.0
        self.sent_since_header = 0
        self.in_flight = 0
        """Requests sent and not yet answered: the server has (or will have) taken their tokens, but no
        header we have read says so yet."""
        self.stats = CallStats()
        self._answers = 0
        self._window: tuple[float, int, int] | None = None
        self._lock = asyncio.Lock()
        self._random = jitter or random.Random()

    # -- pacing -----------------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait until one more request may be sent."""
        async with self._lock:
            while True:
                now = self.clock.now()
                if now < self.blocked_until:
                    await self.clock.sleep(self.blocked_until - now)
                    continue
                if self.rate:
                    mono = self.clock.monotonic()
                    cap = self.burst or max(1.0, self.rate)
                    self.tokens = min(cap, self.tokens + (mono - self.stamp) * self.rate)
                    self.stamp = mono
                    if self.tokens < 1.0:
                        await self.clock.sleep((1.0 - self.tokens) / self.rate)
                        continue
                    self.tokens -= 1.0
                elif self.remaining is not None and self.remaining - self.sent_since_header <= 0:
                    # Nothing left by the server's last word and no rate known yet: wait for the reset.
                    await self.clock.sleep(max(0.05, self.reset - now))
                    self.remaining = None
                    continue
                self.sent_since_header += 1
                return

    def observe(self, response: httpx.Response) -> None:
        """Read the rate-limit headers of an answer; learn the refill rate when none was given."""
        headers = response.headers
        if response.status_code != 429:
            self._answers += 1  # an answer that took a token; a 429 took none (counting it overestimates the rate)
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            limit = int(headers["x-ratelimit-limit"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        now = self.clock.now()
        # Requests still in flight will take tokens this answer does not show yet: count them as spent.
        self.remaining, self.limit, self.reset, self.sent_since_header = remaining, limit, reset, self.in_flight
        if self.burst is None or not self.learned:
            self.burst = float(limit)
        if response.status_code == 429:
            self.blocked_until = max(self.blocked_until, reset if reset > now else now + 1.0)
            self.blocked_until += self._random.uniform(0.0, 0.05)
            self.tokens = 0.0
        if self.rate is not None and not self.learned:
            return
        self._learn(now, remaining, limit)

    def _learn(self, now: float, remaining: int, limit: int) -> None:
        # tokens(t2) = tokens(t1) - answers(t1..t2) + rate * (t2 - t1), valid while the bucket is not full.
        if remaining >= limit - 1:
            self._window = None
            return
        if self._window is None:
            self._window = (now, remaining, self._answers)
            return
        t1, r1, a1 = self._window
        if now - t1 < 2.0:
            return
        estimate = (remaining - r1 + (self._answers - a1)) / (now - t1)
        self._window = (now, remaining, self._answers)
        if estimate <= 0:
            return
        previous = self.rate / self.safety if self.rate else None
        blended = estimate if previous is None else 0.5 * previous + 0.5 * estimate
        if previous is None:
            self.tokens = float(max(0, remaining - self.in_flight))
            self.stamp = self.clock.monotonic()
        self.rate, self.learned = blended * self.safety, True

    def backoff(self, attempt: int) -> float:
        return min(30.0, 0.5 * 2 ** (attempt - 1)) * self._random.uniform(0.8, 1.2)


class GovernedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends through a `Governor`: pacing, concurrency, retries, counts."""

    def __init__(self, inner: httpx.AsyncBaseTransport, governor: Governor) -> None:
        self.inner = inner
        self.governor = governor

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        gov = self.governor
        label = endpoint_label(request)
        if not request.url.path.startswith("/api/v2/"):
            # Token endpoint and export downloads: not Management API calls, streamed as they come.
            gov.stats.calls[label] += 1
            return await self.inner.handle_async_request(request)
        paced = True
        once = request.headers.pop(SEND_ONCE, None) is not None
        await request.aread()  # a body we can send again on retry
        attempt = 0
        while True:
            attempt += 1
            if paced:
                await gov.acquire()
            gov.stats.calls[label] += 1
            gov.in_flight += 1  # from its token on, until answered (waiting for a slot counts too)
            try:
                try:
                    async with gov.slots:
                        response = await self.inner.handle_async_request(request)
                        await response.aread()
                finally:
                    gov.in_flight -= 1
            except (httpx.TransportError, OSError):
                gov.stats.transport_errors += 1
                if once or attempt >= gov.max_attempts:
                    raise
                gov.stats.retries += 1
                await gov.clock.sleep(gov.backoff(attempt))
                continue
            gov.stats.statuses[response.status_code] += 1
            if paced and not (once and response.status_code == 429):  # the caller reads that 429 itself
                gov.observe(response)
            if once:
                return response
            if response.status_code == 429 and attempt < gov.max_attempts * 4:
                gov.stats.retries += 1
                continue
            if response.status_code in RETRY_STATUSES and attempt < gov.max_attempts:
                gov.stats.retries += 1
                await gov.clock.sleep(gov.backoff(attempt))
                continue
            return response

    async def aclose(self) -> None:
        await self.inner.aclose()
