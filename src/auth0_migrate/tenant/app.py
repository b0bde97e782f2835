"""The local tenant as an ASGI app: `create_app(config)`.

The app is composed here: `SCHEMAS` are the tables of the modules that own data, `ROUTERS` the
route modules' endpoints, and `create_app` opens the store, creates the default client and seeds
the system API. Every endpoint is wrapped here, in this order: count the call and apply
any fault switch (on every route: the token endpoint and downloads answer a fault in their own error
shape), add the configured latency, take a token from the rate-limit bucket, check the
bearer token and its scopes, run the handler, and turn `ApiError`/`OAuthError` (or anything
unexpected) into Auth0's JSON error shape. Rate-limit headers go on every Management API answer,
and a `Date` header from the tenant's own clock on every answer (uvicorn's is turned off in
`tenant serve`), so a client can tell how far its clock is from the tenant's, in-process too.

Choices where Auth0 is silent (what a real tenant answers when its token endpoint or its CDN fails is
not documented; these shapes are what the rest of each service uses):

* An injected fault on `/oauth/token` answers the Authentication API's error shape,
  `{"error": "server_error" | "too_many_requests", "error_description": ...}`, never the Management
  API's `{statusCode, error, message}`.
* An injected fault on an export download answers as the CDN's storage does, an XML `<Error>` with
  `SlowDown` (429), `ServiceUnavailable` (503) or `InternalError` (others), like its 403/404.

Example (in-process, no sockets)::

    app = create_app(TenantConfig(client_id="cli", client_secret="secret"))
    transport = httpx.ASGITransport(app=app)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import apis, connections, directory, grants, identities, jobs, logins, mfa, oauth, organizations, roles, users
from .config import TenantConfig
from .errors import ApiError, OAuthError
from .faults import DroppedConnection
from .http import Ctx, Endpoint, Router
from .state import Tenant
from .store import Store

log = logging.getLogger("auth0_migrate.tenant")


SCHEMAS: tuple[str, ...] = (directory.SCHEMA, oauth.SCHEMA, connections.SCHEMA, connections.CLIENTS_SCHEMA,
                            jobs.SCHEMA, apis.SCHEMA, roles.SCHEMA, grants.SCHEMA,
                            organizations.SCHEMA, mfa.SCHEMA)
"""Every table of the tenant, created when a store opens."""

ROUTERS: tuple[Router, ...] = (logins.router, oauth.router, connections.router, jobs.router, apis.router,
                                roles.router, grants.router, organizations.router, identities.router,
                                users.router, mfa.router)
"""Every route module's endpoints, matched in this order."""


def create_tenant(config: TenantConfig) -> Tenant:
    """Open the store, create (or refresh) the default client and its grant, seed the system API."""
    store = Store(config.db_path, SCHEMAS)
    scopes = oauth.ALL_SCOPES if config.client_scopes is None else config.client_scopes
    client_id, client_secret = oauth.create_client(store, config.client_id, config.client_secret,
                                                   scopes=scopes, audience=config.audience)
    tenant = Tenant(config, store, client_id, client_secret)
    apis.seed_management_api(store, config.audience)
    grants.install(tenant)
    organizations.install(tenant)
    return tenant


def _error(status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


_CDN_FAULTS = {429: "SlowDown", 500: "InternalError", 503: "ServiceUnavailable"}


def _outside_api_fault(ep: Endpoint, status: int) -> Response:
    """An injected fault on a route outside the Management API, in that route's own error shape:
    the Authentication API's `{error, error_description}` on /oauth/token, the CDN's XML elsewhere."""
    marked = {"x-injected-fault": "true"}
    if ep.path.startswith("/oauth/"):
        code = "too_many_requests" if status == 429 else "server_error"
        return _error(status, {"error": code, "error_description": "Injected fault"}, marked)
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{_CDN_FAULTS.get(status, "InternalError")}</Code>'
           "<Message>Injected fault</Message></Error>")
    return Response(xml, status_code=status, media_type="application/xml", headers=marked)


