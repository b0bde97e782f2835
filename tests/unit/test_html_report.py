"""The report's pieces that need no tenant: the command it gives is the command that ran, and a ledger written
before the timeline existed still gets a page."""

from __future__ import annotations

import dataclasses
import shlex
import sqlite3
from pathlib import Path

import pytest

from auth0_migrate.cli import _options, build_parser, main
from auth0_migrate.html_report import command_line
from auth0_migrate.ledger import Ledger
from auth0_migrate.model import MigrationOptions


@pytest.mark.parametrize("options", [
    MigrationOptions("Old DB", "New-DB", state="/tmp/a b/state.sqlite"),
    MigrationOptions("Old", "New", user_ids="keep", delete_source_users=True, password_hashes="/x/h.ndjson",
                     missing_hash="import", duplicate_hash="last", stale_hash="import-without-hash",
                     users_file="/x/users.txt", record_source_id="legacy_id", state="/x/s.sqlite"),
    MigrationOptions("Old", "New", user_ids="prefix", id_prefix="v1-", from_file="/x/u.json", refresh=True,
                     propagate_deletes=True, refresh_permissions=True, state="s.sqlite"),
])
def test_the_command_to_resume_parses_back_into_the_same_options(options: MigrationOptions) -> None:
    recorded = {"options": dataclasses.asdict(options), "tenants": {"domain": "acme.eu.auth0.com",
                                                                    "client_id": "abc", "target_domain": "b.auth0.com",
                                                                    "target_client_id": "def"}}
    line = command_line("run", recorded)
    words = shlex.split(line)
    assert words[:2] == ["auth0-migrate", "run"]
    args = build_parser().parse_args(words[1:])
    assert _options(args) == options
    assert (args.domain, args.client_id, args.target_domain, args.target_client_id) == (
        "acme.eu.auth0.com", "abc", "b.auth0.com", "def")
    assert args.client_secret is None and args.target_client_secret is None


def test_a_ledger_from_before_the_timeline_still_gets_a_page(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "old.sqlite")
    Ledger.open(state, {"source": "a", "target": "b", "source_connection": "x", "target_connection": "y"}).close()
    with sqlite3.connect(state) as db:  # as an older auth0-migrate wrote it: no timeline tables
        for table in ("sessions", "stage_times", "rate_samples"):
            db.execute(f"DROP TABLE {table}")
    page = tmp_path / "report.html"
    assert main(["status", "--state", state, "--report", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "This ledger records no timeline" in html
    assert "The ledger records no run with its options" in html
    assert f"report: {page}" in capsys.readouterr().err


def test_a_report_path_that_cannot_be_written_is_refused_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)  # nothing could run anyway: the refusal comes first
    missing = tmp_path / "no-such-folder" / "report.html"
    assert main(["run", "--source-connection", "a", "--target-connection", "b", "--report", str(missing)]) == 2
    assert f"--report {missing}: cannot write the report there" in capsys.readouterr().err
    assert main(["status", "--state", str(tmp_path / "x.sqlite"), "--report", str(tmp_path)]) == 2
    assert f"{tmp_path} is a folder" in capsys.readouterr().err
