"""APIs (resource servers), roles and the grants that hang off them: role permissions, role
members and users' direct permissions.

What a migration reads and writes here (reference §4): a user's DIRECT permissions and roles are
what it restores; `GET /users/{id}/permissions` also lists what the user inherits through roles,
with `sources` telling the two apart. Role members are listed with checkpoint paging
(`from`/`take`), the only way past 1,000 members; offset paging stops there, as Auth0's does.

Grants are keyed by the user-id STRING, as Auth0 keys them, not by one connection's copy of a
user: two connections may hold the same id (the keep-id strategy), and both then show the same
roles and permissions. When a user is deleted (`store.user_deleted_hooks`), every role membership
and direct permission held under its id is dropped, even if another connection still holds a user
with that id. What Auth0 does in that case is UNCONFIRMED (reference §9.3, §10); dropping is the
pessimistic choice, and it is the one that makes the migration tool prove it re-applies grants
after a keep-id cutover instead of assuming they survived.

Checkpoints (`next`/`from`) are opaque: base64url of the role id and the member row's key, so one
page costs one indexed range query whatever the size of the role. They do not expire here (Auth0's
last 24 h).

Choices where Auth0's exact answer is not documented (kept in one place so they are easy to fix):

- unknown API in a permission: 404 "The resource server does not exist: '<identifier>'" (seen in
  auth0-cli issue #348); unknown permission of a known API: 400 (message ours);
- unknown role in `POST/DELETE /users/{id}/roles`: 400 (the OAS declares no 404 there);
  unknown users in `POST /roles/{id}/users`: 404 "One or more of the users do not exist." (OAS);
- offset paging of role members refuses a page that reaches past record 1,000, i.e.
  `(page + 1) * per_page > 1000`, with Auth0's `invalid_paging` message;
- `POST /roles/{id}/users` refuses an empty `users` list (the OAS has no `minItems` there);
- bodies of 2xx answers the OAS declares without content are empty (real Auth0 sends `{}` for some);
- `DELETE /roles/{id}/permissions` answers 200 as the OAS says (a go-auth0 recording shows 204);
- the system "Auth0 Management API" is seeded with the scopes this tenant checks
  (`oauth.ALL_SCOPES`), and refuses changes to anything but its token settings;
- a scope removed from an API (PATCH replaces `scopes`) leaves every role and user holding it;
- checkpoint paging of role members (`from` or `take` given) honours `include_totals` as the OAS
  says: `true` answers `{users, next}` (recorded: go-auth0 TestRoleManager_UsersCheckpointPagination,
  which sends `include_totals=true&per_page=50&take=2`), `false` or absent a bare array of the page.
  A bare array has no `next`, so such a caller sees one page only: what real Auth0 does there is
  UNCONFIRMED (reference open question 1); no recorded client asks for it;
- role names are unique as written (case-sensitive); roles list by name, case-insensitively;
- limits answer 400 with errorCode `too_many_entities`; conflicts 409 with `conflict`.

Not served: DELETE of APIs, the 1,000-roles-per-tenant limit, checkpoint expiry.

The tables (`SCHEMA`) are created with every store; `install` runs at tenant creation
(`app.create_tenant`).

Example::

    rs = mgmt.resource_servers.create(identifier="https://api.example.com/", scopes=[...])
    role = mgmt.roles.create(name="editor")
    mgmt.roles.permissions.add(role.id, permissions=[PermissionRequestPayload(...)])
    for member in mgmt.roles.users.list(role.id, take=50):   # follows `next`
        ...
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.responses import Response

from ..import_schema import json_type
from . import directory, oauth
from .http import ApiError, Ctx, Router, body_error, not_found, paged, query_error
from .state import Tenant
from .store import Store, dumps, loads

router = Router()


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
CREATE TABLE IF NOT EXISTS roles (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT
);
CREATE TABLE IF NOT EXISTS role_permissions (
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    resource_server_id TEXT NOT NULL,
    permission_name TEXT NOT NULL,
    PRIMARY KEY (role_id, resource_server_id, permission_name),
    FOREIGN KEY (resource_server_id, permission_name)
        REFERENCES api_scopes(resource_server_id, value) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS role_permissions_scope ON role_permissions(resource_server_id, permission_name);
CREATE TABLE IF NOT EXISTS role_members (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    UNIQUE (role_id, user_id)
);
CREATE INDEX IF NOT EXISTS role_members_page ON role_members(role_id, pk);
CREATE INDEX IF NOT EXISTS role_members_user ON role_members(user_id);
CREATE TABLE IF NOT EXISTS user_permissions (
    user_id TEXT NOT NULL,
    resource_server_id TEXT NOT NULL,
    permission_name TEXT NOT NULL,
    PRIMARY KEY (user_id, resource_server_id, permission_name),
    FOREIGN KEY (resource_server_id, permission_name)
        REFERENCES api_scopes(resource_server_id, value) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_permissions_scope ON user_permissions(resource_server_id, permission_name);
"""

