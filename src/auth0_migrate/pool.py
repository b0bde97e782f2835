"""Run many small API calls concurrently; the tenant's governor decides how fast they really go."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def run_pool(items: Iterable[T], worker: Callable[[T], Awaitable[R]], *, concurrency: int = 32,
                   on_result: Callable[[T, R], None] | None = None) -> None:
    """Call `worker` on every item with at most `concurrency` in flight; `on_result` runs in order of completion.

    The first exception stops the pool (the rest are cancelled) and propagates: a run stops on a
    transient problem and resumes from the ledger later.
    """
    iterator = iter(items)
    pending: set[asyncio.Task[tuple[T, R]]] = set()

    async def call(item: T) -> tuple[T, R]:
        return item, await worker(item)

    def refill() -> None:
        while len(pending) < concurrency:
            try:
                item = next(iterator)
            except StopIteration:
                return
            pending.add(asyncio.ensure_future(call(item)))

    refill()
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                item, result = task.result()
                if on_result is not None:
                    on_result(item, result)
            refill()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def together(*steps: Coroutine[Any, Any, Any]) -> None:
    """Run independent steps concurrently (they share the governor, which fills the rate limit with all of them).

    The first failure cancels the others and propagates, as in `run_pool`.
    """
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
