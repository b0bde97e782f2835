"""Connections of the local tenant, and deleting one connection's user by email.

Routes (reference §6, OAS `/connections*`):

* `GET /api/v2/connections` (read:connections): filters `name`, `strategy` (repeatable),
  `fields`/`include_fields`; offset paging (`page`/`per_page`/`include_totals`) or checkpoint paging
  (`from`/`take`: `{"connections": [...], "next": "..."}`, `next` absent on the last page). Any
  `from` or `take` selects checkpoint paging, as the official SDK always sends `take`.
* `GET /api/v2/connections/{id}`: 404 for an unknown id.
* `POST /api/v2/connections` (create:connections): database connections only (strategy `auth0`);
  409 for a name in use.
* `DELETE /api/v2/connections/{id}` (delete:connections): the connection and all its users, at
  once; 204 "The connection no longer exists" (the OAS's other answer, 202, is for Auth0's
  background deletion, which the local tenant does not need). An id that is not there answers 204
  too (the OAS declares no 404 for this operation).
* `DELETE /api/v2/connections/{id}/users?email=` (delete:users): deletes that connection's user with
  that email; 204 whether or not one existed; 400 "The connection does not exist" for an unknown
  connection.

Connection ids look like Auth0's (`con_` + 16 letters or digits); a malformed id is a 400 path
validation error, as Auth0 answers.

Example (official SDK)::

    conn = mgmt.connections.create(name="Target-DB", strategy="auth0")
    ids = [c.id for c in mgmt.connections.list(name="Target-DB")]
"""

from __future__ import annotations

import base64
import re
import sqlite3
from typing import Any

from starlette.responses import Response

from . import directory
from .http import ApiError, Ctx, _json_type, body_error, paged, query_error, router
from .store import dumps, loads, register_schema

# Attributes of a connection that `directory.connections` has no column for.
SCHEMA = """
CREATE TABLE IF NOT EXISTS connection_attrs (
    id TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    attrs TEXT NOT NULL
);
"""
register_schema(SCHEMA)

ID_PATTERN = r"^con_[A-Za-z0-9]{16}$"
NAME_PATTERN = r"^[a-zA-Z0-9](-[a-zA-Z0-9]|[a-zA-Z0-9])*$"
FIELD_NAMES = ("name", "display_name", "strategy", "options", "id", "provisioning_ticket_url", "metadata",
               "show_as_button", "clients", "authentication", "connected_accounts",
               "cross_app_access_requesting_app", "cross_app_access_resource_app", "enabled_clients")
_ONE = "|".join(f"({n})" for n in FIELD_NAMES)
FIELDS_PATTERN = f"^({_ONE})(,({_ONE}))*$"

# ConnectionIdentityProviderEnum (POST) and ConnectionStrategyEnum (GET filter, which adds auth0-adldap).
STRATEGIES = (
    "ad", "adfs", "amazon", "apple", "dropbox", "bitbucket", "auth0-oidc", "auth0", "baidu", "bitly", "box",
    "custom", "daccount", "dwolla", "email", "evernote-sandbox", "evernote", "exact", "facebook", "fitbit",
    "github", "google-apps", "google-oauth2", "instagram", "ip", "line", "linkedin", "oauth1", "oauth2",
    "office365", "oidc", "okta", "paypal", "paypal-sandbox", "pingfederate", "planningcenter",
    "salesforce-community", "salesforce-sandbox", "salesforce", "samlp", "sharepoint", "shopify", "shop", "sms",
    "soundcloud", "thirtysevensignals", "twitter", "untappd", "vkontakte", "waad", "weibo", "windowslive",
    "wordpress", "yahoo", "yandex",
)
FILTER_STRATEGIES = (*STRATEGIES, "auth0-adldap")

# ConnectionForList has no enabled_clients (additionalProperties: false); GET by id and POST do.
LIST_KEYS = ("name", "display_name", "options", "id", "strategy", "realms", "is_domain_connection",
             "show_as_button", "metadata", "authentication", "connected_accounts")

CREATE_PROPS = ("name", "display_name", "strategy", "options", "enabled_clients", "is_domain_connection",
                "show_as_button", "realms", "metadata", "authentication", "connected_accounts")


# --- shapes -----------------------------------------------------------------------------------

