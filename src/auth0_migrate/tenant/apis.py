"""APIs (resource servers) and their scopes, the permissions that roles and users are granted.

Choices where Auth0's exact answer is not documented:

- the system "Auth0 Management API" is seeded with the scopes this tenant checks
  (`oauth.ALL_SCOPES`), and refuses changes to anything but its token settings;
- a scope removed from an API (PATCH replaces `scopes`) leaves every role and user holding it;
- conflicts answer 409 with errorCode `conflict`.

Not served: DELETE of APIs.

Example::

    rs = mgmt.resource_servers.create(identifier="https://api.example.com/", scopes=[...])
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from . import oauth
from .errors import ApiError, body_error, not_found, query_error
from .http import Ctx, Router, paged
from .store import Store, dumps, loads

SCHEMA = """
CREATE TABLE IF NOT EXISTS resource_servers (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    identifier TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    is_system INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS api_scopes (
    resource_server_id TEXT NOT NULL REFERENCES resource_servers(id) ON DELETE CASCADE,
    value TEXT NOT NULL,
    description TEXT,
    position INTEGER NOT NULL,
    PRIMARY KEY (resource_server_id, value)
) WITHOUT ROWID;
"""

router = Router()

MANAGEMENT_API_NAME = "Auth0 Management API"

# Defaults Auth0 shows on a new API (go-auth0 recordings), and on its own Management API.
_API_DEFAULTS: dict[str, Any] = {"signing_alg": "HS256", "allow_offline_access": False, "token_lifetime": 86400,
                                 "token_lifetime_for_web": 7200,
                                 "skip_consent_for_verifiable_first_party_clients": False}
_SYSTEM_SETTINGS: dict[str, Any] = {"signing_alg": "RS256", "allow_offline_access": False, "token_lifetime": 86400,
                                    "token_lifetime_for_web": 7200,
                                    "skip_consent_for_verifiable_first_party_clients": False,
                                    "enforce_policies": False, "token_dialect": "access_token"}
_SYSTEM_PATCHABLE = {"token_lifetime", "allow_offline_access", "skip_consent_for_verifiable_first_party_clients"}

# The settings stored and shown. The other properties the OAS accepts (`authorization_details`,
# `authorization_policy`, `proof_of_possession`, `subject_type_authorization`, `token_encryption`,
# `signing_secret`) are taken and not stored; `signing_secret` is a secret, never echoed.
_STORED_SETTINGS = ("allow_offline_access", "allow_online_access", "skip_consent_for_verifiable_first_party_clients",
                    "enforce_policies", "signing_alg", "token_dialect", "consent_policy", "token_lifetime")



def seed_management_api(store: Store, audience: str) -> None:
    """Create (or refresh) Auth0's own API, identifier = the tenant's audience, listed as a system API."""
    scopes = [{"value": s, "description": _describe_scope(s)} for s in oauth.ALL_SCOPES]
    with store.tx() as db:
        row = db.execute("SELECT id FROM resource_servers WHERE identifier = ?", (audience,)).fetchone()
        if row is None:
            rs_id = secrets.token_hex(12)
            db.execute("INSERT INTO resource_servers (id, identifier, name, is_system, settings)"
                       " VALUES (?, ?, ?, 1, ?)", (rs_id, audience, MANAGEMENT_API_NAME, dumps(_SYSTEM_SETTINGS)))
        else:
            rs_id = row["id"]
        _replace_scopes(db, rs_id, scopes)


def _describe_scope(scope: str) -> str:
    action, _, thing = scope.partition(":")
    return f"{action.capitalize()} {thing.replace('_', ' ').title()}"


def _replace_scopes(db: sqlite3.Connection, rs_id: str, scopes: list[dict[str, Any]]) -> None:
    """Set the API's scopes; grants of scopes that go away go with them (foreign-key cascade)."""
    values = [s["value"] for s in scopes]
    marks = ",".join("?" * len(values))
    if values:
        db.execute(f"DELETE FROM api_scopes WHERE resource_server_id = ? AND value NOT IN ({marks})",
                   (rs_id, *values))
    else:
        db.execute("DELETE FROM api_scopes WHERE resource_server_id = ?", (rs_id,))
    for position, scope in enumerate(scopes):
        db.execute("INSERT INTO api_scopes (resource_server_id, value, description, position) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (resource_server_id, value) DO UPDATE SET description = excluded.description,"
                   " position = excluded.position", (rs_id, scope["value"], scope.get("description"), position))


def _scopes(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The body's scopes (already checked against the OAS schema), refusing a value given twice."""
    seen: set[str] = set()
    for item in value:
        if item["value"] in seen:
            raise body_error(f"Duplicated scope value: {item['value']}", "scopes")
        seen.add(item["value"])
    return [{key: item[key] for key in ("value", "description") if key in item} for item in value]


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    """The stored settings a create/update body carries; name and scopes excluded, ignored ones dropped."""
    return {key: body[key] for key in _STORED_SETTINGS if key in body}


def _api_json(row: sqlite3.Row, scopes: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": row["id"], "name": row["name"], "identifier": row["identifier"], "scopes": scopes}
    settings = loads(row["settings"])
    if settings.get("token_lifetime_for_web", 0) > settings.get("token_lifetime", 0):
        settings["token_lifetime_for_web"] = settings["token_lifetime"]
    body.update(settings)
    if row["is_system"]:
        body["is_system"] = True
    return body


def _scopes_of(store: Store, rs_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {rs_id: [] for rs_id in rs_ids}
    if not rs_ids:
        return out
    marks = ",".join("?" * len(rs_ids))
    for r in store.query(f"SELECT resource_server_id, value, description FROM api_scopes"
                         f" WHERE resource_server_id IN ({marks}) ORDER BY resource_server_id, position", rs_ids):
        scope = {"value": r["value"]}
        if r["description"] is not None:
            scope["description"] = r["description"]
        out[r["resource_server_id"]].append(scope)
    return out


def find_api(store: Store, id_or_identifier: str) -> sqlite3.Row | None:
    """An API by its id or by its identifier (audience), as `GET /resource-servers/{id}` accepts."""
    return (store.one("SELECT * FROM resource_servers WHERE id = ?", (id_or_identifier,))
            or store.one("SELECT * FROM resource_servers WHERE identifier = ?", (id_or_identifier,)))


def _require_api(store: Store, id_or_identifier: str) -> sqlite3.Row:
    row = find_api(store, id_or_identifier)
    if row is None:
        raise not_found("The resource server does not exist", "inexistent_resource_server")
    return row


def _one_api_json(store: Store, row: sqlite3.Row) -> dict[str, Any]:
    return _api_json(row, _scopes_of(store, [row["id"]])[row["id"]])


@router.route("POST", "/api/v2/resource-servers", scopes=["create:resource_servers"])
async def create_resource_server(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    identifier = body["identifier"]
    name = body.get("name", identifier)
    scopes = _scopes(body.get("scopes", []))
    settings = {**_API_DEFAULTS, **_settings(body)}
    with ctx.store.tx() as db:
        if db.execute("SELECT 1 FROM resource_servers WHERE identifier = ?", (identifier,)).fetchone():
            raise ApiError(409, "A resource server with the same identifier already exists.", "conflict")
        rs_id = secrets.token_hex(12)
        db.execute("INSERT INTO resource_servers (id, identifier, name, settings) VALUES (?, ?, ?, ?)",
                   (rs_id, identifier, name, dumps(settings)))
        _replace_scopes(db, rs_id, scopes)
    return ctx.json(_one_api_json(ctx.store, _require_api(ctx.store, rs_id)), 201)


@router.route("GET", "/api/v2/resource-servers", scopes=["read:resource_servers"])
async def list_resource_servers(ctx: Ctx) -> Response:
    wanted = ctx.request.query_params.getlist("identifiers")
    if len(wanted) > 10:
        raise query_error("identifiers", f"Array is too long ({len(wanted)}), maximum 10")
    rows = ctx.store.query("SELECT * FROM resource_servers ORDER BY pk")
    if wanted:
        rows = [r for r in rows if r["identifier"] in wanted]
    scopes = _scopes_of(ctx.store, [r["id"] for r in rows])
    return paged(ctx, [_api_json(r, scopes[r["id"]]) for r in rows], "resource_servers")


# `{id:path}`: an identifier is usually a URL, and its encoded slashes arrive decoded.
@router.route("GET", "/api/v2/resource-servers/{id:path}", scopes=["read:resource_servers"])
async def get_resource_server(ctx: Ctx) -> Response:
    return ctx.json(_one_api_json(ctx.store, _require_api(ctx.store, ctx.path("id"))))


@router.route("PATCH", "/api/v2/resource-servers/{id:path}", scopes=["update:resource_servers"])
async def update_resource_server(ctx: Ctx) -> Response:
    row = _require_api(ctx.store, ctx.path("id"))
    body = await ctx.json_body()
    if row["is_system"]:
        refused = [k for k in body if k not in _SYSTEM_PATCHABLE]
        if refused:
            raise body_error(f"Additional properties not allowed: {','.join(refused)}")
    name = body.get("name", row["name"])
    scopes = _scopes(body["scopes"]) if "scopes" in body else None
    settings = {**loads(row["settings"]), **_settings(body)}
    with ctx.store.tx() as db:
        db.execute("UPDATE resource_servers SET name = ?, settings = ? WHERE id = ?",
                   (name, dumps(settings), row["id"]))
        if scopes is not None:
            _replace_scopes(db, row["id"], scopes)
    # 201, as the OAS declares for this PATCH.
    return ctx.json(_one_api_json(ctx.store, _require_api(ctx.store, row["id"])), 201)


def resolve_permissions(db: sqlite3.Connection, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(API identifier, permission) -> (resource server id, permission), refusing unknown ones."""
    apis: dict[str, str] = {}
    resolved = []
    for identifier, name in pairs:
        if identifier not in apis:
            row = db.execute("SELECT id FROM resource_servers WHERE identifier = ?", (identifier,)).fetchone()
            if row is None:
                raise ApiError(404, f"The resource server does not exist: '{identifier}'",
                               "inexistent_resource_server")
            apis[identifier] = row["id"]
        rs_id = apis[identifier]
        if db.execute("SELECT 1 FROM api_scopes WHERE resource_server_id = ? AND value = ?",
                      (rs_id, name)).fetchone() is None:
            raise ApiError(400, f"Permission '{name}' does not exist on resource server '{identifier}'.",
                           "invalid_body")
        resolved.append((rs_id, name))
    return resolved


def permission_json(row: sqlite3.Row) -> dict[str, Any]:
    item: dict[str, Any] = {"permission_name": row["permission_name"]}
    if row["description"] is not None:
        item["description"] = row["description"]
    item["resource_server_name"] = row["rs_name"]
    item["resource_server_identifier"] = row["identifier"]
    return item


