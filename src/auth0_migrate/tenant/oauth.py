"""Clients (applications), client grants, and the client-credentials grant and token checks
behind the token endpoint (`POST /oauth/token`, served by `logins`).

A machine-to-machine client gets a Management API token only through a client grant, as on Auth0:
the client-credentials grant looks up the grant of (client, audience) and the token carries
exactly the scopes granted there (optionally narrowed by the request's `scope`). A client with no
grant for the audience gets Auth0's 403 `access_denied` "Client is not authorized to access
"<audience>". You need to create a "client-grant" associated to this API." (the wording real
tenants send, quoted in auth0/ruby-auth0 issue #610 and auth0/auth0-python issue #173). An
audience that is no API of the tenant, for instance the Management API addressed through a custom
domain, gets 403 `access_denied` "Service not enabled within domain: <audience>" (auth0/node-auth0
issue #292).

The tenant's default client (`TenantConfig.client_id`) is created at start-up like any other client
and given a grant for the Management API with `TenantConfig.client_scopes` (default: every scope
this tenant checks, `ALL_SCOPES`).

Routes (OAS `/clients`, `/client-grants`):

* `POST /api/v2/clients` (create:clients): 201 with the new client and its generated
  `client_secret`; `GET /api/v2/clients` (offset paging) and `GET /api/v2/clients/{id}` (404
  "The client does not exist").
* `POST /api/v2/client-grants` (create:client_grants) `{client_id, audience, scope}`: 404 for an
  unknown client or API, 409 for a second grant of the same (client, audience);
  `GET /api/v2/client-grants` (read:client_grants), filters `client_id`, `audience`, offset or
  checkpoint paging.

Choices where Auth0 is silent:

- the local tenant keeps only a digest of each client secret, so `GET /clients` never shows
  `client_secret` (Auth0 shows it with `read:client_keys`); the secret is in the POST answer only;
- `POST /clients` accepts the properties a machine-to-machine client needs (`name`, `description`,
  `app_type`, `grant_types`, `is_first_party`, `client_metadata`, `callbacks`,
  `token_endpoint_auth_method`); any other property the OAS knows is refused with 400
  `operation_not_supported` rather than stored and ignored;
- a grant's scopes must be scopes the API defines: 400 "Scope <x> is not defined for <audience>"
  (message ours; Auth0 refuses such grants with a 400 whose wording we have not seen);
- `POST /client-grants` without `client_id` is 400 (the OAS makes it optional only for
  `default_for`, which the local tenant does not model);
- a client-credentials request without `audience` gets the Management API (the tenant's default
  audience), as `tenant serve` users expect;
- the client-grant 404 messages are "The client does not exist" / "No resource server found by
  that identifier" (the OAS says only "Client not found" / "Resource server not found").

Example (official SDK)::

    client = mgmt.clients.create(name="migrator", app_type="non_interactive")
    mgmt.client_grants.create(client_id=client.client_id, audience=f"{base}/api/v2/",
                              scope=["read:users", "create:users"])
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Sequence
from typing import Any

import jwt
from starlette.responses import JSONResponse, Response

from .errors import ApiError, OAuthError, body_error, query_error
from .http import Ctx, Router, paged
from .store import Store, dumps, loads

router = Router()


SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    attrs TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS client_grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    audience TEXT NOT NULL,
    scope TEXT NOT NULL,
    UNIQUE (client_id, audience)
);
"""

TOKEN_LIFETIME = 86400

# Every scope the served endpoints check: the scopes of the system Management API, and the default
# client's grant unless `TenantConfig.client_scopes` says otherwise.
ALL_SCOPES: tuple[str, ...] = (
    "read:users", "create:users", "update:users", "delete:users", "update:users_app_metadata",
    "read:connections", "create:connections", "update:connections", "delete:connections",
    "read:roles", "create:roles", "update:roles", "delete:roles",
    "read:role_members", "create:role_members", "delete:role_members",
    "read:resource_servers", "create:resource_servers", "update:resource_servers",
    "read:clients", "create:clients", "read:client_grants", "create:client_grants", "read:authentication_methods",
    "read:organizations", "create:organizations", "read:organization_members", "create:organization_members",
    "delete:organization_members", "read:organization_member_roles", "create:organization_member_roles",
    "delete:organization_member_roles", "read:organization_connections", "create:organization_connections",
)

UNAUTHORIZED_CLIENT = ('Client is not authorized to access "{audience}". You need to create a "client-grant" '
                       'associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants')
SERVICE_NOT_ENABLED = "Service not enabled within domain: {audience}"

CLIENT_PROPS = ("name", "description", "app_type", "grant_types", "is_first_party", "client_metadata", "callbacks",
                "token_endpoint_auth_method")


