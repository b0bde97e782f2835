"""Roles: create, list (by name, case-insensitively), read, update and delete.

What a role holds, its permissions and its members, is in `grants`.

Choices where Auth0's exact answer is not documented:

- role names are unique as written (case-sensitive); roles list by name, case-insensitively;
- a second role of the same name answers 409 with errorCode `conflict`;
- `DELETE /roles/{id}` answers an empty 200 (the OAS declares no content).

Not served: the 1,000-roles-per-tenant limit.

Example::

    role = mgmt.roles.create(name="editor")
"""

from __future__ import annotations

import sqlite3
from typing import Any

from starlette.responses import Response

from . import directory
from .errors import ApiError, not_found
from .http import Ctx, Router, paged
from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS roles (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT
);
"""

router = Router()


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


@router.route("POST", "/api/v2/roles", scopes=["create:roles"])
async def create_role(ctx: Ctx) -> Response:
    body = await ctx.json_body()
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
    body = await ctx.json_body()
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


