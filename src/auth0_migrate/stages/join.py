"""Stage 2: join the support-ticket hash file onto the exported users, through an index on disk.

`load_hashes` streams the file into the ledger's `hashes` table (only rows of the source
connection's name) before the export is read; the export then joins each user on
`user_id == "auth0|" + (alt_id or _id.$oid)` as it reads it (`credential_for`), so a user's row is
written once. `join_hashes` then settles the rest in SQL: the email only as a fallback, and only
when exactly one unclaimed hash row and exactly one unmatched user share it. Both directions are
reported: users with no hash, hashes with no user. The table is emptied once the join is done, so
hashes live only on the rows of users still waiting to be imported.
"""

from __future__ import annotations

import os

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
        db.execute("DELETE FROM problems WHERE kind = 'hash-file'")
        batch: list[tuple[str, str | None, str | None, int]] = []
        other_connections = 0
        duplicates = 0
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
                duplicates += _insert(db, batch)
        duplicates += _insert(db, batch)
        if duplicates:
            ledger.add_problem("hash-file", None, f"{duplicates} hash rows repeat a user id already in the file; "
                                                  "the first row of each was used")
        ledger.set_meta("hash_file", {"other_connections": other_connections})
        ledger.mark_phase("hashes-loaded")


def credential_for(ledger: Ledger, source_id: str) -> tuple[bool, str | None]:
    """(whether the hash file has a row for this user id, that row's credential JSON or None)."""
    row = ledger.db.execute("SELECT credential FROM hashes WHERE user_id = ?", (source_id,)).fetchone()
    return (False, None) if row is None else (True, row[0])


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
        # 1. by id
        # (has_credential is set in the same statement: a second pass would rewrite every matched row again)
        db.execute("UPDATE users SET (credential, has_credential, hash_match) = (SELECT h.credential, "
                   "h.credential IS NOT NULL, 'id' FROM hashes h WHERE h.user_id = users.source_id) "
                   "WHERE status = 'exported' AND source_id IN (SELECT user_id FROM hashes)")
        # 2. by email, when unambiguous on both sides
        db.execute("""
            WITH free AS (SELECT * FROM hashes WHERE user_id NOT IN (SELECT source_id FROM users)
                          AND email IS NOT NULL),
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
        ledger.mark_phase("hashes")


def _cred(row: HashRow) -> str | None:
    return None if row.credential is None else dumps(row.credential)


def _insert(db, batch: list[tuple[str, str | None, str | None, int]]) -> int:  # noqa: ANN001
    before = db.total_changes
    db.executemany("INSERT OR IGNORE INTO hashes (user_id, email, credential, line_no) VALUES (?, ?, ?, ?)", batch)
    inserted = db.total_changes - before
    skipped = len(batch) - inserted
    batch.clear()
    return skipped