# Entity limits (reference §4, entity-limit policy).
MAX_ROLES_PER_USER = 50
MAX_DIRECT_PERMISSIONS_PER_USER = 1000
MAX_PERMISSIONS_PER_ROLE = 1000
OFFSET_RECORD_LIMIT = 1000
"""Offset paging of role members stops at this many records; checkpoint paging goes on."""

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

_SIGNING_ALGS = ("HS256", "RS256", "RS512", "PS256")
_TOKEN_DIALECTS = ("access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz")
_BOOL_SETTINGS = ("allow_offline_access", "allow_online_access", "skip_consent_for_verifiable_first_party_clients",
                  "enforce_policies")
# Accepted by Auth0's schema but not modelled here: taken and not stored. `signing_secret` is a
# secret, never echoed.
_IGNORED_SETTINGS = ("authorization_details", "authorization_policy", "proof_of_possession",
                     "subject_type_authorization", "token_encryption", "signing_secret")
_API_WRITABLE = ("name", "scopes", "signing_alg", "token_lifetime", "token_dialect", "consent_policy",
                 *_BOOL_SETTINGS, *_IGNORED_SETTINGS)


# --- lifecycle -------------------------------------------------------------------------------

def install(tenant: Tenant) -> None:
    """Seed the system API and drop grants with deleted users; runs once per tenant (store)."""
    seed_management_api(tenant.store, tenant.config.audience)
    store = tenant.store
    tenant.store.user_deleted_hooks.append(lambda user_id: drop_user_grants(store, user_id))


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


def drop_user_grants(store: Store, user_id: str) -> None:
    """Forget every role membership and direct permission held under `user_id` (see module doc)."""
    with store.tx() as db:
        db.execute("DELETE FROM role_members WHERE user_id = ?", (user_id,))
        db.execute("DELETE FROM user_permissions WHERE user_id = ?", (user_id,))


def _describe_scope(scope: str) -> str:
    action, _, thing = scope.partition(":")
    return f"{action.capitalize()} {thing.replace('_', ' ').title()}"


# --- body validation (Auth0's "Payload validation error" wording) ----------------------------

