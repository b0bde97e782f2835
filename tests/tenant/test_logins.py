"""User logins at POST /oauth/token (password-realm and password grants) on the local tenant."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest

from auth0_migrate import passwords
from auth0_migrate.tenant import credentials, directory
from tests.conftest import BASE_URL, CLIENT_ID, CLIENT_SECRET

REALM = "http://auth0.com/oauth/grant-type/password-realm"
DB = "Username-Password-Authentication"
WRONG = {"error": "invalid_grant", "error_description": "Wrong email or password."}
BLOCKED = {"error": "unauthorized", "error_description": "user is blocked"}


def conn_row(tenant, name: str = DB, **options: Any):  # noqa: ANN001, ANN201
    return directory.connection_by_name(tenant.store, name) or directory.create_connection(
        tenant.store, name, "auth0", tenant.clock.now(), options or None)


def insert(tenant, email: str, credential: dict[str, Any] | None, connection: str = DB, **fields: Any) -> str:  # noqa: ANN001
    """A user with a credential exactly as an import would store it."""
    conn = conn_row(tenant, connection, requires_username=True)
    with tenant.store.tx() as db:
        return directory.insert_user(db, conn, {"email": email, **fields}, credential, tenant.clock.now())["user_id"]


def login(http, username: str, password: str, realm: str | None = DB, grant: str = REALM, **extra: str):  # noqa: ANN001, ANN201
    form = {"grant_type": grant, "username": username, "password": password, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, **extra}
    if realm is not None:
        form["realm"] = realm
    return http.post("/oauth/token", data=form)


def stored(tenant, user_id: str, connection: str = DB) -> tuple[dict[str, Any], dict[str, Any] | None]:  # noqa: ANN001
    conn = directory.connection_by_name(tenant.store, connection)
    row = tenant.store.one("SELECT profile, credential FROM users WHERE user_id = ? AND connection_id = ?",
                           (user_id, conn["id"]))
    return json.loads(row["profile"]), (json.loads(row["credential"]) if row["credential"] else None)


@pytest.fixture(scope="module")
def bcrypt10() -> dict[str, Any]:
    return {"password_hash": passwords.bcrypt_hash("right-pass", 10)}


def test_right_password_gives_tokens_and_counts_the_login(mgmt, http, tenant, clock) -> None:  # noqa: ANN001
    conn_row(tenant)
    user = mgmt.users.create(connection=DB, email="Ann@Example.com", password="right-pass")
    r = login(http, "ann@example.com", "right-pass", scope="openid profile email", audience=f"{BASE_URL}/api/v2/")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0 and body["scope"] == "openid profile email"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user.user_id and claims["aud"] == f"{BASE_URL}/api/v2/"
    id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_claims["sub"] == user.user_id and id_claims["email"] == "ann@example.com"
    assert id_claims["aud"] == CLIENT_ID
    clock.advance(30)
    assert login(http, "ANN@example.com", "right-pass").status_code == 200  # emails match case-insensitively
    after = mgmt.users.get(user.user_id)
    assert after.logins_count == 2 and after.last_login.timestamp() == clock.now()
    profile, credential = stored(tenant, user.user_id)
    assert credential["password_hash"].startswith("$2b$10$")


def test_wrong_password_unknown_user_and_hashless_user(http, tenant, bcrypt10) -> None:  # noqa: ANN001
    uid = insert(tenant, "bob@example.com", bcrypt10)
    insert(tenant, "nohash@example.com", None)
    for username, password in (("bob@example.com", "nope"), ("ghost@example.com", "right-pass"),
                               ("nohash@example.com", "right-pass"), ("nohash@example.com", "")):
        r = login(http, username, password or "x")
        assert r.status_code == 403 and r.json() == WRONG, (username, r.text)
    profile, _ = stored(tenant, uid)
    assert "logins_count" not in profile


def test_blocked_user(http, tenant, mgmt, bcrypt10) -> None:  # noqa: ANN001
    uid = insert(tenant, "blocked@example.com", bcrypt10, blocked=True)
    r = login(http, "blocked@example.com", "right-pass")
    assert r.status_code == 401 and r.json() == BLOCKED
    assert login(http, "blocked@example.com", "wrong").json() == WRONG  # no hint for a wrong password
    assert mgmt.users.get(uid).logins_count == 1  # Auth0 counts the blocked login
    mgmt.users.update(uid, blocked=False)
    assert login(http, "blocked@example.com", "right-pass").status_code == 200


@pytest.mark.parametrize("algorithm, params", [
    ("md5", {}),
    ("sha256", {"salt": "pepper", "salt_position": "suffix"}),
    ("sha512", {"encoding": "base64"}),
    ("hmac", {"digest": "sha256", "key": "k3y"}),
    ("pbkdf2", {"iterations": 1000}),
    ("scrypt", {"cost": 1024}),
    ("argon2", {"time_cost": 1, "memory_cost": 1024}),
    ("ldap", {"scheme": "SSHA"}),
    ("bcrypt", {"cost": 4}),  # custom bcrypt (any cost other than 10 must be custom)
])
def test_imported_hash_is_replaced_by_bcrypt_after_login(http, tenant, algorithm, params) -> None:  # noqa: ANN001
    credential = passwords.make_credential("old-secret", algorithm, **params)
    assert "custom_password_hash" in credential
    uid = insert(tenant, "imported@example.com", credential)
    assert login(http, "imported@example.com", "not-it").json() == WRONG
    assert stored(tenant, uid)[1] == credential  # a failed login changes nothing
    r = login(http, "imported@example.com", "old-secret")
    assert r.status_code == 200, r.text
    profile, after = stored(tenant, uid)
    assert set(after) == {"password_hash"} and after["password_hash"].startswith("$2b$10$")
    assert credentials.verify_password("old-secret", after)
    assert profile["logins_count"] == 1
    assert login(http, "imported@example.com", "old-secret").status_code == 200  # still works on the new hash
    assert stored(tenant, uid)[1] == after  # and a bcrypt hash is not re-hashed again


def test_plain_bcrypt_password_hash_is_kept(http, tenant, bcrypt10) -> None:  # noqa: ANN001
    uid = insert(tenant, "kept@example.com", bcrypt10)
    assert login(http, "kept@example.com", "right-pass").status_code == 200
    assert stored(tenant, uid)[1] == bcrypt10


def test_realm_picks_the_connection_and_password_grant_takes_the_first(http, tenant, clock) -> None:  # noqa: ANN001
    first = insert(tenant, "dup@example.com", passwords.make_credential("pw-first", "md5"), connection="First-DB")
    clock.advance(1)
    second = insert(tenant, "dup@example.com", passwords.make_credential("pw-second", "md5"),
                    connection="Second-DB")
    r = login(http, "dup@example.com", "pw-second", realm="Second-DB")
    assert r.status_code == 200
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["sub"] == second
    assert login(http, "dup@example.com", "pw-second", realm="First-DB").json() == WRONG
    # the password grant, without a realm, looks in connections in creation order
    r = login(http, "dup@example.com", "pw-first", realm=None, grant="password")
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["sub"] == first
    assert login(http, "dup@example.com", "pw-second", realm=None, grant="password").json() == WRONG
    r = login(http, "dup@example.com", "pw-second", realm="Second-DB", grant="password")
    assert r.status_code == 200


def test_login_by_username(http, tenant, bcrypt10) -> None:  # noqa: ANN001
    uid = insert(tenant, "user@example.com", bcrypt10, username="the_user")
    r = login(http, "the_user", "right-pass")
    assert r.status_code == 200
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["sub"] == uid


def test_bad_requests(http, tenant, bcrypt10) -> None:  # noqa: ANN001
    insert(tenant, "c@example.com", bcrypt10)
    r = login(http, "c@example.com", "right-pass", realm="No-Such-DB")
    assert r.status_code == 400 and r.json() == {"error": "invalid_request",
                                                 "error_description": "the connection was not found"}
    r = http.post("/oauth/token", data={"grant_type": REALM, "username": "c@example.com", "password": "right-pass",
                                        "client_id": CLIENT_ID})
    assert r.status_code == 400 and "realm" in r.json()["error_description"]
    for missing in ("username", "password", "client_id"):
        form = {"grant_type": REALM, "username": "c@example.com", "password": "right-pass", "realm": DB,
                "client_id": CLIENT_ID}
        del form[missing]
        r = http.post("/oauth/token", data=form)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request" and missing in r.text
    r = login(http, "c@example.com", "right-pass", client_secret="wrong-secret")
    assert r.status_code == 401 and r.json()["error"] == "access_denied"
    r = http.post("/oauth/token", data={"grant_type": REALM, "username": "c@example.com", "password": "right-pass",
                                        "realm": DB, "client_id": "unknown-client"})
    assert r.status_code == 401
    # a public client may leave the secret out
    r = http.post("/oauth/token", data={"grant_type": REALM, "username": "c@example.com", "password": "right-pass",
                                        "realm": DB, "client_id": CLIENT_ID})
    assert r.status_code == 200
    r = http.post("/oauth/token", json={"grant_type": REALM, "username": "c@example.com", "password": "right-pass",
                                        "realm": DB, "client_id": CLIENT_ID})
    assert r.status_code == 200  # a JSON body works as well


def test_user_token_cannot_call_the_management_api(http, tenant, bcrypt10) -> None:  # noqa: ANN001
    uid = insert(tenant, "d@example.com", bcrypt10)
    token = login(http, "d@example.com", "right-pass", audience=f"{BASE_URL}/api/v2/").json()["access_token"]
    r = http.get(f"/api/v2/users/{uid}", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["errorCode"] == "insufficient_scope"
