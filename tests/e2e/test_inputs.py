"""Missing, extra and bad input, end to end: each gives a clear error naming the user and the field (or the
file and the line), and nothing is lost: users that cannot move stay in the source and are listed."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from typing import Any

import pytest

from auth0_migrate.errors import InputError, InsufficientScopeError, UsageError
from auth0_migrate.passwords import make_credential

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options


def _lines(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_lines(path: str, lines: list[Any]) -> str:
    with open(path, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        for line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def _source_ids(world: World) -> dict[str, str]:
    return {u["email"]: u["user_id"] for u in world.users(SOURCE)}


def _failures(result) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    return {f.user_id: f.as_dict() for f in result.failures}


# -- missing hashes ---------------------------------------------------------------------------------


def test_missing_hashes_are_held_back_then_imported_on_request(world: World, tmp_path) -> None:
    seeded = world.seed(users=12)
    world.connection(TARGET)
    ids = _source_ids(world)
    rows = _lines(world.hash_file(str(tmp_path / "all.ndjson")))
    dropped = [r for r in rows if r["email"] in sorted(ids)[:3]]
    hashes = _write_lines(str(tmp_path / "hashes.ndjson"), [r for r in rows if r not in dropped])
    missing = {ids[r["email"]]: r["email"] for r in dropped}

    # The source id is recorded, so a later run with another ledger can prove these users are this migration's.
    result = migrate(world, options(tmp_path, password_hashes=hashes, record_source_id="legacy_id"))
    assert result.exit_code == 3, dump(result)
    assert result.users["selected"] == 12
    assert result.users["held_back"] == 3
    assert result.users["imported"] == result.users["verified"] == 9
    assert result.users["failed"] == 0
    failures = _failures(result)
    assert set(failures) == set(missing)
    for user_id, failure in failures.items():
        assert failure["code"] == "NO_PASSWORD_HASH"
        assert failure["email"] == missing[user_id]
        assert user_id in failure["message"] and "hashes.ndjson" in failure["message"]
        assert "--missing-hash import" in failure["message"]
    target = {u["email"] for u in world.users(TARGET)}
    assert len(target) == 9 and not target & set(missing.values())
    assert len(world.users(SOURCE)) == 12  # held back means left in the source

    # Asked to, they are imported without a hash (and so cannot log in); the 9 already there are recognised.
    result = migrate(world, options(tmp_path, password_hashes=hashes, missing_hash="import",
                                    record_source_id="legacy_id", state=str(tmp_path / "second.sqlite")))
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == 3
    assert result.users["already_in_target"] == 9
    assert result.users["verified"] == 12
    assert result.users["held_back"] == result.users["failed"] == 0
    assert result.users["with_password_hash"] == 9
    target_users = world.users(TARGET)
    assert len(target_users) == 12 and len({u["email"] for u in target_users}) == 12  # nobody twice
    for email in missing.values():
        assert world.login(TARGET, email, seeded.passwords[email]) == 403
    with_hash = next(e for e in sorted(ids) if e not in missing.values() and "blocked" not in
                     next(u["profile"] for u in target_users if u["email"] == e))
    assert world.login(TARGET, with_hash, seeded.passwords[with_hash]) == 200


# -- extra hashes and the e-mail fallback --------------------------------------------------------------


def test_extra_hashes_and_email_fallback(world: World, tmp_path) -> None:
    seeded = world.seed(users=10)
    world.connection(TARGET)
    ids = _source_ids(world)
    emails = sorted(ids)
    rows = _lines(world.hash_file(str(tmp_path / "all.ndjson")))
    by_email = {r["email"]: r for r in rows}
    template = by_email[emails[0]]
    lines: list[dict[str, Any]] = [r for r in rows if r["email"] not in (emails[1], emails[2])]
    # emails[1]: its row carries another id, but its e-mail is unique -> joined by e-mail.
    moved = dict(by_email[emails[1]], _id={"$oid": "f" * 24})
    lines.append(moved)
    # emails[2]: two rows with its e-mail, neither with its id -> ambiguous, not joined.
    lines.append(dict(by_email[emails[2]], _id={"$oid": "e" * 24}))
    lines.append(dict(by_email[emails[2]], _id={"$oid": "d" * 24}))
    # Rows for users that do not exist, in the source connection and in another one.
    lines.append(dict(template, _id={"$oid": "a" * 24}, email="ghost@example.com",
                      identifiers=[{"type": "email", "value": "ghost@example.com", "verified": False}]))
    lines.append(dict(template, _id={"$oid": "b" * 24}, email="other@example.com", connection="Other-DB"))
    lines.append(dict(template, _id={"$oid": "c" * 24}, email=emails[3], connection="Other-DB"))
    hashes = _write_lines(str(tmp_path / "hashes.ndjson"), lines)

    result = migrate(world, options(tmp_path, password_hashes=hashes))
    assert result.exit_code == 3, dump(result)
    orphans = {p["ref"]: p["detail"] for p in result.reports["problems"]["hash-without-user"]}
    # Only the source connection's rows: the ghost and the two ambiguous rows; never Other-DB's.
    assert set(orphans) == {"auth0|" + "a" * 24, "auth0|" + "e" * 24, "auth0|" + "d" * 24}
    for ref, detail in orphans.items():
        assert ref in detail and "line" in detail and SOURCE in detail
    assert result.reports["hash_file"]["other_connections"] == 2
    # The e-mail fallback joined emails[1]; emails[2] is held back, not given one of two hashes.
    assert result.users["imported"] == result.users["verified"] == 9
    assert result.users["held_back"] == 1
    assert [f.user_id for f in result.failures] == [ids[emails[2]]]
    assert result.failures[0].code == "NO_PASSWORD_HASH"
    target = {u["email"] for u in world.users(TARGET)}
    assert emails[1] in target and emails[2] not in target
    blocked = '"blocked":true' in next(u["profile"] for u in world.users(TARGET) if u["email"] == emails[1])
    assert world.login(TARGET, emails[1], seeded.passwords[emails[1]]) == (401 if blocked else 200)
    assert world.login(TARGET, emails[1], seeded.passwords[emails[1]] + "x") == 403


# -- malformed lines ------------------------------------------------------------------------------


def test_malformed_hash_lines_reported_by_line_without_hash_text(world: World, tmp_path) -> None:
    world.seed(users=8)
    world.connection(TARGET)
    ids = _source_ids(world)
    emails = sorted(ids)
    rows = _lines(world.hash_file(str(tmp_path / "all.ndjson")))
    secrets = [r["passwordHash"] for r in rows]
    by_email = {r["email"]: r for r in rows}
    lines: list[Any] = [by_email[e] for e in emails[3:]]
    bad_json = json.dumps(by_email[emails[0]])[:-12]  # cut mid-hash: not JSON, and holds hash text
    no_hash = {k: v for k, v in by_email[emails[1]].items() if k not in ("passwordHash", "password_set_date")}
    not_bcrypt = dict(by_email[emails[2]], passwordHash="{SSHA}" + by_email[emails[2]]["passwordHash"][7:40])
    secrets.append(not_bcrypt["passwordHash"])
    lines[1:1] = [bad_json, no_hash, not_bcrypt]  # lines 2, 3, 4
    hashes = _write_lines(str(tmp_path / "hashes.ndjson"), lines)

    result = migrate(world, options(tmp_path, password_hashes=hashes))
    assert result.exit_code == 3, dump(result)
    problems = {p["ref"]: p["detail"] for kind in ("hash-file", "hash-without-password")
                for p in result.reports["problems"][kind]}
    assert result.reports["problem_counts"] == {"hash-file": 2, "hash-without-password": 1}
    assert set(problems) == {"2", "3", "4"}
    assert "not valid JSON" in problems["2"] and "hashes.ndjson" in problems["2"]
    assert "no passwordHash" in problems["3"] and ids[emails[1]] in problems["3"]
    assert "passwordHash" in problems["4"] and ids[emails[2]] in problems["4"]
    # The three users whose lines were unusable are held back, named; the five others moved.
    assert result.users["imported"] == result.users["verified"] == 5
    held = _failures(result)
    assert set(held) == {ids[e] for e in emails[:3]}
    assert all(f["code"] == "NO_PASSWORD_HASH" for f in held.values())
    assert {u["email"] for u in world.users(TARGET)} == set(emails[3:])
    text = json.dumps(result.as_dict())
    for secret in secrets:
        assert secret not in text
        assert secret[7:30] not in text


def test_malformed_from_file_lines(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    good = [{"email": f"good{n}@example.com", "email_verified": True, "user_id": f"good{n}",
             **make_credential(f"pw-{n}", "md5")} for n in range(4)]
    lines: list[Any] = [good[0], '{"email": "broken@example.com", "password_hash": "$2b$10$abc', good[1],
                        "[1, 2]", {"name": "nobody"}, good[2], '{"email": "nan@example.com", "x": NaN}',
                        good[3]]
    path = _write_lines(str(tmp_path / "users.ndjson"), lines)
    result = migrate(world, options(tmp_path, from_file=path))
    # Every user that came is carried, but four lines were not: that is not a clean run.
    assert result.exit_code == 3, dump(result)
    assert result.reports["problem_counts"] == {"users-file": 4}
    problems = {p["ref"]: p["detail"] for p in result.reports["problems"]["users-file"]}
    assert set(problems) == {"2", "4", "5", "7"}
    assert "not valid JSON" in problems["2"]
    assert "not a JSON object" in problems["4"]
    assert "no user_id and no email" in problems["5"]
    assert "NaN" in problems["7"]
    assert all("users.ndjson" in d and f"line {ref}" in d for ref, d in problems.items())
    assert "$2b$10$abc" not in json.dumps(result.as_dict())
    assert result.users["imported"] == result.users["verified"] == 4
    assert {u["email"] for u in world.users(TARGET)} == {u["email"] for u in good}
    assert world.login(TARGET, "good2@example.com", "pw-2") == 200


# -- unknown connections, missing scopes ------------------------------------------------------------


@pytest.mark.parametrize("which", ["source", "target"])
def test_unknown_connection(world: World, tmp_path, which: str) -> None:
    world.seed(users=3)
    world.connection(TARGET)
    kwargs = {f"{which}_connection": "No-Such-DB"}
    with pytest.raises(UsageError, match="No-Such-DB") as info:
        migrate(world, options(tmp_path, **kwargs))
    assert "connection" in str(info.value)
    assert not (tmp_path / "state.sqlite").exists()
    assert world.users(TARGET) == [] and len(world.users(SOURCE)) == 3


def test_token_missing_scopes(world: World, tmp_path) -> None:
    from auth0_migrate.tenant import oauth

    world.seed(users=3)
    world.connection(TARGET)
    oauth.create_client(world.tenant.store, "weak", "weak-secret", scopes=("read:users", "read:connections"))
    with pytest.raises(InsufficientScopeError) as info:
        migrate(world, options(tmp_path), client_id="weak", client_secret="weak-secret")
    needed = {"read:roles", "create:users", "update:users", "update:roles"}
    assert needed <= set(info.value.scopes)
    assert "read:users" not in info.value.scopes
    for scope in needed:
        assert scope in str(info.value)
    assert not (tmp_path / "state.sqlite").exists()
    assert world.users(TARGET) == []
    # Cutover needs delete:users too; a client with everything else is told exactly that.
    everything_else = [s for s in oauth.ALL_SCOPES if s != "delete:users"]
    oauth.create_client(world.tenant.store, "almost", "almost-secret", scopes=everything_else)
    with pytest.raises(InsufficientScopeError, match="delete:users") as info:
        migrate(world, options(tmp_path, delete_source_users=True), client_id="almost",
                client_secret="almost-secret")
    assert info.value.scopes == ["delete:users"]
    assert len(world.users(SOURCE)) == 3 and world.users(TARGET) == []


# -- ids a prefix would make invalid ----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["p" * 240])  # a prefix wrong for every id is a usage error (test below)
def test_prefix_making_invalid_ids(world: World, tmp_path, prefix: str) -> None:
    world.seed(users=5)
    world.connection(TARGET)
    ids = _source_ids(world)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, user_ids="prefix", id_prefix=prefix, password_hashes=hashes))
    assert result.exit_code == 3, dump(result)
    assert result.users["failed"] == 5 and result.users["imported"] == 0
    failures = _failures(result)
    assert set(failures) == set(ids.values())
    for user_id, failure in failures.items():
        assert failure["stage"] == "transform"
        assert failure["code"] == "INVALID_USER_ID"
        assert failure["message"].startswith("user_id: the user id would ")
        assert failure["email"] == next(e for e, i in ids.items() if i == user_id)
    assert result.reports["import_files"] == []  # nothing was uploaded
    assert world.users(TARGET) == []
    assert len(world.users(SOURCE)) == 5


# -- users the import would reject, users already there ----------------------------------------------


def test_users_the_import_rejects_fail_at_transform(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    cred = make_credential("pw-ok", "sha256", salt="s", salt_position="prefix")
    users = [
        {"user_id": "ok1", "email": "ok1@example.com", **cred},
        {"user_id": "reserved", "email": "reserved@example.com", "app_metadata": {"blocked": True}, **cred},
        {"user_id": "dotted", "email": "dotted@example.com", "user_metadata": {"prefs": {"a.b": 1}}, **cred},
        {"user_id": "bademail", "email": "not-an-email", **cred},
        {"user_id": "ok2", "email": "ok2@example.com", "app_metadata": {"plan": "pro"}, **cred},
    ]
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users))
    result = migrate(world, options(tmp_path, from_file=str(path)))
    assert result.exit_code == 3, dump(result)
    assert result.users["imported"] == result.users["verified"] == 2
    assert result.users["failed"] == 3
    failures = _failures(result)
    assert set(failures) == {"auth0|reserved", "auth0|dotted", "auth0|bademail"}
    assert all(f["stage"] == "transform" for f in failures.values())
    assert failures["auth0|reserved"]["code"] == "NOT_PASSED"
    assert failures["auth0|reserved"]["message"].startswith("app_metadata.blocked:")
    assert failures["auth0|dotted"]["code"] == "PATTERN"
    assert "user_metadata.prefs.a.b" in failures["auth0|dotted"]["message"]
    assert failures["auth0|bademail"]["code"] == "FORMAT"
    assert failures["auth0|bademail"]["message"].startswith("email:")
    assert cred["custom_password_hash"]["hash"]["value"] not in json.dumps(result.as_dict())
    # Validated locally: no import job ever saw them.
    assert sum(f["users"] for f in result.reports["import_files"]) == 2
    assert {u["email"] for u in world.users(TARGET)} == {"ok1@example.com", "ok2@example.com"}


def test_user_already_in_target_is_not_a_failure(world: World, tmp_path) -> None:
    """A target user with the same email that carries this user's source id (`--record-source-id`) is this
    migration's (made by an earlier run, say): recognised, not a failure (one without it: test_stranger.py)."""
    seeded = world.seed(users=12)
    world.connection(TARGET)
    ids = _source_ids(world)
    profiles = {u["email"]: json.loads(u["profile"]) for u in world.users(SOURCE) if not u["phone_number"]}
    # One with roles or permissions, and no phone number (POST /users to a database connection takes none).
    email = next(e for e in sorted(profiles) if any(grants_of(world, ids[e])))
    source_profile = profiles[email]

    async def precreate() -> str:
        client = world.client()
        try:
            same = {k: source_profile.get(k) for k in ("given_name", "family_name", "name", "nickname",
                                                        "app_metadata", "user_metadata")}
            same["app_metadata"] = {**(same["app_metadata"] or {}), "legacy_id": ids[email]}
            user = await client.sdk.users.create(
                connection=TARGET, email=email, password="Already-Here-123!", **same,
                email_verified=bool(source_profile.get("email_verified")),
                blocked=bool(source_profile.get("blocked")))
            return str(user.user_id)
        finally:
            await client.aclose()
    existing_id = asyncio.run(precreate())

    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, password_hashes=hashes, record_source_id="legacy_id"))
    assert result.users["already_in_target"] == 1, dump(result)
    assert result.users["imported"] == 11
    assert result.users["failed"] == result.users["held_back"] == 0
    assert ids[email] not in _failures(result)
    target = world.users(TARGET)
    assert len(target) == 12 and sum(u["email"] == email for u in target) == 1  # not duplicated
    assert next(u["user_id"] for u in target if u["email"] == email) == existing_id
    # The existing copy (same profile) is verified like any other, and given the source user's grants.
    assert result.exit_code == 0, dump(result)
    assert result.differences == []
    assert result.users["verified"] == 12
    assert grants_of(world, existing_id) == grants_of(world, ids[email])
    # Its password stays the one it had in the target; the import did not overwrite it.
    assert world.login(TARGET, email, "Already-Here-123!") == (401 if source_profile.get("blocked") else 200)
    assert world.login(TARGET, email, seeded.passwords[email]) == 403