def _check_object(value: Any, allowed: Iterable[str], required: Sequence[str] = (),
                  prop: str | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise body_error(f"Expected type object but found type {json_type(value)}", prop)
    extra = [k for k in value if k not in allowed]
    if extra:
        raise body_error(f"Additional properties not allowed: {','.join(extra)}", prop)
    for key in required:
        if key not in value:
            raise body_error(f"Missing required property: {key}", prop)
    return value


def _check_string(value: Any, prop: str, min_len: int = 0, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise body_error(f"Expected type string but found type {json_type(value)}", prop)
    if len(value) < min_len:
        raise body_error(f"String is too short ({len(value)} chars), minimum {min_len}", prop)
    if max_len is not None and len(value) > max_len:
        raise body_error(f"String is too long ({len(value)} chars), maximum {max_len}", prop)
    return value


def _check_array(value: Any, prop: str, min_items: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise body_error(f"Expected type array but found type {json_type(value)}", prop)
    if len(value) < min_items:
        raise body_error(f"Array is too short ({len(value)}), minimum {min_items}", prop)
    return value


def _check_permissions(body: dict[str, Any]) -> list[tuple[str, str]]:
    """`{"permissions": [{resource_server_identifier, permission_name}]}` -> distinct pairs, in order."""
    _check_object(body, ("permissions",), ("permissions",))
    items = _check_array(body["permissions"], "permissions", 1)
    pairs: dict[tuple[str, str], None] = {}
    for i, item in enumerate(items):
        where = f"permissions[{i}]"
        _check_object(item, ("resource_server_identifier", "permission_name"),
                      ("resource_server_identifier", "permission_name"), where)
        identifier = _check_string(item["resource_server_identifier"], f"{where}.resource_server_identifier")
        name = _check_string(item["permission_name"], f"{where}.permission_name")
        pairs[(identifier, name)] = None
    return list(pairs)


def _check_id_list(body: dict[str, Any], key: str) -> list[str]:
    _check_object(body, (key,), (key,))
    items = _check_array(body[key], key, 1)
    for i, item in enumerate(items):
        _check_string(item, f"{key}[{i}]", 1)
    return list(dict.fromkeys(items))


# --- resource servers ------------------------------------------------------------------------

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


def _check_scopes(value: Any) -> list[dict[str, Any]]:
    items = _check_array(value, "scopes")
    seen: set[str] = set()
    scopes = []
    for i, item in enumerate(items):
        where = f"scopes[{i}]"
        _check_object(item, ("value", "description"), ("value",), where)
        scope_value = _check_string(item["value"], f"{where}.value", 1, 280)
        if "description" in item:
            _check_string(item["description"], f"{where}.description", 0, 500)
        if scope_value in seen:
            raise body_error(f"Duplicated scope value: {scope_value}", "scopes")
        seen.add(scope_value)
        scopes.append({"value": scope_value, **({"description": item["description"]} if "description" in item
                                                 else {})})
    return scopes


def _check_api_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The stored settings a create/update body carries (validated); name and scopes excluded."""
    settings: dict[str, Any] = {}
    for key in _BOOL_SETTINGS:
        if key in body:
            if not isinstance(body[key], bool):
                raise body_error(f"Expected type boolean but found type {json_type(body[key])}", key)
            settings[key] = body[key]
    if "signing_alg" in body:
        if body["signing_alg"] not in _SIGNING_ALGS:
            raise body_error(f"No enum match for: {body['signing_alg']!r}", "signing_alg")
        settings["signing_alg"] = body["signing_alg"]
    if "token_dialect" in body:
        if body["token_dialect"] not in _TOKEN_DIALECTS:
            raise body_error(f"No enum match for: {body['token_dialect']!r}", "token_dialect")
        settings["token_dialect"] = body["token_dialect"]
    if "consent_policy" in body:
        if body["consent_policy"] not in ("transactional-authorization-with-mfa", None):
            raise body_error(f"No enum match for: {body['consent_policy']!r}", "consent_policy")
        settings["consent_policy"] = body["consent_policy"]
    if "token_lifetime" in body:
        lifetime = body["token_lifetime"]
        if not isinstance(lifetime, int) or isinstance(lifetime, bool):
            raise body_error(f"Expected type integer but found type {json_type(lifetime)}", "token_lifetime")
        if not 0 <= lifetime <= 2592000:
            raise body_error(f"Value {lifetime} is out of range [0, 2592000]", "token_lifetime")
        settings["token_lifetime"] = lifetime
    if "signing_secret" in body:
        _check_string(body["signing_secret"], "signing_secret", 16)
    return settings


def _check_api_name(value: Any) -> str:
    name = _check_string(value, "name", 1, 200)
    if re.search(r"[<>]", name):
        raise body_error(f"String does not match pattern ^[^<>]+$: {name}", "name")
    return name


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
    _check_object(body, ("identifier", *_API_WRITABLE), ("identifier",))
    identifier = _check_string(body["identifier"], "identifier", 1, 600)
    name = _check_api_name(body["name"]) if "name" in body else identifier
    scopes = _check_scopes(body["scopes"]) if "scopes" in body else []
    settings = {**_API_DEFAULTS, **_check_api_settings(body)}
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
    _check_object(body, _API_WRITABLE)
    if row["is_system"]:
        refused = [k for k in body if k not in _SYSTEM_PATCHABLE]
        if refused:
            raise body_error(f"Additional properties not allowed: {','.join(refused)}")
    name = _check_api_name(body["name"]) if "name" in body else row["name"]
    scopes = _check_scopes(body["scopes"]) if "scopes" in body else None
    settings = {**loads(row["settings"]), **_check_api_settings(body)}
    with ctx.store.tx() as db:
        db.execute("UPDATE resource_servers SET name = ?, settings = ? WHERE id = ?",
                   (name, dumps(settings), row["id"]))
        if scopes is not None:
            _replace_scopes(db, row["id"], scopes)
    # 201, as the OAS declares for this PATCH.
    return ctx.json(_one_api_json(ctx.store, _require_api(ctx.store, row["id"])), 201)


def _resolve_permissions(db: sqlite3.Connection, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
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


def _permission_json(row: sqlite3.Row) -> dict[str, Any]:
    item: dict[str, Any] = {"permission_name": row["permission_name"]}
    if row["description"] is not None:
        item["description"] = row["description"]
    item["resource_server_name"] = row["rs_name"]
    item["resource_server_identifier"] = row["identifier"]
    return item


# --- roles -----------------------------------------------------------------------------------

def role_json(row: sqlite3.Row) -> dict[str, Any]:
    body = {"id": row["id"], "name": row["name"]}
    if row["description"] is not None:
        body["description"] = row["description"]
    return body


def get_role(store: Store, role_id: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM roles WHERE id = ?", (role_id,))


def require_role(store: Store, role_id: str) -> sqlite3.Row:
    row = get_role(store, role_id)
    if row is None:
        raise not_found("The role does not exist.", "inexistent_role")
    return row


def _check_role_body(body: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    _check_object(body, ("name", "description"), required)
    if "name" in body:
        _check_string(body["name"], "name", 1)
    if "description" in body:
        _check_string(body["description"], "description")
    return body


@router.route("POST", "/api/v2/roles", scopes=["create:roles"])
async def create_role(ctx: Ctx) -> Response:
    body = _check_role_body(await ctx.json_body(), ("name",))
    role_id = directory.new_id("rol_")
    with ctx.store.tx() as db:
        if db.execute("SELECT 1 FROM roles WHERE name = ?", (body["name"],)).fetchone():
            raise ApiError(409, "The role already exists.", "conflict")
        db.execute("INSERT INTO roles (id, name, description) VALUES (?, ?, ?)",
                   (role_id, body["name"], body.get("description")))
    return ctx.json(role_json(require_role(ctx.store, role_id)))  # 200, as Auth0 answers


@router.route("GET", "/api/v2/roles", scopes=["read:roles"])
async def list_roles(ctx: Ctx) -> Response:
    rows = ctx.store.query("SELECT * FROM roles ORDER BY name COLLATE NOCASE, pk")
    name_filter = ctx.query("name_filter")
    if name_filter:
        needle = name_filter.casefold()
        rows = [r for r in rows if needle in r["name"].casefold()]
    return paged(ctx, [role_json(r) for r in rows], "roles")


@router.route("GET", "/api/v2/roles/{id}", scopes=["read:roles"])
async def get_role_route(ctx: Ctx) -> Response:
    return ctx.json(role_json(require_role(ctx.store, ctx.path("id"))))


@router.route("PATCH", "/api/v2/roles/{id}", scopes=["update:roles"])
async def update_role(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    body = _check_role_body(await ctx.json_body(), ())
    with ctx.store.tx() as db:
        name = body.get("name", role["name"])
        if name != role["name"] and db.execute("SELECT 1 FROM roles WHERE name = ?", (name,)).fetchone():
            raise ApiError(409, "The role already exists.", "conflict")
        db.execute("UPDATE roles SET name = ?, description = ? WHERE id = ?",
                   (name, body.get("description", role["description"]), role["id"]))
    return ctx.json(role_json(require_role(ctx.store, role["id"])))


@router.route("DELETE", "/api/v2/roles/{id}", scopes=["delete:roles"])
async def delete_role(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    with ctx.store.tx() as db:  # members and permissions go by cascade
        db.execute("DELETE FROM roles WHERE id = ?", (role["id"],))
    return ctx.empty(200)


# --- role permissions ------------------------------------------------------------------------

_ROLE_PERMISSIONS_SQL = """
SELECT rp.permission_name, s.description, rs.name AS rs_name, rs.identifier
FROM role_permissions rp
JOIN resource_servers rs ON rs.id = rp.resource_server_id
JOIN api_scopes s ON s.resource_server_id = rp.resource_server_id AND s.value = rp.permission_name
WHERE rp.role_id = ? ORDER BY rs.identifier, rp.permission_name
"""


async def _grant(ctx: Ctx, table: str, owner_column: str, owner: str, limit: int, whom: str) -> None:
    """Add the body's permissions to a role or a user (`table` and `owner_column` are ours, never input)."""
    pairs = _check_permissions(await ctx.json_body())
    with ctx.store.tx() as db:
        resolved = _resolve_permissions(db, pairs)
        held = {(r["resource_server_id"], r["permission_name"]) for r in db.execute(
            f"SELECT resource_server_id, permission_name FROM {table} WHERE {owner_column} = ?", (owner,))}
        if len(held | set(resolved)) > limit:
            raise ApiError(400, f"No more permissions can be assigned to this {whom}.", "too_many_entities")
        db.executemany(f"INSERT OR IGNORE INTO {table} ({owner_column}, resource_server_id, permission_name)"
                       " VALUES (?, ?, ?)", [(owner, rs_id, name) for rs_id, name in resolved])


async def _revoke(ctx: Ctx, table: str, owner_column: str, owner: str) -> None:
    """Remove the body's permissions from a role or a user."""
    pairs = _check_permissions(await ctx.json_body())
    with ctx.store.tx() as db:
        resolved = _resolve_permissions(db, pairs)
        db.executemany(f"DELETE FROM {table} WHERE {owner_column} = ? AND resource_server_id = ?"
                       " AND permission_name = ?", [(owner, rs_id, name) for rs_id, name in resolved])


@router.route("GET", "/api/v2/roles/{id}/permissions", scopes=["read:roles"])
async def list_role_permissions(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    rows = ctx.store.query(_ROLE_PERMISSIONS_SQL, (role["id"],))
    return paged(ctx, [_permission_json(r) for r in rows], "permissions")


@router.route("POST", "/api/v2/roles/{id}/permissions", scopes=["update:roles"])
async def add_role_permissions(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    await _grant(ctx, "role_permissions", "role_id", role["id"], MAX_PERMISSIONS_PER_ROLE, "role")
    return ctx.empty(201)


@router.route("DELETE", "/api/v2/roles/{id}/permissions", scopes=["update:roles"])
async def remove_role_permissions(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    await _revoke(ctx, "role_permissions", "role_id", role["id"])
    return ctx.empty(200)  # the OAS says 200 (see the module doc)


# --- role members ----------------------------------------------------------------------------

def encode_checkpoint(role_id: str, member_pk: int) -> str:
    raw = f"{role_id}:{member_pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_checkpoint(role_id: str, token: str) -> int:
    """The member key a `from` value stands for; Auth0's 400 for anything not issued for this role."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        owner, _, key = raw.rpartition(":")
        member_pk = int(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise query_error("from", "Invalid checkpoint") from None
    if owner != role_id or member_pk < 0:
        raise query_error("from", "Invalid checkpoint")
    return member_pk


# The user a membership points at: the first-created copy when two connections share the id.
_MEMBERS_SQL = """
SELECT m.pk, m.user_id, u.email, json_extract(u.profile, '$.picture') AS picture,
       json_extract(u.profile, '$.name') AS name
FROM role_members m
LEFT JOIN users u ON u.pk = (SELECT MIN(pk) FROM users WHERE user_id = m.user_id)
WHERE m.role_id = ? {where} ORDER BY m.pk LIMIT ? {offset}
"""


def _member_json(row: sqlite3.Row) -> dict[str, Any]:
    item: dict[str, Any] = {"user_id": row["user_id"]}
    for key in ("email", "picture", "name"):
        if isinstance(row[key], str):
            item[key] = row[key]
    return item


@router.route("GET", "/api/v2/roles/{id}/users", scopes=["read:role_members"], scopes_all=["read:users", "read:roles"])
async def list_role_users(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    params = ctx.request.query_params
    include_totals = ctx.bool_query("include_totals", False)
    if "from" in params or "take" in params:
        # Checkpoint paging (`take` wins over `per_page`, as in go-auth0's recording, which sends both).
        # `include_totals=true` gives `{users, next}` as recorded; `false` (the OAS default) a bare array
        # of the page, which has no room for `next`: a caller that wants the next page must ask with true.
        take = ctx.int_query("take", 50, 1, 100)
        after = decode_checkpoint(role["id"], params["from"]) if params.get("from") else 0
        rows = ctx.store.query(_MEMBERS_SQL.format(where="AND m.pk > ?", offset=""), (role["id"], after, take + 1))
        members = [_member_json(r) for r in rows[:take]]
        if not include_totals:
            return ctx.json(members)
        body: dict[str, Any] = {"users": members}
        if len(rows) > take:
            body["next"] = encode_checkpoint(role["id"], rows[take - 1]["pk"])
        return ctx.json(body)
    page = ctx.int_query("page", 0, 0)
    per_page = ctx.int_query("per_page", 50, 1, 100)
    if (page + 1) * per_page > OFFSET_RECORD_LIMIT:
        raise ApiError(400, f"Requesting page {page} exceeds the allowed maximum of {OFFSET_RECORD_LIMIT} records."
                            f" To fetch results beyond {OFFSET_RECORD_LIMIT}, use the checkpoint pagination method.",
                       "invalid_paging")
    rows = ctx.store.query(_MEMBERS_SQL.format(where="", offset="OFFSET ?"), (role["id"], per_page, page * per_page))
    users = [_member_json(r) for r in rows]
    if not include_totals:
        return ctx.json(users)
    total = ctx.store.one("SELECT COUNT(*) AS n FROM role_members WHERE role_id = ?", (role["id"],))["n"]
    return ctx.json({"users": users, "start": page * per_page, "limit": per_page, "total": total})


def _existing_user_ids(db: sqlite3.Connection, user_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(user_ids), 500):
        chunk = user_ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        found.update(r["user_id"] for r in db.execute(
            f"SELECT DISTINCT user_id FROM users WHERE user_id IN ({marks})", chunk))
    return found


def _add_memberships(db: sqlite3.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """Insert (role id, user id) memberships, refusing any user who would pass 50 roles."""
    new = [(r, u) for r, u in pairs if db.execute(
        "SELECT 1 FROM role_members WHERE role_id = ? AND user_id = ?", (r, u)).fetchone() is None]
    adding: dict[str, int] = {}
    for _, user_id in new:
        adding[user_id] = adding.get(user_id, 0) + 1
    for user_id, extra in adding.items():
        held = db.execute("SELECT COUNT(*) AS n FROM role_members WHERE user_id = ?", (user_id,)).fetchone()["n"]
        if held + extra > MAX_ROLES_PER_USER:
            raise ApiError(400, f"A user cannot have more than {MAX_ROLES_PER_USER} roles: {user_id}",
                           "too_many_entities")
    db.executemany("INSERT INTO role_members (role_id, user_id) VALUES (?, ?)", new)


@router.route("POST", "/api/v2/roles/{id}/users", scopes=["update:roles", "create:role_members"])
async def assign_role_users(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    user_ids = _check_id_list(await ctx.json_body(), "users")
    with ctx.store.tx() as db:
        if len(_existing_user_ids(db, user_ids)) != len(user_ids):
            raise ApiError(404, "One or more of the users do not exist.", "inexistent_user")
        _add_memberships(db, [(role["id"], u) for u in user_ids])
    return ctx.empty(200)


# --- user grants -----------------------------------------------------------------------------

# A user's permissions, direct and through roles, one row per (permission, source).
_USER_PERMISSIONS_SQL = """
SELECT g.permission_name, s.description, rs.name AS rs_name, rs.identifier,
       g.source_type, g.source_id, g.source_name
FROM (
    SELECT resource_server_id, permission_name, 'DIRECT' AS source_type, '' AS source_id, '' AS source_name
    FROM user_permissions WHERE user_id = :uid
    UNION ALL
    SELECT rp.resource_server_id, rp.permission_name, 'ROLE', r.id, r.name
    FROM role_members m JOIN roles r ON r.id = m.role_id JOIN role_permissions rp ON rp.role_id = r.id
    WHERE m.user_id = :uid
) g
JOIN resource_servers rs ON rs.id = g.resource_server_id
JOIN api_scopes s ON s.resource_server_id = g.resource_server_id AND s.value = g.permission_name
ORDER BY rs.identifier, g.permission_name, g.source_type, g.source_name, g.source_id
"""


def user_permissions(store: Store, user_id: str) -> list[dict[str, Any]]:
    """`GET /users/{id}/permissions` items: one per permission, its DIRECT and ROLE sources merged."""
    items: list[dict[str, Any]] = []
    last: tuple[str, str] | None = None
    for row in store.query(_USER_PERMISSIONS_SQL, {"uid": user_id}):
        key = (row["identifier"], row["permission_name"])
        if key != last:
            items.append({**_permission_json(row), "sources": []})
            last = key
        items[-1]["sources"].append({"source_id": row["source_id"], "source_name": row["source_name"],
                                     "source_type": row["source_type"]})
    return items


@router.route("GET", "/api/v2/users/{id}/permissions", scopes=["read:users"])
async def list_user_permissions(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    return paged(ctx, user_permissions(ctx.store, user["user_id"]), "permissions")


@router.route("POST", "/api/v2/users/{id}/permissions", scopes=["update:users"])
async def add_user_permissions(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    await _grant(ctx, "user_permissions", "user_id", user["user_id"], MAX_DIRECT_PERMISSIONS_PER_USER, "user")
    return ctx.empty(201)


@router.route("DELETE", "/api/v2/users/{id}/permissions", scopes=["update:users"])
async def remove_user_permissions(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    await _revoke(ctx, "user_permissions", "user_id", user["user_id"])
    return ctx.empty(204)


def _require_roles(db: sqlite3.Connection, role_ids: Sequence[str]) -> None:
    marks = ",".join("?" * len(role_ids))
    found = {r["id"] for r in db.execute(f"SELECT id FROM roles WHERE id IN ({marks})", role_ids)}
    missing = [r for r in role_ids if r not in found]
    if missing:
        raise ApiError(400, f"One or more of the roles do not exist: {', '.join(missing)}", "inexistent_role")


@router.route("GET", "/api/v2/users/{id}/roles", scopes=["read:role_members"], scopes_all=["read:users", "read:roles"])
async def list_user_roles(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    rows = ctx.store.query("SELECT r.* FROM role_members m JOIN roles r ON r.id = m.role_id WHERE m.user_id = ?"
                           " ORDER BY r.name COLLATE NOCASE, r.pk", (user["user_id"],))
    return paged(ctx, [role_json(r) for r in rows], "roles")


@router.route("POST", "/api/v2/users/{id}/roles", scopes=["update:users", "create:role_members"])
async def assign_user_roles(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    role_ids = _check_id_list(await ctx.json_body(), "roles")
    with ctx.store.tx() as db:
        _require_roles(db, role_ids)
        _add_memberships(db, [(r, user["user_id"]) for r in role_ids])
    return ctx.empty(204)


@router.route("DELETE", "/api/v2/users/{id}/roles", scopes=["update:users", "delete:role_members"])
async def remove_user_roles(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    role_ids = _check_id_list(await ctx.json_body(), "roles")
    with ctx.store.tx() as db:
        _require_roles(db, role_ids)
        db.executemany("DELETE FROM role_members WHERE role_id = ? AND user_id = ?",
                       [(r, user["user_id"]) for r in role_ids])
    return ctx.empty(204)
