"""A large export is read by worker processes (`stages/ingest.py`); the ledger must come out exactly as when this
process reads it: every user's row (record, credential, status, code, message, file), every file, problem, holding,
linked secondary and count of what the import cannot take, in the same order.

The whole-user story (organizations, linked secondaries, MFA factors with a secrets file, a stranger) is exported
twice from the same tenant, each time into a fresh ledger: once read here, once by two workers given a few users at
a time (so pieces go round both workers many times, and their answers must be put back in order). The hash file
(read by two workers too) has a user missing and a user on two lines that disagree; one case selects users
with a `--users` file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from typing import Any

import pytest

from auth0_migrate import workers as workers_module
from auth0_migrate.formats import pieces
from auth0_migrate.stages import ingest

from .conftest import SOURCE, World, ingest_only, options
from .test_whole_user import _story

TABLES = {
    "users": "SELECT * FROM users ORDER BY ordinal",
    "files": "SELECT * FROM files ORDER BY file_id",
    "problems": "SELECT kind, ref, detail FROM problems ORDER BY rowid",
    "holdings": "SELECT * FROM holdings ORDER BY ordinal, kind, item",
    "identity_moves": "SELECT * FROM identity_moves ORDER BY ordinal, item",
    "meta": "SELECT key, value FROM meta WHERE key NOT LIKE '%job_id' AND key NOT IN ('fingerprint', 'run_id') "
            "ORDER BY key",
}


def _ingest(world: World, opts: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Export, join, transform and pack the source into a fresh ledger (as `run` starts); its tables."""
    ingest_only(world, opts)
    db = sqlite3.connect(opts.state)
    try:
        return {name: [tuple(r) for r in db.execute(sql)] for name, sql in TABLES.items()}
    finally:
        db.close()


def _hash_file_with_gaps(world: World, tmp_path: Any, story: Any) -> str:
    """The tenant's hash file less one user's line, and another user's line twice with different hashes."""
    with open(story.hashes, encoding="utf-8") as f:
        lines = f.read().splitlines()
    by_id = {json.loads(line)["_id"]["$oid"]: line for line in lines}
    missing, twice = story.source_id["plain1"].split("|")[1], story.source_id["plain2"].split("|")[1]
    other = json.loads(by_id[twice])
    other["passwordHash"] = "$2b$10$" + "A" * 53
    kept = [line for oid, line in by_id.items() if oid != missing] + [json.dumps(other)]
    path = tmp_path / "gaps.ndjson"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("subset", [False, True], ids=["all", "users-file"])
def test_workers_write_the_same_ledger(world: World, tmp_path, monkeypatch, subset: bool) -> None:
    story = _story(world, world, tmp_path)
    hashes = _hash_file_with_gaps(world, tmp_path, story)
    extra: dict[str, Any] = {}
    if subset:
        listed = tmp_path / "users.txt"
        listed.write_text("\n".join([story.email["full"].upper(), story.source_id["linked"], story.email["plain1"],
                                     story.source_id["plain2"], "nobody@example.com"]) + "\n", encoding="utf-8")
        extra["users_file"] = str(listed)

    def run(name: str) -> dict[str, list[tuple[Any, ...]]]:
        return _ingest(world, options(tmp_path, password_hashes=hashes, mfa_secrets=story.secrets,
                                      state=str(tmp_path / f"{name}.sqlite"), **extra))

    here = run("here")
    monkeypatch.setattr(workers_module, "FROM_BYTES", 0)
    monkeypatch.setattr(workers_module, "COUNT", 2)
    monkeypatch.setattr(pieces, "PIECE_BYTES", 700)  # a user or two a piece: many pieces, round both workers
    answers: list[int] = []
    answer = workers_module._Worker.answer

    def counted(self: Any) -> Any:  # the real answer, counted: the workers did read the export
        answers.append(self.process.pid)
        return answer(self)
    monkeypatch.setattr(workers_module._Worker, "answer", counted)
    workers = run("workers")

    assert len(answers) >= 8 and len(set(answers)) == 4  # two workers read the hash file, two the export
    for name in TABLES:
        assert workers[name] == here[name], name
    # ...and what was compared is the whole story, not an empty ledger.
    statuses = {row[10] for row in here["users"]}
    assert "ready" in statuses and "held_back" in statuses
    assert {row[1] for row in here["holdings"]} >= ({"mfa-factor", "identity"} if not subset else {"identity"})
    codes = {row[13] for row in here["users"]}
    assert "CONFLICTING_HASHES" in codes, here["users"]
    assert any(row[10] == "exported" and row[7] == "none" for row in here["users"])  # no hash: for transform
    if subset:
        assert len(here["users"]) == 4
        assert any(kind == "not-in-source" and ref == "nobody@example.com" for kind, ref, _ in here["problems"])
    else:
        assert len(here["users"]) == len(story.source_id)
        assert any(kind == "mfa-factor" for _, kind, *_ in here["holdings"])


