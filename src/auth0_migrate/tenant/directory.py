"""The tenant's connections and users: tables and the data access every route module uses.

A user row keeps the columns that are searched or matched on (user id, connection, email,
username) and the rest of the profile as JSON. `credential` holds the password exactly as it was
given (`{"password_hash": ...}` or `{"custom_password_hash": {...}}`), as Auth0 stores imported
hashes until the first login re-hashes them.

Two connections may hold the same user id (the keep-id hazard). Id-only look-ups answer with the
user created first, as Auth0's id-only endpoints do ("they tend to show the original user").
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError
from .store import Store, dumps, loads

SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    strategy TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    email TEXT,
    username TEXT,
    phone_number TEXT,
    profile TEXT NOT NULL,
    credential TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    visible_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS users_user_id ON users(user_id);
CREATE INDEX IF NOT EXISTS users_conn_email ON users(connection_id, email);
CREATE INDEX IF NOT EXISTS users_conn_username ON users(connection_id, username);
CREATE INDEX IF NOT EXISTS users_email ON users(email);
"""

LINKED_KEY = "__linked"
"""The key of a primary's profile JSON holding its linked secondaries (`identities.py`); never rendered."""
SOCIAL_PROVIDERS = frozenset({"google-oauth2", "facebook", "github", "twitter", "apple", "linkedin", "windowslive",
                              "amazon", "instagram", "line", "paypal", "yahoo", "dropbox", "bitbucket"})

PROFILE_FIELDS = ("email_verified", "phone_verified", "given_name", "family_name", "name", "nickname",
                  "picture", "blocked", "app_metadata", "user_metadata", "last_login", "last_ip",
                  "logins_count", "multifactor")


