"""`--duplicate-hash` reaches the options `run`, `plan` and `verify` use, and a wrong value is refused up front."""

from __future__ import annotations

import pytest

from auth0_migrate.cli import _options, build_parser
from auth0_migrate.errors import UsageError
from auth0_migrate.model import MigrationOptions
from auth0_migrate.pipeline import check_options, fingerprint

BASE = ["--source-connection", "A", "--target-connection", "B", "--state", "s.sqlite"]


@pytest.mark.parametrize("command", ["run", "plan", "verify"])
def test_flag_reaches_the_options(command: str) -> None:
    parser = build_parser()
    assert _options(parser.parse_args([command, *BASE])).duplicate_hash == "hold"
    assert _options(parser.parse_args([command, *BASE, "--duplicate-hash", "last"])).duplicate_hash == "last"
    with pytest.raises(SystemExit):
        parser.parse_args([command, *BASE, "--duplicate-hash", "newest"])


def test_library_callers_are_checked_and_a_chosen_rule_is_part_of_the_migration() -> None:
    class Named:
        name = "tenant.local"

    with pytest.raises(UsageError, match="--duplicate-hash"):
        check_options(MigrationOptions("A", "B", duplicate_hash="newest"), same_tenant=True)  # type: ignore[arg-type]
    default = fingerprint(MigrationOptions("A", "B"), Named(), Named())  # type: ignore[arg-type]
    chosen = fingerprint(MigrationOptions("A", "B", duplicate_hash="last"), Named(), Named())  # type: ignore[arg-type]
    assert "duplicate_hash" not in default  # ledgers written before the flag existed still resume
    assert chosen["duplicate_hash"] == "last"
