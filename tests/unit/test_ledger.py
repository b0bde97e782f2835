"""The ledger file: private, locked while a run uses it, readable beside that run, tied to one migration."""

from __future__ import annotations

import os
import stat

import pytest

from auth0_migrate.errors import LedgerError
from auth0_migrate.ledger import SCHEMA_VERSION, Ledger

PRINT = {"source": "a", "target": "a", "user_ids": "regenerate"}


def test_created_private_and_locked(tmp_path) -> None:
    path = str(tmp_path / "state.sqlite")
    with Ledger.open(path, PRINT) as ledger:
        ledger.mark_phase("export")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(LedgerError, match="in use by another auth0-migrate process"):
            Ledger.open(path, PRINT)
        # `status` reads beside the running job.
        with Ledger.open_readonly(path) as reader:
            assert reader.phase_done("export")
    with Ledger.open(path, PRINT) as again:  # the lock went with the first process
        assert again.phase_done("export")


def test_another_migration_is_refused(tmp_path) -> None:
    path = str(tmp_path / "state.sqlite")
    Ledger.open(path, PRINT).close()
    with pytest.raises(LedgerError, match="user_ids"):
        Ledger.open(path, {**PRINT, "user_ids": "keep"})


def test_newer_schema_is_refused(tmp_path) -> None:
    path = str(tmp_path / "state.sqlite")
    with Ledger.open(path, PRINT) as ledger:
        ledger.set_meta("schema_version", SCHEMA_VERSION + 1)
    with pytest.raises(LedgerError, match="newer auth0-migrate"):
        Ledger.open(path, PRINT)


def test_missing_state_for_status(tmp_path) -> None:
    with pytest.raises(LedgerError, match="no state file"):
        Ledger.open_readonly(str(tmp_path / "nothing.sqlite"))


def test_file_states_are_the_literal_and_nothing_else(tmp_path) -> None:
    """Every state an import file takes in a run is a `FileStatus`; a new ledger refuses any other."""
    import json
    import sqlite3
    from typing import get_args

    from auth0_migrate.ledger import FileStatus

    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger:
        ledger.add_file(1, 100, 0)
        seen = [ledger.file(1).status]  # type: ignore[union-attr]
        ledger.file_submitting(1, 12.5)
        seen.append(ledger.file(1).status)  # type: ignore[union-attr]
        assert json.loads(ledger.file(1).summary or "") == {"sent_at": 12.5}  # type: ignore[union-attr]
        ledger.file_submitted(1, "job_1")
        seen.append(ledger.file(1).status)  # type: ignore[union-attr]
        ledger.file_job_failed(1, "expired")
        assert json.loads(ledger.file(1).summary or "") == {"status": "expired"}  # type: ignore[union-attr]
        ledger.file_submitted(1, "job_2")
        ledger.mark_imported(1, {"total": 0, "inserted": 0, "updated": 0, "failed": 0})
        seen.append(ledger.file(1).status)  # type: ignore[union-attr]
        assert seen == list(get_args(FileStatus)) == ["packed", "submitting", "submitted", "done"]
        assert json.loads(ledger.file(1).summary or "")["inserted"] == 0  # type: ignore[union-attr]
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            ledger.db.execute("UPDATE files SET status = 'sent' WHERE file_id = 1")


def test_no_sql_outside_the_ledger() -> None:
    """The stages and the orchestrator ask the ledger in their own words: no SQL text in their string literals."""
    import io
    import re
    import tokenize
    from pathlib import Path

    import auth0_migrate

    package = Path(auth0_migrate.__file__).parent
    sql = re.compile(r"\b(SELECT\s+\S|UPDATE\s+\w+\s+SET|INSERT\s+(OR\s+\w+\s+)?INTO|DELETE\s+FROM)\b")
    checked, found = 0, []
    for path in [package / "pipeline.py", *(package / "stages").glob("*.py"), *(package / "formats").glob("*.py")]:
        checked += 1
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if tok.type == tokenize.STRING and sql.search(tok.string):
                found.append(f"{path.name}:{tok.start[0]}")
    assert checked >= 12 and found == []
    # and the pattern does find the SQL where it lives
    ledger_text = (package / "ledger.py").read_text()
    assert len(sql.findall(ledger_text)) > 50


