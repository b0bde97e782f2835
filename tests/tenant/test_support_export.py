"""The support-ticket password-hash file written from a local tenant (`support_export.export_hashes`)."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest

from auth0_migrate import passwords
from auth0_migrate.errors import UsageError
from auth0_migrate.tenant import connections, credentials, directory
from auth0_migrate.tenant.store import Store
from auth0_migrate.tenant.support_export import UnknownConnectionError, export_hashes

BCRYPT10 = "$2b$10$" + "a" * 53
BCRYPT12 = "$2y$12$" + "b" * 53
MD5 = {"algorithm": "md5", "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"}}


@pytest.fixture
def store(tenant):  # noqa: ANN001, ANN201
    return tenant.store


@pytest.fixture
def connection(store, clock):  # noqa: ANN001, ANN201
    return directory.create_connection(store, "Username-Password-Authentication", now=clock.now())


def add(store: Store, connection, fields: dict, credential: dict | None, now: float,  # noqa: ANN001
        user_id: str | None = None) -> str:
    with store.tx() as db:
        return directory.insert_user(db, connection, fields, credential, now, user_id=user_id)["user_id"]


def lines(store: Store, name: str = "Username-Password-Authentication") -> list[dict]:
    out = io.StringIO()
    count = export_hashes(store, name, "example-tenant", out)
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(parsed)
    return parsed


def test_auth0_generated_id_user_with_bcrypt_hash(store, connection, clock) -> None:  # noqa: ANN001
    uid = add(store, connection, {"email": "User@Example.com", "email_verified": True}, {"password_hash": BCRYPT10},
              clock.now(), user_id="auth0|5dea9f9c82dd7c0e76e4ec93")
    [line] = lines(store)
    assert line == {
        "_id": {"$oid": "5dea9f9c82dd7c0e76e4ec93"}, "email_verified": True, "email": "user@example.com",
        "passwordHash": BCRYPT10, "password_set_date": {"$date": "2026-01-01T00:00:00.000Z"},
        "tenant": "example-tenant", "connection": "Username-Password-Authentication", "_tmp_is_unique": True,
        "identifiers": [{"type": "email", "value": "user@example.com", "verified": True}],
    }
    assert list(line)[:5] == ["_id", "email_verified", "email", "passwordHash", "password_set_date"]
    assert uid == "auth0|" + line["_id"]["$oid"]


def test_generated_ids_map_back_without_alt_id(store, connection, clock) -> None:  # noqa: ANN001
    uid = add(store, connection, {"email": "a@example.com"}, {"password_hash": BCRYPT10}, clock.now())
    [line] = lines(store)
    assert "alt_id" not in line and uid == "auth0|" + line["_id"]["$oid"]


def test_supplied_ids_get_alt_id_and_a_stable_oid(store, connection, clock) -> None:  # noqa: ANN001
    add(store, connection, {"email": "e@example.com"}, {"password_hash": BCRYPT10}, clock.now(), user_id="auth0|euclid")
    add(store, connection, {"email": "f@example.com"}, {"password_hash": BCRYPT10}, clock.now(),
        user_id="auth0|auth0|twice")
    first = lines(store)
    assert first == lines(store)  # stable between runs
    euclid, twice = first
    assert euclid["alt_id"] == "euclid" and twice["alt_id"] == "auth0|twice"
    assert all(re.fullmatch(r"[0-9a-f]{24}", line["_id"]["$oid"]) for line in first)
    assert euclid["_id"] != twice["_id"]
    assert list(euclid)[-1] == "alt_id"


def test_custom_hashes_bcrypt_exported_others_left_out(store, connection, clock) -> None:  # noqa: ANN001
    """Our choice (module docstring): bcrypt custom hashes without a salt object travel; the rest do not."""
    add(store, connection, {"email": "y@example.com"},
        {"custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": BCRYPT12}}}, clock.now())
    add(store, connection, {"email": "salted@example.com"},
        {"custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": BCRYPT12},
                                  "salt": {"value": "pepper", "position": "suffix"}}}, clock.now())
    add(store, connection, {"email": "md5@example.com"}, {"custom_password_hash": MD5}, clock.now())
    add(store, connection, {"email": "none@example.com"}, None, clock.now())
    bcrypt_user, salted, md5, hashless = lines(store)
    assert bcrypt_user["passwordHash"] == BCRYPT12 and "password_set_date" in bcrypt_user
    for line in (salted, md5, hashless):
        assert "passwordHash" not in line and "password_set_date" not in line
        assert line["identifiers"][0]["value"] == line["email"]


def test_only_the_named_connection_and_unknown_names(store, connection, clock) -> None:  # noqa: ANN001
    other = directory.create_connection(store, "Other", now=clock.now())
    add(store, connection, {"email": "a@example.com"}, {"password_hash": BCRYPT10}, clock.now())
    add(store, other, {"email": "b@example.com"}, {"password_hash": BCRYPT10}, clock.now())
    assert [line["email"] for line in lines(store)] == ["a@example.com"]
    assert [line["connection"] for line in lines(store, "Other")] == ["Other"]
    with pytest.raises(UnknownConnectionError) as info:
        export_hashes(store, "Nope", "example-tenant", io.StringIO())
    assert isinstance(info.value, UsageError) and "Nope" in str(info.value)


def test_round_trip_after_an_import_job(mgmt, tenant, store, connection) -> None:  # noqa: ANN001
    """Users imported by a job come out of the hash file joinable on `auth0|(alt_id or $oid)`."""
    connections.enable_clients(store, connection["id"], [tenant.client_id])  # Auth0 imports need one
    bcrypt10 = passwords.bcrypt_hash("s3cret-pass")
    users = [{"email": "keep@example.com", "user_id": "legacy-1", "password_hash": bcrypt10},
             {"email": "new@example.com", "password_hash": bcrypt10, "email_verified": True},
             {"email": "nohash@example.com"}]
    job = mgmt.jobs.users_imports.create(users=("users.json", json.dumps(users).encode(), "application/json"),
                                         connection_id=connection["id"], send_completion_email=False)
    assert mgmt.jobs.get(job.id).summary.inserted == 3
    ids = {r["email"]: r["user_id"] for r in store.query("SELECT email, user_id FROM users")}
    by_email = {line["email"]: line for line in lines(store)}
    for email, uid in ids.items():
        line = by_email[email]
        assert uid == "auth0|" + (line.get("alt_id") or line["_id"]["$oid"])
    assert by_email["keep@example.com"]["alt_id"] == "legacy-1"
    assert credentials.verify_password("s3cret-pass", {"password_hash": by_email["new@example.com"]["passwordHash"]})
    assert by_email["new@example.com"]["identifiers"][0]["verified"] is True
    assert "passwordHash" not in by_email["nohash@example.com"]


def test_streams_large_connections(store, connection, clock) -> None:  # noqa: ANN001
    with store.tx() as db:
        for i in range(2500):
            directory.insert_user(db, connection, {"email": f"u{i}@example.com"}, {"password_hash": BCRYPT10},
                                  clock.now())
    out = io.StringIO()
    assert export_hashes(store, "Username-Password-Authentication", "t", out) == 2500
    assert out.getvalue().count("\n") == 2500


def test_password_change_sets_last_password_reset_and_the_file_dates_the_new_hash(mgmt, http, tenant, store,  # noqa: ANN001
                                                                                  connection, clock) -> None:
    """PATCH /users/{id} with `password`: a new bcrypt, `last_password_reset` at the tenant clock's now (as
    GET shows it), the new password logs in and the old one does not; the hash file then gives the new
    hash, dated by that change."""
    from .test_logins import login

    user = mgmt.users.create(connection="Username-Password-Authentication", email="mover@example.com",
                             password="Old-Password-1")
    assert getattr(user, "last_password_reset", None) is None
    [before] = lines(store)
    assert before["password_set_date"] == {"$date": directory.iso(clock.now())}  # no change yet: creation time

    clock.advance(600)  # within the token's lifetime
    changed_at = directory.iso(clock.now())
    when = datetime.fromtimestamp(clock.now(), UTC)  # the SDK parses the date
    updated = mgmt.users.update(user.user_id, password="New-Password-2")
    assert updated.last_password_reset == when
    assert mgmt.users.get(user.user_id).last_password_reset == when
    assert login(http, "mover@example.com", "New-Password-2").status_code == 200
    assert login(http, "mover@example.com", "Old-Password-1").status_code == 403

    [after] = lines(store)
    assert after["password_set_date"] == {"$date": changed_at}
    assert after["passwordHash"] != before["passwordHash"]
    assert credentials.verify_password("New-Password-2", {"password_hash": after["passwordHash"]})

    # A PATCH without a password leaves the date alone.
    clock.advance(60)
    assert mgmt.users.update(user.user_id, given_name="Mo").last_password_reset == when
