"""The grants that hang off APIs and roles: role permissions, role members and users' direct
permissions and roles.

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
- checkpoint paging of role members (`from` or `take` given) honours `include_totals` as the OAS
  says: `true` answers `{users, next}` (recorded: go-auth0 TestRoleManager_UsersCheckpointPagination,
  which sends `include_totals=true&per_page=50&take=2`), `false` or absent a bare array of the page.
  A bare array has no `next`, so such a caller sees one page only: what real Auth0 does there is
  UNCONFIRMED (reference open question 1); no recorded client asks for it;
- limits answer 400 with errorCode `too_many_entities`.

Not served: checkpoint expiry.

The tables (`SCHEMA`) are created with every store; `install` runs at tenant creation
(`app.create_tenant`).

Example::

    mgmt.roles.permissions.add(role.id, permissions=[PermissionRequestPayload(...)])
    for member in mgmt.roles.users.list(role.id, take=50):   # follows `next`
        ...
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from . import directory
from .apis import permission_json, resolve_permissions
from .errors import ApiError
from .http import Ctx, Router, decode_checkpoint, encode_checkpoint, offset_window, paged
from .roles import require_role, role_json
from .state import Tenant
from .store import Store

SCHEMA = """
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

router = Router()

# Entity limits (reference §4, entity-limit policy).
MAX_ROLES_PER_USER = 50
MAX_DIRECT_PERMISSIONS_PER_USER = 1000
MAX_PERMISSIONS_PER_ROLE = 1000


# --- lifecycle ---------------------------------------------------------------------------------

def install(tenant: Tenant) -> None:
    """Drop grants with deleted users; runs once per tenant (store)."""
    store = tenant.store
    store.user_deleted_hooks.append(lambda user_id: drop_user_grants(store, user_id))


def drop_user_grants(store: Store, user_id: str) -> None:
    """Forget every role membership and direct permission held under `user_id` (see module doc)."""
    with store.tx() as db:
        db.execute("DELETE FROM role_members WHERE user_id = ?", (user_id,))
        db.execute("DELETE FROM user_permissions WHERE user_id = ?", (user_id,))



# --- bodies (checked against the OAS schemas by `ctx.json_body`) --------------------------------

def _permission_pairs(body: dict[str, Any]) -> list[tuple[str, str]]:
    """`{"permissions": [{resource_server_identifier, permission_name}]}` -> distinct pairs, in order."""
    return list(dict.fromkeys((p["resource_server_identifier"], p["permission_name"]) for p in body["permissions"]))


def _distinct(body: dict[str, Any], key: str) -> list[str]:
    return list(dict.fromkeys(body[key]))


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
    pairs = _permission_pairs(await ctx.json_body())
    with ctx.store.tx() as db:
        resolved = resolve_permissions(db, pairs)
        held = {(r["resource_server_id"], r["permission_name"]) for r in db.execute(
            f"SELECT resource_server_id, permission_name FROM {table} WHERE {owner_column} = ?", (owner,))}
        if len(held | set(resolved)) > limit:
            raise ApiError(400, f"No more permissions can be assigned to this {whom}.", "too_many_entities")
        db.executemany(f"INSERT OR IGNORE INTO {table} ({owner_column}, resource_server_id, permission_name)"
                       " VALUES (?, ?, ?)", [(owner, rs_id, name) for rs_id, name in resolved])


async def _revoke(ctx: Ctx, table: str, owner_column: str, owner: str) -> None:
    """Remove the body's permissions from a role or a user."""
    pairs = _permission_pairs(await ctx.json_body())
    with ctx.store.tx() as db:
        resolved = resolve_permissions(db, pairs)
        db.executemany(f"DELETE FROM {table} WHERE {owner_column} = ? AND resource_server_id = ?"
                       " AND permission_name = ?", [(owner, rs_id, name) for rs_id, name in resolved])


@router.route("GET", "/api/v2/roles/{id}/permissions", scopes=["read:roles"])
async def list_role_permissions(ctx: Ctx) -> Response:
    role = require_role(ctx.store, ctx.path("id"))
    rows = ctx.store.query(_ROLE_PERMISSIONS_SQL, (role["id"],))
    return paged(ctx, [permission_json(r) for r in rows], "permissions")


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
    page, per_page = offset_window(ctx)
    rows = ctx.store.query(_MEMBERS_SQL.format(where="", offset="OFFSET ?"), (role["id"], per_page, page * per_page))
    users = [_member_json(r) for r in rows]
    if not include_totals:
        return ctx.json(users)
    total = ctx.store.row("SELECT COUNT(*) AS n FROM role_members WHERE role_id = ?", (role["id"],))["n"]
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
    user_ids = _distinct(await ctx.json_body(), "users")
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
            items.append({**permission_json(row), "sources": []})
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
    role_ids = _distinct(await ctx.json_body(), "roles")
    with ctx.store.tx() as db:
        _require_roles(db, role_ids)
        _add_memberships(db, [(r, user["user_id"]) for r in role_ids])
    return ctx.empty(204)


@router.route("DELETE", "/api/v2/users/{id}/roles", scopes=["update:users", "delete:role_members"])
async def remove_user_roles(ctx: Ctx) -> Response:
    user = directory.require_user(ctx.store, ctx.path("id"))
    role_ids = _distinct(await ctx.json_body(), "roles")
    with ctx.store.tx() as db:
        _require_roles(db, role_ids)
        db.executemany("DELETE FROM role_members WHERE role_id = ? AND user_id = ?",
                       [(r, user["user_id"]) for r in role_ids])
    return ctx.empty(204)
