"""Every state a user can be in is classified by the summary: migrated, or listed with a reason (issue 12 item 3).

A new status added to `UserStatus` without a place in the summary fails here; one written without being
added to `UserStatus` is refused by the ledger itself (the CHECK on `users.status`).
"""

from __future__ import annotations

import sqlite3
from typing import get_args

import pytest

from auth0_migrate.ledger import MIGRATED, FileStatus, HoldingKind, HoldingState, IdentityStep, Ledger, UserStatus
from auth0_migrate.pipeline import summarize


def test_summary_classifies_every_status(tmp_path) -> None:
    statuses = get_args(UserStatus)
    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger:
        ledger.db.executemany("INSERT INTO users (ordinal, source_id, email, status, code, message) "
                              "VALUES (?, ?, ?, ?, ?, ?)",
                              [(n, f"auth0|{s}", f"{s}@example.com", s, "SOME_CODE", "why")
                               for n, s in enumerate(statuses)])
        result = summarize(ledger)
    counts = result.users
    assert counts["selected"] == len(statuses)
    # Each user in exactly one count ...
    assert sum(counts[k] for k in ("imported", "already_in_target", "held_back", "failed", "pending")) \
        == len(statuses)
    # ... and each one not migrated named in the failures, with a code and a reason.
    listed = {f.user_id: f for f in result.failures}
    assert set(listed) == {f"auth0|{s}" for s in statuses if s not in MIGRATED}
    assert all(f.code and f.message for f in listed.values())
    assert result.exit_code == 3


def test_ledger_refuses_a_status_it_does_not_know(tmp_path) -> None:
    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            ledger.db.execute("INSERT INTO users (ordinal, source_id, status) VALUES (1, 'auth0|x', 'limbo')")
        ledger.db.execute("INSERT INTO users (ordinal, source_id, status) VALUES (1, 'auth0|x', 'ready')")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            ledger.db.execute("UPDATE users SET status = 'done' WHERE ordinal = 1")


@pytest.mark.parametrize(("table", "column", "values", "others"), [
    ("users", "status", get_args(UserStatus), "source_id, ordinal"),
    ("files", "status", get_args(FileStatus), "file_id"),
    ("holdings", "kind", get_args(HoldingKind), "ordinal, item"),
    ("holdings", "state", get_args(HoldingState), "ordinal, item"),
    ("identity_moves", "step", get_args(IdentityStep), "ordinal, item, connection"),
])
def test_each_checked_column_takes_exactly_its_values(tmp_path, table, column, values, others) -> None:
    """The CHECKs are written as `column = 'a' OR ...` (an IN list is rebuilt on every row written, three times
    slower): each value of the Literal is taken, and a value that differs from one only in case or by a space is
    refused, as the IN form refused it."""
    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger:
        sql = next(r[0] for r in ledger.db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)))
        assert f"{column} IN" not in sql
        names = [n.strip() for n in others.split(",")]
        fixed = {"kind": "identity"} if table == "holdings" and column == "state" else {}
        cols = [*names, *fixed, column]

        def insert(n: int, value: str) -> None:
            own = {"source_id": f"auth0|{n}", "ordinal": n, "file_id": n, "item": f"i{n}", "connection": "c"}
            row = [own[c] for c in names] + list(fixed.values()) + [value]
            ledger.db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", row)

        for n, value in enumerate(values):
            insert(n, value)
        for n, bad in enumerate((values[0].upper(), values[0] + " ", "limbo"), start=len(values)):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                insert(n, bad)
        assert ledger.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == len(values)


def test_summary_names_a_user_in_a_state_it_does_not_know(tmp_path) -> None:
    """A ledger written before the CHECK existed may hold anything: such a user is still listed, not lost."""
    path = str(tmp_path / "old.sqlite")
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (ordinal INTEGER PRIMARY KEY, source_id TEXT NOT NULL UNIQUE, email TEXT, "
                "selected INTEGER NOT NULL DEFAULT 1, record TEXT, credential TEXT, has_credential INTEGER NOT NULL "
                "DEFAULT 0, hash_match TEXT, target_id TEXT, status TEXT NOT NULL DEFAULT 'exported', file_id "
                "INTEGER, stage TEXT, code TEXT, message TEXT, perms_read INTEGER NOT NULL DEFAULT 0, perms_restored "
                "INTEGER NOT NULL DEFAULT 0, profile_ok INTEGER, diffs TEXT, grants_ok INTEGER, deleted INTEGER NOT "
                "NULL DEFAULT 0, reapplied INTEGER NOT NULL DEFAULT 0)")
    con.execute("INSERT INTO users (ordinal, source_id, status) VALUES (1, 'auth0|x', 'limbo')")
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")  # what makes it a ledger
    con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    con.commit()
    con.close()
    with Ledger.open(path) as ledger:
        result = summarize(ledger)
    assert result.users["pending"] == 1 and result.exit_code == 3
    [failure] = result.failures
    assert failure.user_id == "auth0|x" and failure.code == "NOT_FINISHED" and "'limbo'" in failure.message


def test_requeue_retries_job_failures_but_never_a_user_whose_hash_is_gone(tmp_path) -> None:
    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger:
        rows = [  # ordinal, code, credential, has_credential
            (1, "JOB_FAILED", '{"password_hash":"h"}', 1),
            (2, "JOB_EXPIRED", None, 0),  # imported without a hash on purpose (--missing-hash import)
            (3, "JOB_FAILED", None, 1),  # an older version cleared its hash
            (4, "FORMAT", None, 1),  # refused for its data: final
        ]
        ledger.db.executemany("INSERT INTO users (ordinal, source_id, email, status, code, message, credential, "
                              "has_credential, file_id) VALUES (?, ?, ?, 'failed', ?, 'why', ?, ?, 7)",
                              [(o, f"auth0|{o}", f"{o}@example.com", c, cred, has) for o, c, cred, has in rows])
        ledger.mark_phase("import")
        assert ledger.requeue_retryable() == 2
        states = {r["ordinal"]: (r["status"], r["code"], r["file_id"])
                  for r in ledger.db.execute("SELECT * FROM users")}
        assert states == {1: ("ready", None, None), 2: ("ready", None, None), 3: ("failed", "HASH_NOT_KEPT", 7),
                          4: ("failed", "FORMAT", 7)}
        assert not ledger.phase_done("import")
        assert ledger.requeue_retryable() == 0
