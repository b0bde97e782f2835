"""Stage 2: join the support-ticket hash file onto the exported users, through an index on disk.

`load_hashes` streams the file into the ledger's `hashes` table (only rows of the source
connection's name) before the export is read; the export then joins each user on
`user_id == "auth0|" + (alt_id or _id.$oid)` as it reads it (`credential_for`), so a user's row is
written once. `join_hashes` then settles the rest in SQL: the email only as a fallback, and only
when exactly one unclaimed hash row and exactly one unmatched user share it. Both directions are
reported: users with no hash, hashes with no user. The table is emptied once the join is done, so
hashes live only on the rows of users still waiting to be imported.

A user id on two or more lines (`settle_repeats`): lines with the same hash are one hash, and the
repeats are reported by line. Lines that disagree are never settled silently, since one of them
may be an old password: by default (`--duplicate-hash hold`) the user is held back,
`CONFLICTING_HASHES`, named with every line number and never with a hash; the owner may choose
`first` or `last` instead, and each such choice is reported by line.

Choices where Auth0 is silent
-----------------------------
- A line with no `passwordHash` and a line with one, for the same user id, disagree: the first may
  mean "this user has no password any more".
- `last` means the last line in the file, not the latest `password_set_date`: the file's order is
  what support gives, and a date that is missing or equal would leave the choice open again.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InputError
from ..ledger import Ledger, dumps
from .context import Job
from .hashes import HashRow, iter_hash_file

BATCH = 5000


def load_hashes(job: Job) -> None:
    """Index the hash file's rows of the source connection in the ledger (one transaction)."""
    ledger = job.ledger
    path = job.options.password_hashes
    if ledger.phase_done("hashes-loaded") or not path:
        return
    if not os.path.isfile(path):
        raise InputError(f"--password-hashes {path}: no such file")
    job.reporter.phase("load password hashes")
    connection = job.source_connection.name
    with ledger.tx():
        db = ledger.db
        db.execute("DELETE FROM hashes")
        db.execute("DELETE FROM problems WHERE kind IN ('hash-file', 'hash-repeat')")
        db.execute("DELETE FROM hash_repeats")
        db.execute("DELETE FROM hash_held")
        batch: list[tuple[str, str | None, str | None, int]] = []
        other_connections = 0
        for item in iter_hash_file(path):
            if not isinstance(item, HashRow):
                whose = f" (user {item.user_id})" if item.user_id else ""
                ledger.add_problem("hash-file", str(item.line_no), f"{path}, {item}{whose}")
                continue
            if item.connection != connection:
                other_connections += 1
                continue
            batch.append((item.user_id, item.email, _cred(item), item.line_no))
            if len(batch) >= BATCH:
                _insert(db, batch)
        _insert(db, batch)
        settle_repeats(ledger, path, job.options.duplicate_hash)
        ledger.set_meta("hash_file", {"other_connections": other_connections})
        ledger.mark_phase("hashes-loaded")


def settle_repeats(ledger: Ledger, path: str, rule: str) -> None:
    """User ids on more than one line: the same hash is used once; different ones follow `rule`.

    `hold` keeps the user's row with no credential and lists it in `hash_held`, for `join_hashes`
    to hold the user back by name; `first` keeps the row as loaded; `last` takes the last line's.
    """
    db = ledger.db
    repeats: dict[str, list[Any]] = {}
    for row in db.execute("SELECT r.user_id, r.line_no, r.credential, h.line_no AS first_line, "
                          "h.credential AS first_credential FROM hash_repeats r JOIN hashes h USING (user_id) "
                          "ORDER BY r.user_id, r.line_no"):
        repeats.setdefault(row["user_id"], []).append(row)
    for user_id, rows in repeats.items():
        first_line = rows[0]["first_line"]
        lines = [first_line, *(r["line_no"] for r in rows)]
        if all(r["credential"] == r["first_credential"] for r in rows):
            ledger.add_problems(("hash-repeat", str(r["line_no"]), f"{path}, line {r['line_no']}: repeats line "
                                 f"{first_line} for user {user_id} (the same hash); used once") for r in rows)
            continue
        listed = ", ".join(map(str, lines[:-1])) + f" and {lines[-1]}"
        if rule == "hold":
            db.execute("UPDATE hashes SET credential = NULL WHERE user_id = ?", (user_id,))
            db.execute("INSERT OR REPLACE INTO hash_held (user_id, lines) VALUES (?, ?)", (user_id, listed))
            continue
        used = rows[-1] if rule == "last" else None
        if used is not None:
            db.execute("UPDATE hashes SET credential = ?, line_no = ? WHERE user_id = ?",
                       (used["credential"], used["line_no"], user_id))
        ledger.add_problem("hash-repeat", str(lines[-1] if used else first_line),
                           f"{path}, lines {listed} give user {user_id} different password hashes; line "
                           f"{lines[-1] if used else first_line} was used (--duplicate-hash {rule})")
    db.execute("DELETE FROM hash_repeats")