def test_a_worker_that_cannot_start_stops_the_export(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(workers_module, "FROM_BYTES", 0)
    monkeypatch.setattr(workers_module, "COUNT", 2)
    export = tmp_path / "export.ndjson"
    export.write_text('{"user_id":"auth0|1","email":"a@example.com"}\n', encoding="utf-8")
    work = ingest.UserWork(options(tmp_path, password_hashes=str(tmp_path / "h.ndjson")), SOURCE, None, None)
    with pytest.raises(RuntimeError, match="ended without answering"):
        list(ingest.findings_of_export(work, str(export), lambda ids: {}, str(tmp_path / "no-such-ledger")))


def _synthetic_export(path: Any, users: int) -> list[str]:
    """An export file of `users` users, with the lines an export should not have among them (not JSON, not an
    object, no user_id, blank), CRLF and CR line ends, users the validator refuses and primaries of another
    connection."""
    lines = []
    for n in range(users):
        user: dict[str, Any] = {"user_id": f"auth0|{n:024x}", "email": f"user{n}@example.com", "email_verified": True,
                                "identities": [{"connection": SOURCE, "user_id": f"{n:024x}", "provider": "auth0"}],
                                "app_metadata": {"plan": "pro"}, "logins_count": n}
        if n % 7 == 3:
            user["app_metadata"] = {"bad.key": 1}  # refused by the validator: invalid
        if n % 11 == 5:
            user["identities"] = [{"connection": "Other-DB", "user_id": "x", "provider": "auth0"},
                                  {"connection": SOURCE, "user_id": f"{n:024x}", "provider": "auth0"}]
        if n % 13 == 6:
            user["identities"].append({"connection": "google-oauth2", "user_id": f"g{n}", "provider": "google-oauth2"})
        lines.append(json.dumps(user))
        if n % 17 == 8:
            lines += ["{not json", "[1, 2]", '{"email": "no-id@example.com"}', "   "]
    text = ""
    for i, line in enumerate(lines):
        text += line + ("\r\n" if i % 5 == 0 else "\r" if i % 9 == 0 else "\n")
    path.write_text(text, encoding="utf-8", newline="")
    return lines


def test_workers_hand_back_each_piece_in_order(tmp_path, monkeypatch) -> None:
    export = tmp_path / "export.ndjson"
    lines = _synthetic_export(export, 120)
    work = ingest.UserWork(options(tmp_path), SOURCE, None, None)
    monkeypatch.setattr(pieces, "PIECE_BYTES", 500)
    monkeypatch.setattr(workers_module, "FROM_BYTES", 0)
    monkeypatch.setattr(workers_module, "COUNT", 0)
    here = list(ingest.findings_of_export(work, str(export), lambda ids: {}, "unused"))
    ledger_path = tmp_path / "ledger.sqlite"
    sqlite3.connect(ledger_path).close()  # the workers' hash reader opens it (no hash file here: never read)
    monkeypatch.setattr(workers_module, "COUNT", 2)
    there = list(ingest.findings_of_export(work, str(export), lambda ids: {}, str(ledger_path)))

    assert len(here) > 20  # many pieces, round both workers many times
    assert there == here
    rows = [row for found in here for row in found.rows]
    ordinals = [row[0] for row in rows]
    assert ordinals == sorted(ordinals) and len(rows) == 120 - len(range(5, 120, 11))
    # Problems in the order of their lines: bad lines by number, primaries of another connection by id.
    expected = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            expected.append(("export", str(number)))
            continue
        if not isinstance(record, dict) or "user_id" not in record:
            expected.append(("export", str(number)))
        elif record["identities"][0]["connection"] != SOURCE:
            expected.append(("linked-elsewhere", record["user_id"]))
    assert [(kind, ref) for found in here for kind, ref, _ in found.problems] == expected
    assert {row[8] for row in rows} == {"ready", "invalid"}
    assert [found.linked for found in here if found.linked]  # secondaries noted


def slow_job(seconds: float) -> Any:
    """A worker job for the test below: each piece takes `seconds`."""
    import time

    def work(piece: bytes, first: int) -> int:
        time.sleep(seconds)
        return first
    return work


def _ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads the process tree from /proc")
def test_workers_end_when_the_process_that_started_them_is_killed() -> None:
    """A run killed mid-export (SIGKILL: no clean-up of its own) leaves no worker behind: each sees its input end."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = ("from auth0_migrate import workers\n"
              "pieces = ((n, b'x') for n in range(1, 1000))\n"
              "for answer in workers.in_workers('tests.e2e.test_export_workers:slow_job', (0.05,), pieces, 2):\n"
              "    print(answer, flush=True)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=root)
    try:
        assert parent.stdout is not None
        assert [int(parent.stdout.readline()) for _ in range(4)] == [1, 2, 3, 4]  # answers flow, in order
        with open(f"/proc/{parent.pid}/task/{parent.pid}/children", encoding="ascii") as children:
            crew = [int(pid) for pid in children.read().split()]
        assert len(crew) == 2
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while not all(_ended(pid) for pid in crew) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_ended(pid) for pid in crew), crew
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_the_environment_sets_how_many_workers(tmp_path, monkeypatch) -> None:
    from auth0_migrate.errors import UsageError

    big, small = tmp_path / "big.ndjson", tmp_path / "small.ndjson"
    big.write_bytes(b"{}\n" * 1000)
    small.write_bytes(b"{}\n")
    monkeypatch.setattr(workers_module, "FROM_BYTES", 1000)
    for value, count in (("0", 0), ("3", 3), (" 1 ", 1)):
        monkeypatch.setenv(workers_module.ENV, value)
        assert (workers_module.worker_count(str(big)), workers_module.worker_count(str(small))) == (count, 0)
    monkeypatch.setenv(workers_module.ENV, "many")
    with pytest.raises(UsageError, match="AUTH0_MIGRATE_WORKERS='many'"):
        workers_module.worker_count(str(big))
    monkeypatch.delenv(workers_module.ENV)
    monkeypatch.setattr(workers_module.sys, "frozen", True, raising=False)
    assert workers_module.worker_count(str(big)) == 0  # a frozen program has no Python to start workers with
