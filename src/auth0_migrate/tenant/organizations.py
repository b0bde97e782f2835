"""Organizations: the organizations, their members, their members' roles and their enabled connections.

Routes (OAS `/organizations...`): create, list (offset or checkpoint paging), read by id and by name;
members listed (offset or checkpoint paging, `fields`), added and removed; a member's roles listed,
assigned and removed (the roles are the tenant's roles); enabled connections listed and added;
`GET /users/{id}/organizations`.

Memberships are keyed by the user-id STRING, as role memberships are (`grants`): two connections may
hold the same id (the keep-id strategy), and both then show the same memberships. When a user is
deleted (`store.user_deleted_hooks`), its memberships and their roles go, as Auth0 deletes a user's
organization memberships with the user. With two copies sharing the id that drops them for the
survivor too: what Auth0 does then is UNCONFIRMED, and dropping is the pessimistic choice (the
tool must prove it re-applies them after a keep-id cutover).

Choices where Auth0 is silent:

- checkpoint paging (`from` or `take` given) answers `{<items>, next}` whatever `include_totals` says
  (the OAS's paginated shape has no totals); offset paging answers a bare array, or
  `{start, limit, total, <items>}` with `include_totals=true`. Checkpoints are opaque (base64url of
  the organization and the row key) and do not expire;
- offset paging of members refuses a page past record 1,000 (`invalid_paging`, as for role members);
- `fields=...roles` needs `read:organization_member_roles` too (Auth0's documentation says so): 403 without;
  without `fields` every field but `roles` is shown; `include_fields=false` shows all but those named;
- `POST /organizations/{id}/members` with an unknown user answers 400 "One or more users do not exist"
  (the OAS lists no 404 there) and adds nobody; at most `MAX_MEMBERS_PER_CALL` ids a call (Auth0 states
  no limit; the tool halves its batch on a 400);
- assigning roles to a user who is not a member answers 400 (`invalid_body`) and assigns none; an unknown
  role 400 too;
- enabling a connection already enabled answers 201 with it as it is (changing nothing); an unknown
  connection 404;
- a second organization of the same name answers 409 `conflict`.

Not served: invitations, branding, metadata updates, client grants, organization deletion.

Example::

    org = mgmt.organizations.create(name="acme")
    mgmt.organizations.members.create(org.id, members=[user_id])
"""

from __future__ import annotations

import sqlite3
from typing import Any

from starlette.responses import Response

