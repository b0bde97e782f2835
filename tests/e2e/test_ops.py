"""What the owner of a production migration needs around the run (issue 10, items 3 to 5): users from another
system without a source connection, a retry file of the users not carried, a configuration file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from auth0_migrate.errors import UsageError
from auth0_migrate.formats.users_file import read_selection
from auth0_migrate.passwords import make_credential
from auth0_migrate.pipeline import write_failed_users

from .conftest import SOURCE, TARGET, World, dump, migrate, options


def _file_users(tmp_path, users: list[dict]) -> str:
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users))
    return str(path)


def test_from_file_needs_no_source_connection(world: World, tmp_path) -> None:
    world.connection(TARGET)  # the tenant has no source connection at all
    cred = make_credential("pw-from-file", "sha256", salt="s", salt_position="prefix")
    path = _file_users(tmp_path, [{"user_id": f"ext{i}", "email": f"ext{i}@example.com", **cred} for i in range(3)])
    result = migrate(world, options(tmp_path, source_connection=None, from_file=path))
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == result.users["verified"] == 3
    assert {u["email"] for u in world.users(TARGET)} == {f"ext{i}@example.com" for i in range(3)}
    assert world.login(TARGET, "ext1@example.com", "pw-from-file") == 200


@pytest.mark.parametrize(("extra", "says"), [
    ({}, "--source-connection is required"),
    ({"from_file": "USERS", "password_hashes": "USERS"}, "--password-hashes needs --source-connection"),
    ({"from_file": "USERS", "delete_source_users": True}, "--delete-source-users needs --source-connection"),
])
def test_without_source_connection_what_cannot_work_is_refused(world: World, tmp_path, extra, says) -> None:
    world.connection(TARGET)
    path = _file_users(tmp_path, [{"user_id": "x", "email": "x@example.com"}])
    kwargs = {k: (path if v == "USERS" else v) for k, v in extra.items()}
    with pytest.raises(UsageError, match=says):
        migrate(world, options(tmp_path, source_connection=None, **kwargs))
    assert world.users(TARGET) == []
    assert not (tmp_path / "state.sqlite").exists()


# -- the retry file ------------------------------------------------------------------------------------


def _private(path) -> bool:
    return stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_failed_users_of_an_export_run_are_a_users_list_that_run_takes_back(world: World, tmp_path) -> None:
    seeded = world.seed(users=10)
    world.connection(TARGET)
    all_hashes = world.hash_file(str(tmp_path / "all.ndjson"))
    rows = [json.loads(line) for line in (tmp_path / "all.ndjson").read_text().splitlines()]
    dropped = sorted(rows, key=lambda r: r["email"])[:3]
    partial = tmp_path / "partial.ndjson"
    partial.write_text("".join(json.dumps(r) + "\n" for r in rows if r not in dropped))
    result = migrate(world, options(tmp_path, password_hashes=str(partial)))
    assert result.exit_code == 3, dump(result)
    assert result.users["held_back"] == 3  # the fault fired: three users with no hash in the file

    retry = tmp_path / "retry.txt"
    (tmp_path / "retry.txt").write_text("an older file, world-readable")
    os.chmod(retry, 0o644)
    assert write_failed_users(str(tmp_path / "state.sqlite"), str(retry)) == 3
    assert _private(retry)
    held = {f.user_id: f for f in result.failures}
    lines = [line for line in retry.read_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 3 and {line.split()[0] for line in lines} == set(held)
    for line in lines:
        user_id, reason = line.split("  # ")
        assert reason.startswith("held_back hashes/NO_PASSWORD_HASH: ") and user_id in reason
    assert "passwordHash" not in retry.read_text() and "$2" not in retry.read_text()
    assert read_selection(str(retry)).ids == set(held)

    # The complete hash file arrives: the retry file, taken back as --users, carries exactly those three.
    result = migrate(world, options(tmp_path, password_hashes=all_hashes, users_file=str(retry),
                                    state=str(tmp_path / "retry.sqlite")))
    assert result.exit_code == 0, dump(result)
    assert result.users["selected"] == result.users["imported"] == result.users["verified"] == 3
    for row in dropped:
        assert world.login(TARGET, row["email"], seeded.passwords[row["email"]]) == 200
    assert len(world.users(TARGET)) == 10 and len(world.users(SOURCE)) == 10
    # Everyone is carried now: the retry file of the second run holds nobody (its header only).
    assert write_failed_users(str(tmp_path / "retry.sqlite"), str(tmp_path / "none.txt")) == 0
    assert all(line.startswith("#") for line in (tmp_path / "none.txt").read_text().splitlines())


def test_failed_users_of_a_from_file_run_are_in_the_import_shape(world: World, tmp_path) -> None:
    world.connection(TARGET)
    cred = make_credential("pw-retry", "sha256", salt="s", salt_position="prefix")
    secret = cred["custom_password_hash"]["hash"]["value"]
    users = [{"user_id": "ok", "email": "ok@example.com", **cred},
             {"user_id": "bad", "email": "not-an-email", "user_metadata": {"plan": "pro"}, **cred},
             {"email": "noid@example.com", "app_metadata": {"blocked": True}, **cred}]
    path = _file_users(tmp_path, users)
    result = migrate(world, options(tmp_path, source_connection=None, from_file=path))
    assert result.exit_code == 3, dump(result)
    assert result.users["failed"] == 2 and result.users["imported"] == 1  # the faults fired

    state = str(tmp_path / "state.sqlite")
    plain, kept = tmp_path / "retry.ndjson", tmp_path / "retry-with-hashes.ndjson"
    assert write_failed_users(state, str(plain)) == 2
    assert write_failed_users(state, str(kept), include_hashes=True) == 2
    assert _private(plain) and _private(kept)
    assert secret not in plain.read_text() and secret in kept.read_text()
    text = kept.read_text().splitlines()
    records = [json.loads(line) for line in text if not line.startswith("#")]
    assert records == users[1:]  # the owner's own records, as the file gave them
    reasons = [line for line in text[2:] if line.startswith("#")]
    assert reasons[0].startswith("# invalid transform/FORMAT: email:")
    assert reasons[1].startswith("# invalid transform/NOT_PASSED: app_metadata.blocked:")

    # The owner corrects the two records in the retry file and runs it: both carried, the password works.
    fixed = kept.read_text().replace('"not-an-email"', '"bad@example.com"').replace('"blocked":true', '"vip":true')
    kept.write_text(fixed)
    result = migrate(world, options(tmp_path, source_connection=None, from_file=str(kept),
                                    state=str(tmp_path / "retry.sqlite")))
    assert result.exit_code == 0, dump(result)
    assert result.users["selected"] == result.users["imported"] == 2
    assert world.login(TARGET, "bad@example.com", "pw-retry") == 200
    assert world.login(TARGET, "noid@example.com", "pw-retry") == 200


# -- a failed run says where it stopped and how to resume ------------------------------------------------


@pytest.fixture
def cli_on(world: World, monkeypatch):
    """`cli.main` in-process against the world's tenant (its transport and clock), credentials from the flags."""
    from auth0_migrate import cli
    from auth0_migrate.auth0 import client as client_module

    # (the command line imports TenantClient from its module when a command needs it)
    monkeypatch.setattr(client_module, "TenantClient", lambda creds, rate=None, concurrency=16: world.client(
        client_id=creds.client_id, client_secret=creds.client_secret, rate=rate, concurrency=concurrency))
    for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "TARGET_AUTH0_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH0_DOMAIN", world.base_url)
    monkeypatch.setenv("AUTH0_CLIENT_ID", world.client_id)
    return cli.main