# -- the ledger ---------------------------------------------------------------------------------------


def test_ledger_is_private_and_keeps_no_hashes(world: World, tmp_path) -> None:
    world.seed(users=20, mixed=True)
    world.connection(TARGET)
    path = world.hash_file(str(tmp_path / "hashes.ndjson"))
    secrets = [r["passwordHash"] for r in _lines(path) if "passwordHash" in r]
    assert len(secrets) >= 15
    state = tmp_path / "state.sqlite"
    result = migrate(world, options(tmp_path, password_hashes=path, missing_hash="import"))
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == 20
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    for name in os.listdir(tmp_path):
        if name.startswith("state.sqlite"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
            data = (tmp_path / name).read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, name
                assert secret[7:29].encode() not in data, name  # the salt part alone


# -- dropped input is counted and changes the exit code (issue 12, item 2 and 4) -------------------------


def _file_user(n: int, **extra: Any) -> dict[str, Any]:
    return {"email": f"file{n}@example.com", "user_id": f"file-{n}", **make_credential(f"pw-{n}", "md5"), **extra}


def _nested(depth: int) -> str:
    """JSON text of `depth` nested arrays, built without recursion."""
    return "[" * depth + "1" + "]" * depth


def test_dropped_from_file_lines_are_named_counted_and_exit_3(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    good = [_file_user(n) for n in range(4)]
    parseable_but_deep: dict[str, Any] = {"leaf": 1}
    for _ in range(150):
        parseable_but_deep = {"a": parseable_but_deep}
    lines: list[Any] = [
        good[0],
        "[" + json.dumps(_file_user(10)) + "]",                       # 2: an array, not a user
        _file_user(11, email=42),                                      # 3: email not a string (id given)
        {"email": ["file12@example.com"]},                            # 4: email not a string (no id)
        good[1],
        dict(good[1], given_name="Again"),                             # 6: the same user id twice
        json.dumps(_file_user(13))[:-1] + ', "user_metadata": {"x": ' + _nested(100_000) + "}}",  # 7: too deep
        _file_user(14, app_metadata=parseable_but_deep),               # 8: parseable, deeper than carried
        good[2],
        good[3],
    ]
    path = _write_lines(str(tmp_path / "users.ndjson"), lines)
    result = migrate(world, options(tmp_path, from_file=path))

    assert result.exit_code == 3, dump(result)
    assert result.reports["problem_counts"] == {"users-file": 6}
    problems = {p["ref"]: p["detail"] for p in result.reports["problems"]["users-file"]}
    assert set(problems) == {"2", "3", "4", "6", "7", "8"}
    assert all(d.startswith(f"{path}, ") for d in problems.values())
    assert "line 2: not a JSON object" in problems["2"]
    assert "line 3: email: expected a string, found a number (user auth0|file-11)" in problems["3"]
    assert "line 4: email: expected a string, found an array" in problems["4"]
    assert "auth0|file-1 appears again" in problems["6"]
    assert "line 7: nested more than 100 levels deep" in problems["7"]
    assert "line 8: app_metadata: nested more than 100 levels deep (user auth0|file-14)" in problems["8"]
    # The others went on: one bad record fails that record only.
    assert result.users["imported"] == result.users["verified"] == 4
    assert {u["email"] for u in world.users(TARGET)} == {u["email"] for u in good}
    assert world.login(TARGET, "file1@example.com", "pw-1") == 200


def test_a_too_deep_user_in_a_json_array_fails_that_user_only(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    path = tmp_path / "users.json"
    deep = json.dumps(_file_user(2))[:-1] + ', "user_metadata": {"s": "a [ { \\" ]", "x": ' + _nested(100_000) + "}}"
    path.write_text("[" + json.dumps(_file_user(1)) + ",\n" + deep + ",\n" + json.dumps(_file_user(3)) + "]")
    result = migrate(world, options(tmp_path, from_file=str(path)))
    assert result.exit_code == 3, dump(result)
    assert result.reports["problems"]["users-file"] == [
        {"ref": "2", "detail": f"{path}, user 2: nested more than 100 levels deep"}]
    assert {u["email"] for u in world.users(TARGET)} == {"file1@example.com", "file3@example.com"}


@pytest.mark.parametrize("indent", [None, 2])
def test_a_users_wrapper_document_is_refused_before_anything_runs(world: World, tmp_path, indent: Any) -> None:
    """`{"users": [...]}` (a page of GET /users, say) is refused by name, not read as zero users with exit 0."""
    world.connection(SOURCE)
    world.connection(TARGET)
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"users": [_file_user(1), _file_user(2)], "start": 0, "limit": 2, "total": 9},
                               indent=indent))
    with pytest.raises(InputError, match="holding a \"users\" array") as info:
        migrate(world, options(tmp_path, from_file=str(path)))
    assert str(path) in str(info.value) and "jq '.users'" in str(info.value)
    assert info.value.exit_code == 2
    assert not (tmp_path / "state.sqlite").exists()
    assert world.users(TARGET) == []