from . import directory
from .errors import ApiError, not_found, query_error
from .http import Ctx, Router, decode_checkpoint, encode_checkpoint, offset_window, paged
from .roles import role_json
from .state import Tenant
from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS organizations (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT
);
CREATE TABLE IF NOT EXISTS organization_connections (
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    assign_membership_on_login INTEGER NOT NULL DEFAULT 0,
    is_signup_enabled INTEGER NOT NULL DEFAULT 0,
    show_as_button INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (org_id, connection_id)
);
CREATE TABLE IF NOT EXISTS organization_members (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    UNIQUE (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS organization_members_user ON organization_members(user_id);
CREATE TABLE IF NOT EXISTS organization_member_roles (
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, user_id, role_id)
);
"""

router = Router()

MAX_MEMBERS_PER_CALL = 100
MEMBER_FIELDS = ("user_id", "email", "picture", "name", "roles")


def install(tenant: Tenant) -> None:
    """Drop a deleted user's memberships; runs once per tenant (store)."""
    store = tenant.store
    store.user_deleted_hooks.append(lambda user_id: drop_memberships(store, user_id))


def drop_memberships(store: Store, user_id: str) -> None:
    with store.tx() as db:
        db.execute("DELETE FROM organization_members WHERE user_id = ?", (user_id,))
        db.execute("DELETE FROM organization_member_roles WHERE user_id = ?", (user_id,))


# --- data access (also used by `seed`) -----------------------------------------------------------

def org_json(row: sqlite3.Row) -> dict[str, Any]:
    body = {"id": row["id"], "name": row["name"]}
    if row["display_name"] is not None:
        body["display_name"] = row["display_name"]
    return body


def require_org(store: Store, org_id: str) -> sqlite3.Row:
    row = store.one("SELECT * FROM organizations WHERE id = ?", (org_id,))
    if row is None:
        raise not_found("No organization found by that id or name", "inexistent_organization")
    return row


def create_organization(store: Store, name: str, display_name: str | None = None) -> sqlite3.Row:
    org_id = directory.new_id("org_")
    with store.tx() as db:
        if db.execute("SELECT 1 FROM organizations WHERE name = ?", (name,)).fetchone():
            raise ApiError(409, "An organization with this name already exists.", "conflict")
        db.execute("INSERT INTO organizations (id, name, display_name) VALUES (?, ?, ?)", (org_id, name, display_name))
    return require_org(store, org_id)


def enable_connection(store: Store, org_id: str, connection_id: str, *, assign_membership_on_login: bool = False,
                      is_signup_enabled: bool = False, show_as_button: bool = True) -> sqlite3.Row:
    if directory.get_connection(store, connection_id) is None:
        raise not_found("The connection does not exist", "inexistent_connection")
    with store.tx() as db:
        db.execute("INSERT OR IGNORE INTO organization_connections (org_id, connection_id, assign_membership_on_login,"
                   " is_signup_enabled, show_as_button) VALUES (?, ?, ?, ?, ?)",
                   (org_id, connection_id, int(assign_membership_on_login), int(is_signup_enabled),
                    int(show_as_button)))
    return store.row("SELECT oc.*, c.name, c.strategy FROM organization_connections oc JOIN connections c ON "
                     "c.id = oc.connection_id WHERE oc.org_id = ? AND oc.connection_id = ?", (org_id, connection_id))


def add_members(store: Store, org_id: str, user_ids: list[str]) -> None:
    with store.tx() as db:
        for i in range(0, len(user_ids), 500):
            chunk = user_ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found = {r["user_id"] for r in db.execute(f"SELECT user_id FROM users WHERE user_id IN ({marks})", chunk)}
            if len(found) != len(set(chunk)):
                raise ApiError(400, "One or more users do not exist.", "invalid_body")
        db.executemany("INSERT OR IGNORE INTO organization_members (org_id, user_id) VALUES (?, ?)",
                       [(org_id, u) for u in user_ids])


def assign_member_roles(store: Store, org_id: str, user_id: str, role_ids: list[str]) -> None:
    with store.tx() as db:
        if db.execute("SELECT 1 FROM organization_members WHERE org_id = ? AND user_id = ?",
                      (org_id, user_id)).fetchone() is None:
            raise ApiError(400, f"The user {user_id} is not a member of the organization.", "invalid_body")
        marks = ",".join("?" * len(role_ids))
        found = {r["id"] for r in db.execute(f"SELECT id FROM roles WHERE id IN ({marks})", role_ids)}
        missing = [r for r in role_ids if r not in found]
        if missing:
            raise ApiError(400, f"One or more of the roles do not exist: {', '.join(missing)}", "invalid_body")
        db.executemany("INSERT OR IGNORE INTO organization_member_roles (org_id, user_id, role_id) VALUES (?, ?, ?)",
                       [(org_id, user_id, r) for r in role_ids])


def _connection_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"connection_id": row["connection_id"],
            "assign_membership_on_login": bool(row["assign_membership_on_login"]),
            "is_signup_enabled": bool(row["is_signup_enabled"]), "show_as_button": bool(row["show_as_button"]),
            "connection": {"name": row["name"], "strategy": row["strategy"]}}


# --- checkpoints ---------------------------------------------------------------------------------



def _checkpointed(ctx: Ctx) -> bool:
    params = ctx.request.query_params
    return "from" in params or "take" in params


# --- organizations -------------------------------------------------------------------------------

