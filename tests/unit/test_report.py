"""What people read on stderr: ids, emails, messages and paths quote input, so they print verbatim (never
read as rich markup) and whole (one line however long)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from auth0_migrate.cli import main
from auth0_migrate.model import Failure, RunResult
from auth0_migrate.report import ConsoleReporter, render_result

ODD = "auth0|[/]odd[b]id"  # a user id from an import file may hold anything but '|' after its prefix


def test_the_summary_prints_ids_emails_and_messages_as_written() -> None:
    result = RunResult(
        users={"selected": 2},
        failures=[Failure(ODD, "a[b]c@example.com", "transform", "BAD_FIELD",
                          "user_metadata.tags: [red] is not a string [/red]")],
        differences=[{"user_id": "auth0|[x]", "target_id": "auth0|[y]", "email": "d[i]e@example.com",
                      "differences": ["user_metadata[bold]"]}],
        state="/tmp/[run]/state.sqlite")
    out = io.StringIO()
    render_result(result, Console(file=out, highlight=False, soft_wrap=True), title="Status")
    text = out.getvalue()
    assert f"  {ODD} <a[b]c@example.com> transform/BAD_FIELD: user_metadata.tags: [red] is not a string [/red]\n" \
        in text
    assert "  auth0|[x] -> auth0|[y] <d[i]e@example.com>: user_metadata[bold]\n" in text
    assert "state: /tmp/[run]/state.sqlite\n" in text


def test_reporter_messages_are_whole_lines_of_text() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out)
    assert not reporter.live  # not a terminal: plain lines
    long_path = "/data/" + "x" * 150 + "/[2024]/users.ndjson"
    reporter.warn(f"--from-file {long_path} changed since this ledger read it")
    reporter.info(f"read {long_path}: [b]3 users[/b]")
    reporter.phase("[export]", total=3)
    assert out.getvalue().splitlines() == [
        f"warning: --from-file {long_path} changed since this ledger read it",
        f"read {long_path}: [b]3 users[/b]",
        "· [export] (3)",
    ]


def test_an_error_message_names_a_path_with_brackets_whole(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "[run]" / "state.sqlite"
    assert main(["status", "--state", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"error: no state file at {missing}" in err
