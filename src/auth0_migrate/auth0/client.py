"""The only code that knows how to reach a tenant: credentials, tokens, the SDK, error translation.

A `TenantClient` wraps the official SDK (`auth0.management.AsyncAuth0`) around an `httpx`
client whose transport is the tenant's `GovernedTransport`. The SDK's own retries are off; the
governor does that. Tests and `demo` pass `transport=httpx.ASGITransport(app)` to run against a
local tenant in-process.

Example::

    client = TenantClient(TenantCredentials.from_env())
    job = await client.call(f"read job {job_id}", client.sdk.jobs.get, job_id)

Lists go through `auth0.paging` (every page, each one a `call`); errors come out as the classes of
`errors` (`NotFoundError`, `PayloadTooLarge`, `RateLimited`...), never as a status to compare.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from auth0.management import AsyncAuth0
from auth0.management.core.api_error import ApiError as SdkApiError
from auth0.management.core.parse_error import ParsingError as SdkParsingError
from pydantic import ValidationError as PydanticValidationError

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import (
    Auth0Error,
    AuthenticationError,
    BadRequest,
    Conflict,
    InsufficientScopeError,
    NotFoundError,
    PayloadTooLarge,
    RateLimited,
    Refused,
    TerminalError,
    TransientError,
    UnexpectedAnswerError,
    UsageError,
)
from .governor import GovernedTransport, Governor

T = TypeVar("T")
# Everything the SDK raises on purpose: `ApiError` (an error status, or a 2xx body that is not JSON) and
# `ParsingError` (JSON of a shape its models refuse); pydantic's error where a model is built outside that
# guard. `call` translates exactly these, plus the transport's failures, and lets our own bugs through.
SDK_ERRORS: tuple[type[BaseException], ...] = (SdkApiError, SdkParsingError, PydanticValidationError)
_TRANSLATED: tuple[type[BaseException], ...] = (*SDK_ERRORS, httpx.TransportError, httpx.DecodingError, OSError)
_SCOPES = re.compile(r"expected (?:any|all) of: ([^;]+)")
_REFUSALS: dict[int, type[Refused]] = {400: BadRequest, 401: AuthenticationError, 404: NotFoundError, 409: Conflict,
                                       413: PayloadTooLarge}
"""The 4xx statuses callers act on, each its own class; any other 4xx is a plain `Refused`."""


@dataclass(frozen=True)
class TenantCredentials:
    """Where a tenant is and the machine-to-machine client to reach it with (the secret never prints)."""

    domain: str
    client_id: str
    client_secret: str = field(repr=False)
    explicit_audience: str | None = None
    """`AUTH0_AUDIENCE`: the Management API identifier when `domain` is not the tenant's canonical domain."""

    @property
    def base_url(self) -> str:
        """`https://<domain>` for a real tenant; a domain given as `http://host:port` is a local one."""
        if self.domain.startswith(("http://", "https://")):
            return self.domain.rstrip("/")
        return f"https://{self.domain.rstrip('/')}"

    @property
    def audience(self) -> str:
        """The Management API's identifier: always the canonical `https://<tenant>.<region>.auth0.com/api/v2/`,
        never a custom domain's; derived from `domain` unless `AUTH0_AUDIENCE` says otherwise."""
        return self.explicit_audience or f"{self.base_url}/api/v2/"

    @classmethod
    def from_env(cls, prefix: str = "", env: Mapping[str, str] | None = None, *, domain: str | None = None,
                 client_id: str | None = None, client_secret: str | None = None) -> TenantCredentials | None:
        """One tenant's credentials: `domain`, `client_id`, `client_secret` (command-line flags) where given,
        else `<prefix>AUTH0_DOMAIN`, `_CLIENT_ID`, `_CLIENT_SECRET` (`_AUDIENCE` from the environment only).

        None without a domain; a `UsageError` naming what is missing when a domain comes without the rest.
        """
        env = os.environ if env is None else env

        def pick(given: str | None, name: str) -> str | None:
            return given or env.get(f"{prefix}AUTH0_{name}") or None

        domain = pick(domain, "DOMAIN")
        if not domain:
            return None
        client_id, client_secret = pick(client_id, "CLIENT_ID"), pick(client_secret, "CLIENT_SECRET")
        if not (client_id and client_secret):
            missing = [f"{prefix}AUTH0_{n}" for n, v in (("CLIENT_ID", client_id), ("CLIENT_SECRET", client_secret))
                       if not v]
            raise UsageError(f"{prefix}AUTH0_DOMAIN is set but {' and '.join(missing)} is not (set it, or pass "
                             "its command-line flag)")
        return cls(domain, client_id, client_secret, pick(None, "AUDIENCE"))


