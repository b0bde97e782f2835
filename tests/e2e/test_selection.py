"""Choosing which users move: a `--users` subset of an exported connection, and `--from-file` users from
another system (JSON array or NDJSON, with a `custom_password_hash` of many algorithms)."""

from __future__ import annotations

import json
from typing import Any

from auth0_migrate.passwords import make_credential

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options

# Cheap parameters: what is checked is that each algorithm survives the trip, not its strength.
ALGORITHMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("argon2", {"memory_cost": 8192, "time_cost": 1}),
    ("pbkdf2", {"iterations": 1000}),
    ("scrypt", {"cost": 1024}),
    ("md5", {}),
    ("sha256", {"salt": "pepper-1", "salt_position": "suffix"}),
    ("hmac", {"digest": "sha256"}),
    ("ldap", {"scheme": "SSHA"}),
    ("bcrypt", {"cost": 12}),
    ("bcrypt", {}),  # cost 10: the plain password_hash form
)


def test_users_file_subset(world: World, tmp_path) -> None:
    seeded = world.seed(users=30)
    world.connection(TARGET)
    source = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    emails = sorted(source)
    by_email = [emails[0].upper(), emails[3], emails[7]]  # emails match case-insensitively
    by_id = [source[emails[10]], source[emails[11]], source[emails[20]]]
    chosen = {emails[i] for i in (0, 3, 7, 10, 11, 20)}
    users_file = tmp_path / "users.txt"
    users_file.write_text("# the first wave\n" + "\n".join(by_email) + "\n\n" + "\n".join(by_id)
                          + "\nnobody@example.com  # left last year\nauth0|000000000000000000000000\n")
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, users_file=str(users_file), password_hashes=hashes,
                                    record_source_id="legacy_user_id"))

    # All six moved, but two listed users were not found: named, counted, and not a clean exit.
    assert result.exit_code == 3, dump(result)
    assert result.reports["problem_counts"] == {"not-in-source": 2, "hash-without-user": 24}
    assert result.users["selected"] == 6
    assert result.users["imported"] == result.users["verified"] == 6
    assert result.users["failed"] == result.users["held_back"] == 0
    missing = result.reports["problems"]["not-in-source"]
    assert sorted(p["ref"] for p in missing) == ["auth0|000000000000000000000000", "nobody@example.com"]
    assert all("users.txt" in p["detail"] and SOURCE in p["detail"] for p in missing)
    # The hashes of the 24 unlisted users are "hashes without a user" of this selection, nothing more.
    assert len(result.reports["problems"]["hash-without-user"]) == 24

    moved = {u["email"]: u for u in world.users(TARGET)}
    assert set(moved) == chosen
    for email in chosen:
        profile = json.loads(moved[email]["profile"])
        assert profile["app_metadata"]["legacy_user_id"] == source[email]
        assert grants_of(world, moved[email]["user_id"]) == grants_of(world, source[email])
        if '"blocked":true' not in moved[email]["profile"]:
            assert world.login(TARGET, email, seeded.passwords[email]) == 200
    # Everyone stays in the source (no cutover); the unlisted are only there.
    assert {u["email"] for u in world.users(SOURCE)} == set(emails)
    unlisted = sorted(set(emails) - chosen)[0]
    assert world.login(TARGET, unlisted, seeded.passwords[unlisted]) == 403


def _file_users(prefix: str, with_ids: bool, algorithms: tuple[tuple[str, dict[str, Any]], ...] = ALGORITHMS
                ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    users: list[dict[str, Any]] = []
    passwords: dict[str, str] = {}
    for n, (algorithm, params) in enumerate(algorithms):
        email = f"{prefix}.{algorithm}.{n}@elsewhere.example"
        password = f"{prefix}-{algorithm}-{n}-Secret!"
        passwords[email] = password
        user: dict[str, Any] = {"email": email, "email_verified": n % 2 == 0, "given_name": algorithm.title(),
                                "family_name": prefix.title(),
                                "name": f"{algorithm.title()} {prefix.title()}",
                                "app_metadata": {"plan": "pro", "origin": prefix},
                                "user_metadata": {"hash": algorithm, "n": n},
                                **make_credential(password, algorithm, **params)}
        if with_ids:
            user["user_id"] = f"{prefix}-{n:04d}"
        users.append(user)
    return users, passwords


def _check_logins(world: World, passwords: dict[str, str]) -> None:
    for email, password in passwords.items():
        # The wrong password first: it is checked against the imported hash (a login replaces it with bcrypt).
        assert world.login(TARGET, email, password + "x") == 403, email
        assert world.login(TARGET, email, password) == 200, email


def test_from_file_json_array_with_custom_hashes(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    users, passwords = _file_users("array", with_ids=True)
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users, indent=2))
    result = migrate(world, options(tmp_path, from_file=str(path), record_source_id="legacy_user_id"))

    n = len(users)
    assert result.exit_code == 0, dump(result)
    assert result.users["selected"] == result.users["imported"] == result.users["verified"] == n
    assert result.users["with_password_hash"] == n
    assert result.failures == []
    moved = {u["email"]: u for u in world.users(TARGET)}
    assert set(moved) == set(passwords)
    for user in users:
        profile = json.loads(moved[user["email"]]["profile"])
        # The id the user had in the file (the other system's id) is what gets recorded.
        assert profile["app_metadata"] == {**user["app_metadata"], "legacy_user_id": user["user_id"]}
        assert profile["user_metadata"] == user["user_metadata"]
        assert profile["given_name"] == user["given_name"]
        assert bool(profile.get("email_verified")) == user["email_verified"]
    assert world.users(SOURCE) == []  # the source connection was not touched
    _check_logins(world, passwords)


def test_from_file_ndjson_without_ids(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    # bcrypt cost 12 is slow to hash and check; the JSON-array test covers it.
    users, passwords = _file_users("lines", with_ids=False,
                                   algorithms=tuple(a for a in ALGORITHMS if a[1].get("cost") != 12))
    path = tmp_path / "users.ndjson"
    path.write_text("".join(json.dumps(u) + "\n" for u in users))
    result = migrate(world, options(tmp_path, from_file=str(path)))

    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == result.users["verified"] == len(users)
    assert {u["email"] for u in world.users(TARGET)} == set(passwords)
    _check_logins(world, passwords)
    # Nothing in the summary carries hash material.
    text = json.dumps(result.as_dict())
    for user in users:
        credential = user.get("password_hash") or user["custom_password_hash"]["hash"]["value"]
        assert credential not in text


def test_record_source_id_regenerate(world: World, tmp_path) -> None:
    world.seed(users=8)
    world.connection(TARGET)
    source = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    metadata = {u["email"]: json.loads(u["profile"])["app_metadata"] for u in world.users(SOURCE)}
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, password_hashes=hashes, record_source_id="auth0_legacy_id"))
    assert result.exit_code == 0, dump(result)
    assert sorted(u["email"] for u in world.users(TARGET)) == sorted(source)
    for user in world.users(TARGET):
        profile = json.loads(user["profile"])
        assert user["user_id"] != source[user["email"]]
        # the source id added, the rest of app_metadata kept as it was
        assert profile["app_metadata"] == {**metadata[user["email"]], "auth0_legacy_id": source[user["email"]]}
    # Without the flag, no key is added.
    world.connection("Third-DB")
    result = migrate(world, options(tmp_path, target_connection="Third-DB", password_hashes=hashes,
                                    state=str(tmp_path / "third.sqlite")))
    assert result.exit_code == 0, dump(result)
    for user in world.users("Third-DB"):
        assert "auth0_legacy_id" not in json.loads(user["profile"])["app_metadata"]
