"""Time, injected: the tenant and the pipeline read the clock through this seam so tests can move it.

Example::

    clock = ManualClock(start=1_700_000_000.0)
    clock.advance(61)          # a 60 s export link has now expired
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Wall-clock time in epoch seconds, and a sleep that honours it."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock(Clock):
    """A clock that moves only when told to; `sleep` advances it instead of waiting."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)


class SkewedClock(Clock):
    """Another clock's time plus a fixed offset: a machine whose clock is off by `skew` seconds.

    Sleeping and monotonic time are the base clock's (a wrong wall clock does not change how long a
    second lasts).
    """

    def __init__(self, base: Clock, skew: float) -> None:
        self.base = base
        self.skew = skew

    def now(self) -> float:
        return self.base.now() + self.skew

    def monotonic(self) -> float:
        return self.base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)


SYSTEM_CLOCK = Clock()