def translate(exc: BaseException, operation: str) -> Auth0Error:
    """Turn an SDK or httpx error into ours: terminal or transient, with the operation named.

    The one place that reads an HTTP status: 429 is `RateLimited`, 5xx/408 `TransientError`, a 4xx a
    `Refused` subclass (`BadRequest`, `NotFoundError`, `Conflict`, `PayloadTooLarge`...) that callers catch.

    An answer the SDK cannot read (not JSON, or JSON of another shape) is an `UnexpectedAnswerError`;
    its message names the operation, the status and the model, never the body (it may hold user data).
    """
    if isinstance(exc, Auth0Error):
        return exc
    if isinstance(exc, (SdkParsingError, PydanticValidationError)):
        cause = exc.cause if isinstance(exc, SdkParsingError) else exc
        status = (exc.status_code or 0) if isinstance(exc, SdkParsingError) else 0
        shape = ""
        if isinstance(cause, PydanticValidationError):
            kinds = sorted({str(e["type"]) for e in cause.errors(include_url=False, include_input=False)})
            shape = f" ({cause.title}: {', '.join(kinds)})"
        return UnexpectedAnswerError(f"{operation}: the answer" + (f" (HTTP {status})" if status else "")
                                     + f" does not have the shape Auth0 documents; the SDK could not read it{shape}",
                                     status=status, code="unexpected_answer", operation=operation)
    if isinstance(exc, httpx.DecodingError):
        return UnexpectedAnswerError(f"{operation}: the answer's content encoding could not be decoded",
                                     code="unexpected_answer", operation=operation)
    if isinstance(exc, SdkApiError) and 200 <= (exc.status_code or 0) < 300:
        # The SDK reports a success status whose body is not JSON as an `ApiError` carrying the raw text.
        return UnexpectedAnswerError(f"{operation}: the answer (HTTP {exc.status_code}) is not JSON; "
                                     "the SDK could not read it", status=exc.status_code or 0,
                                     code="unexpected_answer", operation=operation)
    if isinstance(exc, SdkApiError):
        status = exc.status_code or 0
        body = exc.body if isinstance(exc.body, dict) else {}
        message = str(body.get("message") or body.get("error_description") or body.get("error") or "")
        code = body.get("errorCode") or body.get("error")
        text = f"{operation}: HTTP {status}" + (f": {message}" if message else "")
        if status == 429:
            return RateLimited(text, status=status, code=code, operation=operation)
        if status >= 500 or status == 408:
            return TransientError(text, status=status, code=code, operation=operation)
        if status == 403 and "scope" in message.lower():
            match = _SCOPES.search(message)
            scopes = [s.strip() for s in match.group(1).split(",")] if match else []
            return InsufficientScopeError(f"{operation}: the token lacks a scope ({message}); grant the client "
                                          "these scopes in the Auth0 dashboard", scopes=scopes, operation=operation)
        if 400 <= status < 500:
            return _REFUSALS.get(status, Refused)(text, status=status, code=code, operation=operation)
        return TerminalError(text, status=status, code=code, operation=operation)
    if isinstance(exc, (httpx.TransportError, OSError)):
        return TransientError(f"{operation}: {type(exc).__name__}: the connection failed", operation=operation)
    raise exc


class _RenewedToken(httpx.Auth):
    """A Management API call answered 401 gets a new token and goes once more; a second 401 stands.

    Tokens are refused before they expire when the tenant's signing key rotates or a local tenant
    restarts (its key is new). The SDK puts the cached token on each request; this flow, beneath
    it, sees the 401, has the client drop that token and fetch another, and sends the same request
    again, so paging and uploads resume where they were. A second 401 is returned as it is, and
    the caller's `translate` makes it an `AuthenticationError`. Only `/api/v2/` requests qualify:
    the token request itself and download links never go twice.
    """

    requires_request_body = True  # an upload is sent again whole

    def __init__(self, client: TenantClient) -> None:
        self._client = client

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        response = yield request
        if response.status_code != 401 or not request.url.path.startswith("/api/v2/"):
            return
        rejected = request.headers.get("authorization", "").removeprefix("Bearer ")
        request.headers["authorization"] = f"Bearer {await self._client.renew_token(rejected)}"
        yield request


