"""`auth0-migrate demo`, in-process: the whole migration on its own local tenant, and the login check that
follows it (blocked users refused, everyone else let in with the original password)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console

from auth0_migrate.demo import demo


def test_demo_migrates_and_logs_the_sample_in_on_the_target(tmp_path: Path) -> None:
    out = io.StringIO()
    outcome = asyncio.run(demo(users=12, console=Console(file=out), workdir=str(tmp_path)))
    migration = outcome["migration"]
    assert migration["exit_code"] == 0, out.getvalue()
    assert migration["users"]["selected"] == migration["users"]["verified"] == 12
    # Seed 7 makes one of the twelve a blocked user: its login is refused, as the demo expects.
    assert outcome["logins"] == {"sample": 12, "succeeded": 11, "blocked_in_sample": 1, "wrong_password_refused": 4}
    assert outcome["exit_code"] == 0
    assert "exit code 0" in out.getvalue()