def test_a_version_1_ledger_gains_the_hash_date_columns(tmp_path) -> None:
    """A ledger written before hash dates were kept opens, resumes and keeps dates from then on."""
    import sqlite3

    path = str(tmp_path / "v1.sqlite")
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE users (ordinal INTEGER PRIMARY KEY, source_id TEXT NOT NULL UNIQUE, email TEXT,
            selected INTEGER NOT NULL DEFAULT 1, record TEXT, credential TEXT,
            has_credential INTEGER NOT NULL DEFAULT 0, hash_match TEXT, target_id TEXT,
            status TEXT NOT NULL DEFAULT 'exported', file_id INTEGER, stage TEXT, code TEXT, message TEXT,
            perms_read INTEGER NOT NULL DEFAULT 0, perms_restored INTEGER NOT NULL DEFAULT 0, profile_ok INTEGER,
            diffs TEXT, grants_ok INTEGER, deleted INTEGER NOT NULL DEFAULT 0, reapplied INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE hashes (user_id TEXT PRIMARY KEY, email TEXT, credential TEXT, line_no INTEGER);
        CREATE TABLE hash_repeats (user_id TEXT NOT NULL, line_no INTEGER NOT NULL, credential TEXT);
        CREATE TRIGGER hashes_keep_repeats BEFORE INSERT ON hashes
            WHEN EXISTS (SELECT 1 FROM hashes WHERE user_id = NEW.user_id)
            BEGIN INSERT INTO hash_repeats (user_id, line_no, credential)
                VALUES (NEW.user_id, NEW.line_no, NEW.credential); END;
        INSERT INTO users (ordinal, source_id, record) VALUES (1, 'auth0|old', '{}');
    """)
    conn.close()
    with Ledger.open(path) as ledger:
        assert ledger.get_meta("schema_version") == SCHEMA_VERSION == 2
        ledger.add_hashes([("auth0|a", None, '{"password_hash":"x"}', 1, "2020-01-01T00:00:00.000Z"),
                           ("auth0|a", None, '{"password_hash":"y"}', 2, "2021-01-01T00:00:00.000Z")])
        assert ledger.hash_for("auth0|a") == (True, '{"password_hash":"x"}', "2020-01-01T00:00:00.000Z")
        assert [r.set_date for r in ledger.hash_repeats()] == ["2021-01-01T00:00:00.000Z"]
        [[waiting]] = list(ledger.users_to_transform(10))
        assert waiting.source_id == "auth0|old" and waiting.hash_set_date is None


def test_the_hash_date_travels_with_the_hash_through_the_email_join(tmp_path) -> None:
    """A user joined by email (its id is not in the file) waits for the transform with its hash's date."""
    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger:
        ledger.add_users([(1, "auth0|new-id", "a@example.com", "{}", None, 0, None, None, "exported", None, None,
                           None, None)])
        ledger.add_hashes([("auth0|old-id", "a@example.com", '{"password_hash":"x"}', 7,
                            "2020-02-02T00:00:00.000Z")])
        ledger.join_hashes()
        [[waiting]] = list(ledger.users_to_transform(10))
        assert (waiting.credential, waiting.hash_set_date) == ('{"password_hash":"x"}', "2020-02-02T00:00:00.000Z")


def _user(ordinal: int, status: str) -> tuple:
    return (ordinal, f"auth0|{ordinal}", f"u{ordinal}@example.com", "{}", None, 0, None, f"auth0|t{ordinal}",
            status, None, None, None, None)


def test_holdings_gate_cutover_by_kind_and_allow_loss(tmp_path) -> None:
    with Ledger.open(str(tmp_path / "state.sqlite"), PRINT) as ledger:
        ledger.add_users([_user(1, "imported"), _user(2, "imported"), _user(3, "failed")])
        ledger.add_holdings("organization", [(1, "org_a"), (2, "org_a"), (3, "org_a")])
        ledger.add_holdings("mfa-factor", [(2, "totp"), (2, "push")])
        ledger.set_holdings("organization", "verified", [(1, "org_a"), (2, "org_a")])
        ledger.set_holdings("mfa-factor", "verified", [(2, "totp")])
        ledger.set_holdings("mfa-factor", "cannot", [(2, "push")], detail="push cannot be imported")
        ledger.add_holdings("organization", [(1, "org_a")])  # read again: keeps its state
        blocked = ledger.unverified_holdings()
        # user 1 holds nothing unverified; user 3 was never migrated (it is not deleted anyway)
        assert list(blocked) == [2]
        assert [(h.kind, h.item, h.state, h.detail) for h in blocked[2]] == [
            ("mfa-factor", "push", "cannot", "push cannot be imported")]
        assert ledger.unverified_holdings(["mfa"]) == {}
        assert ledger.unverified_holdings(["organizations", "identities"]) == blocked
        counts = ledger.holding_counts()
        assert counts["organization"] == {"found": 1, "carried": 0, "verified": 2, "cannot": 0, "users": 3}
        assert counts["mfa-factor"]["cannot"] == 1 and counts["identity"]["users"] == 0
        assert [h.source_id for h in ledger.holdings("organization", ["verified"])] == ["auth0|1", "auth0|2"]


def test_hash_repeats_are_kept_within_a_batch_and_across_batches(tmp_path) -> None:
    """`add_hashes` keeps the first line of a user id and puts every later one in `hash_repeats`, whether the
    first came in the same call or an earlier one; a call with no repeat writes none."""
    with Ledger.open(str(tmp_path / "l.sqlite")) as ledger, ledger.tx():
        ledger.add_hashes([("auth0|a", None, '{"password_hash":"1"}', 1, None),
                           ("auth0|b", None, '{"password_hash":"2"}', 2, None)])
        assert ledger.hash_repeats() == []
        ledger.add_hashes([("auth0|c", None, '{"password_hash":"3"}', 3, None),
                           ("auth0|a", None, '{"password_hash":"4"}', 4, "2021-01-01T00:00:00.000Z"),
                           ("auth0|c", None, '{"password_hash":"5"}', 5, None)])
        assert [(r.user_id, r.line_no, r.credential, r.first_line, r.first_credential, r.set_date)
                for r in ledger.hash_repeats()] == [
            ("auth0|a", 4, '{"password_hash":"4"}', 1, '{"password_hash":"1"}', "2021-01-01T00:00:00.000Z"),
            ("auth0|c", 5, '{"password_hash":"5"}', 3, '{"password_hash":"3"}', None)]
        assert ledger.hash_for("auth0|c") == (True, '{"password_hash":"3"}', None)


def test_hash_lines_without_password_by_id_and_by_email(tmp_path) -> None:
    """Lines with no passwordHash that matched a user by id or (as the fallback) by email are named by line;
    one that matched nobody, or whose user took a hash from another line, is not. (The query reads the few such
    lines through a partial index, not every user.)"""
    with Ledger.open(str(tmp_path / "l.sqlite"), PRINT) as ledger:
        with ledger.tx():
            ledger.add_users([(n, f"auth0|{n}", f"u{n}@example.com", "{}", None, 0, None, None, "exported", None,
                               None, None, None) for n in range(1, 6)])
            ledger.add_hashes([
                ("auth0|1", "u1@example.com", None, 10, None),  # by id, no password
                ("auth0|2", "u2@example.com", '{"password_hash":"$2b$10$x"}', 11, None),  # by id, a password
                ("auth0|old-3", "u3@example.com", None, 12, None),  # by email, no password
                ("auth0|old-4", "u4@example.com", '{"password_hash":"$2b$10$y"}', 13, None),  # by email
                ("auth0|nobody", "nobody@example.com", None, 14, None),  # no user at all
            ])
            ledger.join_hashes()
        assert [(line.line_no, line.user_id) for line in ledger.hash_lines_without_password()] == [
            (10, "auth0|1"), (12, "auth0|3")]
        plan = " ".join(r[3] for r in ledger.db.execute(
            "EXPLAIN QUERY PLAN SELECT h.line_no FROM hashes h CROSS JOIN users u ON u.source_id = h.user_id "
            "WHERE h.credential IS NULL"))
        assert "hashes_no_password" in plan and "SCAN u" not in plan
