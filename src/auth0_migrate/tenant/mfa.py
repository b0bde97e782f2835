"""Users' MFA factors in the local tenant: held in the store, imported, listed masked, handed out by "support".

* A user holds factors (`mfa_factors` table, one row each, keyed by the user's row so that two
  connections' copies of one id keep their own, and deleted with the user by the foreign key): `totp`
  (its secret), `phone` (E.164 number), `email`, and the kinds Auth0's import cannot take: `push`,
  `webauthn-roaming`, `webauthn-platform`, `recovery-code`. `enroll` adds one (seeding, tests,
  bench); an import creates those of its users' `mfa_factors` (`add_imported`).
* A user with factors shows `multifactor: ["guardian"]` in `GET /users/{id}` and in exports, as Auth0
  shows the provider of Guardian enrollments (a list of provider names, never factor types).
* `GET /api/v2/users/{id}/authentication-methods` (read:authentication_methods): the factors, offset
  paged (`page`, `per_page` <= 100, `include_totals`), values masked as the recorded answers show them
  (go-auth0 recording TestUserManager_AuthenticationMethods): an email `chuck334@example.com` reads
  `chuc****@exam*******`, `foo@example.com` reads `****@exam*******`; a phone `+44207183875044` reads
  `XXXXXXXXXXX5044`; a TOTP factor shows no secret at all.
* `export_secrets`: the file `tenant export-mfa-secrets` writes, our stand-in for what Auth0 support
  hands out with the password hashes (its real layout is not published): one NDJSON line per user of
  a connection holding a TOTP, phone or email factor, `{"user_id", "email", "mfa_factors": [...]}` with
  the factors in the import's own shape (`{"totp": {"secret"}}`, `{"phone": {"value"}}`,
  `{"email": {"value"}}`). It holds secrets: the CLI writes it 0600.

Choices where Auth0 is silent
-----------------------------
- The masking rule beyond the two recorded emails and one phone: an email shows all but the last four
  characters of its local part (none when it has four or fewer) then `****`, and the first four
  characters of its domain then one `*` per remaining character; a phone shows `X` for all but its last
  four characters. Both fit every recorded value.
- An import with `upsert` that matches an existing user leaves its factors as they are: Auth0 documents
  `mfa_factors` for creating users and says nothing of an upsert; the tool never upserts factors.
- Factors of one user are listed in the order they were enrolled, each `confirmed: true` (an imported
  factor needs no confirmation); a phone factor carries `preferred_authentication_method: "sms"` and
  its `sms` method, as the recording shows.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any, TextIO

from starlette.responses import Response

from .directory import connection_by_name, iso, require_user
from .http import Ctx, Router, paged
from .store import Store, dumps, loads
from .support_export import UnknownConnectionError

router = Router()

SCHEMA = """
CREATE TABLE IF NOT EXISTS mfa_factors (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    user_pk INTEGER NOT NULL REFERENCES users(pk) ON DELETE CASCADE,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    value TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mfa_factors_user ON mfa_factors(user_pk);
"""

IMPORTABLE: tuple[str, ...] = ("totp", "phone", "email")
"""The factor types Auth0's import takes (`mfa_factors` items), each with its one value field."""
VALUE_FIELD = {"totp": "secret", "phone": "value", "email": "value"}
OTHER_TYPES: tuple[str, ...] = ("push", "webauthn-roaming", "webauthn-platform", "recovery-code")
"""Factors a user can hold that no import can carry (the user enrols again)."""
PROVIDER = "guardian"


def _factor_id(kind: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return f"{kind}|dev_" + "".join(secrets.choice(alphabet) for _ in range(16))


def _add(db: sqlite3.Connection, user: sqlite3.Row, kind: str, value: str | None, now: float) -> None:
    db.execute("INSERT INTO mfa_factors (user_pk, id, type, value, created_at) VALUES (?, ?, ?, ?, ?)",
               (user["pk"], _factor_id(kind), kind, value, now))
    profile = loads(user["profile"])
    if profile.get("multifactor") != [PROVIDER]:
        profile["multifactor"] = [PROVIDER]
        db.execute("UPDATE users SET profile = ? WHERE pk = ?", (dumps(profile), user["pk"]))


def enroll(store: Store, user_id: str, kind: str, value: str | None = None, now: float = 0.0,
           connection: str | None = None) -> None:
    """Give a user (the first with this id, or the one in `connection`) a factor; `value` for totp/phone/email."""
    if kind in IMPORTABLE and not value:
        raise ValueError(f"a {kind} factor needs its value")
    if kind not in IMPORTABLE and kind not in OTHER_TYPES:
        raise ValueError(f"unknown factor type {kind!r}")
    with store.tx() as db:
        if connection is None:
            user = db.execute("SELECT * FROM users WHERE user_id = ? ORDER BY pk LIMIT 1", (user_id,)).fetchone()
        else:
            user = db.execute("SELECT u.* FROM users u JOIN connections c ON c.id = u.connection_id "
                              "WHERE u.user_id = ? AND c.name = ?", (user_id, connection)).fetchone()
        if user is None:
            raise LookupError(f"no user {user_id}")
        _add(db, user, kind, value if kind in IMPORTABLE else None, now)


def add_imported(db: sqlite3.Connection, user: sqlite3.Row, factors: list[dict[str, Any]], now: float) -> None:
    """The `mfa_factors` of an imported user (already validated: each item one of totp, phone, email)."""
    for item in factors:
        for kind, body in item.items():
            _add(db, user, kind, body[VALUE_FIELD[kind]], now)
            user = db.execute("SELECT * FROM users WHERE pk = ?", (user["pk"],)).fetchone()


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    shown = local[:max(0, len(local) - 4)]
    return f"{shown}****@{domain[:4]}{'*' * max(0, len(domain) - 4)}"


def mask_phone(phone: str) -> str:
    return "X" * max(0, len(phone) - 4) + phone[-4:]


def method_json(row: sqlite3.Row) -> dict[str, Any]:
    """A factor as `GET /users/{id}/authentication-methods` shows it (values masked, no secret)."""
    body: dict[str, Any] = {"id": row["id"], "type": row["type"], "confirmed": True}
    if row["type"] == "email" and row["value"]:
        body["email"] = mask_email(row["value"])
    elif row["type"] == "phone" and row["value"]:
        body["phone_number"] = mask_phone(row["value"])
        body["preferred_authentication_method"] = "sms"
        body["authentication_methods"] = [{"id": "sms|" + row["id"].split("|", 1)[1], "type": "sms"}]
    body["created_at"] = iso(row["created_at"])
    return body


@router.route("GET", "/api/v2/users/{id}/authentication-methods", scopes=["read:authentication_methods"])
async def list_methods(ctx: Ctx) -> Response:
    user = require_user(ctx.store, ctx.path("id"))
    rows = ctx.store.query("SELECT * FROM mfa_factors WHERE user_pk = ? ORDER BY pk", (user["pk"],))
    return paged(ctx, [method_json(r) for r in rows], "authenticators")


def export_secrets(store: Store, connection_name: str, out: TextIO) -> int:
    """Write the MFA-secrets NDJSON of one connection to `out` (see the module doc); returns the lines written.

    Raises `UnknownConnectionError` when the connection does not exist.
    """
    connection = connection_by_name(store, connection_name)
    if connection is None:
        raise UnknownConnectionError(f"no connection named {connection_name!r} in this tenant")
    with store.lock:
        rows = store.conn.execute(
            "SELECT u.user_id, u.email, f.type, f.value FROM mfa_factors f JOIN users u ON u.pk = f.user_pk "
            f"WHERE u.connection_id = ? AND f.type IN {IMPORTABLE!r} ORDER BY u.pk, f.pk",
            (connection["id"],)).fetchall()
    lines: dict[str, dict[str, Any]] = {}
    for row in rows:
        line = lines.setdefault(row["user_id"], {"user_id": row["user_id"], "email": row["email"],
                                                 "mfa_factors": []})
        line["mfa_factors"].append({row["type"]: {VALUE_FIELD[row["type"]]: row["value"]}})
    out.write("".join(dumps(line) + "\n" for line in lines.values()))
    return len(lines)
