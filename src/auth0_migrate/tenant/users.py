"""Users of the local tenant: create, read, update, delete, search, look up by email.

Routes (scopes as Auth0's, reference §5-§7):

* `POST /api/v2/users` (create:users): a user in a database connection, password stored as bcrypt.
* `GET|PATCH|DELETE /api/v2/users/{id}`: id-only endpoints; with two connections holding the same
  id they act on the user created first, as Auth0's "tend to show the original user" (§6).
  PATCH takes `connection` to pick the copy in that connection instead. PATCH with `password` stores
  a new bcrypt of it and sets the user's `last_password_reset` to the tenant clock's now, as Auth0
  records a password change (the Authentication API's change is not served here: the tenant has no
  `/dbconnections/change_password`, whose real form only sends a reset e-mail).
* `GET /api/v2/users` (read:users): search (`q`, Lucene subset, see `search.py`), paging capped at
  the first 1000 results, `sort`, `fields`; eventually consistent (`faults.search_lag`).
* `GET /api/v2/users-by-email` (read:users): exact, case-sensitive, every connection, immediately
  consistent.

Example (official SDK)::

    mgmt.users.create(connection="Username-Password-Authentication", email="a@example.com", password="x")
    mgmt.users.list(q='email:"a@example.com"', search_engine="v3")
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from . import directory, search
from .errors import ApiError, body_error, query_error
from .http import Ctx, Router
from .store import dumps, loads

router = Router()


BCRYPT_COST = 10
"""Auth0 stores database passwords as bcrypt with 10 rounds."""

MAX_RESULTS = 1000
"""Auth0's search returns at most the first 1000 users of a query."""
PAGING_LIMIT_MESSAGE = ("You can only page through the first 1000 records. See "
                        "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.")

USER_FIELD_NAMES = ("phone_number", "email", "email_verified", "picture", "username", "user_id", "name",
                    "nickname", "created_at", "identities", "app_metadata", "user_metadata", "last_ip",
                    "last_login", "logins_count", "updated_at", "blocked", "family_name", "given_name")
_ONE = "|".join(f"({n})" for n in USER_FIELD_NAMES)
FIELDS_PATTERN = f"^({_ONE})(,({_ONE}))*$"
_FIELDS_RE = re.compile(FIELDS_PATTERN)

NAME_FIELDS = ("given_name", "family_name", "name", "nickname", "picture")


# --- validation -------------------------------------------------------------------------------

def check_metadata(body: dict[str, Any]) -> None:
    """Auth0's rule on metadata field names, which no schema states: no '.' or '$' at any depth."""
    for prop in ("user_metadata", "app_metadata"):
        if prop in body:
            _check_metadata_keys(body[prop], prop)


