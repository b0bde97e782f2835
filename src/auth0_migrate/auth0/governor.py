"""One rate governor per tenant: keep every stage just under the Management API's rate limit.

Auth0 limits are token buckets (reference §7): each answer says the bucket size
(`x-ratelimit-limit`), what is left (`x-ratelimit-remaining`) and when the next token comes
(`x-ratelimit-reset`, epoch seconds). The governor sits in the HTTP transport, so every SDK call of
every stage goes through it:

- It runs up to `concurrency` requests at once, which hides Auth0's 100-300 ms latency.
- It counts what each bucket holds from the freshest answer: its `x-ratelimit-remaining`, less the
  requests sent since (those still in flight when it came count as sent), plus what came back since:
  `rate` x `safety` per second once the refill rate is known (given, or learned from the headers:
  remaining over time, against the answers it got). A request goes when the count has one. Every
  answer sets the count again, so a rate learned too low costs nothing while answers come, and one
  too high only what it adds between two answers.
- Until the rate is known, a bucket with nothing left waits for its reset, which brings back ONE
  request: that one goes and the others wait for its answer, whose headers say how many more came
  back (one request back is no reason to let a whole queue go: that was nearly every 429 of a run on
  Essentials' buckets of 10). A bucket that refills fast (50 a second) is full again by a reset given
  in whole seconds; its rate is learned from twenty requests back, before it is full.
- On 429 it stops every sender of that bucket until the reset time instead of hammering; 5xx, 408,
  timeouts and dropped connections are retried with exponential back-off and jitter. After
  `max_attempts` the last answer is handed back (the client turns it into `RateLimited` or `TransientError`).
- Auth0 has more than one bucket: a global one, and per-endpoint ones (organizations on every plan;
  users, connections and "all other endpoints" on Essentials). The pacing state is kept per bucket,
  told apart by `x-ratelimit-limit`, and each endpoint is paced by the bucket that last answered for
  it, so a small endpoint bucket's headers never slow down (or speed up) the others.
- `x-ratelimit-reset` is a time on Auth0's clock. The offset between Auth0's clock and ours is
  estimated from the `Date` header of every answer (see `ClockOffset`) and taken off before a reset
  becomes a wait; no single wait is longer than `MAX_WAIT` (60 s), after which the governor sends
  again and reads fresh headers.
- Every `sample_every` seconds (of the injected clock) it hands the lowest headroom (remaining of the bucket
  size) seen since the sample before to `on_sample`, when one is set: the run's timeline (`timeline.py`)
  records it for the report's headroom chart.
- A request with the `SEND_ONCE` header (an import upload: a job may exist even when the answer is
  lost) is never re-sent: its answer, 429 included, or its transport error goes back to the caller.

Time comes from an injected clock, so tests run without waiting.

Choices where Auth0 is silent:
- Buckets are told apart by their size (`x-ratelimit-limit`): two buckets of the same size behind
  different endpoints share one pacer and one count (each answer sets it from its own bucket), which
  costs 429s only when both are busy at once (Essentials' Write Users and Delete Users, both 20).
- `x-ratelimit-reset` says when "more requests are added", not how many: the governor counts one.
  When no request of the bucket is in flight to say more (its answer was lost or out of date), it
  counts one more each second after the reset, so a lost answer cannot park a bucket.
- Auth0 counts requests as they arrive, which we take to be the order we sent them: an answer to a
  request sent before the one the count stands on is out of date, and does not set the count.
- A refill rate is learned from two readings of a bucket that is not full, two seconds apart, or
  at least half a second apart with twenty requests back (one request off either way is then 5 %);
  each new estimate is averaged with the one before.
- A 429 without rate-limit headers blocks its bucket for one second (Auth0 documents the headers on
  every 429; a proxy's 429 may lack them).
- 60 s as the longest wait: the SDK caps its own waits at 60 s too (reference §8.6), and Auth0's
  slowest buckets that this tool meets add a request back well within a minute.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

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


NO_BUCKET = -1
"""The route of an endpoint whose answers carry no rate-limit headers (paced by the bucket that answered last)."""
MAX_WAIT = 60.0
"""The longest single wait the rate-limit headers can ask for: after it the governor sends again and
reads fresh headers, so a wrong reset (or a clock far off) never parks a run for hours."""


class ClockOffset:
    """How far the server's clock is ahead of ours, from the `Date` headers of its answers.

    `Date` has whole seconds: an answer stamped D was made at some server time in [D, D + 1), between
    our send time s and receive time r, so offset = server - local lies in [D - r, D + 1 - s]. The
    intervals of the answers seen are intersected (when a new one misses the intersection, one of the
    clocks was stepped: it starts again from that one), and the estimate is the smallest correction
    they prove: 0 while the intersection contains 0 (the clocks agree as far as whole seconds can
    tell), else its bound nearest to 0. A guess inside the interval would be off by up to half a
    second either way, which costs 429s or idle time for nothing when the clocks agree.
    """

    def __init__(self) -> None:
        self.low: float | None = None
        self.high = 0.0

    def observe(self, date: str | None, sent: float, received: float) -> None:
        if not date:
            return
        try:
            stamp = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        low, high = stamp - received, stamp + 1.0 - sent
        if self.low is None or low > self.high or high < self.low:
            self.low, self.high = low, high
        else:
            self.low, self.high = max(self.low, low), min(self.high, high)

    @property
    def seconds(self) -> float:
        """The estimate (0 until an answer with a `Date` came)."""
        return 0.0 if self.low is None else min(max(0.0, self.low), self.high)


class Pacer:
    """The pacing state of one server bucket (one `x-ratelimit-limit` value), shared by its requests.

    Auth0 answers from different buckets for different endpoints (Essentials gives users, connections
    and "all other endpoints" their own; organizations have theirs on every plan): what is learned from
    one bucket's headers (remaining, reset, refill rate, 429 waits) paces only the endpoints that
    bucket answered for.

    The pacer keeps its own count of what the bucket holds, anchored on the freshest answer: what that
    answer left (`remaining`), less what was sent since (`sent_since_header`, counting the requests still in
    flight when it came), plus what came back since: `rate` times the time since, once the refill rate is
    known; until then one request at `x-ratelimit-reset` and nothing else (the header promises no more).
    """

    def __init__(self, governor: Governor, rate: float | None, burst: int | None) -> None:
        self.gov = governor
        self.lock = asyncio.Lock()
        """Held while a request of this bucket waits for its turn: one bucket's wait never holds up another's."""
        self.rate = rate * governor.safety if rate else None
        self.learned = False
        self.burst = float(burst) if burst else None
        self.tokens = float(burst) if burst else 1.0
        """A client-side bucket at a given `rate`, used only until the first answer with rate-limit headers."""
        self.stamp = governor.clock.monotonic()
        self.blocked_until = 0.0
        self.remaining: int | None = None
        """What the freshest answer left in the bucket (None until an answer with headers came)."""
        self.limit: int | None = None
        self.reset = 0.0
        """Server time (its epoch) of the next request added back, as the freshest header said."""
        self.reset_at = 0.0
        """The same on our clock (at most MAX_WAIT after the answer): the moment one request is back."""
        self.anchored = 0.0
        """Our monotonic time when the freshest answer was read: the refill counts from there."""
        self.anchor_sent = float("-inf")
        """When the request of the freshest answer was sent (our clock): answers to earlier requests are older."""
        self.sent_since_header = 0
        self.in_flight = 0
        """Requests sent and not yet answered: the server has (or will have) taken their tokens, but no
        header we have read says so yet."""
        self.news = asyncio.Event()
        """Set when a request of this bucket is answered or fails: a sender waiting for a fresh count looks again."""
        self._answers = 0
        self._window: tuple[float, int, int] | None = None

    def available(self, now: float) -> float:
        """Requests the bucket holds now by our count (see the class docstring); below 1: wait."""
        assert self.remaining is not None and self.limit is not None
        held = float(self.remaining)
        if self.rate:
            held += (self.gov.clock.monotonic() - self.anchored) * self.rate
        elif now >= self.reset_at:
            # The reset brings one request back. How many more came since, nobody has said: one goes, and its
            # answer says (when it is late, one more a second, so a lost answer cannot park the bucket).
            held += 1 + int((now - self.reset_at) // 1.0)
        return min(float(self.limit), held) - self.sent_since_header

    async def acquire(self) -> None:
        clock = self.gov.clock
        while True:
            now = clock.now()
            if now < self.blocked_until:
                await clock.sleep(min(MAX_WAIT, self.blocked_until - now))
                continue
            if self.remaining is None:
                # No answer with headers yet: a given rate paces a client-side bucket; else the request goes
                # (the governor sends one request of an endpoint first and holds the rest for its answer).
                if self.rate:
                    mono = clock.monotonic()
                    cap = self.burst or max(1.0, self.rate)
                    self.tokens = min(cap, self.tokens + (mono - self.stamp) * self.rate)
                    self.stamp = mono
                    if self.tokens < 1.0 - 1e-6:
                        await clock.sleep(min(MAX_WAIT, max(0.001, (1.0 - self.tokens) / self.rate)))
                        continue
                    self.tokens = max(0.0, self.tokens - 1.0)
                self.sent_since_header += 1
                return
            held = self.available(now)
            if held >= 1.0 - 1e-6:
                self.sent_since_header += 1
                return
            if self.rate:
                # At least 1 ms: a shorter sleep can be lost in an epoch's float resolution (~2e-7 s).
                await clock.sleep(min(MAX_WAIT, max(0.001, (1.0 - held) / self.rate)))
            elif now < self.reset_at:
                await clock.sleep(max(0.001, self.reset_at - now))
            elif self.in_flight:
                # The reset's request is on its way: its answer says what is left (or its failure lets the next go).
                self.news.clear()
                await self.news.wait()
            else:
                # Nothing in flight will say more (its answer was out of date, or it failed): one more a second.
                await clock.sleep(max(0.001, 1.0 - (now - self.reset_at) % 1.0))

    def observe(self, status: int, remaining: int, limit: int, reset: float, now: float, sent: float) -> None:
        self.news.set()
        if status == 429:
            wait = self.gov.wait_until(reset, now)
            self.blocked_until = max(self.blocked_until, now + (wait if wait > 0 else 1.0))
            self.blocked_until += self.gov.jitter(0.0, 0.05)
            self.tokens = 0.0
        if self.remaining is not None and sent < self.anchor_sent:
            # The answer to a request sent before the one whose answer we count from (a slow handler, or answers
            # crossing): the server counted it earlier, so what it says is out of date. Keep the fresher count.
            return
        self.anchor_sent = sent
        # Requests still in flight will take tokens this answer does not show yet: count them as spent.
        self.remaining, self.limit, self.reset, self.sent_since_header = remaining, limit, reset, self.in_flight
        self.reset_at = now + max(0.0, self.gov.wait_until(reset, now))
        self.anchored = self.gov.clock.monotonic()
        if self.burst is None or not self.learned:
            self.burst = float(limit)
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
        came_back = remaining - r1 + (self._answers - a1)
        # Two seconds, or twenty requests back in no less than half a second: a count off by one (a request
        # in flight on either side) is then 5 % off at most. A bucket that is full again between two resets
        # (50 a second behind a reset in whole seconds) is learned from its refill before it is full.
        if now - t1 < 2.0 and (came_back < 20 or now - t1 < 0.5):
            return
        estimate = came_back / (now - t1)
        self._window = (now, remaining, self._answers)
        if estimate <= 0:
            return
        safety = self.gov.safety
        previous = self.rate / safety if self.rate else None
        blended = estimate if previous is None else 0.5 * previous + 0.5 * estimate
        self.rate, self.learned = blended * safety, True


class Governor:
    """The pacing of one tenant, shared by every request to it: one `Pacer` per server bucket seen."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, rate: float | None = None, burst: int | None = None,
                 concurrency: int = 16, max_attempts: int = 8, safety: float = 0.97,
                 jitter: random.Random | None = None) -> None:
        self.clock = clock
        self.safety = safety
        self.max_attempts = max_attempts
        self.slots = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.given_rate = rate
        self.offset = ClockOffset()
        self.stats = CallStats()
        self._random: random.Random = jitter or random.Random()
        self.pacers: dict[int, Pacer] = {}
        """By `x-ratelimit-limit`: the bucket size is what tells one bucket's headers from another's."""
        self.routes: dict[str, int] = {}
        """Endpoint label -> the bucket that last answered for it."""
        self._probes: dict[str, asyncio.Event] = {}
        """Endpoint label -> set when the first request of an endpoint not yet routed is answered."""
        self._unclaimed: Pacer | None = Pacer(self, rate, burst)
        self._last: Pacer = self._unclaimed
        self.on_sample: Callable[[float, int, int], None] | None = None
        """Told (time, remaining, bucket size) of the lowest headroom seen, at most every `sample_every` s."""
        self.sample_every = 5.0
        self._lowest: tuple[int, int] | None = None
        self._next_sample = float("-inf")

    def pacer_for(self, label: str) -> Pacer:
        key = self.routes.get(label)
        return self.pacers.get(key, self._last) if key is not None else self._last

    async def acquire(self, label: str = "") -> Pacer:
        """Wait until one more request for `label` may be sent; the pacer that let it go.

        An endpoint no answer has routed to a bucket yet sends one request first (a probe) and the rest wait
        for its answer: until then nobody knows which bucket (and how much of it) the endpoint draws on, and
        a burst of `concurrency` requests into a small bucket (10 on Essentials) would come back 429.
        """
        while True:
            while label and label not in self.routes and label in self._probes:
                await self._probes[label].wait()
            pacer = self.pacer_for(label)
            async with pacer.lock:
                if pacer is not self.pacer_for(label) or (label and label not in self.routes
                                                          and label in self._probes):
                    continue  # routed elsewhere, or another request became the probe, while this one waited
                await pacer.acquire()
                if label and label not in self.routes and label not in self._probes:
                    self._probes[label] = asyncio.Event()
                return pacer

    def end_probe(self, label: str) -> None:
        """The probe of `label` was answered (or failed): the requests waiting for it may go."""
        probe = self._probes.pop(label, None)
        if probe is not None:
            probe.set()

    def wait_until(self, server_time: float, now: float) -> float:
        """Seconds from local `now` to `server_time` (server epoch, e.g. a reset), at most MAX_WAIT."""
        return min(MAX_WAIT, server_time - self.offset.seconds - now)

    def jitter(self, low: float, high: float) -> float:
        return self._random.uniform(low, high)

    def observe(self, response: httpx.Response, label: str = "", *, sent: float | None = None) -> None:
        """Read the clock and rate-limit headers of an answer; pace the endpoint's bucket by them."""
        headers = response.headers
        now = self.clock.now()
        self.offset.observe(headers.get("date"), now if sent is None else sent, now)
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            limit = int(headers["x-ratelimit-limit"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            self.routes.setdefault(label, NO_BUCKET)  # an answer without headers: no bucket to learn, no probe
            if response.status_code == 429:  # a 429 without its headers: do not hammer either
                pacer = self.pacer_for(label)
                pacer.blocked_until = max(pacer.blocked_until, now + 1.0 + self.jitter(0.0, 0.05))
            return
        known = self.pacers.get(limit)
        if known is not None:
            pacer = known
        else:
            if self._unclaimed is not None:
                pacer, self._unclaimed = self._unclaimed, None
            else:
                pacer = Pacer(self, self.given_rate, None)
            self.pacers[limit] = pacer
        self.routes[label] = limit
        self._last = pacer
        if self.on_sample is not None:
            self._sample(now, remaining, limit)
        if response.status_code != 429:
            pacer._answers += 1  # an answer that took a token; a 429 took none (counting it overestimates the rate)
        pacer.observe(response.status_code, remaining, limit, reset, now, now if sent is None else sent)

    def _sample(self, now: float, remaining: int, limit: int) -> None:
        """Keep the lowest headroom (remaining / size, of any bucket) until the next sample is due, then hand it on."""
        low = self._lowest
        if low is None or remaining * low[1] < low[0] * limit:
            self._lowest = low = (remaining, limit)
        if now >= self._next_sample and self.on_sample is not None:
            self._lowest, self._next_sample = None, now + self.sample_every
            self.on_sample(now, *low)

    def backoff(self, attempt: int) -> float:
        return min(30.0, 0.5 * 2.0 ** (attempt - 1)) * self._random.uniform(0.8, 1.2)


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
            pacer = await gov.acquire(label) if paced else None
            gov.stats.calls[label] += 1
            if pacer:
                pacer.in_flight += 1  # from its token on, until answered (waiting for a slot counts too)
            answered = False
            try:
                try:
                    async with gov.slots:
                        sent = gov.clock.now()
                        response = await self.inner.handle_async_request(request)
                        await response.aread()
                        answered = True
                finally:
                    if pacer:
                        pacer.in_flight -= 1
                        if not answered:
                            pacer.news.set()
                    if not answered:  # a transport error or a cancelled call: whoever waits for its probe goes
                        gov.end_probe(label)
            except (httpx.TransportError, OSError):
                gov.stats.transport_errors += 1
                if once or attempt >= gov.max_attempts:
                    raise
                gov.stats.retries += 1
                await gov.clock.sleep(gov.backoff(attempt))
                continue
            gov.stats.statuses[response.status_code] += 1
            if paced and not (once and response.status_code == 429):  # the caller reads that 429 itself
                gov.observe(response, label, sent=sent)
            gov.end_probe(label)
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