def connection_body(store: Any, row: sqlite3.Row, *, for_list: bool = False) -> dict[str, Any]:
    body = directory.connection_json(row)
    extra = store.one("SELECT attrs FROM connection_attrs WHERE id = ?", (row["id"],))
    if extra is not None:
        body.update(loads(extra["attrs"]))
    if for_list:
        body = {k: v for k, v in body.items() if k in LIST_KEYS}
    return body


def _fields(ctx: Ctx) -> tuple[list[str] | None, bool]:
    raw = ctx.query("fields")
    include = ctx.bool_query("include_fields", True)
    if raw is None or raw == "":
        return None, include
    if not re.match(FIELDS_PATTERN, raw):
        raise query_error("fields", f"String does not match pattern {FIELDS_PATTERN}: {raw}")
    return raw.split(","), include


def _project(body: dict[str, Any], fields: list[str] | None, include: bool) -> dict[str, Any]:
    if fields is None:
        return body
    return {k: v for k, v in body.items() if (k in fields) == include}


def _check_id(ctx: Ctx) -> str:
    cid = ctx.path("id")
    if not re.match(ID_PATTERN, cid):
        raise ApiError(400, f"Path validation error: 'String does not match pattern {ID_PATTERN}: {cid}' on "
                            f"property id (The id of the connection).", "invalid_uri")
    return cid


# --- GET /connections -------------------------------------------------------------------------

def _encode_next(rowid: int) -> str:
    return base64.urlsafe_b64encode(f"con:{rowid}".encode()).decode().rstrip("=")


def _decode_from(ctx: Ctx, value: str) -> int:
    """The creation position a checkpoint starts at: our `next` token, or a connection id."""
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        if text.startswith("con:"):
            return int(text[4:])
    except ValueError:
        pass
    row = ctx.store.one("SELECT rowid FROM connections WHERE id = ?", (value,))
    if row is None:
        raise query_error("from", f"Invalid checkpoint: {value}")
    return int(row[0])