def test_a_failed_run_names_the_stage_the_ledger_and_the_command_to_resume(world: World, tmp_path, cli_on,
                                                                           capsys, monkeypatch) -> None:
    import shlex

    seeded = world.seed(users=6)
    world.connection(TARGET)
    world.tenant.faults.fail_call("POST /api/v2/jobs/users-exports", nth=1, action=503, times=100)
    monkeypatch.chdir(tmp_path)
    code = cli_on(["run", "--source-connection", SOURCE, "--target-connection", TARGET, "--missing-hash",
                   "import", "--client-secret", world.client_secret])
    assert world.tenant.faults.injected["POST /api/v2/jobs/users-exports"] >= 1  # the fault fired
    assert code == 75
    err = capsys.readouterr().err
    lines = dict(line.split(": ", 1) for line in err.splitlines() if line.startswith(("stopped in", "ledger:",
                                                                                     "to resume:")))
    assert lines["stopped in stage"] == "export source users"
    state = next(tmp_path.glob("*.migration.sqlite"))
    assert lines["ledger"] == str(state)
    command = lines["to resume"]
    assert world.client_secret not in err
    assert command.startswith("AUTH0_CLIENT_SECRET=... auth0-migrate run ")
    assert command.endswith(f"--state {state}")
    assert world.users(TARGET) == []

    world.tenant.faults.calls.clear()
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", world.client_secret)
    assert cli_on(shlex.split(command)[2:]) == 0  # the printed command, as the owner would paste it
    assert len(world.users(TARGET)) == seeded.users


