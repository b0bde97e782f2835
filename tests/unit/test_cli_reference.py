"""The CLI reference cannot drift: docs/cli.md is what `--help` says, and every command has help."""

import os
from pathlib import Path

import pytest

from auth0_migrate import clidoc

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_reference_is_current() -> None:
    assert DOC.read_text() == clidoc.render(), "run: python -m auth0_migrate.clidoc > docs/cli.md"


def test_every_command_has_help() -> None:
    names = [name for name, _, _ in clidoc.commands()]
    for required in ("auth0-migrate plan", "auth0-migrate run", "auth0-migrate verify", "auth0-migrate status",
                     "auth0-migrate demo", "auth0-migrate tenant serve", "auth0-migrate tenant export-hashes"):
        assert required in names
    for name, description, parser in clidoc.commands():
        assert description, f"{name} has no help text"
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help text"


def test_rendering_leaves_the_terminal_width_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "57")
    clidoc.render()
    assert os.environ["COLUMNS"] == "57"
    monkeypatch.delenv("COLUMNS")
    assert DOC.read_text() == clidoc.render()  # the same reference at any width
    assert "COLUMNS" not in os.environ
