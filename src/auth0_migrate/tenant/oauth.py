"""Machine-to-machine clients and the token endpoint (`POST /oauth/token`).

Access tokens are HS256 JWTs signed with the tenant's key, carrying the client's scopes; the
Management API routes check them on every call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

import jwt
from starlette.responses import JSONResponse, Response

from .http import ApiError, Ctx, OAuthError, router
from .store import Store, dumps, loads, register_schema

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL
);
"""
register_schema(SCHEMA)

TOKEN_LIFETIME = 86400

# Every scope the served endpoints check; the default client gets all of them.
ALL_SCOPES: tuple[str, ...] = (
    "read:users", "create:users", "update:users", "delete:users", "update:users_app_metadata",
    "read:connections", "create:connections", "delete:connections",
    "read:roles", "create:roles", "update:roles", "delete:roles",
    "read:role_members", "create:role_members", "delete:role_members",
    "read:resource_servers", "create:resource_servers", "update:resource_servers",
)


def _secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_client(store: Store, client_id: str | None = None, client_secret: str | None = None,
                  scopes: tuple[str, ...] = ALL_SCOPES, name: str = "auth0-migrate") -> tuple[str, str]:
    """Create (or replace) a machine-to-machine client; returns its id and secret."""
    client_id = client_id or secrets.token_urlsafe(24)
    client_secret = client_secret or secrets.token_urlsafe(48)
    store.execute("INSERT OR REPLACE INTO clients (client_id, secret_sha256, name, scopes) VALUES (?, ?, ?, ?)",
                  (client_id, _secret_digest(client_secret), name, dumps(list(scopes))))
    return client_id, client_secret


def check_client(store: Store, client_id: str | None, client_secret: str | None) -> list[str]:
    row = store.one("SELECT * FROM clients WHERE client_id = ?", (client_id or "",))
    if row is None or not client_secret or not hmac.compare_digest(row["secret_sha256"],
                                                                   _secret_digest(client_secret)):
        raise OAuthError(401, "access_denied", "Unauthorized")
    return list(loads(row["scopes"]))


def issue_token(ctx: Ctx, subject: str, scopes: list[str], audience: str, extra: dict[str, Any] | None = None) -> str:
    now = int(ctx.now)
    claims = {"iss": f"{ctx.tenant.config.base_url}/", "sub": subject, "aud": audience, "iat": now,
              "exp": now + TOKEN_LIFETIME, "scope": " ".join(scopes), **(extra or {})}
    return jwt.encode(claims, ctx.tenant.config.signing_key, algorithm="HS256")


def authenticate(ctx: Ctx) -> dict[str, Any]:
    """The claims of the request's bearer token, or Auth0's 401."""
    header = ctx.request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Missing authentication", "missing_authentication")
    try:
        claims = jwt.decode(token, ctx.tenant.config.signing_key, algorithms=["HS256"],
                            audience=ctx.tenant.config.audience, options={"verify_exp": False})
    except jwt.InvalidAudienceError:
        raise ApiError(401, "Bad audience: " + ctx.tenant.config.audience, "invalid_token") from None
    except jwt.PyJWTError:
        raise ApiError(401, "Invalid token", "invalid_token") from None
    if claims.get("exp", 0) < ctx.now:
        raise ApiError(401, "Expired token received for JSON Web Token validation", "token_expired")
    return claims


def check_scopes(ctx: Ctx) -> None:
    granted = set(str(ctx.claims.get("scope", "")).split())
    ep = ctx.endpoint
    if not ep.scopes and not ep.scopes_all:
        return
    if any(s in granted for s in ep.scopes):
        return
    if ep.scopes_all and all(s in granted for s in ep.scopes_all):
        return
    if ep.scopes_all and not ep.scopes:
        expected = "expected all of: " + ", ".join(ep.scopes_all)
    else:
        expected = "expected any of: " + ", ".join(ep.scopes)
        if ep.scopes_all:
            expected += "; or all of: " + ", ".join(ep.scopes_all)
    raise ApiError(403, f"Insufficient scope; {expected}", "insufficient_scope")


async def _form(ctx: Ctx) -> dict[str, str]:
    raw = await ctx.body()
    ctype = ctx.request.headers.get("content-type", "")
    try:
        if "application/json" in ctype:
            value = json.loads(raw or b"{}")
            if not isinstance(value, dict):
                raise ValueError
            return {k: str(v) for k, v in value.items()}
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        raise OAuthError(400, "invalid_request", "Invalid request body") from None


GRANT_HANDLERS: dict[str, Any] = {}
"""grant_type -> async handler(ctx, form) -> Response; user-login grants are added by `logins`."""


@router.route("POST", "/oauth/token", auth=False, api=False)
async def token(ctx: Ctx) -> Response:
    form = await _form(ctx)
    grant = form.get("grant_type", "")
    handler = GRANT_HANDLERS.get(grant)
    if handler is None:
        raise OAuthError(403, "unsupported_grant_type", f"Unsupported grant type: {grant}")
    return await handler(ctx, form)


async def client_credentials(ctx: Ctx, form: dict[str, str]) -> Response:
    scopes = check_client(ctx.store, form.get("client_id"), form.get("client_secret"))
    audience = form.get("audience") or ctx.tenant.config.audience
    if audience != ctx.tenant.config.audience:
        raise OAuthError(403, "access_denied", f"Service not enabled within domain: {audience}")
    access = issue_token(ctx, f"{form['client_id']}@clients", scopes, audience, {"gty": "client-credentials"})
    return JSONResponse({"access_token": access, "scope": " ".join(scopes), "expires_in": TOKEN_LIFETIME,
                         "token_type": "Bearer"})


GRANT_HANDLERS["client_credentials"] = client_credentials