def _secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def management_audience(store: Store) -> str:
    """The identifier of the tenant's system API (the Management API), seeded at start-up."""
    row = store.one("SELECT identifier FROM resource_servers WHERE is_system = 1 ORDER BY rowid LIMIT 1")
    if row is None:
        raise RuntimeError("the Management API is not seeded in this store")
    return str(row["identifier"])


def create_client(store: Store, client_id: str | None = None, client_secret: str | None = None,
                  scopes: Sequence[str] | None = ALL_SCOPES, name: str = "auth0-migrate",
                  audience: str | None = None, attrs: dict[str, Any] | None = None) -> tuple[str, str]:
    """Create (or replace) a machine-to-machine client; returns its id and secret.

    With `scopes` (not None) the client also gets a grant for `audience` (default: the Management
    API) holding exactly those scopes, as `POST /client-grants` would make it.
    """
    client_id = client_id or secrets.token_urlsafe(24)
    client_secret = client_secret or secrets.token_urlsafe(48)
    body = {"app_type": "non_interactive", "grant_types": ["client_credentials"], **(attrs or {})}
    with store.tx() as db:
        # An upsert, not a replace: a client's enabled connections survive a restart of `tenant serve --db`.
        db.execute("INSERT INTO clients (client_id, secret_sha256, name, attrs) VALUES (?, ?, ?, ?) ON CONFLICT"
                   " (client_id) DO UPDATE SET secret_sha256 = excluded.secret_sha256, name = excluded.name,"
                   " attrs = excluded.attrs", (client_id, _secret_digest(client_secret), name, dumps(body)))
        if scopes is not None:
            audience = audience or management_audience(store)
            db.execute("DELETE FROM client_grants WHERE client_id = ? AND audience = ?", (client_id, audience))
            create_grant(store, client_id, audience, list(scopes))
    return client_id, client_secret


def create_grant(store: Store, client_id: str, audience: str, scopes: list[str]) -> dict[str, Any]:
    grant_id = "cgr_" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                                for _ in range(16))
    with store.tx() as db:
        db.execute("INSERT INTO client_grants (id, client_id, audience, scope) VALUES (?, ?, ?, ?)",
                   (grant_id, client_id, audience, dumps(scopes)))
    return grant_json(store.row("SELECT * FROM client_grants WHERE id = ?", (grant_id,)))


def grant_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "client_id": row["client_id"], "audience": row["audience"], "scope": loads(row["scope"]),
            "allow_any_organization": False, "is_system": False, "subject_type": "client"}


def client_exists(store: Store, client_id: str) -> bool:
    return store.one("SELECT 1 FROM clients WHERE client_id = ?", (client_id,)) is not None


def check_client(store: Store, client_id: str | None, client_secret: str | None) -> None:
    """Auth0's 401 unless the client exists and the secret is its own."""
    row = store.one("SELECT secret_sha256 FROM clients WHERE client_id = ?", (client_id or "",))
    if row is None or not client_secret or not hmac.compare_digest(row["secret_sha256"],
                                                                   _secret_digest(client_secret)):
        raise OAuthError(401, "access_denied", "Unauthorized")


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


def _api_known(store: Store, audience: str) -> bool:
    return store.one("SELECT 1 FROM resource_servers WHERE identifier = ?", (audience,)) is not None


async def client_credentials(ctx: Ctx, form: dict[str, str]) -> Response:
    client_id = form.get("client_id")
    check_client(ctx.store, client_id, form.get("client_secret"))
    audience = form.get("audience") or ctx.tenant.config.audience
    if not _api_known(ctx.store, audience):
        raise OAuthError(403, "access_denied", SERVICE_NOT_ENABLED.format(audience=audience))
    grant = ctx.store.one("SELECT scope FROM client_grants WHERE client_id = ? AND audience = ?", (client_id, audience))
    if grant is None:
        raise OAuthError(403, "access_denied", UNAUTHORIZED_CLIENT.format(audience=audience))
    scopes = list(loads(grant["scope"]))
    if form.get("scope"):
        asked = set(form["scope"].split())
        scopes = [s for s in scopes if s in asked]
    access = issue_token(ctx, f"{client_id}@clients", scopes, audience, {"gty": "client-credentials"})
    return JSONResponse({"access_token": access, "scope": " ".join(scopes), "expires_in": TOKEN_LIFETIME,
                         "token_type": "Bearer"})




# --- clients ---------------------------------------------------------------------------------

def client_json(ctx: Ctx, row: sqlite3.Row) -> dict[str, Any]:
    attrs = loads(row["attrs"]) or {}
    body: dict[str, Any] = {"client_id": row["client_id"], "name": row["name"], "tenant": ctx.tenant.config.name,
                            "global": False, "is_first_party": True, "oidc_conformant": True, "callbacks": [],
                            "token_endpoint_auth_method": "client_secret_post", **attrs}
    return body


