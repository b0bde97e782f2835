"""The command line end to end, over real HTTP: `tenant serve` in a subprocess, seeded through its API,
`tenant export-hashes`, then `auth0-migrate run | status | verify | plan` as a person would type them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.auth0.paging import every, offset_items
from auth0_migrate.seed import Seeded, ensure_connection, seed_connection
from auth0_migrate.stages import import_jobs

from .conftest import pool

CLIENT_ID, CLIENT_SECRET = "cli-client", "cli-secret-123"
STARTUP_SECONDS = 20
COMMAND_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("auth0-migrate")
    if script.exists():
        return [str(script)]
    found = shutil.which("auth0-migrate")
    return [found] if found else [sys.executable, "-m", "auth0_migrate"]


@dataclass
class Server:
    url: str
    db: str
    process: subprocess.Popen[str]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH0_", "TARGET_AUTH0_"))}
        env.update(AUTH0_DOMAIN=self.url, AUTH0_CLIENT_ID=CLIENT_ID, AUTH0_CLIENT_SECRET=CLIENT_SECRET)
        return env

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_cli(), *args], capture_output=True, text=True, timeout=COMMAND_SECONDS,
                              env=self.env() if env is None else env, cwd=cwd)

    def call(self, fn: Any) -> Any:
        async def go() -> Any:
            client = TenantClient(TenantCredentials(self.url, CLIENT_ID, CLIENT_SECRET))
            try:
                return await fn(client)
            finally:
                await client.aclose()
        return asyncio.run(go())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("served")
    db = str(home / "tenant.sqlite")
    port = _free_port()
    stderr = open(home / "serve.stderr", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "auth0_migrate", "tenant", "serve", "--port", str(port), "--db", db,
         "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET],
        stdout=subprocess.PIPE, stderr=stderr, text=True)
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(STARTUP_SECONDS)
    url = f"http://127.0.0.1:{port}"
    try:
        if not first_line or first_line[0].strip() != url:
            process.kill()
            process.wait(5)
            pytest.fail(f"tenant serve did not print {url} within {STARTUP_SECONDS} s: {first_line!r}; "
                        "stderr: " + (home / "serve.stderr").read_text()[-2000:])
        yield Server(url, db, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                code = None
        else:
            code = process.returncode
        stderr.close()
        process.stdout.close()
    log = (home / "serve.stderr").read_text()[-2000:]
    assert code == 0, f"tenant serve exited {code} on SIGTERM; stderr: {log}"
    assert not os.path.exists(db + "-wal"), "the tenant's store was not closed on SIGTERM"


def _seed(server: Server, connection: str, users: int, target: str) -> Seeded:
    async def go(client: TenantClient) -> Seeded:
        seeded = await seed_connection(client, connection, users=users, seed=len(connection),
                                       pool=[p for p in pool() if "password_hash" in p[2]])
        await ensure_connection(client, target)
        return seeded
    return server.call(go)


def _export_hashes(server: Server, connection: str, path: Path) -> list[dict[str, Any]]:
    done = server.run("tenant", "export-hashes", "--db", server.db, "--connection", connection,
                      "--out", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_status_verify(server: Server, tmp_path: Path) -> None:
    seeded = _seed(server, "Cli-Legacy", 30, "Cli-New")
    hashes = tmp_path / "hashes.ndjson"
    lines = _export_hashes(server, "Cli-Legacy", hashes)
    assert len(lines) == seeded.users
    assert {line["connection"] for line in lines} == {"Cli-Legacy"}
    assert all(line["passwordHash"].startswith("$2") for line in lines)
    assert {line["email"] for line in lines} == set(seeded.passwords)

    state = tmp_path / "state.sqlite"
    flags = ["--source-connection", "Cli-Legacy", "--target-connection", "Cli-New", "--state", str(state),
             "--password-hashes", str(hashes), "--record-source-id", "legacy_id"]
    done = server.run("run", "--json", *flags)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # stdout holds exactly one JSON object
    n = seeded.users
    assert summary["exit_code"] == 0
    keys = ("selected", "imported", "already_in_target", "held_back", "failed", "deleted_from_source",
            "verified")
    assert {k: summary["users"][k] for k in keys} == {
        "selected": n, "imported": n, "already_in_target": 0, "held_back": 0, "failed": 0,
        "deleted_from_source": 0, "verified": n}
    assert summary["grants"]["permissions_restored"] == seeded.permissions
    assert summary["grants"]["roles_restored"] == seeded.role_members
    assert summary["failures"] == []
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    for line in lines:
        assert line["passwordHash"] not in done.stdout + done.stderr

    # The tenant really holds them: read back over HTTP.
    async def target_users(client: TenantClient) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        pager = await client.sdk.users.list(q='identities.connection:"Cli-New"', per_page=100,
                                            search_engine="v3")
        for user in pager.items or []:
            data = user.model_dump(mode="json")
            found[data["email"]] = data
        return found
    moved = server.call(target_users)
    assert set(moved) == set(seeded.passwords)
    assert all(u["app_metadata"]["legacy_id"].startswith("auth0|") for u in moved.values())

    done = server.run("status", "--state", str(state), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["users"] == summary["users"] and status["grants"] == summary["grants"]
    assert "verify" in status["reports"]["phases_done"]

    done = server.run("verify", "--json", *flags)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["users"]["verified"] == n

    # Someone changes a migrated user in the target: verify finds it and exits 4.
    email = sorted(moved)[0]
    changed = moved[email]

    async def patch(client: TenantClient) -> None:
        token = await client.token()
        r = await client.http.patch(f"/api/v2/users/{changed['user_id']}",
                                    json={"user_metadata": {"locale": "xx"}},
                                    headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    server.call(patch)
    done = server.run("verify", "--json", *flags)
    assert done.returncode == 4, done.stderr
    result = json.loads(done.stdout)
    assert result["exit_code"] == 4
    assert [(d["email"], d["target_id"], d["differences"]) for d in result["differences"]] == [
        (email, changed["user_id"], ["user_metadata"])]
    assert result["users"]["verified"] == n - 1


def test_plan_writes_nothing(server: Server, tmp_path: Path) -> None:
    seeded = _seed(server, "Plan-Legacy", 12, "Plan-New")
    hashes = tmp_path / "hashes.ndjson"
    _export_hashes(server, "Plan-Legacy", hashes)
    work = tmp_path / "cwd"
    work.mkdir()
    state = tmp_path / "plan-state.sqlite"
    done = server.run("plan", "--json", "--source-connection", "Plan-Legacy", "--target-connection",
                      "Plan-New", "--password-hashes", str(hashes), "--state", str(state), cwd=work)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert sorted(plan) == ["apis_missing_in_target", "calls", "command", "exit_code", "failures", "import_files",
                            "inventory", "minutes_at", "not_carried_by_import", "problems", "roles_missing_in_target",
                            "users"]
    assert plan["command"] == "plan" and plan["exit_code"] == 0
    assert sorted(plan["users"]) == ["held_back", "selected", "stale_hash", "will_fail", "will_import",
                                     "with_password_hash"]
    assert plan["users"]["stale_hash"] == 0
    assert sorted(plan["minutes_at"]) == ["16 req/s", "2 req/s"]
    assert plan["users"]["selected"] == plan["users"]["will_import"] == seeded.users
    assert plan["users"]["will_fail"] == plan["users"]["held_back"] == 0
    assert plan["calls"]["total"] > 0
    assert not state.exists()
    assert list(work.iterdir()) == []
    # Nor anything in the tenant.
    async def count(client: TenantClient) -> int:
        pager = await client.sdk.users.list(q='identities.connection:"Plan-New"', per_page=10,
                                            search_engine="v3")
        return len(pager.items or [])
    assert server.call(count) == 0


def test_stale_hash_in_plan_and_run_json(server: Server, tmp_path: Path) -> None:
    """A user who changed their password after the hash file's date: counted by `plan --json`, held back by
    `run --json` (exit 3) as STALE_HASH, `users.stale_hash` in both."""
    seeded = _seed(server, "Stale-Legacy", 4, "Stale-New")
    hashes = tmp_path / "hashes.ndjson"
    lines = _export_hashes(server, "Stale-Legacy", hashes)
    email = sorted(seeded.passwords)[0]
    for line in lines:  # the file was taken long ago: every hash dated 2001
        line["password_set_date"] = {"$date": "2001-01-01T00:00:00.000Z"}
    hashes.write_text("".join(json.dumps(line) + "\n" for line in lines))

    async def change(client: TenantClient) -> str:
        [user] = (await client.sdk.users.list(q=f'email:"{email}"', search_engine="v3")).items or []
        await client.sdk.users.update(str(user.user_id), password="Changed-Since-2001!")
        return str(user.user_id)
    changed = server.call(change)
    flags = ["--source-connection", "Stale-Legacy", "--target-connection", "Stale-New",
             "--password-hashes", str(hashes), "--state", str(tmp_path / "state.sqlite")]
    done = server.run("plan", "--json", *flags)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["users"]["stale_hash"] == plan["users"]["held_back"] == 1
    done = server.run("run", "--json", *flags)
    assert done.returncode == 3, done.stderr
    summary = json.loads(done.stdout)
    assert summary["users"]["stale_hash"] == summary["users"]["held_back"] == 1
    assert summary["users"]["imported"] == seeded.users - 1
    [failure] = summary["failures"]
    assert (failure["user_id"], failure["code"]) == (changed, "STALE_HASH")
    assert "2001-01-01T00:00:00.000Z" in failure["message"] and "last_password_reset 20" in failure["message"]


def test_plan_refresh_then_run_refresh(server: Server, tmp_path: Path) -> None:
    """A user signs up after the run: `plan --refresh` shows it, `run --refresh` carries it (JSON `delta`)."""
    _seed(server, "Ref-Legacy", 6, "Ref-New")
    first = tmp_path / "hashes-1.ndjson"
    _export_hashes(server, "Ref-Legacy", first)
    flags = ["--source-connection", "Ref-Legacy", "--target-connection", "Ref-New", "--state",
             str(tmp_path / "state.sqlite")]
    done = server.run("run", "--json", *flags, "--password-hashes", str(first))
    assert done.returncode == 0, done.stderr

    async def sign_up(client: TenantClient) -> None:
        await client.call("create", client.sdk.users.create, connection="Ref-Legacy", email="late@example.com",
                          password="Late-Passw0rd!")
    server.call(sign_up)
    newer = tmp_path / "hashes-2.ndjson"
    _export_hashes(server, "Ref-Legacy", newer)
    done = server.run("plan", "--json", "--refresh", *flags, "--password-hashes", str(newer))
    assert done.returncode == 0, done.stderr
    planned = json.loads(done.stdout)
    assert planned["delta"]["new"] == 1 and planned["delta"]["updated"] == 0, planned
    assert planned["users"]["will_import"] == 1
    done = server.run("run", "--json", "--refresh", *flags, "--password-hashes", str(newer))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["delta"] == {"new": 1, "updated": 0, "deleted_in_source": 0, "grants_added": 0,
                                "grants_removed": 0}
    assert summary["users"]["imported"] == summary["users"]["verified"] == 7


def test_usage_errors(server: Server, tmp_path: Path) -> None:
    server.call(lambda client: ensure_connection(client, "Usage-DB"))
    state = tmp_path / "state.sqlite"
    done = server.run("run", "--target-connection", "Usage-DB", "--state", str(state))
    assert done.returncode == 2
    assert "--source-connection" in done.stderr and done.stdout == ""

    done = server.run("run", "--source-connection", "Usage-DB", "--target-connection", "Other-DB",
                      "--user-ids", "keep", "--state", str(state))
    assert done.returncode == 2
    assert "--delete-source-users" in done.stderr and "keep" in done.stderr
    assert done.stdout == ""
    assert not state.exists()

    env = {k: v for k, v in server.env().items() if k != "AUTH0_CLIENT_SECRET"}
    done = server.run("run", "--source-connection", "Usage-DB", "--target-connection", "Other-DB",
                      "--state", str(state), env=env)
    assert done.returncode == 2
    assert "AUTH0_CLIENT_SECRET" in done.stderr
    assert not state.exists()


def _connection_emails(db: str, connection: str) -> list[str]:
    """Read the served tenant's store directly, read-only, while it runs (WAL allows it)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT u.email FROM users u JOIN connections c ON c.id = "
                                           "u.connection_id WHERE c.name = ?", (connection,))]
    finally:
        conn.close()


