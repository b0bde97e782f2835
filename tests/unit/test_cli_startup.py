"""The command line starts without the Auth0 SDK: `--help`, `tenant serve` and the ledger-only commands never
call Auth0, and importing the SDK costs about half a second of every start."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_command_line_leaves_the_sdk_unloaded() -> None:
    probe = "import sys, auth0_migrate.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'auth0'))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_help_runs_without_the_sdk() -> None:
    probe = ("import sys, contextlib, io, auth0_migrate.cli as c\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit): c.main(['--help'])\n"
             "print('auth0' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
