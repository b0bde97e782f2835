"""Users of the local tenant (create, get, update, delete, search, users-by-email), driven with the
official SDK; raw HTTP for malformed input. Figures: `test_throughput_and_search_at_scale`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from auth0.management import Auth0
from auth0.management.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError

from auth0_migrate import passwords
from auth0_migrate.tenant import credentials, directory, oauth
from auth0_migrate.tenant.users import PAGING_LIMIT_MESSAGE

API = "/api/v2"
BASE = "http://tenant.local"
DB = "Username-Password-Authentication"


def conn_row(tenant, name: str = DB, **options: Any):  # noqa: ANN001, ANN201
    return directory.connection_by_name(tenant.store, name) or directory.create_connection(
        tenant.store, name, "auth0", tenant.clock.now(), options or None)


def seed(tenant, users: list[dict[str, Any]], connection: str = DB, **kw: Any) -> list[str]:  # noqa: ANN001
    """Insert users straight into the store (no password hashing), as an import job would."""
    conn = conn_row(tenant, connection)
    with tenant.store.tx() as db:
        return [directory.insert_user(db, conn, dict(u), u.get("_credential"), tenant.clock.now(),
                                      user_id=u.get("_user_id"), **kw)["user_id"] for u in users]


def sdk_on(tenant, http, scopes: tuple[str, ...]) -> Auth0:  # noqa: ANN001
    oauth.create_client(tenant.store, "limited", "limited-secret", scopes=scopes)
    r = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "limited",
                                         "client_secret": "limited-secret", "audience": f"{BASE}/api/v2/"})
    return Auth0(base_url=f"{BASE}/api/v2", token=r.json()["access_token"], httpx_client=http, max_retries=0)


def emails(users: Any) -> list[str]:
    return [u.email for u in users]


# --- POST /users ------------------------------------------------------------------------------

def test_create_user_with_sdk_stores_bcrypt_cost_10(mgmt, tenant) -> None:  # noqa: ANN001
    conn_row(tenant)
    user = mgmt.users.create(connection=DB, email="Jane.Doe@Example.com", password="s3cret-Pass",
                             user_id="abc123", given_name="Jane", user_metadata={"lang": "fr"},
                             app_metadata={"plan": "gold"}, email_verified=True, blocked=False)
    assert user.user_id == "auth0|abc123"
    assert user.email == "jane.doe@example.com" and user.email_verified is True
    assert user.given_name == "Jane" and user.nickname == "jane.doe" and user.name == "jane.doe@example.com"
    assert user.user_metadata == {"lang": "fr"} and user.app_metadata == {"plan": "gold"}
    assert user.identities[0].connection == DB and user.identities[0].user_id == "abc123"
    assert user.identities[0].provider == "auth0" and user.created_at
    row = tenant.store.one("SELECT credential FROM users WHERE user_id = 'auth0|abc123'")
    credential = json.loads(row["credential"])
    assert set(credential) == {"password_hash"} and credential["password_hash"].startswith("$2b$10$")
    assert credentials.verify_password("s3cret-Pass", credential)
    generated = mgmt.users.create(connection=DB, email="gen@example.com", password="x")
    assert generated.user_id.startswith("auth0|") and len(generated.user_id) > 10


def test_create_user_conflicts_and_rules(mgmt, tenant) -> None:  # noqa: ANN001
    conn_row(tenant)
    conn_row(tenant, "Names-DB", requires_username=True)
    mgmt.users.create(connection=DB, email="a@example.com", password="pw", user_id="same")
    for kwargs in ({"email": "A@example.com"}, {"email": "b@example.com", "user_id": "same"}):
        with pytest.raises(ConflictError) as exc:
            mgmt.users.create(connection=DB, password="pw", **kwargs)
        assert exc.value.body == {"statusCode": 409, "error": "Conflict", "message": "The user already exists.",
                                  "errorCode": "auth0_idp_error"}
    # the same email and id in ANOTHER connection is allowed (the keep-id hazard)
    other = mgmt.users.create(connection="Names-DB", email="a@example.com", password="pw", user_id="same",
                              username="alice")
    assert other.user_id == "auth0|same" and other.username == "alice"
    with pytest.raises(ConflictError):
        mgmt.users.create(connection="Names-DB", email="z@example.com", password="pw", username="alice")
    with pytest.raises(BadRequestError) as exc:
        mgmt.users.create(connection=DB, email="u@example.com", password="pw", username="bob")
    assert exc.value.body["message"] == "Cannot set username for connection without requires_username."
    with pytest.raises(BadRequestError) as exc:
        mgmt.users.create(connection="Nope", email="u@example.com", password="pw")
    assert exc.value.body["message"] == "Connection does not exist."


@pytest.mark.parametrize("payload, fragment", [
    (b"{oops", "Invalid request payload JSON format"),
    (b'"just a string"', "Expected type object but found type string"),
    (b'{"email":"x@example.com","password":"p"}', "Missing required property: connection"),
    (b'{"connection":"Username-Password-Authentication","password":"p"}', "Missing required property: email"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com"}',
     "Missing required property: password"),
    (b'{"connection":"Username-Password-Authentication","email":5,"password":"p"}',
     "Expected type string but found type integer' on property email"),
    (b'{"connection":"Username-Password-Authentication","email":"not-an-email","password":"p"}',
     "format email"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":""}',
     "String is too short (0 chars), minimum 1"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":"p","blocked":"yes"}',
     "Expected type boolean but found type string' on property blocked"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":"p","user_id":"a b"}',
     "does not match pattern"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":"p",'
     b'"phone_number":"12345"}', "does not match pattern"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":"p","given_name":"'
     + b"g" * 151 + b'"}', "String is too long (151 chars), maximum 150"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":"p","shoe":42}',
     "Additional properties not allowed: shoe"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":"p",'
     b'"app_metadata":{"a.b":1}}', "Metadata keys cannot contain"),
    (b'{"connection":"Username-Password-Authentication","email":"x@example.com","password":"p",'
     b'"user_metadata":[]}', "Expected type object but found type array"),
])
def test_create_user_validation(http, auth_headers, tenant, payload, fragment) -> None:  # noqa: ANN001
    conn_row(tenant)
    r = http.post(f"{API}/users", content=payload, headers={**auth_headers, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["statusCode"] == 400 and fragment in body["message"], body
    assert tenant.store.one("SELECT COUNT(*) FROM users")[0] == 0


# --- GET / DELETE /users/{id} -----------------------------------------------------------------

def test_get_user_fields_and_errors(mgmt, http, auth_headers, tenant) -> None:  # noqa: ANN001
    [uid] = seed(tenant, [{"email": "f@example.com", "given_name": "F", "app_metadata": {"k": 1}}])
    user = mgmt.users.get(uid)
    assert user.user_id == uid and user.email == "f@example.com" and user.app_metadata == {"k": 1}
    some = mgmt.users.get(uid, fields="email,user_id", include_fields=True)
    assert some.email == "f@example.com" and some.given_name is None and some.identities is None
    r = http.get(f"{API}/users/{uid}", params={"fields": "identities,app_metadata", "include_fields": "false"},
                 headers=auth_headers)
    assert "identities" not in r.json() and "app_metadata" not in r.json() and r.json()["email"]
    with pytest.raises(NotFoundError) as exc:
        mgmt.users.get("auth0|nobody")
    assert exc.value.body == {"statusCode": 404, "error": "Not Found", "message": "The user does not exist.",
                              "errorCode": "inexistent_user"}
    for params in ({"fields": "email,password"}, {"include_fields": "sometimes"}):
        r = http.get(f"{API}/users/{uid}", params=params, headers=auth_headers)
        assert r.status_code == 400 and r.json()["errorCode"] == "invalid_query_string"


def test_same_id_in_two_connections_id_endpoints_act_on_the_first(mgmt, tenant, clock) -> None:  # noqa: ANN001
    seed(tenant, [{"email": "old@example.com", "_user_id": "auth0|dup"}], connection="Old-DB")
    clock.advance(1)
    seed(tenant, [{"email": "new@example.com", "_user_id": "auth0|dup"}], connection="New-DB")
    first = mgmt.users.get("auth0|dup")
    assert first.email == "old@example.com" and first.identities[0].connection == "Old-DB"
    # PATCH picks the other copy with `connection`
    patched = mgmt.users.update("auth0|dup", connection="New-DB", app_metadata={"moved": True})
    assert patched.email == "new@example.com" and patched.app_metadata == {"moved": True}
    assert mgmt.users.get("auth0|dup").app_metadata == {}
    mgmt.users.delete("auth0|dup")  # deletes the first-created copy
    assert mgmt.users.get("auth0|dup").email == "new@example.com"
    mgmt.users.delete("auth0|dup")
    with pytest.raises(NotFoundError):
        mgmt.users.get("auth0|dup")
    mgmt.users.delete("auth0|dup")  # already gone: Auth0 answers 204 too


# --- PATCH /users/{id} ------------------------------------------------------------------------

def test_patch_merges_metadata_and_updates_fields(mgmt, http, auth_headers, tenant, clock) -> None:  # noqa: ANN001
    [uid] = seed(tenant, [{"email": "p@example.com", "given_name": "P", "nickname": "pp",
                           "app_metadata": {"keep": 1, "drop": 2, "nested": {"a": 1}},
                           "user_metadata": {"theme": "dark"}}])
    clock.advance(10)
    user = mgmt.users.update(uid, app_metadata={"drop": None, "nested": {"b": 2}, "new": [1, 2]},
                             user_metadata={"lang": "en"}, blocked=True)
    assert user.app_metadata == {"keep": 1, "nested": {"b": 2}, "new": [1, 2]}  # root merge, null deletes
    assert user.user_metadata == {"theme": "dark", "lang": "en"}
    assert user.blocked is True and user.updated_at != user.created_at
    # null removes a name field; {} clears metadata (raw: the SDK drops None arguments)
    r = http.patch(f"{API}/users/{uid}", json={"given_name": None, "user_metadata": {}}, headers=auth_headers)
    assert r.status_code == 200 and "given_name" not in r.json() and r.json()["user_metadata"] == {}
    user = mgmt.users.update(uid, email="New@Example.com")
    assert user.email == "new@example.com" and user.email_verified is False
    user = mgmt.users.update(uid, email_verified=True, nickname="n2", blocked=False)
    assert user.email_verified is True and user.nickname == "n2" and user.blocked is False


def test_patch_password_rehashes(mgmt, tenant) -> None:  # noqa: ANN001
    md5 = passwords.make_credential("old-pass", "md5")
    [uid] = seed(tenant, [{"email": "h@example.com", "_credential": md5}])
    mgmt.users.update(uid, password="brand-new")
    credential = json.loads(tenant.store.one("SELECT credential FROM users WHERE user_id = ?", (uid,))[0])
    assert credential["password_hash"].startswith("$2b$10$")
    assert credentials.verify_password("brand-new", credential)
    assert not credentials.verify_password("old-pass", credential)


def test_patch_errors(mgmt, http, auth_headers, tenant) -> None:  # noqa: ANN001
    uid, _ = seed(tenant, [{"email": "one@example.com"}, {"email": "two@example.com"}])
    with pytest.raises(BadRequestError) as exc:  # a 400, not a 409: the OAS declares no 409 for PATCH
        mgmt.users.update(uid, email="two@example.com")
    assert exc.value.body["message"] == "The specified new email already exists"
    with pytest.raises(NotFoundError):
        mgmt.users.update("auth0|ghost", blocked=True)
    with pytest.raises(BadRequestError) as bad:
        mgmt.users.update(uid, blocked=True, connection="Missing-DB")
    assert bad.value.body["message"] == "Connection does not exist."
    cases = [
        ({"password": "x", "email": "q@example.com"}, "Cannot update password and email simultaneously."),
        ({"password": "x", "email_verified": True}, "Cannot update password and email_verified simultaneously."),
        ({"username": "u", "password": "x"}, "Cannot update username and password simultaneously."),
        ({"blocked": "no"}, "Expected type boolean but found type string' on property blocked"),
        ({"app_metadata": "x"}, "Expected type object but found type string"),
        ({"name": ""}, "String is too short"),
        ({"favourite": 1}, "Additional properties not allowed: favourite"),
        ({"username": "bob"}, "Cannot set username for connection without requires_username."),
    ]
    for payload, message in cases:
        r = http.patch(f"{API}/users/{uid}", json=payload, headers=auth_headers)
        assert r.status_code == 400 and message in r.json()["message"], (payload, r.json())
    r = http.patch(f"{API}/users/{uid}", content=b"{", headers={**auth_headers, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["message"] == "Invalid request payload JSON format"


def test_patch_with_app_metadata_scope_only(tenant, http) -> None:  # noqa: ANN001
    [uid] = seed(tenant, [{"email": "s@example.com"}])
    sdk = sdk_on(tenant, http, ("update:users_app_metadata",))
    assert sdk.users.update(uid, app_metadata={"role": "x"}).app_metadata == {"role": "x"}
    with pytest.raises(ForbiddenError):
        sdk.users.update(uid, blocked=True)
    with pytest.raises(ForbiddenError) as exc:
        sdk.users.get(uid)
    assert exc.value.body["message"].startswith("Insufficient scope")


# --- users-by-email ---------------------------------------------------------------------------

def test_users_by_email_is_exact_across_connections_and_ignores_search_lag(mgmt, http, auth_headers,
                                                                           tenant) -> None:  # noqa: ANN001
    tenant.faults.search_lag = 30.0
    seed(tenant, [{"email": "Same@Example.com"}], connection="A-DB")
    seed(tenant, [{"email": "same@example.com"}, {"email": "other@example.com"}], connection="B-DB")
    assert mgmt.users.list(q="email:other@example.com", search_engine="v3").response.users == []
    assert tenant.faults.injected["search_lag"] == 1  # the lag is on, and hides them from search
    found = mgmt.users.list_users_by_email(email="same@example.com")
    assert [u.identities[0].connection for u in found] == ["A-DB", "B-DB"]
    assert mgmt.users.list_users_by_email(email="SAME@example.com") == []  # case-sensitive, as Auth0
    only = mgmt.users.list_users_by_email(email="same@example.com", fields="email", include_fields=True)
    assert only[0].email == "same@example.com" and only[0].user_id is None
    r = http.get(f"{API}/users-by-email", headers=auth_headers)
    assert r.status_code == 400 and "Missing required property: email" in r.json()["message"]
    r = http.get(f"{API}/users-by-email", params={"email": "x@y.z", "fields": "hash"}, headers=auth_headers)
    assert r.status_code == 400


# --- GET /users (search) ----------------------------------------------------------------------

@pytest.fixture
def people(tenant, clock):  # noqa: ANN001, ANN201
    seed(tenant, [
        {"email": "jane.smith@example.com", "name": "Jane Smith", "given_name": "Jane", "email_verified": True,
         "app_metadata": {"plan": "gold", "roles": ["admin", "dev"], "sub": {"tier": 2}}, "logins_count": 5,
         "user_metadata": {"addresses": [{"city": "Paris"}, {"city": "Lyon"}]}, "_user_id": "auth0|u1"},
        {"email": "john.smith@example.com", "name": "John Smith", "given_name": "John",
         "app_metadata": {"plan": "silver", "roles": ["dev"]}, "logins_count": 50, "_user_id": "auth0|u2"},
    ], connection="Source-DB")
    clock.advance(60)
    seed(tenant, [
        {"email": "ann@other.org", "name": "Ann Lee", "blocked": True, "username": "annie", "_user_id": "auth0|u3",
         "app_metadata": {"plan": "gold"}},
        {"email": "jane.smith@example.com", "name": "Jane S.", "_user_id": "auth0|u4"},
    ], connection="Target-DB")
    clock.advance(60)


@pytest.mark.parametrize("q, expected", [
    ('email:"jane.smith@example.com"', ["u1", "u4"]),
    ("email:JANE.SMITH@EXAMPLE.COM", ["u1", "u4"]),  # email is case-insensitive
    ('identities.connection:"Target-DB"', ["u3", "u4"]),
    ('email:"jane.smith@example.com" AND identities.connection:"Source-DB"', ["u1"]),
    ("user_id:auth0|u2", ["u2"]),
    ('user_id:"auth0|u2" OR user_id:"auth0|u3"', ["u2", "u3"]),
    ("name:jane*", ["u1", "u4"]),  # prefix wildcard, case-insensitive
    ('name:"jane smith"', ["u1"]),
    ("email:j*", ["u1", "u2", "u4"]),
    ("email.domain:other.org", ["u3"]),
    ("email_verified:true", ["u1"]),
    ("blocked:true", ["u3"]),
    ("app_metadata.plan:gold", ["u1", "u3"]),
    ("app_metadata.plan:Gold", []),  # metadata is case-sensitive
    ("app_metadata.roles:dev", ["u1", "u2"]),  # an array matches any of its items
    ("app_metadata.sub.tier:2", ["u1"]),
    ('user_metadata.addresses.city:"Lyon"', ["u1"]),  # through an array of objects
    ("_exists_:app_metadata.roles", ["u1", "u2"]),
    ("NOT _exists_:app_metadata.roles", ["u3", "u4"]),
    ("_missing_:username", ["u1", "u2", "u4"]),
    ("app_metadata.plan:gold AND NOT blocked:true", ["u1"]),
    ("(app_metadata.plan:gold OR app_metadata.plan:silver) AND -name:john*", ["u1", "u3"]),
    ("app_metadata.plan:(gold OR silver)", ["u1", "u2", "u3"]),
    ("logins_count:[10 TO *]", ["u2"]),
    ("logins_count:{1 TO 50}", ["u1"]),
    ("username:annie", ["u3"]),
    ("annie", ["u3"]),  # a bare term searches the normalized fields
    ("identities.user_id:u4", ["u4"]),
    ("created_at:[2026-01-01T00:01:00Z TO *]", ["u3", "u4"]),
    ("created_at:[* TO 2026-01-01]", ["u1", "u2", "u3", "u4"]),
    ("*", ["u1", "u2", "u3", "u4"]),
    ("", ["u1", "u2", "u3", "u4"]),
])
def test_search_queries(mgmt, people, q, expected) -> None:  # noqa: ANN001
    found = mgmt.users.list(q=q, search_engine="v3", per_page=100).response.users
    assert sorted(u.user_id.split("|")[1] for u in found) == expected


def test_search_paging_sort_totals_and_fields(mgmt, http, auth_headers, tenant, clock) -> None:  # noqa: ANN001
    for i in range(25):
        seed(tenant, [{"email": f"user{i:02d}@example.com"}])
        clock.advance(1)
    page = mgmt.users.list(q="email:user*", search_engine="v3", page=1, per_page=10, sort="email:-1")
    assert page.response.total == 25 and page.response.start == 10 and page.response.limit == 10
    assert page.response.length == 10
    assert emails(page.response.users) == [f"user{i:02d}@example.com" for i in range(14, 4, -1)]
    everyone = list(mgmt.users.list(q="email:user*", search_engine="v3", per_page=10, sort="created_at:1"))
    assert emails(everyone) == [f"user{i:02d}@example.com" for i in range(25)]  # the pager walked 3 pages
    plain = http.get(f"{API}/users", params={"q": "email:user0*", "fields": "email,user_id"}, headers=auth_headers)
    assert plain.status_code == 200 and isinstance(plain.json(), list)
    assert all(set(u) == {"email", "user_id"} for u in plain.json()) and len(plain.json()) == 10
    v1 = http.get(f"{API}/users", params={"search_engine": "v1", "connection": DB, "per_page": 5},
                  headers=auth_headers)
    assert v1.status_code == 200 and len(v1.json()) == 5
    v1_none = http.get(f"{API}/users", params={"search_engine": "v1", "connection": "Other"}, headers=auth_headers)
    assert v1_none.json() == []


def test_search_cannot_page_past_the_first_1000(http, auth_headers, tenant) -> None:  # noqa: ANN001
    seed(tenant, [{"email": "x@example.com"}])
    ok = http.get(f"{API}/users", params={"page": 9, "per_page": 100}, headers=auth_headers)
    assert ok.status_code == 200 and ok.json() == []
    ok = http.get(f"{API}/users", params={"page": 19, "per_page": 50}, headers=auth_headers)
    assert ok.status_code == 200
    for params in ({"page": 10, "per_page": 100}, {"page": 20, "per_page": 50}, {"page": 1000, "per_page": 1}):
        r = http.get(f"{API}/users", params=params, headers=auth_headers)
        assert r.status_code == 400
        assert r.json()["message"] == PAGING_LIMIT_MESSAGE
    assert PAGING_LIMIT_MESSAGE == ("You can only page through the first 1000 records. See "
                                    "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.")


@pytest.mark.parametrize("params, fragment", [
    ({"per_page": "abc"}, "Expected type integer"),
    ({"per_page": "101"}, "greater than maximum 100"),
    ({"page": "-1"}, "less than minimum 0"),
    ({"include_totals": "perhaps"}, "Expected type boolean"),
    ({"search_engine": "v9"}, 'No enum match for: "v9"'),
    ({"search_engine": "v2"}, "You are not allowed to use search_engine=v2. Use search_engine=v3 instead."),
    ({"search_engine": "v1", "q": "email:x"}, "The 'q' parameter is available only if you specify"),
    ({"sort": "email"}, "does not match pattern"),
    ({"q": 'email:"unterminated'}, "unterminated quoted string"),
    ({"q": "(email:x"}, "missing ')'"),
    ({"q": "email:*x*"}, "only a trailing '*' wildcard"),
    ({"q": "user_metadata.city:Par*"}, "wildcard searches are not available on user_metadata"),
    ({"q": "user_metadata.age:[1 TO 2]"}, "range searches are not available on user_metadata"),
    ({"q": "created_at:[yesterday TO *]"}, "is not a date"),
    ({"q": "AND"}, "Query validation error"),
])
def test_search_rejects_bad_input(http, auth_headers, params, fragment) -> None:  # noqa: ANN001
    r = http.get(f"{API}/users", params=params, headers=auth_headers)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["message"]


def test_search_lag_hides_new_users_until_it_passes(mgmt, tenant, clock) -> None:  # noqa: ANN001
    conn_row(tenant)
    tenant.faults.search_lag = 5.0
    created = mgmt.users.create(connection=DB, email="late@example.com", password="pw")
    q = 'email:"late@example.com"'
    assert mgmt.users.list(q=q, search_engine="v3").response.users == []
    assert tenant.faults.injected["search_lag"] == 1
    assert mgmt.users.get(created.user_id).email == "late@example.com"  # get-by-id is immediate
    assert len(mgmt.users.list_users_by_email(email="late@example.com")) == 1
    clock.advance(4.9)
    assert mgmt.users.list(q=q, search_engine="v3").response.total == 0
    clock.advance(0.1)
    assert emails(mgmt.users.list(q=q, search_engine="v3").response.users) == ["late@example.com"]
    # a writer may also set visible_at itself (an import job does: now + lag)
    tenant.faults.search_lag = 0.0
    seed(tenant, [{"email": "later@example.com"}], visible_at=clock.now() + 20)
    assert mgmt.users.list(q="email:later@example.com", search_engine="v3").response.users == []
    clock.advance(20)
    assert len(mgmt.users.list(q="email:later@example.com", search_engine="v3").response.users) == 1


# --- scale ------------------------------------------------------------------------------------

def test_search_among_100k_users_finds_exactly_the_matches(mgmt, auth_headers, tenant, clock) -> None:  # noqa: ANN001
    """Searches among 100,000 users seeded by SQL answer the exact totals. How fast (and the per-call
    rates of the other reads) is measured by `python -m bench --tenant`, not bounded in a test."""
    seed(tenant, [{"email": f"p{i}@example.com", "app_metadata": {"n": i}} for i in range(200)])
    conn = conn_row(tenant)
    now = clock.now()
    profile = json.dumps({"email_verified": False, "name": "x", "nickname": "x", "picture": "p"})
    with tenant.store.tx() as db:
        db.executemany(
            "INSERT INTO users (user_id, connection_id, email, username, phone_number, profile, credential,"
            " created_at, updated_at, visible_at) VALUES (?, ?, ?, NULL, NULL, ?, NULL, ?, ?, ?)",
            ((f"auth0|bulk{i:06d}", conn["id"], f"bulk{i:06d}@example.com", profile, now, now, now)
             for i in range(100_000)))
    queries = (("email", 'email:"bulk054321@example.com"', 1), ("user_id", 'user_id:"auth0|bulk054321"', 1),
               ("email+connection", f'email:"bulk054321@example.com" AND identities.connection:"{DB}"', 1),
               ("email prefix", "email:bulk05432*", 10),
               ("whole connection", f'identities.connection:"{DB}"', 100_200),
               ("app_metadata (JSON scan)", "app_metadata.n:150", 1),
               ("name (JSON scan)", "name:x", 100_000))
    for label, q, total in queries:
        found = mgmt.users.list(q=q, search_engine="v3", include_totals=True, per_page=10).response
        assert found.total == total, label
    assert emails(mgmt.users.list(q='email:"bulk054321@example.com"', search_engine="v3").response.users) == [
        "bulk054321@example.com"]
