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