def test_a_resumed_run_shows_the_stages_already_done(world: World, tmp_path, cli_on, capsys, monkeypatch) -> None:
    seeded = world.seed(users=6)
    world.connection(TARGET)
    # The 2nd export job is the id map's export of the target: the run stops after the import.
    world.tenant.faults.fail_call("POST /api/v2/jobs/users-exports", nth=2, action=503, times=100)
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", world.client_secret)
    flags = ["run", "--source-connection", SOURCE, "--target-connection", TARGET, "--missing-hash", "import",
             "--state", str(tmp_path / "s.sqlite")]
    assert cli_on(flags) == 75
    assert world.tenant.faults.injected["POST /api/v2/jobs/users-exports"] >= 1  # the fault fired
    err = capsys.readouterr().err
    assert "stopped in stage: map ids and check profiles in the target" in err.splitlines()
    assert "✓ export source users: 6 in " in err  # a stage that ended says its count
    assert "(done in an earlier run)" not in err

    world.tenant.faults.calls.clear()
    assert cli_on(flags) == 0
    err = capsys.readouterr().err
    done = [line.removesuffix(" (done in an earlier run)") for line in err.splitlines()
            if line.endswith("(done in an earlier run)")]
    assert done == ["✓ export source users", "✓ read roles and permissions", "✓ transform and validate",
                    "✓ pack import files", "✓ import files"]
    assert f"resuming {tmp_path / 's.sqlite'}" in err
    assert "· map ids and check profiles in the target" in err and "· export source users" not in err
    assert len(world.users(TARGET)) == seeded.users


# -- one result type for every command ------------------------------------------------------------------


def test_every_command_returns_one_result_type_with_the_same_common_json(world: World, tmp_path) -> None:
    import asyncio

    from auth0_migrate import CommandResult, plan, status, verify
    from auth0_migrate.model import PlanResult, RunResult

    world.seed(users=5)
    world.connection(TARGET)
    opts = options(tmp_path, missing_hash="import")

    async def go(fn):  # noqa: ANN001, ANN202
        client = world.client()
        try:
            return await fn(opts, source=client)
        finally:
            await client.aclose()

    planned = asyncio.run(go(plan))
    ran = migrate(world, opts)
    verified = asyncio.run(go(verify))
    stood = status(opts.state or "")
    assert isinstance(planned, PlanResult) and isinstance(ran, RunResult)
    results = {"plan": planned, "run": ran, "verify": verified, "status": stood}
    for command, result in results.items():
        assert isinstance(result, CommandResult)
        as_json = result.as_dict()
        assert list(as_json)[:4] == ["command", "exit_code", "users", "failures"], command
        assert as_json["command"] == command and as_json["exit_code"] == 0, command
        assert json.loads(json.dumps(as_json, default=str))["users"] == result.users
    assert planned.users["will_import"] == ran.users["imported"] == verified.users["verified"] == 5