def credential_for(ledger: Ledger, source_id: str) -> tuple[bool, str | None]:
    """(whether the hash file gives this user id a hash to use, that row's credential JSON or None).

    A user whose lines disagree (held) is not known here: `join_hashes` holds it back by name.
    """
    row = ledger.db.execute("SELECT credential, (SELECT 1 FROM hash_held WHERE user_id = ?) AS held FROM hashes "
                            "WHERE user_id = ?", (source_id, source_id)).fetchone()
    return (False, None) if row is None or row["held"] else (True, row["credential"])


def join_hashes(job: Job) -> None:
    """The email fallback for users the export could not join by id, and the reports both ways."""
    ledger = job.ledger
    path = job.options.password_hashes
    if ledger.phase_done("hashes") or not path:
        return
    job.reporter.phase("join password hashes")
    connection = job.source_connection.name
    other_connections = (ledger.get_meta("hash_file") or {}).get("other_connections", 0)
    with ledger.tx():
        db = ledger.db
        # 0. users whose hash lines disagree: held back by name (`settle_repeats`), never given either hash
        db.executemany("UPDATE users SET status = 'held_back', stage = 'hashes', code = 'CONFLICTING_HASHES', "
                       "message = ?, hash_match = 'conflict' WHERE source_id = ? AND status = 'exported'",
                       [(f"{path}, lines {r['lines']} give {r['user_id']} different password hashes; held back "
                         "(left in the source) rather than given one that may be old. Correct the file, or choose "
                         "with --duplicate-hash first|last (with a new --state: users already moved are "
                         "recognised)", r["user_id"]) for r in db.execute("SELECT * FROM hash_held").fetchall()])
        # 1. by id
        # (has_credential is set in the same statement: a second pass would rewrite every matched row again)
        db.execute("UPDATE users SET (credential, has_credential, hash_match) = (SELECT h.credential, "
                   "h.credential IS NOT NULL, 'id' FROM hashes h WHERE h.user_id = users.source_id) "
                   "WHERE status = 'exported' AND source_id IN (SELECT user_id FROM hashes)")
        # 2. by email, when unambiguous on both sides
        db.execute("""
            WITH free AS (SELECT * FROM hashes WHERE user_id NOT IN (SELECT source_id FROM users)
                          AND email IS NOT NULL AND user_id NOT IN (SELECT user_id FROM hash_held)),
                 free_once AS (SELECT email FROM free GROUP BY email HAVING COUNT(*) = 1),
                 users_once AS (SELECT email FROM users WHERE hash_match IS NULL AND email IS NOT NULL
                                GROUP BY email HAVING COUNT(*) = 1)
            UPDATE users SET (credential, has_credential, hash_match) =
                             (SELECT f.credential, f.credential IS NOT NULL, 'email' FROM free f
                              WHERE f.email = users.email)
            WHERE hash_match IS NULL AND status = 'exported' AND email IN (SELECT email FROM free_once)
                  AND email IN (SELECT email FROM users_once)""")
        db.execute("UPDATE users SET hash_match = 'none' WHERE hash_match IS NULL")
        # Rows that matched a user but carry no passwordHash: named by line, so the held-back user can be traced.
        empty = db.execute("""SELECT h.line_no, u.source_id FROM hashes h JOIN users u ON u.source_id = h.user_id
                              WHERE h.credential IS NULL AND u.hash_match = 'id'
                              UNION ALL
                              SELECT h.line_no, u.source_id FROM hashes h JOIN users u ON u.email = h.email
                              WHERE h.credential IS NULL AND u.hash_match = 'email'
                                    AND h.user_id NOT IN (SELECT source_id FROM users)
                              ORDER BY 1""").fetchall()
        ledger.add_problems(("hash-without-password", str(r["line_no"]),
                             f"{path}, line {r['line_no']}: no passwordHash (user {r['source_id']})") for r in empty)
        # Hashes with no user: reported by id and line, never with the hash.
        orphans = db.execute("""SELECT user_id, line_no FROM hashes WHERE user_id NOT IN (SELECT source_id FROM users)
                                AND (email IS NULL OR email NOT IN (SELECT email FROM users
                                     WHERE hash_match = 'email'))""").fetchall()
        ledger.add_problems(("hash-without-user", r["user_id"],
                             f"hash file line {r['line_no']}: {r['user_id']} is not a selected user of {connection}")
                            for r in orphans)
        ledger.set_meta("hashes", {"rows": db.execute("SELECT COUNT(*) FROM hashes").fetchone()[0],
                                   "other_connections": other_connections, "without_user": len(orphans)})
        db.execute("DELETE FROM hashes")
        db.execute("DELETE FROM hash_held")
        ledger.mark_phase("hashes")


def _cred(row: HashRow) -> str | None:
    return None if row.credential is None else dumps(row.credential)


def _insert(db, batch: list[tuple[str, str | None, str | None, int]]) -> None:  # noqa: ANN001
    # The first row of a user id stays; later ones go to hash_repeats (trigger) for settle_repeats.
    db.executemany("INSERT OR IGNORE INTO hashes (user_id, email, credential, line_no) VALUES (?, ?, ?, ?)", batch)
    batch.clear()
