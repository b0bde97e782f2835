"""The public library: what `auth0_migrate` exports, that its types reach a caller's mypy, and that the
example in docs/api.md runs as written (so the document cannot rot)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

import auth0_migrate
from auth0_migrate import errors, pipeline

DOCS_API = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_the_example_in_docs_api_runs_a_whole_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _python_blocks(DOCS_API.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "docs/api.md has one runnable example; a test executes it"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its work folder lands in tmp_path
    namespace: dict[str, Any] = {"__name__": "docs_api_example"}
    exec(compile(blocks[0], str(DOCS_API), "exec"), namespace)
    result = namespace["result"]
    assert isinstance(result, auth0_migrate.RunResult)
    assert result.exit_code == 0, result.as_dict()
    assert result.users["selected"] == result.users["imported"] == result.users["verified"] == 20
    assert result.grants["roles_restored"] == result.grants["role_memberships_in_source"] > 0
    assert result.grants["permissions_restored"] == result.grants["permissions_in_source"] > 0
    assert result.failures == []
    printed = capsys.readouterr().out
    assert f"20 seeded, 20 imported, 20 verified, {result.grants['roles_restored']} role memberships restored, " \
           "exit code 0" in printed
    (workdir,) = [p for p in tmp_path.iterdir() if p.name.startswith("auth0-migrate-example-")]
    assert (workdir / "migration.sqlite").is_file()
    assert auth0_migrate.status(str(workdir / "migration.sqlite")).users == result.users


def test_the_package_exports_its_api_under_a_sorted_all() -> None:
    names = auth0_migrate.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    assert [n for n in names if not hasattr(auth0_migrate, n)] == []
    for name in ("MigrationOptions", "plan", "run", "verify", "status", "rollback", "RunResult", "PlanResult",
                 "Failure", "TenantClient", "TenantCredentials", "Reporter", "QuietReporter", "ConsoleReporter"):
        assert name in names, name
    assert auth0_migrate.verify is pipeline.verify
    assert auth0_migrate.rollback is pipeline.rollback  # the README's import line names it
    for name in ("plan", "run", "verify", "rollback"):
        assert inspect.iscoroutinefunction(getattr(auth0_migrate, name)), name
    # Every error the tool raises on purpose can be caught by its public name.
    raised = {name for name, value in vars(errors).items()
              if isinstance(value, type) and issubclass(value, errors.MigrationError)}
    assert raised - set(names) == set()


def test_a_callers_mypy_reads_the_package_types(tmp_path: Path) -> None:
    """py.typed is shipped: a caller's `mypy --strict` sees real types, not "missing library stubs"."""
    (tmp_path / "caller.py").write_text(
        "from auth0_migrate import MigrationOptions, PlanResult, RunResult, TenantClient, plan, run, status\n\n\n"
        "async def go(client: TenantClient) -> int:\n"
        "    options = MigrationOptions(source_connection='A', target_connection='B')\n"
        "    planned: PlanResult = await plan(options, source=client)\n"
        "    result: RunResult = await run(options, source=client)\n"
        "    wrong: str = status('x.sqlite').exit_code\n"
        "    return result.exit_code + planned.users['selected']\n", encoding="utf-8")
    # Only the package is analysed (its dependencies are skipped): the check is about its own annotations.
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\nfollow_imports = skip\n"
                                       "[mypy-auth0_migrate,auth0_migrate.*]\nfollow_imports = silent\n",
                                       encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir",
                           str(tmp_path / "cache"), "caller.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    errors_found = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert errors_found == ['caller.py:8: error: Incompatible types in assignment (expression has type "int", '
                            'variable has type "str")  [assignment]'], done.stdout + done.stderr
    assert done.returncode == 1