def _as_if_sent_before_the_patience(state: Path) -> int:
    """Date the uploads a killed run left unanswered (`submitting`) `SETTLE_PATIENCE` earlier; how many there were.

    A SIGKILL while an upload is on the wire (tens of milliseconds, longer on a loaded machine) leaves a file
    that nothing can tell apart from one whose job Auth0 has queued: the next run started at once waits up to
    10 minutes from the send for its users to show (`stages/import_jobs.py`; tests/e2e/test_resume.py covers
    that wait on a manual clock). Here the next run is the operator's coming back after those minutes: it looks
    for the users once and sends the rest.
    """
    import sqlite3

    if not state.exists():  # every run was killed before it made its ledger
        return 0
    conn = sqlite3.connect(state)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone() is None:
            return 0
        with conn:
            return conn.execute("UPDATE files SET summary = json_set(summary, '$.sent_at', "
                                "json_extract(summary, '$.sent_at') - ?) WHERE status = 'submitting'",
                                (import_jobs.SETTLE_PATIENCE,)).rowcount
    finally:
        conn.close()


def test_sigkill_at_any_moment_then_resume(server: Server, tmp_path: Path) -> None:
    """`run` killed with SIGKILL again and again, at growing delays, then run to the end: every user once,
    none lost, none deleted from the source before it was verified in the target."""
    seeded = _seed(server, "Kill-Legacy", 150, "Kill-New")
    hashes = tmp_path / "hashes.ndjson"
    _export_hashes(server, "Kill-Legacy", hashes)
    everyone = set(seeded.passwords)
    state = tmp_path / "state.sqlite"
    command = [*_cli(), "run", "--json", "--source-connection", "Kill-Legacy", "--target-connection", "Kill-New",
               "--state", str(state), "--password-hashes", str(hashes), "--user-ids", "keep",
               "--delete-source-users"]
    kills = 0
    for delay in (0.4, 0.9, 1.4, 1.9, 2.4, 3.0):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=server.env())
        try:
            process.wait(delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
        in_source = set(_connection_emails(server.db, "Kill-Legacy"))
        in_target = _connection_emails(server.db, "Kill-New")
        assert len(in_target) == len(set(in_target)), "a user was imported twice"
        assert everyone - in_source <= set(in_target), "a user left the source before reaching the target"
        if process.returncode == 0:
            break
    assert kills >= 2, "the run finished before it could be killed twice; raise the user count"
    unanswered = _as_if_sent_before_the_patience(state)
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_SECONDS, env=server.env())
    assert done.returncode == 0, done.stderr[-3000:]
    if unanswered:
        assert "was being uploaded when an earlier run stopped" in done.stderr, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["users"]["verified"] == summary["users"]["deleted_from_source"] == seeded.users
    assert summary["users"]["imported"] + summary["users"]["already_in_target"] == seeded.users
    assert sorted(_connection_emails(server.db, "Kill-New")) == sorted(everyone)
    assert _connection_emails(server.db, "Kill-Legacy") == []
    assert summary["grants"]["roles_restored"] == seeded.role_members


