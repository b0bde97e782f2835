"""Issue 10's operator pieces through the command line, over real HTTP (`tenant serve` in a subprocess, as in
test_cli.py): `--config auth0-migrate.toml`, and the retry file `--failed-users`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auth0_migrate.auth0.client import TenantClient

from . import test_cli
from .test_cli import Server, _seed

server = test_cli.server  # a tenant served in a subprocess for this module, as test_cli.py's


def _users_of(server: Server, connection: str) -> dict[str, dict[str, Any]]:
    async def go(client: TenantClient) -> dict[str, dict[str, Any]]:
        pager = await client.sdk.users.list(q=f'identities.connection:"{connection}"', per_page=100,
                                            search_engine="v3")
        return {u.email: u.model_dump(mode="json") for u in pager.items or []}
    return server.call(go)


def test_config_file_flags_and_command_line_wins(server: Server, tmp_path: Path) -> None:
    seeded = _seed(server, "Cfg-Legacy", 6, "Cfg-New")
    (tmp_path / "auth0-migrate.toml").write_text(
        'source-connection = "Cfg-Legacy"\n'
        'target_connection = "Cfg-New"\n'
        'missing-hash = "import"\n'
        'state = "from-file.sqlite"\n'
        'record-source-id = "legacy_id"\n'
        'refresh-permissions = false\n'
        '[run]\n'
        'json = true\n'
        '[plan]\n'
        'state = "plan.sqlite"\n')
    done = server.run("run", "--config", "auth0-migrate.toml", "--state", "from-flag.sqlite", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["users"]["imported"] == summary["users"]["verified"] == seeded.users
    # The command line's --state won over the file's; the [run] table applied (--json), the [plan] one did not.
    assert summary["state"] == "from-flag.sqlite"
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == ["from-flag.sqlite"]
    moved = _users_of(server, "Cfg-New")
    assert set(moved) == set(seeded.passwords)
    assert all(u["app_metadata"]["legacy_id"].startswith("auth0|") for u in moved.values())
    # The same file serves verify; the [run] table is not verify's (no --json there: nothing on stdout).
    done = server.run("verify", "--config", "auth0-migrate.toml", "--state", "from-flag.sqlite", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"users verified {seeded.users}" in " ".join(done.stderr.split())


def test_config_file_refuses_secrets_and_unknown_keys(server: Server, tmp_path: Path) -> None:
    _seed(server, "Cfg2-Legacy", 2, "Cfg2-New")
    base = 'source-connection = "Cfg2-Legacy"\ntarget-connection = "Cfg2-New"\nstate = "s.sqlite"\n'
    (tmp_path / "secret.toml").write_text(base + 'client-secret = "sup3r-s3cret-value"\n')
    done = server.run("run", "--config", "secret.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "client-secret is a secret" in done.stderr and "set AUTH0_CLIENT_SECRET" in done.stderr
    assert "sup3r-s3cret-value" not in done.stdout + done.stderr
    (tmp_path / "typo.toml").write_text(base + '[run]\ndelete-source-user = true\n')
    done = server.run("run", "--config", "typo.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown key '[run] delete-source-user'" in done.stderr
    (tmp_path / "bad.toml").write_text(base + "user-ids = \n")
    done = server.run("plan", "--config", "bad.toml", cwd=tmp_path)
    assert done.returncode == 2 and "bad.toml: not a TOML file" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s.sqlite").exists()
    assert _users_of(server, "Cfg2-New") == {}


def test_failed_users_from_run_and_from_status(server: Server, tmp_path: Path) -> None:
    seeded = _seed(server, "Retry-Legacy", 5, "Retry-New")
    done = server.run("tenant", "export-hashes", "--db", server.db, "--connection", "Retry-Legacy")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (tmp_path / "hashes.ndjson").write_text("\n".join(lines[1:]) + "\n")  # one user's hash is missing
    missing = json.loads(lines[0])["_id"]["$oid"]
    flags = ["--source-connection", "Retry-Legacy", "--target-connection", "Retry-New", "--state", "s.sqlite",
             "--password-hashes", "hashes.ndjson"]
    done = server.run("run", *flags, "--include-hashes", cwd=tmp_path)
    assert done.returncode == 2 and "--include-hashes only applies with --failed-users" in done.stderr
    assert not (tmp_path / "s.sqlite").exists()
    done = server.run("run", *flags, "--failed-users", "retry.txt", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "1 users to retry written to retry.txt" in done.stderr
    entries = [line.split("  # ") for line in (tmp_path / "retry.txt").read_text().splitlines()
               if not line.startswith("#")]
    assert [user_id for user_id, _ in entries] == [f"auth0|{missing}"]
    assert entries[0][1].startswith("held_back hashes/NO_PASSWORD_HASH:")
    assert (tmp_path / "retry.txt").stat().st_mode & 0o777 == 0o600
    done = server.run("status", "--state", "s.sqlite", "--failed-users", "again.txt", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert (tmp_path / "again.txt").read_text() == (tmp_path / "retry.txt").read_text()
    assert len(_users_of(server, "Retry-New")) == seeded.users - 1
