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