class TenantClient:
    """One tenant: its governed HTTP client, token and SDK."""

    def __init__(self, credentials: TenantCredentials, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Clock = SYSTEM_CLOCK, rate: float | None = None, concurrency: int = 16,
                 timeout: float = 60.0, governor: Governor | None = None) -> None:
        self.credentials = credentials
        self.governor = governor or Governor(clock=clock, rate=rate, concurrency=concurrency)
        inner = transport or httpx.AsyncHTTPTransport(retries=0, limits=httpx.Limits(max_connections=concurrency + 4))
        self.http = httpx.AsyncClient(transport=GovernedTransport(inner, self.governor), base_url=credentials.base_url,
                                      timeout=timeout, auth=_RenewedToken(self))
        self._token: str | None = None
        self._renewing = asyncio.Lock()
        self._token_expires = 0.0
        self._clock = clock
        self.sdk = AsyncAuth0(base_url=f"{credentials.base_url}/api/v2", token="", async_token=self.token,
                              httpx_client=self.http, max_retries=0)

    @property
    def name(self) -> str:
        return self.credentials.domain

    async def token(self) -> str:
        """A Management API access token from the client-credentials grant, cached until near expiry."""
        if self._token and self._clock.now() < self._token_expires - 60:
            return self._token
        try:
            response = await self.http.post("/oauth/token", data={
                "grant_type": "client_credentials", "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret, "audience": self.credentials.audience})
        except (httpx.TransportError, OSError) as exc:
            raise translate(exc, f"get a token from {self.name}") from exc
        if response.status_code == 429:
            raise RateLimited(f"get a token from {self.name}: HTTP 429", status=429, operation="token")
        if response.status_code >= 500:
            raise TransientError(f"get a token from {self.name}: HTTP {response.status_code}",
                                 status=response.status_code, operation="token")
        if response.status_code != 200:
            raise AuthenticationError(self._refusal(response), status=response.status_code, operation="token")
        body = response.json()
        self._token = str(body["access_token"])
        self._token_expires = self._clock.now() + float(body.get("expires_in", 86400))
        self.scopes = frozenset(str(body.get("scope", "")).split())
        return self._token

    def _refusal(self, response: httpx.Response) -> str:
        """Why the token endpoint said no, in words that say what to change (never the secret)."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
        audience = self.credentials.audience
        if description.startswith("Service not enabled within domain"):
            return (f"{self.name} has no API {audience!r} (HTTP {response.status_code}: {description}). The "
                    "Management API's audience is the tenant's canonical domain, https://<tenant>.<region>.auth0.com"
                    "/api/v2/, even when AUTH0_DOMAIN is a custom domain: set AUTH0_DOMAIN to the canonical domain "
                    "(Dashboard > Settings > Domain), or set AUTH0_AUDIENCE to the canonical audience.")
        if description.startswith("Client is not authorized to access"):
            return (f"the application {self.credentials.client_id} is not authorized for the Management API "
                    f"{audience!r} in {self.name} (HTTP {response.status_code}): authorize it under Applications > "
                    "APIs > Auth0 Management API > Machine to Machine Applications (a client grant) with the scopes "
                    "the migration needs.")
        return (f"{self.name} refused the client credentials (HTTP {response.status_code}"
                + (f": {description}" if description else "") + "); check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET")

    async def renew_token(self, rejected: str) -> str:
        """A token other than `rejected`: one fetch however many calls saw it refused at once."""
        async with self._renewing:
            if self._token == rejected:
                self._token = None
            return await self.token()

    async def granted_scopes(self) -> frozenset[str]:
        await self.token()
        return self.scopes

    async def call(self, operation: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call; errors come out as `translate` makes them, naming the operation."""
        try:
            return await fn(*args, **kwargs)
        except _TRANSLATED as exc:
            raise translate(exc, operation) from exc

    async def aclose(self) -> None:
        await self.http.aclose()
