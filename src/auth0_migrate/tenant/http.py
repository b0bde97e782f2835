"""What every route of the local tenant shares: the route table, the request context, query
parsing and the JSON body (checked by `bodies`); Auth0's error shapes are in `errors`.

Each route module declares its handlers on its own `router = Router()` with `@router.route(...)`;
`app.ROUTERS` lists those routers and `app.create_app` wraps each handler with
latency, faults, the rate limit, authentication and error translation, so a handler only does its
own work and raises `ApiError` for Auth0's 4xx answers.

Example::

    @router.route("GET", "/api/v2/users/{id}", scopes=["read:users"])
    async def get_user(ctx: Ctx) -> Response:
        return ctx.json(...)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..import_schema import json_type
from . import bodies
from .errors import ApiError, body_error, query_error
from .state import Tenant
from .store import Store

Handler = Callable[["Ctx"], Awaitable[Response]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    scopes: tuple[str, ...] = ()
    """Any one of these grants access (Auth0's 'expected any of')."""
    scopes_all: tuple[str, ...] = ()
    """Alternatively all of these (e.g. read:users + read:roles)."""
    auth: bool = True
    api: bool = True
    """False for routes outside the Management API (token endpoint, downloads): no rate limit, no latency."""

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Router:
    """The endpoints one route module serves, in declaration order."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, path: str, *, scopes: Sequence[str] = (), scopes_all: Sequence[str] = (),
              auth: bool = True, api: bool = True) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, handler, tuple(scopes), tuple(scopes_all), auth, api))
            return handler
        return register


@dataclass
class Ctx:
    """One request as a handler sees it."""

    request: Request
    tenant: Tenant
    endpoint: Endpoint
    claims: dict[str, Any] = field(default_factory=dict)
    _body: bytes | None = None

    @property
    def store(self) -> Store:
        return self.tenant.store

    @property
    def now(self) -> float:
        return self.tenant.config.clock.now()

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    async def body(self) -> bytes:
        if self._body is None:
            self._body = await self.request.body()
        return self._body

    async def json_value(self) -> Any:
        """The JSON the request carries, checked against its operation's schema (`bodies`), or Auth0's 400."""
        raw = await self.body()
        try:
            value = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Invalid request payload JSON format", "invalid_body") from None
        bodies.check_body(self.endpoint.name, value)
        return value

    async def json_body(self) -> dict[str, Any]:
        """The JSON object the request carries (see `json_value`), or Auth0's 400 for anything else."""
        value = await self.json_value()
        if not isinstance(value, dict):
            raise body_error(f"Expected type object but found type {json_type(value)}")
        return value

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def int_query(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise query_error(name, "Expected type integer but found type string") from None
        if value < minimum:
            raise query_error(name, f"Value {value} is less than minimum {minimum}")
        if maximum is not None and value > maximum:
            raise query_error(name, f"Value {value} is greater than maximum {maximum}")
        return value

    def bool_query(self, name: str, default: bool) -> bool:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise query_error(name, "Expected type boolean but found type string")

    def json(self, value: Any, status: int = 200) -> Response:
        return JSONResponse(value, status_code=status)

    def empty(self, status: int = 204) -> Response:
        return Response(status_code=status)


def paged(ctx: Ctx, items: list[Any], key: str, *, default_per_page: int = 50, max_per_page: int = 100,
          include_totals_default: bool = False) -> Response:
    """Offset paging as Auth0 does it: a plain array, or `{start, limit, total, <key>}` with include_totals."""
    page = ctx.int_query("page", 0, 0)
    per_page = ctx.int_query("per_page", default_per_page, 1, max_per_page)
    include_totals = ctx.bool_query("include_totals", include_totals_default)
    start = page * per_page
    chunk = items[start:start + per_page]
    if include_totals:
        return ctx.json({"start": start, "limit": per_page, "total": len(items), key: chunk})
    return ctx.json(chunk)


OFFSET_RECORD_LIMIT = 1000
"""Offset paging of a role's or an organization's members stops at this many records; checkpoint paging goes on."""


def offset_window(ctx: Ctx, *, default_per_page: int = 50, max_per_page: int = 100) -> tuple[int, int]:
    """(page, per_page) of an offset-paged member listing; Auth0's 400 `invalid_paging` past `OFFSET_RECORD_LIMIT`."""
    page = ctx.int_query("page", 0, 0)
    per_page = ctx.int_query("per_page", default_per_page, 1, max_per_page)
    if (page + 1) * per_page > OFFSET_RECORD_LIMIT:
        raise ApiError(400, f"Requesting page {page} exceeds the allowed maximum of {OFFSET_RECORD_LIMIT} records."
                            f" To fetch results beyond {OFFSET_RECORD_LIMIT}, use the checkpoint pagination method.",
                       "invalid_paging")
    return page, per_page


def encode_checkpoint(owner: str, pk: int) -> str:
    """The `next` of a checkpoint page: where the listing of `owner` (a role, an organization...) goes on."""
    return base64.urlsafe_b64encode(f"{owner}:{pk}".encode()).decode().rstrip("=")


def decode_checkpoint(owner: str, token: str) -> int:
    """The row key a `from` value stands for; Auth0's 400 for anything not issued for this `owner`."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        found, _, key = raw.rpartition(":")
        pk = int(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise query_error("from", "Invalid checkpoint") from None
    if found != owner or pk < 0:
        raise query_error("from", "Invalid checkpoint")
    return pk