def iso(ts: float) -> str:
    """Auth0's date format: ISO-8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def new_id(prefix: str, length: int = 16) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


# --- connections -----------------------------------------------------------------------------

def connection_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "strategy": row["strategy"], "options": loads(row["options"]),
            "is_domain_connection": False, "realms": [row["name"]]}


def create_connection(store: Store, name: str, strategy: str = "auth0", now: float = 0.0,
                      options: dict[str, Any] | None = None) -> sqlite3.Row:
    with store.tx() as db:
        if db.execute("SELECT 1 FROM connections WHERE name = ?", (name,)).fetchone():
            raise ApiError(409, "A connection with the same name already exists", "connection_conflict")
        cid = new_id("con_")
        db.execute("INSERT INTO connections (id, name, strategy, options, created_at) VALUES (?, ?, ?, ?, ?)",
                   (cid, name, strategy, dumps(options or {}), now))
        row: sqlite3.Row = db.execute("SELECT * FROM connections WHERE id = ?", (cid,)).fetchone()
    return row


def get_connection(store: Store, connection_id: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM connections WHERE id = ?", (connection_id,))


def connection_by_name(store: Store, name: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM connections WHERE name = ?", (name,))


def delete_connection(store: Store, connection_id: str) -> None:
    """Delete a connection and, as Auth0 does, every user in it."""
    with store.tx() as db:
        ids = [r["user_id"] for r in db.execute("SELECT user_id FROM users WHERE connection_id = ?",
                                                (connection_id,))]
        db.execute("DELETE FROM users WHERE connection_id = ?", (connection_id,))
        db.execute("DELETE FROM connections WHERE id = ?", (connection_id,))
        for user_id in ids:
            store.user_deleted(user_id)


# --- users -----------------------------------------------------------------------------------

def generate_user_id() -> str:
    return "auth0|" + secrets.token_hex(12)


def default_picture(email: str | None) -> str:
    digest = hashlib.md5((email or "").encode(), usedforsecurity=False).hexdigest()
    return f"https://s.gravatar.com/avatar/{digest}?s=480&r=pg&d=mp"


def insert_user(db: sqlite3.Connection, connection: sqlite3.Row, fields: dict[str, Any],
                credential: dict[str, Any] | None, now: float, user_id: str | None = None,
                visible_at: float | None = None) -> sqlite3.Row:
    """Insert a user into `connection` inside the caller's transaction; `fields` as in the import schema.

    Defaults follow Auth0: `email_verified` false, `name` and `nickname` from the email, a gravatar
    picture. The caller checks conflicts first (`find_conflict`).
    """
    email = fields.get("email")
    email = email.lower() if isinstance(email, str) else None
    profile = {k: fields[k] for k in PROFILE_FIELDS if k in fields}
    profile.setdefault("email_verified", False)
    if email:
        profile.setdefault("name", email)
        profile.setdefault("nickname", email.split("@", 1)[0])
    profile.setdefault("picture", default_picture(email))
    uid = user_id or generate_user_id()
    cur = db.execute(
        "INSERT INTO users (user_id, connection_id, email, username, phone_number, profile, credential,"
        " created_at, updated_at, visible_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (uid, connection["id"], email, fields.get("username"), fields.get("phone_number"), dumps(profile),
         dumps(credential) if credential else None, now, now, now if visible_at is None else visible_at))
    created: sqlite3.Row = db.execute("SELECT * FROM users WHERE pk = ?", (cur.lastrowid,)).fetchone()
    return created


def find_conflict(db: sqlite3.Connection, connection_id: str, *, email: str | None = None,
                  username: str | None = None, user_id: str | None = None) -> tuple[str, sqlite3.Row] | None:
    """The first existing user of the connection that matches on email, user id or username."""
    checks = (("email", email.lower() if email else None), ("user_id", user_id), ("username", username))
    for column, value in checks:
        if value:
            row = db.execute(f"SELECT * FROM users WHERE connection_id = ? AND {column} = ? ORDER BY pk LIMIT 1",
                             (connection_id, value)).fetchone()
            if row is not None:
                return column, row
    return None


def get_user(store: Store, user_id: str) -> sqlite3.Row | None:
    """The user with this id; with two users sharing it, the one created first (Auth0's behaviour)."""
    return store.one("SELECT * FROM users WHERE user_id = ? ORDER BY pk LIMIT 1", (user_id,))


def require_user(store: Store, user_id: str) -> sqlite3.Row:
    row = get_user(store, user_id)
    if row is None:
        raise ApiError(404, "The user does not exist.", "inexistent_user")
    return row


def user_json(row: sqlite3.Row, connection_name: str) -> dict[str, Any]:
    """A user as `GET /users/{id}` shows it."""
    profile = loads(row["profile"])
    uid = row["user_id"]
    body: dict[str, Any] = {"user_id": uid}
    if row["email"] is not None:
        body["email"] = row["email"]
    if row["username"] is not None:
        body["username"] = row["username"]
    if row["phone_number"] is not None:
        body["phone_number"] = row["phone_number"]
    body.update(profile)
    body.setdefault("app_metadata", {})
    body.setdefault("user_metadata", {})
    body["created_at"] = iso(row["created_at"])
    body["updated_at"] = iso(row["updated_at"])
    linked = body.pop(LINKED_KEY, None)
    body["identities"] = [identity(uid, connection_name)]
    if linked:
        body["identities"].extend({**identity(entry["row"]["user_id"], entry["connection"]),
                                   "profileData": entry["profileData"]} for entry in linked)
    return body


def provider_of(user_id: str) -> str:
    """The provider part of a user id (`google-oauth2` of `google-oauth2|123`)."""
    return user_id.split("|", 1)[0] if "|" in user_id else "auth0"


def bare_id(user_id: str) -> str:
    """A user id without its `provider|` prefix, as an identity shows it."""
    return user_id.split("|", 1)[1] if "|" in user_id else user_id


def identity(user_id: str, connection_name: str) -> dict[str, Any]:
    """One entry of a user's `identities`, without `profileData`."""
    provider = provider_of(user_id)
    return {"connection": connection_name, "user_id": bare_id(user_id), "provider": provider,
            "isSocial": provider in SOCIAL_PROVIDERS}


def connection_names(store: Store) -> dict[str, str]:
    return {r["id"]: r["name"] for r in store.query("SELECT id, name FROM connections")}


def delete_user_row(store: Store, row: sqlite3.Row) -> None:
    """Delete exactly this user (one connection's copy, with its linked secondaries) and tell grant holders
    about their ids."""
    with store.tx() as db:
        db.execute("DELETE FROM users WHERE pk = ?", (row["pk"],))
        store.user_deleted(row["user_id"])
        # Its linked secondaries go with it, as in Auth0 (they live in its profile: `identities.py`).
        for entry in (loads(row["profile"]) or {}).get(LINKED_KEY) or []:
            store.user_deleted(entry["row"]["user_id"])


def update_profile(db: sqlite3.Connection, row: sqlite3.Row, changes: dict[str, Any], now: float) -> sqlite3.Row:
    """Apply profile changes (already validated) to one user inside the caller's transaction."""
    profile = loads(row["profile"])
    columns: dict[str, Any] = {}
    for key, value in changes.items():
        if key in ("email", "username", "phone_number"):
            columns[key] = value.lower() if key == "email" and isinstance(value, str) else value
        elif key == "credential":
            columns["credential"] = dumps(value) if value else None
        else:
            profile[key] = value
    columns["profile"] = dumps(profile)
    columns["updated_at"] = now
    sets = ", ".join(f"{k} = ?" for k in columns)
    db.execute(f"UPDATE users SET {sets} WHERE pk = ?", (*columns.values(), row["pk"]))
    updated: sqlite3.Row = db.execute("SELECT * FROM users WHERE pk = ?", (row["pk"],)).fetchone()
    return updated