@router.route("POST", "/api/v2/organizations", scopes=["create:organizations", "create:organization_connections"])
async def create_org(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    org = create_organization(ctx.store, body["name"], body.get("display_name"))
    for item in body.get("enabled_connections") or []:
        enable_connection(ctx.store, org["id"], item["connection_id"],
                          assign_membership_on_login=bool(item.get("assign_membership_on_login", False)))
    return ctx.json(org_json(org), 201)


@router.route("GET", "/api/v2/organizations", scopes=["read:organizations", "read:organizations_summary"])
async def list_orgs(ctx: Ctx) -> Response:
    if _checkpointed(ctx):
        take = ctx.int_query("take", 50, 1, 100)
        after = decode_checkpoint("organizations", ctx.query("from") or "") if ctx.query("from") else 0
        rows = ctx.store.query("SELECT * FROM organizations WHERE pk > ? ORDER BY pk LIMIT ?", (after, take + 1))
        body: dict[str, Any] = {"organizations": [org_json(r) for r in rows[:take]]}
        if len(rows) > take:
            body["next"] = encode_checkpoint("organizations", rows[take - 1]["pk"])
        return ctx.json(body)
    rows = ctx.store.query("SELECT * FROM organizations ORDER BY pk")
    return paged(ctx, [org_json(r) for r in rows], "organizations")


@router.route("GET", "/api/v2/organizations/{id}", scopes=["read:organizations", "read:organizations_summary"])
async def get_org(ctx: Ctx) -> Response:
    return ctx.json(org_json(require_org(ctx.store, ctx.path("id"))))


@router.route("GET", "/api/v2/organizations/name/{name}", scopes=["read:organizations"])
async def get_org_by_name(ctx: Ctx) -> Response:
    row = ctx.store.one("SELECT * FROM organizations WHERE name = ?", (ctx.path("name"),))
    if row is None:
        raise not_found("No organization found by that id or name", "inexistent_organization")
    return ctx.json(org_json(row))


# --- enabled connections ------------------------------------------------------------------------

@router.route("GET", "/api/v2/organizations/{id}/enabled_connections", scopes=["read:organization_connections"])
async def list_org_connections(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    rows = ctx.store.query("SELECT oc.*, c.name, c.strategy FROM organization_connections oc JOIN connections c ON "
                           "c.id = oc.connection_id WHERE oc.org_id = ? ORDER BY c.name", (org["id"],))
    return paged(ctx, [_connection_json(r) for r in rows], "enabled_connections")


@router.route("POST", "/api/v2/organizations/{id}/enabled_connections", scopes=["create:organization_connections"])
async def add_org_connection(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    body = await ctx.json_body()
    row = enable_connection(ctx.store, org["id"], body["connection_id"],
                            assign_membership_on_login=bool(body.get("assign_membership_on_login", False)),
                            is_signup_enabled=bool(body.get("is_signup_enabled", False)),
                            show_as_button=bool(body.get("show_as_button", True)))
    return ctx.json(_connection_json(row), 201)


# --- members -------------------------------------------------------------------------------------

_MEMBERS_SQL = """
SELECT m.pk, m.user_id, u.email, json_extract(u.profile, '$.picture') AS picture,
       json_extract(u.profile, '$.name') AS name
FROM organization_members m
LEFT JOIN users u ON u.pk = (SELECT MIN(pk) FROM users WHERE user_id = m.user_id)
WHERE m.org_id = ? {where} ORDER BY m.pk LIMIT ? {offset}
"""


def _member_fields(ctx: Ctx) -> set[str]:
    raw = ctx.query("fields")
    if not raw:
        return {"user_id", "email", "picture", "name"}
    named = [f.strip() for f in raw.split(",")]
    if any(f not in MEMBER_FIELDS for f in named):
        raise query_error("fields", f"String does not match pattern: {raw}")
    chosen = set(named) if ctx.bool_query("include_fields", True) else set(MEMBER_FIELDS) - set(named)
    if "roles" in chosen and "read:organization_member_roles" not in str(ctx.claims.get("scope", "")).split():
        raise ApiError(403, "Insufficient scope; expected any of: read:organization_member_roles", "insufficient_scope")
    return chosen


def _members_json(store: Store, org_id: str, rows: list[sqlite3.Row], fields: set[str]) -> list[dict[str, Any]]:
    roles: dict[str, list[dict[str, str]]] = {}
    if "roles" in fields and rows:
        marks = ",".join("?" * len(rows))
        for r in store.query("SELECT mr.user_id, r.id, r.name FROM organization_member_roles mr JOIN roles r ON "
                             f"r.id = mr.role_id WHERE mr.org_id = ? AND mr.user_id IN ({marks}) ORDER BY r.name",
                             (org_id, *[row["user_id"] for row in rows])):
            roles.setdefault(r["user_id"], []).append({"id": r["id"], "name": r["name"]})
    members = []
    for row in rows:
        item: dict[str, Any] = {}
        for key in ("user_id", "email", "picture", "name"):
            if key in fields and isinstance(row[key], str):
                item[key] = row[key]
        if "roles" in fields:
            item["roles"] = roles.get(row["user_id"], [])
        members.append(item)
    return members


@router.route("GET", "/api/v2/organizations/{id}/members", scopes=["read:organization_members"])
async def list_members(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    fields = _member_fields(ctx)
    if _checkpointed(ctx):
        take = ctx.int_query("take", 50, 1, 100)
        after = decode_checkpoint(org["id"], ctx.query("from") or "") if ctx.query("from") else 0
        rows = ctx.store.query(_MEMBERS_SQL.format(where="AND m.pk > ?", offset=""), (org["id"], after, take + 1))
        body: dict[str, Any] = {"members": _members_json(ctx.store, org["id"], rows[:take], fields)}
        if len(rows) > take:
            body["next"] = encode_checkpoint(org["id"], rows[take - 1]["pk"])
        return ctx.json(body)
    page, per_page = offset_window(ctx)
    rows = ctx.store.query(_MEMBERS_SQL.format(where="", offset="OFFSET ?"), (org["id"], per_page, page * per_page))
    members = _members_json(ctx.store, org["id"], rows, fields)
    if not ctx.bool_query("include_totals", False):
        return ctx.json(members)
    total = ctx.store.row("SELECT COUNT(*) AS n FROM organization_members WHERE org_id = ?", (org["id"],))["n"]
    return ctx.json({"members": members, "start": page * per_page, "limit": per_page, "total": total})


@router.route("POST", "/api/v2/organizations/{id}/members", scopes=["create:organization_members"])
async def post_members(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    user_ids = list(dict.fromkeys((await ctx.json_body())["members"]))
    if len(user_ids) > MAX_MEMBERS_PER_CALL:
        raise ApiError(400, f"At most {MAX_MEMBERS_PER_CALL} members can be added at once.", "invalid_body")
    add_members(ctx.store, org["id"], user_ids)
    return ctx.empty(204)


@router.route("DELETE", "/api/v2/organizations/{id}/members", scopes=["delete:organization_members"])
async def delete_members(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    user_ids = list(dict.fromkeys((await ctx.json_body())["members"]))
    with ctx.store.tx() as db:
        db.executemany("DELETE FROM organization_members WHERE org_id = ? AND user_id = ?",
                       [(org["id"], u) for u in user_ids])
        db.executemany("DELETE FROM organization_member_roles WHERE org_id = ? AND user_id = ?",
                       [(org["id"], u) for u in user_ids])
    return ctx.empty(204)


# --- member roles --------------------------------------------------------------------------------

@router.route("GET", "/api/v2/organizations/{id}/members/{user_id}/roles", scopes=["read:organization_member_roles"])
async def list_member_roles(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    rows = ctx.store.query("SELECT r.* FROM organization_member_roles mr JOIN roles r ON r.id = mr.role_id "
                           "WHERE mr.org_id = ? AND mr.user_id = ? ORDER BY r.name COLLATE NOCASE, r.pk",
                           (org["id"], ctx.path("user_id")))
    return paged(ctx, [role_json(r) for r in rows], "roles")


@router.route("POST", "/api/v2/organizations/{id}/members/{user_id}/roles",
              scopes=["create:organization_member_roles"])
async def post_member_roles(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    role_ids = list(dict.fromkeys((await ctx.json_body())["roles"]))
    assign_member_roles(ctx.store, org["id"], ctx.path("user_id"), role_ids)
    return ctx.empty(204)


@router.route("DELETE", "/api/v2/organizations/{id}/members/{user_id}/roles",
              scopes=["delete:organization_member_roles"])
async def delete_member_roles(ctx: Ctx) -> Response:
    org = require_org(ctx.store, ctx.path("id"))
    role_ids = list(dict.fromkeys((await ctx.json_body())["roles"]))
    with ctx.store.tx() as db:
        db.executemany("DELETE FROM organization_member_roles WHERE org_id = ? AND user_id = ? AND role_id = ?",
                       [(org["id"], ctx.path("user_id"), r) for r in role_ids])
    return ctx.empty(204)


# --- a user's organizations ----------------------------------------------------------------------

@router.route("GET", "/api/v2/users/{id}/organizations", scopes=["read:organizations"])
async def list_user_orgs(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    rows = ctx.store.query("SELECT o.* FROM organization_members m JOIN organizations o ON o.id = m.org_id "
                           "WHERE m.user_id = ? ORDER BY o.name", (user["user_id"],))
    return paged(ctx, [org_json(r) for r in rows], "organizations")