def _wrap(tenant: Tenant, ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        ctx = Ctx(request=request, tenant=tenant, endpoint=ep)
        headers: dict[str, str] = {}
        tenant.stats[ep.name] = tenant.stats.get(ep.name, 0) + 1
        try:
            fault = tenant.faults.on_call(ep.name, api=ep.api)
            if not ep.api and fault is not None and fault != "truncated":
                if fault == "drop":
                    raise DroppedConnection(f"fault switch dropped {ep.name}")
                return _outside_api_fault(ep, int(fault))
            if ep.api:
                if tenant.config.latency:
                    await asyncio.sleep(tenant.config.latency)
                allowed, headers = tenant.limiter.check(ep.method, ep.path)
                if fault == "drop":
                    raise DroppedConnection(f"fault switch dropped {ep.name}")
                if fault is not None:
                    # Marked, so a test's spec check knows the status was made on purpose.
                    headers = {**headers, "x-injected-fault": "true"}
                if fault == "garbled":
                    # Valid JSON of no documented shape: the SDK raises `ParsingError`, as it would on a
                    # real answer whose shape changed. The text stands for body content no message may echo.
                    return Response(b'"garbled answer: user data that must not reach a message"', 200,
                                    media_type="application/json", headers=headers)
                if fault is not None and fault not in (429, "truncated"):
                    raise ApiError(int(fault), "Injected fault", "fault_injected")
                if fault == 429 or not allowed:
                    raise ApiError(429, "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining"
                                        " and X-RateLimit-Reset headers.", "too_many_requests")
            if ep.auth:
                ctx.claims = oauth.authenticate(ctx)
                oauth.check_scopes(ctx)
            jobs.advance(tenant)  # jobs run on the clock: whatever this request observes, due jobs have run
            response = await ep.handler(ctx)
        except ApiError as exc:
            return _error(exc.status, exc.body(), {**headers, **exc.headers})
        except OAuthError as exc:
            return _error(exc.status, {"error": exc.error, "error_description": exc.description}, headers)
        except DroppedConnection:
            raise
        except Exception:  # a bug of ours: Auth0's 500 shape, never a traceback in the body
            log.exception("unhandled error in %s", ep.name)
            return _error(500, ApiError(500, "Internal Server Error", "internal_error").body(), headers)
        response.headers.update(headers)
        if fault == "truncated" and response.status_code == 200:
            return _truncated(response)
        return response

    return endpoint


def _truncated(response: Response) -> Response:
    """The `truncated` fault: the answer with the first half of its body, sent as a whole message."""
    kept = {k: v for k, v in response.headers.items() if k != "content-length"}
    return Response(bytes(response.body)[:len(response.body) // 2], response.status_code,
                    headers={**kept, "x-injected-fault": "true"})


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    message = "Not Found" if status == 404 else str(getattr(exc, "detail", "")) or "Error"
    return JSONResponse(ApiError(status, message).body(), status_code=status)


def create_app(config: TenantConfig | None = None) -> Starlette:
    """Build the tenant app; its state is at `app.state.tenant` (a `Tenant`)."""
    tenant = create_tenant(config or TenantConfig())
    routes = [Route(ep.path, _wrap(tenant, ep), methods=[ep.method], name=ep.name)
              for router in ROUTERS for ep in router.endpoints]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_exception},
                    middleware=[Middleware(DateHeader, clock=tenant.clock), Middleware(DropConnection)])
    app.state.tenant = tenant
    return app


class DateHeader:
    """Add `Date` (RFC 7231, whole seconds) from the tenant's clock to every answer that has none."""

    def __init__(self, app: ASGIApp, clock: Any) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"date" for name, _ in headers):
                    stamp = formatdate(self.clock.now(), usegmt=True).encode("latin-1")
                    message = {**message, "headers": [*headers, (b"date", stamp)]}
            await send(message)

        await self.app(scope, receive, dated_send)


class DropConnection:
    """Turn the `drop` fault into a cut connection: the answer starts, then the app fails.

    A server (uvicorn) then closes the socket mid-answer, so the client sees a broken response, as
    when a connection drops; in-process, httpx's ASGI transport raises the error to the client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except DroppedConnection:
            if not started and scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
                await send({"type": "http.response.body", "body": b'{"cut":', "more_body": True})
            raise
