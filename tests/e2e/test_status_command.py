"""`auth0-migrate status`, in-process (it reads only the ledger): its exit code is the run's, and it says
"none" when no phase is done yet."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from auth0_migrate.cli import main
from auth0_migrate.ledger import Ledger

from .conftest import SOURCE, TARGET, World, dump, migrate, options


def test_status_exits_with_the_runs_exit_code(world: World, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    world.seed(users=6)
    world.connection(TARGET)
    all_lines = Path(world.hash_file(str(tmp_path / "all.ndjson"))).read_text(encoding="utf-8").splitlines()
    hashes = tmp_path / "hashes.ndjson"
    with open(hashes, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write("\n".join(all_lines[1:]) + "\n")  # one user's hash is missing: that user is held back
    held = json.loads(all_lines[0])["email"]
    state = str(tmp_path / "state.sqlite")
    # The source id is recorded, so the second ledger below can prove the first run's users are this migration's.
    result = migrate(world, options(tmp_path, password_hashes=str(hashes), state=state, record_source_id="legacy_id"))
    assert result.exit_code == 3 and result.users["held_back"] == 1, dump(result)

    assert main(["status", "--state", state, "--json"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["exit_code"] == 3
    (failure,) = result.failures
    assert failure.code == "NO_PASSWORD_HASH"
    assert f"<{held}> {failure.stage}/{failure.code}: " in err  # the same user, named by status
    assert "phases done: " in err and "phases done: none" not in err

    # Asked to, the held-back user is imported without a hash: the run is done, and status says 0.
    result = migrate(world, options(tmp_path, password_hashes=str(hashes), state=str(tmp_path / "second.sqlite"),
                                    missing_hash="import", record_source_id="legacy_id"))
    assert result.exit_code == 0, dump(result)
    assert main(["status", "--state", str(tmp_path / "second.sqlite")]) == 0


def test_status_of_a_ledger_with_no_phase_done_says_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "fresh.sqlite")
    Ledger.open(state, {"source": "a", "target": "b"}).close()
    assert main(["status", "--state", state]) == 0
    err = capsys.readouterr().err
    assert "phases done: none" in err.splitlines()


def test_status_names_users_whose_ids_look_like_markup(world: World, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """User ids come from input and may hold '[/]': the summary prints them, it does not crash on them."""
    world.connection(SOURCE)
    world.connection(TARGET)
    users = tmp_path / "users.ndjson"
    with open(users, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write(json.dumps({"user_id": "[/]first", "email": "twin@example.com"}) + "\n")
        out.write(json.dumps({"user_id": "[red]second", "email": "twin@example.com"}) + "\n")
    state = str(tmp_path / "state.sqlite")
    result = migrate(world, options(tmp_path, from_file=str(users), state=state))
    assert result.exit_code == 3, dump(result)
    (failure,) = result.failures
    assert (failure.user_id, failure.code) == ("auth0|[red]second", "DUPLICATE_EMAIL")
    assert "auth0|[/]first" in failure.message

    assert main(["status", "--state", state]) == 3
    err = capsys.readouterr().err
    assert f"  auth0|[red]second <twin@example.com> {failure.stage}/DUPLICATE_EMAIL: {failure.message}\n" in err
