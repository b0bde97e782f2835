"""Every page of a Management API list, one helper per Auth0 paging style; callers see items, not pagers.

Auth0 pages a list in one of two ways (management-api-oas.yml; Auth0 docs "Paginate results"):

* **Offset paging**, `page`/`per_page`/`include_totals=true`: each answer is
  `{start, limit, total, <items>}`. `offset_items` asks page 0, 1, 2... until it has `total` items,
  or a page comes back empty. Offset paging stops at 1,000 items on some endpoints (role members);
  those are read with checkpoint paging instead.
* **Checkpoint paging**, `from`/`take`: each answer is `{<items>, next}`, `next` absent or empty on
  the last page. `checkpoint_items` follows `next` until it is gone or a page is empty. Every page
  is asked with `include_totals=true` where the endpoint takes it, as every recorded call of real
  Auth0 does (go-auth0 test/data/recordings, TestRoleManager_UsersCheckpointPagination): with
  `false` the OAS promises a bare array, which carries no `next` and which the SDK's page model
  cannot read.

Each page is one `TenantClient.call`, so a failure on page 3 is translated like any other answer
(`errors.Auth0Error` naming `operation`), and a token refused mid-list is renewed beneath the call.
The SDK's own `AsyncPager` iteration is not used: it stops only on an empty page (one request more
than needed) and would run its requests outside `call`.

Choices where Auth0 is silent:

* A page that is empty ends the list even when `total` promises more or `next` is still given:
  a list that shrinks while it is read (a role deleted meanwhile) must not loop forever.
* An offset answer without `total` is taken as the only page: it is what the SDK's model makes of
  an answer that ignored `include_totals`.

Example::

    async for role in offset_items(client, "list roles", client.sdk.roles.list):
        ...
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # types only: a worker process (`workers.py`) imports the stages without the SDK
    from auth0.management.core.pagination import AsyncPager

    from .client import TenantClient

T = TypeVar("T")
PER_PAGE = 100
"""Items per page, both styles: the largest `per_page` the OAS allows on most lists and `take` allows on all."""


class _Totalled(Protocol):
    """An offset-paged answer asked with `include_totals=true`."""

    @property
    def total(self) -> float | None: ...


class _Checkpointed(Protocol):
    """A checkpoint-paged answer: `next` is the `from` of the following page."""

    @property
    def next(self) -> str | None: ...


OffsetPage = TypeVar("OffsetPage", bound=_Totalled)
CheckpointPage = TypeVar("CheckpointPage", bound=_Checkpointed)


async def offset_items(client: TenantClient, operation: str,
                       list_page: Callable[..., Awaitable[AsyncPager[T, OffsetPage]]], *args: Any,
                       per_page: int = PER_PAGE, **kwargs: Any) -> AsyncGenerator[T, None]:
    """Every item of an offset-paged list (`page`/`per_page`/`include_totals=true`), page after page.

    `list_page` is the SDK method (`client.sdk.roles.list`); `args` and `kwargs` are its other arguments.
    """
    page = 0
    seen = 0
    while True:
        pager = await client.call(operation, list_page, *args, page=page, per_page=per_page, include_totals=True,
                                  **kwargs)
        items = pager.items or []
        for item in items:
            yield item
        seen += len(items)
        total = pager.response.total
        if not items or total is None or seen >= total:
            return
        page += 1


async def checkpoint_items(client: TenantClient, operation: str,
                           list_page: Callable[..., Awaitable[AsyncPager[T, CheckpointPage]]], *args: Any,
                           take: int = PER_PAGE, include_totals: bool | None = True,
                           **kwargs: Any) -> AsyncGenerator[T, None]:
    """Every item of a checkpoint-paged list (`from`/`take`), following `next` page after page.

    `include_totals=None` leaves the parameter out, for endpoints that do not take it.
    """
    if include_totals is not None:
        kwargs["include_totals"] = include_totals
    checkpoint: str | None = None
    while True:
        if checkpoint:
            kwargs["from_"] = checkpoint
        pager = await client.call(operation, list_page, *args, take=take, **kwargs)
        items = pager.items or []
        for item in items:
            yield item
        checkpoint = pager.response.next
        if not checkpoint or not items:
            return


async def every(items: AsyncIterator[T]) -> list[T]:
    """All items of a paging helper, in a list."""
    return [item async for item in items]


async def first(items: AsyncGenerator[T, None]) -> T | None:
    """The first item of a paging helper (None when the list is empty); no page after the first is asked."""
    async with aclosing(items):
        async for item in items:
            return item
    return None
