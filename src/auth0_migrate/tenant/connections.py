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

* `PATCH /api/v2/connections/{id}` (update:connections): the OAS's writable properties; `options`
  is replaced whole, `enabled_clients` replaces the set of enabled clients.
* `GET /api/v2/connections/{id}/clients` (read:connections): checkpoint paged
  (`take` 1-1000, default 50; `from`): `{"clients": [{"client_id": ...}], "next": ...}`.
* `PATCH /api/v2/connections/{id}/clients` (update:connections): a list of at most 50
  `{client_id, status}`; enables (`true`) or disables (`false`) the connection for each; 204.

Enabled clients: Auth0 allows a bulk import only into a connection enabled for at least one
application (its documented prerequisite). `POST /connections` without `enabled_clients` makes a
connection enabled for NO client, as Auth0's API does ("If the property is not specified, no
clients are enabled", the `enabled_clients` description in Auth0's API reference).

Choices where Auth0 is silent:

- an import job into a connection enabled for no client is refused at the POST with 400
  `connection_not_enabled` and a message that names the connection and the fix (Auth0's exact
  answer is undocumented: reference/real-auth0-traffic-and-user-data.md §4, open question 4, "job
  `failed`, or 400 at the POST?"). Refusing at once, rather than making a job
  that fails, is what a caller can act on and what the tool checks up front anyway;
- `enabled_clients` naming a client the tenant does not have is 404 "The client does not exist"
  (the OAS's answer for `PATCH /connections/{id}/clients`), on POST and PATCH of the connection too;
- a connection made directly in the store (`directory.create_connection`, used by tests and seeding
  code that bypasses the API) is enabled for no client either; `enable_clients` enables it;
- `GET /connections/{id}/clients` lists clients in the order they were enabled.

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
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from . import directory, oauth
from .errors import ApiError, query_error
from .http import Ctx, Router, paged
from .store import dumps, loads

# Attributes of a connection that `directory.connections` has no column for.
SCHEMA = """
CREATE TABLE IF NOT EXISTS connection_attrs (
    id TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    attrs TEXT NOT NULL
);
"""

router = Router()


CLIENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS connection_clients (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    PRIMARY KEY (connection_id, client_id)
);
"""

ID_PATTERN = r"^con_[A-Za-z0-9]{16}$"
FIELD_NAMES = ("name", "display_name", "strategy", "options", "id", "provisioning_ticket_url", "metadata",
               "show_as_button", "clients", "authentication", "connected_accounts",
               "cross_app_access_requesting_app", "cross_app_access_resource_app", "enabled_clients")
_ONE = "|".join(f"({n})" for n in FIELD_NAMES)
FIELDS_PATTERN = f"^({_ONE})(,({_ONE}))*$"

# ConnectionStrategyEnum (the GET filter): ConnectionIdentityProviderEnum (POST's) and auth0-adldap.
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

ATTR_PROPS = ("display_name", "is_domain_connection", "show_as_button", "realms", "metadata", "authentication",
              "connected_accounts")
NOT_ENABLED = ('The connection "{name}" ({id}) is not enabled for any application, and Auth0 imports users only into'
               ' a connection enabled for at least one. Enable it for an application (Dashboard > Authentication >'
               ' Database > {name} > Applications, or PATCH /api/v2/connections/{id}/clients) and import again.')


# --- enabled clients ------------------------------------------------------------------------

def enabled_clients(store: Any, connection_id: str) -> list[str]:
    return [r["client_id"] for r in store.query("SELECT client_id FROM connection_clients WHERE connection_id = ?"
                                                " ORDER BY rowid", (connection_id,))]


def enable_clients(store: Any, connection_id: str, client_ids: Sequence[str], enabled: bool = True) -> None:
    """Enable (or disable) the connection for these clients."""
    with store.tx() as db:
        for client_id in client_ids:
            if enabled:
                db.execute("INSERT OR IGNORE INTO connection_clients (connection_id, client_id) VALUES (?, ?)",
                           (connection_id, client_id))
            else:
                db.execute("DELETE FROM connection_clients WHERE connection_id = ? AND client_id = ?",
                           (connection_id, client_id))


def require_enabled_client(store: Any, connection: sqlite3.Row) -> None:
    """Refuse work that Auth0 allows only on a connection enabled for an application (bulk import)."""
    if not enabled_clients(store, connection["id"]):
        raise ApiError(400, NOT_ENABLED.format(name=connection["name"], id=connection["id"]),
                       "connection_not_enabled")


def _check_clients_exist(store: Any, client_ids: Sequence[str]) -> None:
    for client_id in client_ids:
        if not oauth.client_exists(store, client_id):
            raise ApiError(404, "The client does not exist", "inexistent_client")


# --- shapes -----------------------------------------------------------------------------------

def connection_body(store: Any, row: sqlite3.Row, *, for_list: bool = False) -> dict[str, Any]:
    body = directory.connection_json(row)
    extra = store.one("SELECT attrs FROM connection_attrs WHERE id = ?", (row["id"],))
    if extra is not None:
        body.update(loads(extra["attrs"]))
    body["enabled_clients"] = enabled_clients(store, row["id"])
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
    where: list[str] = ["1"]
    args: list[Any] = []
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

def _check_strategy(body: dict[str, Any]) -> None:
    if body["strategy"] != "auth0":
        raise ApiError(400, f'The local tenant only supports database connections (strategy "auth0"), not '
                            f'"{body["strategy"]}".', "operation_not_supported")


@router.route("POST", "/api/v2/connections", scopes=["create:connections"])
async def create_connection(ctx: Ctx) -> Response:
    body = await ctx.json_body()
    _check_strategy(body)
    attrs = {k: body[k] for k in ATTR_PROPS if k in body}
    if not attrs.get("realms"):
        attrs.pop("realms", None)  # an empty list means "the connection name", the default
    clients = list(dict.fromkeys(body.get("enabled_clients") or []))
    _check_clients_exist(ctx.store, clients)
    with ctx.store.tx() as db:
        row = directory.create_connection(ctx.store, body["name"], "auth0", ctx.now,
                                          body.get("options") or {})
        if attrs:
            db.execute("INSERT INTO connection_attrs (id, attrs) VALUES (?, ?)", (row["id"], dumps(attrs)))
        enable_clients(ctx.store, row["id"], clients)
    return ctx.json(connection_body(ctx.store, row), 201)


# --- PATCH /connections/{id} ------------------------------------------------------------------

def _require_connection(ctx: Ctx) -> sqlite3.Row:
    row = directory.get_connection(ctx.store, _check_id(ctx))
    if row is None:
        raise ApiError(404, "The connection does not exist.", "inexistent_connection")
    return row


@router.route("PATCH", "/api/v2/connections/{id}", scopes=["update:connections"])
async def update_connection(ctx: Ctx) -> Response:
    row = _require_connection(ctx)
    body = await ctx.json_body()
    clients = body.get("enabled_clients")
    if clients is not None:
        clients = list(dict.fromkeys(clients))
        _check_clients_exist(ctx.store, clients)
    with ctx.store.tx() as db:
        stored = ctx.store.one("SELECT attrs FROM connection_attrs WHERE id = ?", (row["id"],))
        attrs = loads(stored["attrs"]) if stored is not None else {}
        attrs.pop("enabled_clients", None)
        attrs.update({k: body[k] for k in ATTR_PROPS if k in body})
        if not attrs.get("realms"):
            attrs.pop("realms", None)
        db.execute("INSERT OR REPLACE INTO connection_attrs (id, attrs) VALUES (?, ?)", (row["id"], dumps(attrs)))
        if "options" in body:
            db.execute("UPDATE connections SET options = ? WHERE id = ?", (dumps(body["options"] or {}), row["id"]))
        if clients is not None:
            db.execute("DELETE FROM connection_clients WHERE connection_id = ?", (row["id"],))
            enable_clients(ctx.store, row["id"], clients)
    return ctx.json(connection_body(ctx.store, ctx.store.row("SELECT * FROM connections WHERE id = ?", (row["id"],))))


# --- GET/PATCH /connections/{id}/clients ------------------------------------------------------

@router.route("GET", "/api/v2/connections/{id}/clients", scopes=["read:connections"])
async def list_enabled_clients(ctx: Ctx) -> Response:
    row = _require_connection(ctx)
    take = ctx.int_query("take", 50, 1, 1000)
    start = ctx.query("from")
    where, args = "connection_id = ?", [row["id"]]
    if start:
        try:
            position = int(base64.urlsafe_b64decode(start + "=" * (-len(start) % 4)).decode().removeprefix("cc:"))
        except ValueError:
            raise query_error("from", f"Invalid checkpoint: {start}") from None
        where += " AND rowid >= ?"
        args.append(position)
    rows = ctx.store.query(f"SELECT rowid AS pos, client_id FROM connection_clients WHERE {where} ORDER BY rowid"
                           " LIMIT ?", [*args, take + 1])
    body: dict[str, Any] = {"clients": [{"client_id": r["client_id"]} for r in rows[:take]]}
    if len(rows) > take:
        body["next"] = base64.urlsafe_b64encode(f"cc:{rows[take]['pos']}".encode()).decode().rstrip("=")
    return ctx.json(body)


@router.route("PATCH", "/api/v2/connections/{id}/clients", scopes=["update:connections"])
async def update_enabled_clients(ctx: Ctx) -> Response:
    row = _require_connection(ctx)
    items = await ctx.json_value()
    _check_clients_exist(ctx.store, [item["client_id"] for item in items])
    with ctx.store.tx():
        for item in items:
            enable_clients(ctx.store, row["id"], [item["client_id"]], item["status"])
    return ctx.empty(204)


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