def test_sigterm_stops_cleanly_and_the_same_command_resumes(server: Server, tmp_path: Path) -> None:
    """SIGTERM (a service manager, `kill`, a CI timeout) mid-run stops as Ctrl-C does: the message, exit 130,
    the ledger closed; the same command then finishes with every user migrated once."""
    seeded = _seed(server, "Term-Legacy", 150, "Term-New")
    hashes = tmp_path / "hashes.ndjson"
    _export_hashes(server, "Term-Legacy", hashes)
    state = tmp_path / "state.sqlite"
    command = [*_cli(), "run", "--json", "--source-connection", "Term-Legacy", "--target-connection", "Term-New",
               "--state", str(state), "--password-hashes", str(hashes)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env())
    seen: list[str] = []
    try:
        for line in process.stderr:  # one line a phase: stderr is not a terminal
            seen.append(line)
            if "read direct permissions" in line:  # a phase of 150 calls: well inside the run
                process.send_signal(signal.SIGTERM)
                break
        out, err = process.communicate(timeout=COMMAND_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    err = "".join(seen) + err
    assert any("read direct permissions" in line for line in seen), err  # the signal was sent mid-run
    assert process.returncode == 130, err
    assert "interrupted; run the same command again to resume" in err
    assert "Traceback" not in err and out == ""
    assert not os.path.exists(f"{state}-wal"), "the ledger was not closed (its write-ahead log is still there)"

    done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_SECONDS, env=server.env())
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["users"]["verified"] == seeded.users
    in_target = _connection_emails(server.db, "Term-New")
    assert sorted(in_target) == sorted(seeded.passwords)  # every user, each once