def test_a_utf16_from_file_is_refused_by_name(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    path = tmp_path / "users.ndjson"
    path.write_bytes((json.dumps(_file_user(1)) + "\n").encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16") as info:
        migrate(world, options(tmp_path, from_file=str(path)))
    assert str(path) in str(info.value)
    assert not (tmp_path / "state.sqlite").exists()
    assert world.users(TARGET) == []


def test_users_list_problems_are_counted(world: World, tmp_path) -> None:
    world.seed(users=8)
    world.connection(TARGET)
    emails = sorted(_source_ids(world))
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    users = tmp_path / "users.txt"
    # A UTF-8 byte-order mark before the first entry (Windows editors write one): it still matches.
    users.write_bytes(("\ufeff" + emails[0] + "\n" + emails[1] + "\n" + f"{emails[2]} {emails[3]}\n"
                       + "nobody@example.com\n").encode("utf-8"))
    result = migrate(world, options(tmp_path, users_file=str(users), password_hashes=hashes))
    assert result.exit_code == 3, dump(result)
    assert {u["email"] for u in world.users(TARGET)} == {emails[0], emails[1]}
    counts = result.reports["problem_counts"]
    assert {k: counts[k] for k in ("users-list", "not-in-source")} == {"users-list": 1, "not-in-source": 1}
    assert result.reports["problems"]["users-list"] == [
        {"ref": "3", "detail": f"{users}, line 3: 2 entries on one line; put one e-mail or user id on each line"}]
    assert [p["ref"] for p in result.reports["problems"]["not-in-source"]] == ["nobody@example.com"]


def test_a_utf16_users_list_is_read(world: World, tmp_path) -> None:
    world.seed(users=5)
    world.connection(TARGET)
    emails = sorted(_source_ids(world))
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    users = tmp_path / "users.txt"
    users.write_bytes(("# chosen\r\n" + "\r\n".join(emails[:3]) + "\r\n").encode("utf-16"))
    result = migrate(world, options(tmp_path, users_file=str(users), password_hashes=hashes))
    assert result.exit_code == 0, dump(result)
    assert result.reports["problem_counts"] == {"hash-without-user": 2}
    assert {u["email"] for u in world.users(TARGET)} == set(emails[:3])


@pytest.mark.parametrize("text", ["", "# nobody yet\n\n", "not-an-entry\n"])
def test_a_users_list_naming_nobody_stops_before_anything_runs(world: World, tmp_path, text: str) -> None:
    world.seed(users=3)
    world.connection(TARGET)
    users = tmp_path / "users.txt"
    users.write_text(text)
    with pytest.raises(InputError, match="lists no users") as info:
        migrate(world, options(tmp_path, users_file=str(users)))
    assert str(users) in str(info.value) and info.value.exit_code == 2
    assert not (tmp_path / "state.sqlite").exists()
    assert world.users(TARGET) == []


# -- flags checked up front (issue 12, item 7) --------------------------------------------------------------


@pytest.mark.parametrize(("flag", "kwargs"), [
    ("--id-prefix", {"user_ids": "prefix", "id_prefix": "bad prefix_"}),
    ("--id-prefix", {"user_ids": "prefix", "id_prefix": "m1|"}),
    ("--record-source-id", {"record_source_id": "email"}),
    ("--record-source-id", {"record_source_id": "legacy.id"}),
    ("--record-source-id", {"record_source_id": "$id"}),
])
def test_a_flag_that_would_fail_every_user_fails_the_command(world: World, tmp_path, flag: str,
                                                               kwargs: dict[str, Any]) -> None:
    world.seed(users=5)
    world.connection(TARGET)
    with pytest.raises(UsageError) as info:
        migrate(world, options(tmp_path, **kwargs))
    assert str(info.value).startswith(flag), str(info.value)
    assert info.value.exit_code == 2
    assert not (tmp_path / "state.sqlite").exists()  # refused before a ledger, an export or an import
    assert world.users(TARGET) == []


# -- a --state that cannot be a ledger (issue 12, item 4) ------------------------------------------------


def test_a_state_that_cannot_be_a_ledger_is_refused_and_left_untouched(world: World, tmp_path) -> None:
    import sqlite3

    world.seed(users=3)
    world.connection(TARGET)
    report = tmp_path / "report.txt"
    report.write_text("the quarterly numbers\n")
    os.chmod(report, 0o644)
    other_db = tmp_path / "app.db"
    conn = sqlite3.connect(other_db)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    os.chmod(other_db, 0o664)
    cases = {
        str(tmp_path / "no-such-folder" / "state.sqlite"): "does not exist",
        str(report / "state.sqlite"): "is a file, not a folder",
        str(tmp_path): "is not a file",
        str(report): "is not an auth0-migrate ledger",
        str(other_db): "is not an auth0-migrate ledger",
    }
    before = {p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in (report, other_db)}
    listing = sorted(os.listdir(tmp_path))
    for state, why in cases.items():
        with pytest.raises(UsageError) as info:
            migrate(world, options(tmp_path, state=state))
        assert str(info.value).startswith(f"--state {state}") and why in str(info.value), str(info.value)
    assert {p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in (report, other_db)} == before
    assert sorted(os.listdir(tmp_path)) == listing  # no .lock, no -wal, no folder made
    assert world.users(TARGET) == []
    # An empty file (a ledger killed before its first write) is ours: the run goes on there.
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert migrate(world, options(tmp_path, state=str(empty), missing_hash="import")).exit_code == 0


def test_a_fixed_input_file_is_carried_with_a_new_state(world: World, tmp_path) -> None:
    """Recovery after a bad line: the same ledger says the file changed (it does not read it again), and a
    new --state carries the fixed user while recognising the ones already moved."""
    from auth0_migrate.model import QuietReporter
    from auth0_migrate.pipeline import run

    world.connection(SOURCE)
    world.connection(TARGET)
    good = [_file_user(n) for n in range(3)]
    path = _write_lines(str(tmp_path / "users.ndjson"), [good[0], '{"email": "file1@example.com",', good[2]])
    assert migrate(world, options(tmp_path, from_file=path, record_source_id="legacy_id")).exit_code == 3

    _write_lines(path, good)  # the owner fixes line 2
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the file system's resolution
    reporter = QuietReporter()

    async def again(opts: Any) -> Any:
        client = world.client()
        try:
            return await run(opts, source=client, reporter=reporter)
        finally:
            await client.aclose()
    result = asyncio.run(again(options(tmp_path, from_file=path, record_source_id="legacy_id")))
    assert result.exit_code == 3, dump(result)
    assert [m for m in reporter.messages if "changed since this ledger read it" in m] == [
        f"warning: --from-file {path} changed since this ledger read it, and a resumed run does not read it "
        "again: to carry the changes, run with a new --state (users already in the target are not imported twice, "
        "and are recognised as this migration's where their id or --record-source-id proves it)"]

    result = migrate(world, options(tmp_path, from_file=path, record_source_id="legacy_id",
                                    state=str(tmp_path / "second.sqlite")))
    assert result.exit_code == 0, dump(result)
    assert (result.users["imported"], result.users["already_in_target"]) == (1, 2)
    emails = [u["email"] for u in world.users(TARGET)]
    assert sorted(emails) == sorted(u["email"] for u in good)