def _check_metadata_keys(value: Any, prop: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if "." in key or "$" in key:
                raise body_error(f"Metadata keys cannot contain '.' or '$': {key}", prop)
            _check_metadata_keys(inner, prop)
    elif isinstance(value, list):
        for inner in value:
            _check_metadata_keys(inner, prop)


def requested_fields(ctx: Ctx, *, strict: bool) -> tuple[list[str] | None, bool]:
    """(`fields` as a list or None, `include_fields`); strict validates names as the OAS pattern does."""
    raw = ctx.query("fields")
    include = ctx.bool_query("include_fields", True)
    if raw is None or raw == "":
        return None, include
    if strict and not _FIELDS_RE.match(raw):
        raise query_error("fields", f"String does not match pattern {FIELDS_PATTERN}: {raw}")
    return [f.strip() for f in raw.split(",") if f.strip()], include


def project(user: dict[str, Any], fields: list[str] | None, include: bool) -> dict[str, Any]:
    if fields is None:
        return user
    if include:
        return {k: v for k, v in user.items() if k in fields}
    return {k: v for k, v in user.items() if k not in fields}


def connection_name_of(ctx: Ctx, row: sqlite3.Row) -> str:
    if "conn_name" in row:
        return str(row["conn_name"])
    found = ctx.store.one("SELECT name FROM connections WHERE id = ?", (row["connection_id"],))
    return found["name"] if found else ""


def render(ctx: Ctx, row: sqlite3.Row, fields: list[str] | None = None,
           include: bool = True) -> dict[str, Any]:
    return project(directory.user_json(row, connection_name_of(ctx, row)), fields, include)


def _requires_username(conn: sqlite3.Row) -> bool:
    options = loads(conn["options"]) or {}
    return bool(options.get("requires_username"))


def hash_password(password: str) -> dict[str, Any]:
    from .. import passwords

    return {"password_hash": passwords.bcrypt_hash(password, BCRYPT_COST)}


# --- POST /users ------------------------------------------------------------------------------

@router.route("POST", "/api/v2/users", scopes=["create:users"])
async def create_user(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    check_metadata(body)
    conn = directory.connection_by_name(ctx.store, body["connection"])
    if conn is None:
        raise ApiError(400, "Connection does not exist.", "inexistent_connection")
    if conn["strategy"] != "auth0":
        raise ApiError(400, "Connection does not support user creation through the API. It must either be a "
                            "database or passwordless connection.", "operation_not_supported")
    if "email" not in body:
        raise body_error("Missing required property: email")
    if "password" not in body:
        raise body_error("Missing required property: password")
    if "username" in body and not _requires_username(conn):
        raise ApiError(400, "Cannot set username for connection without requires_username.", "invalid_body")
    user_id = body.get("user_id") or None
    if user_id is not None:
        user_id = "auth0|" + user_id
    credential = await run_in_threadpool(hash_password, body["password"])
    fields = {k: v for k, v in body.items() if k not in ("connection", "password", "user_id", "verify_email")}
    with ctx.store.tx() as db:
        if directory.find_conflict(db, conn["id"], email=body["email"], username=body.get("username"),
                                   user_id=user_id):
            raise ApiError(409, "The user already exists.", "auth0_idp_error")
        row = directory.insert_user(db, conn, fields, credential, ctx.now, user_id=user_id)
    return ctx.json(directory.user_json(row, conn["name"]), 201)


# --- GET /users/{id} --------------------------------------------------------------------------

@router.route("GET", "/api/v2/users/{id}", scopes=["read:users"])
async def get_user(ctx: Ctx) -> Response:
    fields, include = requested_fields(ctx, strict=True)
    row = directory.require_user(ctx.store, ctx.path("id"))
    return ctx.json(render(ctx, row, fields, include))


# --- DELETE /users/{id} -----------------------------------------------------------------------

@router.route("DELETE", "/api/v2/users/{id}", scopes=["delete:users"])
async def delete_user(ctx: Ctx) -> Response:
    row = directory.get_user(ctx.store, ctx.path("id"))
    if row is not None:  # Auth0 answers 204 for a user that is already gone
        directory.delete_user_row(ctx.store, row)
    return ctx.empty(204)


# --- PATCH /users/{id} ------------------------------------------------------------------------

_EXCLUSIVE = (("password", "email"), ("password", "email_verified"), ("username", "email"),
              ("username", "email_verified"), ("username", "password"))


def merge_metadata(current: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
    """Auth0's metadata PATCH: root properties merge, `null` deletes one, `{}` clears them all."""
    if patch == {}:
        return {}
    merged = dict(current or {})
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@router.route("PATCH", "/api/v2/users/{id}", scopes=["update:users", "update:users_app_metadata"])
async def update_user(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    check_metadata(body)
    granted = set(str(ctx.claims.get("scope", "")).split())
    if "update:users" not in granted:
        beyond = [k for k in body if k not in ("app_metadata", "user_metadata", "connection")]
        if beyond:
            raise ApiError(403, "Insufficient scope; expected any of: update:users.", "insufficient_scope")
    for a, b in _EXCLUSIVE:
        if a in body and b in body:
            raise ApiError(400, f"Cannot update {a} and {b} simultaneously.", "invalid_body")

    user_id = ctx.path("id")
    if "connection" in body:
        conn = directory.connection_by_name(ctx.store, body["connection"])
        if conn is None:
            raise ApiError(400, "Connection does not exist.", "inexistent_connection")
        row = ctx.store.one("SELECT * FROM users WHERE user_id = ? AND connection_id = ? ORDER BY pk LIMIT 1",
                            (user_id, conn["id"]))
        if row is None:
            raise ApiError(404, "The user does not exist.", "inexistent_user")
    else:
        row = directory.require_user(ctx.store, user_id)
        conn = ctx.store.row("SELECT * FROM connections WHERE id = ?", (row["connection_id"],))

    credential = None
    if isinstance(body.get("password"), str):
        credential = await run_in_threadpool(hash_password, body["password"])

    with ctx.store.tx() as db:
        row = db.execute("SELECT * FROM users WHERE pk = ?", (row["pk"],)).fetchone()
        if row is None:  # deleted while the password was hashed
            raise ApiError(404, "The user does not exist.", "inexistent_user")
        profile = loads(row["profile"])
        columns: dict[str, Any] = {}
        for key in ("blocked", "email_verified", "phone_verified"):
            if key in body:
                profile[key] = body[key]
        for key in NAME_FIELDS:
            if key in body:
                if body[key] is None:
                    profile.pop(key, None)
                else:
                    profile[key] = body[key]
        for key in ("app_metadata", "user_metadata"):
            if key in body:
                profile[key] = merge_metadata(profile.get(key), body[key])
        if "email" in body:
            email = body["email"].lower() if body["email"] is not None else None
            if email != row["email"]:
                taken = db.execute("SELECT 1 FROM users WHERE connection_id = ? AND email = ? AND pk != ?",
                                   (row["connection_id"], email, row["pk"])).fetchone()
                if email and taken:
                    raise ApiError(400, "The specified new email already exists", "auth0_idp_error")
                columns["email"] = email
                if "email_verified" not in body:
                    profile["email_verified"] = False
        if "username" in body:
            username = body["username"]
            if username is not None and not _requires_username(conn):
                raise ApiError(400, "Cannot set username for connection without requires_username.",
                               "invalid_body")
            taken = db.execute("SELECT 1 FROM users WHERE connection_id = ? AND username = ? AND pk != ?",
                               (row["connection_id"], username, row["pk"])).fetchone()
            if username and taken:
                raise ApiError(400, "The specified new username already exists", "auth0_idp_error")
            columns["username"] = username
        if "phone_number" in body:
            columns["phone_number"] = body["phone_number"]
        if credential is not None:
            columns["credential"] = dumps(credential)
            profile["last_password_reset"] = directory.iso(ctx.now)
        columns["profile"] = dumps(profile)
        columns["updated_at"] = ctx.now
        sets = ", ".join(f"{k} = ?" for k in columns)
        db.execute(f"UPDATE users SET {sets} WHERE pk = ?", (*columns.values(), row["pk"]))
        row = db.execute("SELECT * FROM users WHERE pk = ?", (row["pk"],)).fetchone()
    return ctx.json(directory.user_json(row, conn["name"]))


# --- GET /users (search) ----------------------------------------------------------------------

SEARCH_ENGINES = ("v1", "v2", "v3")


@router.route("GET", "/api/v2/users", scopes=["read:users"])
async def list_users(ctx: Ctx) -> Response:
    engine = ctx.query("search_engine") or "v3"
    if engine not in SEARCH_ENGINES:
        raise query_error("search_engine", f'No enum match for: "{engine}"')
    if engine == "v2":
        raise ApiError(400, "You are not allowed to use search_engine=v2. Use search_engine=v3 instead.",
                       "invalid_query_string")
    q = ctx.query("q")
    if engine == "v1" and q:
        raise ApiError(400, "The 'q' parameter is available only if you specify 'search_engine=v2|v3'.",
                       "invalid_query_string")
    page = ctx.int_query("page", 0, 0)
    per_page = ctx.int_query("per_page", 50, 0, 100)
    include_totals = ctx.bool_query("include_totals", False)
    ctx.bool_query("primary_order", True)  # validated; results are always in a deterministic order
    fields, include = requested_fields(ctx, strict=False)
    if page * per_page + per_page > MAX_RESULTS:
        raise ApiError(400, PAGING_LIMIT_MESSAGE, "invalid_paging")
    connection = ctx.query("connection") if engine == "v1" else None
    result = search.search_users(ctx.store, q=q, now=ctx.now, lag=ctx.tenant.faults.search_lag,
                                 offset=page * per_page, limit=per_page, sort=ctx.query("sort"),
                                 connection_name=connection or None, want_total=include_totals)
    ctx.tenant.faults.injected["search_lag"] += result.hidden
    users = [project(directory.user_json(r, r["conn_name"]), fields, include) for r in result.rows]
    if include_totals:
        return ctx.json({"start": page * per_page, "limit": per_page, "length": len(users),
                         "total": result.total, "users": users})
    return ctx.json(users)


# --- GET /users-by-email ----------------------------------------------------------------------

@router.route("GET", "/api/v2/users-by-email", scopes=["read:users"])
async def users_by_email(ctx: Ctx) -> Response:
    email = ctx.query("email")
    if not email:
        raise query_error("email", "Missing required property: email")
    fields, include = requested_fields(ctx, strict=True)
    rows = ctx.store.query("SELECT u.*, c.name AS conn_name FROM users u"
                           " JOIN connections c ON c.id = u.connection_id WHERE u.email = ? ORDER BY u.pk", (email,))
    return ctx.json([project(directory.user_json(r, r["conn_name"]), fields, include) for r in rows])