def test_ordinary_mistakes_give_a_message_and_an_exit_code_never_a_traceback(server: Server, tmp_path: Path) -> None:
    server.call(lambda client: ensure_connection(client, "Oops-Legacy"))
    server.call(lambda client: ensure_connection(client, "Oops-New"))
    base = ["--source-connection", "Oops-Legacy", "--target-connection", "Oops-New"]
    state = str(tmp_path / "state.sqlite")
    report = tmp_path / "report.txt"
    report.write_text("not a ledger\n")
    report.chmod(0o644)
    empty_list = tmp_path / "nobody.txt"
    empty_list.write_text("# to be filled in\n")
    wrapper = tmp_path / "page.json"
    wrapper.write_text(json.dumps({"users": [{"email": "a@example.com"}], "total": 40}))
    cases: list[tuple[list[str], int, str]] = [
        (["run", *base, "--state", str(tmp_path / "missing" / "state.sqlite")], 2, "does not exist"),
        (["run", *base, "--state", str(report / "state.sqlite")], 2, "is a file, not a folder"),
        (["run", *base, "--state", str(report)], 2, "is not an auth0-migrate ledger"),
        (["status", "--state", str(report)], 2, "is not an auth0-migrate ledger"),
        (["status", "--state", str(tmp_path)], 2, "is not an auth0-migrate ledger"),
        (["run", *base, "--state", state, "--users", str(empty_list)], 2, "lists no users"),
        (["run", *base, "--state", state, "--from-file", str(wrapper)], 2, "holding a \"users\" array"),
        (["run", *base, "--state", state, "--user-ids", "prefix", "--id-prefix", "old users_"], 2, "--id-prefix"),
        (["run", *base, "--state", state, "--record-source-id", "app.legacy"], 2, "--record-source-id"),
    ]
    for args, code, text in cases:
        done = server.run(*args)
        assert (done.returncode, "Traceback" in done.stderr) == (code, False), (args, done.stderr[-2000:])
        assert text in done.stderr, (args, done.stderr[-2000:])
    assert report.read_text() == "not a ledger\n" and stat.S_IMODE(report.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nobody.txt", "page.json", "report.txt"]

    # Dropped input: the run goes on with the rest, and says what it did not carry, in --json and on stderr.
    users = tmp_path / "users.ndjson"
    good = {"email": "fine@example.com", "user_id": "fine-1"}
    deep = '{"email": "deep@example.com", "user_metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    users.write_text(json.dumps(good) + "\n" + deep + "\n[1, 2]\n")
    done = server.run("run", "--json", *base, "--state", state, "--from-file", str(users))
    assert (done.returncode, "Traceback" in done.stderr) == (3, False), done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["exit_code"] == 3 and summary["users"]["imported"] == 1
    assert summary["reports"]["problem_counts"] == {"users-file": 2}
    assert "2 × users-file:" in done.stderr
    assert f"{users}, line 2: nested more than 100 levels deep" in done.stderr
    assert f"{users}, line 3: not a JSON object" in done.stderr


def test_rollback_dry_run_then_rollback_after_cutover(server: Server, tmp_path: Path) -> None:
    seeded = _seed(server, "Undo-Legacy", 8, "Undo-New")
    hashes = tmp_path / "hashes.ndjson"
    _export_hashes(server, "Undo-Legacy", hashes)
    state = tmp_path / "state.sqlite"
    done = server.run("run", "--json", "--source-connection", "Undo-Legacy", "--target-connection", "Undo-New",
                      "--password-hashes", str(hashes), "--state", str(state), "--delete-source-users")
    assert done.returncode == 0, done.stderr

    async def count(client: TenantClient, connection: str) -> int:
        pager = await client.sdk.users.list(q=f'identities.connection:"{connection}"', per_page=50,
                                            search_engine="v3")
        return len(pager.items or [])
    assert server.call(lambda c: count(c, "Undo-Legacy")) == 0
    assert server.call(lambda c: count(c, "Undo-New")) == seeded.users

    # Without the hash file: refused with exit 2 and the reason; nothing done.
    done = server.run("rollback", "--state", str(state))
    assert done.returncode == 2 and "--password-hashes" in done.stderr, done.stderr
    done = server.run("rollback", "--state", str(state), "--dry-run", "--json", "--password-hashes", str(hashes))
    assert done.returncode == 0, done.stderr
    planned = json.loads(done.stdout)
    assert planned["users"]["deleted_from_source_by_run"] == planned["users"]["imported_by_run"] == seeded.users
    assert "would import into Undo-Legacy" in done.stderr and "cannot restore" in done.stderr
    assert server.call(lambda c: count(c, "Undo-New")) == seeded.users

    report = tmp_path / "rollback.html"
    done = server.run("rollback", "--state", str(state), "--json", "--password-hashes", str(hashes),
                      "--report", str(report))
    assert done.returncode == 0, done.stderr
    page = report.read_text()
    assert "rollback" in page and "The migration was rolled back" in page
    assert "$2" not in page  # no hash in the report either
    result = json.loads(done.stdout)
    assert result["users"]["restored_to_source"] == result["users"]["removed_from_target"] == seeded.users
    assert server.call(lambda c: count(c, "Undo-Legacy")) == seeded.users
    assert server.call(lambda c: count(c, "Undo-New")) == 0
    assert "$2" not in done.stdout + done.stderr  # no hash on the way


def test_rollback_brings_back_mfa_factors_from_mfa_secrets(server: Server, tmp_path: Path) -> None:
    """`rollback --mfa-secrets FILE`: the source users cutover deleted come back enrolled (factors read back)."""
    async def go(client: TenantClient) -> Seeded:
        seeded = await seed_connection(client, "Mfa-Undo-Legacy", users=6, seed=3, mfa_share=0.6,
                                       pool=[p for p in pool() if "password_hash" in p[2]])
        await ensure_connection(client, "Mfa-Undo-New")
        return seeded
    seeded = server.call(go)
    assert seeded.mfa_factors  # some users enrolled
    hashes, secrets = tmp_path / "hashes.ndjson", tmp_path / "mfa.ndjson"
    _export_hashes(server, "Mfa-Undo-Legacy", hashes)
    done = server.run("tenant", "export-mfa-secrets", "--db", server.db, "--connection", "Mfa-Undo-Legacy",
                      "--out", str(secrets))
    assert done.returncode == 0, done.stderr
    state = tmp_path / "state.sqlite"
    done = server.run("run", "--json", "--source-connection", "Mfa-Undo-Legacy", "--target-connection",
                      "Mfa-Undo-New", "--password-hashes", str(hashes), "--mfa-secrets", str(secrets), "--state",
                      str(state), "--delete-source-users")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["users"]["deleted_from_source"] == seeded.users

    done = server.run("rollback", "--state", str(state), "--json", "--password-hashes", str(hashes),
                      "--mfa-secrets", str(secrets))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["users"]["restored_to_source"] == seeded.users and result["failures"] == []
    assert any("MFA factors, from" in line for line in result["reports"]["will_restore"])

    async def enrolled(client: TenantClient) -> dict[str, list[str]]:
        found = {}
        for email in seeded.mfa_factors:
            [user] = [u for u in await client.sdk.users.list_users_by_email(email=email)]
            found[email] = sorted(str(m.type) for m in await every(offset_items(
                client, "factors", client.sdk.users.authentication_methods.list, str(user.user_id))))
        return found
    assert server.call(enrolled) == {e: sorted(types) for e, types in seeded.mfa_factors.items()}
    totp = [next(iter(f.values()))["secret"] for line in secrets.read_text().splitlines()
            for f in json.loads(line)["mfa_factors"] if "totp" in f]
    assert totp and not any(secret in done.stdout + done.stderr for secret in totp)  # no secret on the way out