def _check_modelled(body: dict[str, Any]) -> None:
    """Refuse the properties the OAS allows but this tenant does not model (see the module doc)."""
    unmodelled = [k for k in body if k not in CLIENT_PROPS]
    if unmodelled:
        raise ApiError(400, f"The local tenant does not model the client properties: {', '.join(unmodelled)}",
                       "operation_not_supported")


@router.route("POST", "/api/v2/clients", scopes=["create:clients"])
async def create_client_route(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    _check_modelled(body)
    attrs = {k: v for k, v in body.items() if k != "name"}
    client_id, secret = create_client(ctx.store, None, None, scopes=None, name=body["name"], attrs=attrs)
    row = ctx.store.row("SELECT * FROM clients WHERE client_id = ?", (client_id,))
    return ctx.json({**client_json(ctx, row), "client_secret": secret}, 201)


@router.route("GET", "/api/v2/clients", scopes=["read:clients", "read:client_keys", "read:client_summary"])
async def list_clients(ctx: Ctx) -> Response:
    rows = ctx.store.query("SELECT * FROM clients ORDER BY rowid")
    return paged(ctx, [client_json(ctx, r) for r in rows], "clients")


@router.route("GET", "/api/v2/clients/{id}", scopes=["read:clients", "read:client_keys", "read:client_summary"])
async def get_client(ctx: Ctx) -> Response:
    row = ctx.store.one("SELECT * FROM clients WHERE client_id = ?", (ctx.path("id"),))
    if row is None:
        raise ApiError(404, "The client does not exist", "inexistent_client")
    return ctx.json(client_json(ctx, row))


# --- client grants ---------------------------------------------------------------------------

def _api_scopes(store: Store, audience: str) -> set[str] | None:
    row = store.one("SELECT id FROM resource_servers WHERE identifier = ?", (audience,))
    if row is None:
        return None
    return {r["value"] for r in store.query("SELECT value FROM api_scopes WHERE resource_server_id = ?", (row["id"],))}


@router.route("POST", "/api/v2/client-grants", scopes=["create:client_grants"])
async def create_grant_route(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    scopes = body.get("scope", [])
    if not client_exists(ctx.store, body["client_id"]):
        raise ApiError(404, "The client does not exist", "inexistent_client")
    defined = _api_scopes(ctx.store, body["audience"])
    if defined is None:
        raise ApiError(404, "No resource server found by that identifier", "inexistent_resource_server")
    undefined = [s for s in scopes if s not in defined]
    if undefined:
        raise body_error(f"Scope {undefined[0]} is not defined for {body['audience']}", "scope")
    if ctx.store.one("SELECT 1 FROM client_grants WHERE client_id = ? AND audience = ?",
                     (body["client_id"], body["audience"])):
        raise ApiError(409, "A client grant for this client and audience already exists", "client_grant_conflict")
    return ctx.json(create_grant(ctx.store, body["client_id"], body["audience"], list(dict.fromkeys(scopes))), 201)


def _encode_next(rowid: int) -> str:
    return base64.urlsafe_b64encode(f"cgr:{rowid}".encode()).decode().rstrip("=")


def _decode_from(value: str) -> int:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        if text.startswith("cgr:"):
            return int(text[4:])
    except ValueError:
        pass
    raise query_error("from", f"Invalid checkpoint: {value}")


@router.route("GET", "/api/v2/client-grants", scopes=["read:client_grants"])
async def list_grants(ctx: Ctx) -> Response:
    where: list[str] = ["1"]
    args: list[Any] = []
    for name in ("client_id", "audience"):
        value = ctx.query(name)
        if value:
            where.append(f"{name} = ?")
            args.append(value)
    params = ctx.request.query_params
    if "from" in params or "take" in params:
        take = ctx.int_query("take", 50, 1, 100)
        start = ctx.query("from")
        if start:
            where.append("rowid >= ?")
            args.append(_decode_from(start))
        rows = ctx.store.query(f"SELECT rowid AS pos, * FROM client_grants WHERE {' AND '.join(where)} "
                               "ORDER BY rowid LIMIT ?", [*args, take + 1])
        page: dict[str, Any] = {"client_grants": [grant_json(r) for r in rows[:take]]}
        if len(rows) > take:
            page["next"] = _encode_next(rows[take]["pos"])
        return ctx.json(page)
    rows = ctx.store.query(f"SELECT * FROM client_grants WHERE {' AND '.join(where)} ORDER BY rowid", args)
    return paged(ctx, [grant_json(r) for r in rows], "client_grants")
