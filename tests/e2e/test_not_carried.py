"""Nothing dropped quietly (issue 12): every user a run did not carry is named with a reason, counted in the
summary, gives exit code 3, and is retried by the next run when the reason was not the user's data.

Each test drives the tool against the local tenant and would fail on the code before the fix it covers.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from auth0_migrate.formats import import_record
from auth0_migrate.model import PlanResult
from auth0_migrate.passwords import make_credential

from .conftest import SOURCE, TARGET, World, dump, migrate, options

IMPORTS = "POST /api/v2/jobs/users-imports"


def _users_file(tmp_path, users: list[dict[str, Any]], name: str = "users.ndjson") -> str:
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        for user in users:
            out.write(json.dumps(user) + "\n")
    return str(path)


def _failures(result) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    return {f.user_id: f.as_dict() for f in result.failures}


def _ledger_bytes(state: str) -> bytes:
    """The ledger as it lies on disk: the file and whatever write-ahead log is beside it."""
    data = b""
    for suffix in ("", "-wal", "-journal"):
        if os.path.exists(state + suffix):
            with open(state + suffix, "rb") as f:
                data += f.read()
    return data


def _secrets(credential: dict[str, Any]) -> list[str]:
    """Hash values and salts of a credential, each long enough that it cannot appear by chance."""
    if "password_hash" in credential:
        return [credential["password_hash"], credential["password_hash"][7:29]]
    cph = credential["custom_password_hash"]
    found = [cph["hash"]["value"]]
    if "salt" in cph:
        found.append(cph["salt"]["value"])
    return [s for s in found if len(s) >= 8]


# -- item 1: a failed import job is not final -------------------------------------------------------------


def test_users_of_a_failed_import_job_are_retried_by_the_next_run(world: World, tmp_path, monkeypatch) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    users = [{"user_id": f"u{n}", "email": f"u{n}@example.com", "email_verified": True,
              **make_credential(f"pw-{n}", "sha256", salt=f"salt-of-user-{n}")} for n in range(5)]
    # One user Auth0 refuses for its data, which the tool's own check is made to miss (as a gap in it would).
    users.append({"user_id": "bad", "email": "bad@example.com", "app_metadata": {"blocked": True},
                  **make_credential("pw-bad", "md5", salt="salt-of-the-bad-user")})
    path = _users_file(tmp_path, users)
    real_validate = import_record.validate_import_user
    monkeypatch.setattr(import_record, "validate_import_user",
                        lambda user: [] if user.get("email") == "bad@example.com" else real_validate(user))
    opts = options(tmp_path, from_file=path)

    # Run 1: every import job of the file fails (three attempts); the users are failed, named, retryable.
    world.tenant.faults.fail_jobs.update({1, 2, 3})
    first = migrate(world, opts)
    assert world.tenant.stats[IMPORTS] == 3  # the fault fired: three jobs, all failed
    assert first.exit_code == 3, dump(first)
    assert first.users["failed"] == 6 and first.users["imported"] == 0
    failures = _failures(first)
    assert set(failures) == {f"auth0|{u['user_id']}" for u in users}
    assert {f["code"] for f in failures.values()} == {"JOB_FAILED"}
    assert first.reports["failures_by_code"] == {"JOB_FAILED": 6}
    assert all("run the same command again" in f["message"] for f in failures.values())
    assert world.users(TARGET) == []
    # Chosen: a user failed for a job-level reason keeps its credential (0600 ledger) so the retry can rebuild
    # its import file; the hash file or --from-file is not read again.
    secrets = [s for u in users for s in _secrets({k: v for k, v in u.items() if k.endswith("password_hash")})]
    data = _ledger_bytes(opts.state or "")
    assert all(s.encode() in data for s in secrets)

    # Run 2: the same command retries them: five go in, the one Auth0 refuses for its data fails with Auth0's code.
    second = migrate(world, opts)
    assert world.tenant.stats[IMPORTS] == 4
    assert second.exit_code == 3, dump(second)
    assert second.users["imported"] == second.users["verified"] == 5
    failures = _failures(second)
    assert list(failures) == ["auth0|bad"]
    assert failures["auth0|bad"]["code"] == "NOT_PASSED" and failures["auth0|bad"]["stage"] == "import"
    assert "app_metadata.blocked" in failures["auth0|bad"]["message"]
    assert {u["email"] for u in world.users(TARGET)} == {u["email"] for u in users[:5]}
    assert world.login(TARGET, "u3@example.com", "pw-3") == 200  # the hash kept for the retry is the right one
    # Imported or finally refused: no hash or salt of anyone is left in the ledger.
    data = _ledger_bytes(opts.state or "")
    assert not [s for s in secrets if s.encode() in data]

    # Run 3: a failure of the user's data is final; nothing is uploaded again.
    third = migrate(world, opts)
    assert world.tenant.stats[IMPORTS] == 4
    assert third.as_dict()["users"] == second.as_dict()["users"]
    assert [f.as_dict() for f in third.failures] == [f.as_dict() for f in second.failures]
    assert third.exit_code == 3


def test_users_of_an_expired_import_job_are_retried_too(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    users = [{"user_id": f"e{n}", "email": f"e{n}@example.com", **make_credential(f"pw-{n}", "sha1")}
             for n in range(3)]
    opts = options(tmp_path, from_file=_users_file(tmp_path, users))
    world.tenant.faults.expire_jobs.update({1, 2, 3})
    first = migrate(world, opts)
    assert world.tenant.stats[IMPORTS] == 3
    assert first.exit_code == 3 and first.reports["failures_by_code"] == {"JOB_EXPIRED": 3}, dump(first)
    assert "the last one expired" in first.failures[0].message
    second = migrate(world, opts)
    assert second.exit_code == 0, dump(second)
    assert second.users["imported"] == second.users["verified"] == 3 and second.failures == []
    assert world.login(TARGET, "e1@example.com", "pw-1") == 200


# -- item 8: a refused user's hash leaves the ledger -----------------------------------------------------


def _refused_and_accepted(n: int = 2) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def cred(name: str) -> dict[str, Any]:
        return make_credential(f"pw-{name}", "sha256", salt=f"salt-{name}-0123456789")

    good = [{"user_id": f"good{i}", "email": f"good{i}@example.com", **cred(f"good{i}")} for i in range(n)]
    refused = [
        {"user_id": "reserved", "email": "reserved@example.com", "app_metadata": {"blocked": True},
         **cred("reserved")},
        {"user_id": "dotted", "email": "dotted@example.com", "user_metadata": {"a.b": 1}, **cred("dotted")},
        {"user_id": "bademail", "email": "not-an-email", **cred("bademail")},
        {"user_id": "badbcrypt", "email": "badbcrypt@example.com", "password_hash": "$2b$10$" + "x" * 40},
        # Refused by the packer as it reads the file (one user over the 500 KB file limit), not by a status change.
        {"user_id": "huge", "email": "huge@example.com", "user_metadata": {f"k{i}": "v" * 1000 for i in range(520)},
         **cred("huge")},
    ]
    return good, refused


def test_refused_users_leave_no_hash_in_the_ledger(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    good, refused = _refused_and_accepted()
    path = _users_file(tmp_path, good + refused)
    # Alone, and with a hash file that has no row for these users (their records then wait, whole, for the join).
    hash_file = _users_file(tmp_path, [{"_id": {"$oid": "0" * 24}, "email": "nobody@example.com",
                                        "passwordHash": "$2b$10$" + "n" * 53, "connection": SOURCE}], "hashes.ndjson")
    for state, extra in (("alone.sqlite", {}), ("joined.sqlite", {"password_hashes": hash_file,
                                                                   "missing_hash": "import"})):
        # The source id is recorded, so the second ledger can prove the good users are this migration's.
        result = migrate(world, options(tmp_path, from_file=path, state=str(tmp_path / state),
                                        record_source_id="legacy_id", **extra))
        assert result.exit_code == 3, dump(result)
        assert set(_failures(result)) == {f"auth0|{u['user_id']}" for u in refused}, dump(result)
        assert {k: f["stage"] for k, f in _failures(result).items() if f["stage"] != "transform"} \
            == {"auth0|huge": "pack"}
        assert _failures(result)["auth0|huge"]["code"] == "USER_TOO_LARGE"
        data = _ledger_bytes(str(tmp_path / state))
        assert b"reserved@example.com" in data  # the users are in the ledger, only their hashes are not
        for user in good + refused:
            for secret in _secrets({k: v for k, v in user.items() if k.endswith("password_hash")}):
                assert secret.encode() not in data, (state, user["user_id"])


# -- item 3: no user vanishes from the report --------------------------------------------------------------


def test_two_users_with_one_email_the_second_is_refused_by_name(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    cred = make_credential("pw-same", "sha1", salt="salt-salt-salt")
    users = [{"user_id": "first", "email": "Same@example.com", **cred},
             {"user_id": "other", "email": "other@example.com", **cred},
             {"user_id": "second", "email": "same@example.com", "given_name": "Second", **cred}]
    result = migrate(world, options(tmp_path, from_file=_users_file(tmp_path, users)))
    assert result.exit_code == 3, dump(result)
    assert result.users["imported"] == result.users["verified"] == 2
    assert result.users["failed"] == 1 and result.users["pending"] == 0
    failures = _failures(result)
    assert list(failures) == ["auth0|second"]
    assert failures["auth0|second"]["code"] == "DUPLICATE_EMAIL"
    assert result.reports["failures_by_code"] == {"DUPLICATE_EMAIL": 1}
    assert failures["auth0|second"]["message"].startswith("email: same@example.com is also the email of auth0|first")
    target = world.users(TARGET)
    assert sorted(u["email"] for u in target) == ["other@example.com", "same@example.com"]
    assert "Second" not in next(u["profile"] for u in target if u["email"] == "same@example.com")


def test_a_stopped_run_lists_every_user_it_did_not_finish(world: World, tmp_path, monkeypatch) -> None:
    """`status` of a run that stopped before the import: each user is a failure with a reason, none only a count."""
    from auth0_migrate.pipeline import status
    from auth0_migrate.stages import import_jobs

    class Stopped(BaseException):
        pass

    async def stop(job):  # noqa: ANN001, ANN202
        raise Stopped

    world.connection(SOURCE)
    world.connection(TARGET)
    users = [{"user_id": f"s{n}", "email": f"s{n}@example.com", **make_credential(f"pw{n}", "md5")}
             for n in range(3)]
    users.append({"user_id": "bad", "email": "not-an-email", **make_credential("pw", "md5")})
    opts = options(tmp_path, from_file=_users_file(tmp_path, users))
    monkeypatch.setattr(import_jobs, "import_users", stop)
    with pytest.raises(Stopped):
        migrate(world, opts)
    result = status(opts.state or "")
    assert result.exit_code == 3, dump(result)
    counts = result.users
    assert counts["pending"] == 3 and counts["failed"] == 1
    assert counts["imported"] + counts["already_in_target"] + counts["held_back"] + counts["failed"] \
        + counts["pending"] == counts["selected"] == 4
    failures = _failures(result)
    assert set(failures) == {f"auth0|{u['user_id']}" for u in users}
    assert failures["auth0|bad"]["code"] == "FORMAT"
    assert result.reports["failures_by_code"] == {"FORMAT": 1, "NOT_FINISHED": 3}
    for n in range(3):
        assert failures[f"auth0|s{n}"]["code"] == "NOT_FINISHED"
        assert "not yet imported" in failures[f"auth0|s{n}"]["message"]
    # Running again finishes them.
    monkeypatch.undo()
    again = migrate(world, opts)
    assert again.users["imported"] == 3 and list(_failures(again)) == ["auth0|bad"], dump(again)


# -- item 6: a digest of the wrong length is refused by name, in plan and in run --------------------------


def test_digests_of_impossible_length_are_refused_by_name(world: World, tmp_path) -> None:
    import asyncio

    from auth0_migrate.pipeline import plan

    world.connection(SOURCE)
    world.connection(TARGET)

    def spoiled(password: str, algorithm: str, change, **params: Any) -> dict[str, Any]:  # noqa: ANN001
        credential = make_credential(password, algorithm, **params)
        value = credential["custom_password_hash"]["hash"]
        value["value"] = change(value["value"])
        return credential

    users = [
        {"user_id": "ok-md5", "email": "ok-md5@example.com", **make_credential("pw-ok", "md5")},
        {"user_id": "md5-33", "email": "md5-33@example.com", **spoiled("pw1", "md5", lambda v: v + "0")},
        {"user_id": "sha1-b64", "email": "sha1-b64@example.com",
         **spoiled("pw2", "sha1", lambda v: v[:20], encoding="base64")},
        {"user_id": "hmac-short", "email": "hmac-short@example.com", **spoiled("pw3", "hmac", lambda v: v[:-2])},
        {"user_id": "pbkdf2-l", "email": "pbkdf2-l@example.com",
         **spoiled("pw4", "pbkdf2", lambda v: v.replace("l=32", "l=64"), keylen=32)},
        {"user_id": "ok-sha512", "email": "ok-sha512@example.com",
         **make_credential("pw-ok2", "sha512", encoding="base64")},
    ]
    refused = {"auth0|md5-33", "auth0|sha1-b64", "auth0|hmac-short", "auth0|pbkdf2-l"}
    opts = options(tmp_path, from_file=_users_file(tmp_path, users))

    async def planned() -> PlanResult:
        client = world.client()
        try:
            return await plan(opts, source=client)
        finally:
            await client.aclose()

    before = asyncio.run(planned())
    assert before.users["will_fail"] == 4 and before.users["will_import"] == 2, before
    assert {f.user_id for f in before.failures} == refused
    assert world.users(TARGET) == []

    result = migrate(world, opts)
    assert result.exit_code == 3, dump(result)
    assert result.users["imported"] == result.users["verified"] == 2
    failures = _failures(result)
    assert set(failures) == refused
    assert result.reports["failures_by_code"] == {"DIGEST_LENGTH": 4}
    for failure in failures.values():
        assert failure["code"] == "DIGEST_LENGTH" and failure["stage"] == "transform"
        assert failure["message"].startswith("custom_password_hash.hash.value: ")
    assert "the md5 digest is 16 bytes, 32 hex characters; this value is 33 characters" \
        in failures["auth0|md5-33"]["message"]
    assert "l=64" in failures["auth0|pbkdf2-l"]["message"]
    text = json.dumps(result.as_dict())
    for user in users:
        assert user["custom_password_hash"]["hash"]["value"] not in text
    assert {u["email"] for u in world.users(TARGET)} == {"ok-md5@example.com", "ok-sha512@example.com"}
    assert world.login(TARGET, "ok-sha512@example.com", "pw-ok2") == 200


# -- item 5: hash lines that disagree are never settled silently ------------------------------------------


def _hash_file_with_repeats(world: World, tmp_path) -> tuple[str, dict[str, str], dict[str, str], list[str]]:
    """The support file with, for one user, a second line holding another hash (an old password), and for
    another user the same line twice. Returns (path, ids by email, passwords, every hash in the file)."""
    from auth0_migrate.passwords import bcrypt_hash

    with open(world.hash_file(str(tmp_path / "all.ndjson")), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    ids = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    emails = sorted(ids)
    changed, repeated = emails[0], emails[1]
    old = dict(next(r for r in rows if r["email"] == changed), passwordHash=bcrypt_hash("an-old-password"))
    lines = [*rows, old, next(r for r in rows if r["email"] == repeated)]  # the old hash on the later line
    path = _users_file(tmp_path, lines, "hashes.ndjson")
    return path, ids, {"changed": changed, "repeated": repeated}, [r["passwordHash"] for r in lines]


def test_disagreeing_hash_lines_hold_the_user_back_by_name(world: World, tmp_path) -> None:
    seeded = world.seed(users=8)
    world.connection(TARGET)
    path, ids, who, hashes = _hash_file_with_repeats(world, tmp_path)
    with open(path, encoding="utf-8") as f:
        line_of = {}
        for n, line in enumerate(f, 1):
            line_of.setdefault(json.loads(line)["email"], []).append(n)
    changed, repeated = who["changed"], who["repeated"]
    assert len(line_of[changed]) == len(line_of[repeated]) == 2

    result = migrate(world, options(tmp_path, password_hashes=path))
    assert result.exit_code == 3, dump(result)
    assert result.users["held_back"] == 1 and result.users["imported"] == result.users["verified"] == 7
    failures = _failures(result)
    assert list(failures) == [ids[changed]]
    held = failures[ids[changed]]
    assert held["code"] == "CONFLICTING_HASHES" and held["stage"] == "hashes"
    assert result.reports["failures_by_code"] == {"CONFLICTING_HASHES": 1}
    first, second = line_of[changed]
    assert f"lines {first} and {second} give {ids[changed]} different password hashes" in held["message"]
    assert "--duplicate-hash" in held["message"]
    # The identical repeat is no conflict: the user moved, and the repeated line is reported as a counted problem.
    problems = result.reports["problems"]["hash-repeat"]
    assert [p["ref"] for p in problems] == [str(line_of[repeated][1])]
    assert f"repeats line {line_of[repeated][0]} for user {ids[repeated]}" in problems[0]["detail"]
    assert changed not in {u["email"] for u in world.users(TARGET)}
    blocked = '"blocked":true' in next(u["profile"] for u in world.users(SOURCE) if u["email"] == repeated)
    assert world.login(TARGET, repeated, seeded.passwords[repeated]) == (401 if blocked else 200)
    assert world.login(TARGET, repeated, "wrong") == 403
    text = json.dumps(result.as_dict())
    assert not [h for h in hashes if h in text or h[7:29] in text]
    data = _ledger_bytes(str(tmp_path / "state.sqlite"))
    assert not [h for h in hashes if h.encode() in data]


def test_the_owner_can_choose_the_first_or_the_last_line(world: World, tmp_path) -> None:
    seeded = world.seed(users=6)
    world.connection(TARGET)
    path, ids, who, _ = _hash_file_with_repeats(world, tmp_path)
    changed = who["changed"]
    blocked = '"blocked":true' in next(u["profile"] for u in world.users(SOURCE) if u["email"] == changed)
    ok = 401 if blocked else 200

    first = migrate(world, options(tmp_path, password_hashes=path, duplicate_hash="first",
                                   state=str(tmp_path / "first.sqlite")))
    assert first.exit_code == 0, dump(first)
    assert first.users["imported"] == 6 and first.failures == []
    chosen = [p for p in first.reports["problems"]["hash-repeat"] if "different password hashes" in p["detail"]]
    assert len(chosen) == 1 and ids[changed] in chosen[0]["detail"]
    assert "(--duplicate-hash first)" in chosen[0]["detail"]
    assert world.login(TARGET, changed, seeded.passwords[changed]) == ok
    assert world.login(TARGET, changed, "an-old-password") == 403

    # `last`, into a fresh target connection: the later line (the old password) wins, as asked.
    world.connection("Newer-DB")
    last = migrate(world, options(tmp_path, password_hashes=path, duplicate_hash="last",
                                  target_connection="Newer-DB", state=str(tmp_path / "last.sqlite")))
    assert last.exit_code == 0, dump(last)
    assert "(--duplicate-hash last)" in json.dumps(last.reports["problems"])
    assert world.login("Newer-DB", changed, "an-old-password") == ok
    assert world.login("Newer-DB", changed, seeded.passwords[changed]) == 403
