"""The password-hash file Auth0 support hands out, written from a local tenant's store.

Auth0 never exposes hashes through the API; an owner gets them for a database connection in an
NDJSON file through a support ticket (reference §3.2). The local tenant plays that part, so a
rehearsal can run the whole migration, hash join included. One line per user of the connection,
in creation order, keys in the order of Auth0's sample line::

    {"_id":{"$oid":"5dea9f9c82dd7c0e76e4ec93"},"email_verified":false,"email":"user@example.com",
     "passwordHash":"$2b$10$...","password_set_date":{"$date":"2019-12-06T18:36:12.412Z"},
     "tenant":"example-tenant-name","connection":"Username-Password-Authentication",
     "_tmp_is_unique":true,"identifiers":[{"type":"email","value":"user@example.com","verified":false}]}

* `_id.$oid`: for a user id `auth0|<24 hex>` that hex. Any other id was supplied by someone
  (import, POST /users), so, as Auth0 does for such users, `_id.$oid` is an internal id (here a
  stable 24-hex digest of connection and user id) and `alt_id` carries the supplied id, without
  the `auth0|` prefix: `user_id == "auth0|" + (alt_id or _id.$oid)` holds for every line.
* `passwordHash`, and `password_set_date` with it, only for users that have a password:
  - a plain `password_hash` (bcrypt cost 10, or the bcrypt a login re-hashed to) is exported as is;
  - an imported `custom_password_hash` that is still in place (the user has not logged in since):
    Auth0's behaviour is unknown. Auth0's file only ever carries bcrypt, so our choice is: a
    `bcrypt` custom hash without a `salt` object is exported as its bcrypt string (any prefix and
    cost; whoever imports it wraps non-cost-10 hashes in `custom_password_hash` again), and every
    other custom hash (another algorithm, or bcrypt with an extra salt that a bare bcrypt string
    cannot carry) is left out: no `passwordHash` key, exactly like a user without a password;
  - a user imported without any credential has no `passwordHash` key.
* `password_set_date` is the user's `last_password_reset` when the tenant recorded one (`PATCH
  /users/{id}` with a password stores the new bcrypt and that date together), else its creation
  time: the moment the exported hash was made. (A login that re-hashes an imported hash to bcrypt
  changes the hash, not the password, so the date stays.)

The file holds password hashes: callers open `out` on a 0600 file and never log its lines.

Example::

    with open("hashes.ndjson", "w", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        count = export_hashes(Store("tenant.sqlite"), "Username-Password-Authentication", "local-tenant", out)
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, TextIO

from ..errors import UsageError
from .directory import connection_by_name, iso
from .store import Store, dumps, loads

_OID = re.compile(r"^[0-9a-f]{24}$")


class UnknownConnectionError(UsageError, LookupError):
    """The store has no connection with the name asked for (the CLI exits 2)."""


def export_hashes(store: Store, connection_name: str, tenant_name: str, out: TextIO) -> int:
    """Write the support-ticket hash NDJSON of one connection to `out`; returns the number of lines.

    Raises `UnknownConnectionError` when the connection does not exist.
    """
    connection = connection_by_name(store, connection_name)
    if connection is None:
        raise UnknownConnectionError(f"no connection named {connection_name!r} in this tenant")
    count = 0
    with store.lock:
        cursor = store.conn.execute("SELECT user_id, email, profile, credential, created_at FROM users"
                                    " WHERE connection_id = ? ORDER BY pk", (connection["id"],))
        while rows := cursor.fetchmany(1000):
            out.write("".join(dumps(_line(row, connection["id"], connection_name, tenant_name)) + "\n"
                              for row in rows))
            count += len(rows)
    return count


def _line(row: Any, connection_id: str, connection_name: str, tenant_name: str) -> dict[str, Any]:
    user_id: str = row["user_id"]
    local = user_id[len("auth0|"):] if user_id.startswith("auth0|") else user_id
    supplied = not _OID.match(local)
    oid = hashlib.sha256(f"{connection_id}\0{user_id}".encode()).hexdigest()[:24] if supplied else local
    profile = loads(row["profile"]) or {}
    verified = bool(profile.get("email_verified", False))
    line: dict[str, Any] = {"_id": {"$oid": oid}, "email_verified": verified}
    if row["email"] is not None:
        line["email"] = row["email"]
    password_hash = _exportable_hash(loads(row["credential"]))
    if password_hash is not None:
        line["passwordHash"] = password_hash
        set_at = profile.get("last_password_reset")
        line["password_set_date"] = {"$date": set_at if isinstance(set_at, str) else iso(row["created_at"])}
    line.update({"tenant": tenant_name, "connection": connection_name, "_tmp_is_unique": True})
    if row["email"] is not None:
        line["identifiers"] = [{"type": "email", "value": row["email"], "verified": verified}]
    if supplied:
        line["alt_id"] = local
    return line


def _exportable_hash(credential: Any) -> str | None:
    """The bcrypt string Auth0's file would carry for this stored credential, if any (see module doc)."""
    if not isinstance(credential, dict):
        return None
    plain = credential.get("password_hash")
    if isinstance(plain, str):
        return plain
    custom = credential.get("custom_password_hash")
    if isinstance(custom, dict) and custom.get("algorithm") == "bcrypt" and "salt" not in custom:
        value = (custom.get("hash") or {}).get("value")
        if isinstance(value, str):
            return value
    return None