@router.route("GET", "/api/v2/connections", scopes=["read:connections"])
async def list_connections(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    strategies = params.getlist("strategy")
    for s in strategies:
        if s not in FILTER_STRATEGIES:
            raise query_error("strategy", f'No enum match for: "{s}"')
    name = ctx.query("name")
    fields, include = _fields(ctx)
    where, args = ["1"], []
    if name is not None:
        where.append("name = ?")
        args.append(name)
    if strategies:
        where.append(f"strategy IN ({','.join('?' * len(strategies))})")
        args.extend(strategies)
    checkpoint = "from" in params or "take" in params
    if checkpoint:
        take = ctx.int_query("take", 50, 1, 100)
        start = ctx.query("from")
        if start:
            where.append("rowid >= ?")
            args.append(_decode_from(ctx, start))
        rows = ctx.store.query(f"SELECT rowid AS pos, * FROM connections WHERE {' AND '.join(where)}"
                               f" ORDER BY rowid LIMIT ?", [*args, take + 1])
        page = [_project(connection_body(ctx.store, r, for_list=True), fields, include) for r in rows[:take]]
        body: dict[str, Any] = {"connections": page}
        if len(rows) > take:
            body["next"] = _encode_next(rows[take]["pos"])
        return ctx.json(body)
    rows = ctx.store.query(f"SELECT * FROM connections WHERE {' AND '.join(where)} ORDER BY rowid", args)
    items = [_project(connection_body(ctx.store, r, for_list=True), fields, include) for r in rows]
    return paged(ctx, items, "connections", default_per_page=100)


# --- GET /connections/{id} --------------------------------------------------------------------

@router.route("GET", "/api/v2/connections/{id}", scopes=["read:connections"])
async def get_connection(ctx: Ctx) -> Response:
    cid = _check_id(ctx)
    fields, include = _fields(ctx)
    row = directory.get_connection(ctx.store, cid)
    if row is None:
        raise ApiError(404, "The connection does not exist.", "inexistent_connection")
    return ctx.json(_project(connection_body(ctx.store, row), fields, include))


# --- POST /connections ------------------------------------------------------------------------

def _validate_create(body: dict[str, Any]) -> None:
    extra = [k for k in body if k not in CREATE_PROPS]
    if extra:
        raise body_error(f"Additional properties not allowed: {','.join(extra)}")
    for prop in ("name", "strategy"):
        if prop not in body:
            raise body_error(f"Missing required property: {prop}")
    expected = {"name": "string", "display_name": "string", "strategy": "string", "options": "object",
                "enabled_clients": "array", "is_domain_connection": "boolean", "show_as_button": "boolean",
                "realms": "array", "metadata": "object", "authentication": "object",
                "connected_accounts": "object"}
    for prop, value in body.items():
        if _json_type(value) != expected[prop]:
            raise body_error(f"Expected type {expected[prop]} but found type {_json_type(value)}", prop)
    name = body["name"]
    if len(name) > 128:
        raise body_error(f"String is too long ({len(name)} chars), maximum 128", "name")
    if not re.match(NAME_PATTERN, name):
        raise body_error(f"String does not match pattern {NAME_PATTERN}: {name}", "name")
    display = body.get("display_name", "")
    if len(display) > 128:
        raise body_error(f"String is too long ({len(display)} chars), maximum 128", "display_name")
    for prop in ("enabled_clients", "realms"):
        for item in body.get(prop, []):
            if not isinstance(item, str):
                raise body_error(f"Expected type string but found type {_json_type(item)}", prop)
    metadata = body.get("metadata", {})
    if len(metadata) > 10:
        raise body_error(f"Too many properties defined ({len(metadata)}), maximum 10", "metadata")
    for value in metadata.values():
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise body_error("Metadata values are strings of at most 255 characters", "metadata")
    for prop in ("authentication", "connected_accounts"):
        purpose = body.get(prop)
        if purpose is not None and not isinstance(purpose.get("active"), bool):
            raise body_error("Missing required property: active", prop)
    if body["strategy"] not in STRATEGIES:
        raise body_error(f'No enum match for: "{body["strategy"]}"', "strategy")
    if body["strategy"] != "auth0":
        raise ApiError(400, f'The local tenant only supports database connections (strategy "auth0"), not '
                            f'"{body["strategy"]}".', "operation_not_supported")


@router.route("POST", "/api/v2/connections", scopes=["create:connections"])
async def create_connection(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    _validate_create(body)
    attrs = {k: body[k] for k in ("display_name", "enabled_clients", "is_domain_connection", "show_as_button",
                                  "realms", "metadata", "authentication", "connected_accounts") if k in body}
    if not attrs.get("realms"):
        attrs.pop("realms", None)  # an empty list means "the connection name", the default
    with ctx.store.tx() as db:
        row = directory.create_connection(ctx.store, body["name"], "auth0", ctx.now,
                                          body.get("options") or {})
        if attrs:
            db.execute("INSERT INTO connection_attrs (id, attrs) VALUES (?, ?)", (row["id"], dumps(attrs)))
    return ctx.json(connection_body(ctx.store, row), 201)


# --- DELETE /connections/{id} -----------------------------------------------------------------

@router.route("DELETE", "/api/v2/connections/{id}", scopes=["delete:connections"])
async def delete_connection(ctx: Ctx) -> Response:
    cid = _check_id(ctx)
    if directory.get_connection(ctx.store, cid) is not None:
        directory.delete_connection(ctx.store, cid)
    return ctx.empty(204)


# --- DELETE /connections/{id}/users?email= ----------------------------------------------------

@router.route("DELETE", "/api/v2/connections/{id}/users", scopes=["delete:users"])
async def delete_user_by_email(ctx: Ctx) -> Response:
    email = ctx.query("email")
    if email is None or email == "":
        raise query_error("email", "Missing required property: email")
    cid = ctx.path("id")
    conn = directory.get_connection(ctx.store, cid) if re.match(ID_PATTERN, cid) else None
    if conn is None:
        raise ApiError(400, "The connection does not exist", "inexistent_connection")
    if conn["strategy"] != "auth0":
        raise ApiError(400, "Connection must be a database connection", "invalid_connection")
    row = ctx.store.one("SELECT * FROM users WHERE connection_id = ? AND email = ? ORDER BY pk LIMIT 1",
                        (cid, email.lower()))
    if row is not None and ctx.tenant.faults.deletes_ignored > 0:
        ctx.tenant.faults.deletes_ignored -= 1  # fault switch: the 204 Auth0 gives whether or not it deleted
        ctx.tenant.faults.injected["deletes_ignored"] += 1
    elif row is not None:
        directory.delete_user_row(ctx.store, row)
    return ctx.empty(204)
