"""Connections of the local tenant, driven with the official SDK (and raw HTTP for malformed input)."""

from __future__ import annotations

import pytest
from auth0.management.core.api_error import ApiError as SdkApiError
from auth0.management.errors import BadRequestError, ConflictError, NotFoundError

from auth0_migrate.tenant import directory

API = "/api/v2"


def make_conn(mgmt, name: str, **kw):  # noqa: ANN001, ANN201
    return mgmt.connections.create(name=name, strategy="auth0", **kw)


def test_create_get_and_list_with_sdk(mgmt) -> None:  # noqa: ANN001
    created = make_conn(mgmt, "Source-DB", display_name="Source", metadata={"team": "id"},
                        options={"requires_username": True})
    assert created.id.startswith("con_") and created.name == "Source-DB" and created.strategy == "auth0"
    assert created.realms == ["Source-DB"] and created.display_name == "Source"
    got = mgmt.connections.get(created.id)
    assert got.id == created.id and got.options == {"requires_username": True}
    assert got.metadata == {"team": "id"}
    make_conn(mgmt, "Target-DB")
    names = [c.name for c in mgmt.connections.list()]
    assert names == ["Source-DB", "Target-DB"]
    only = list(mgmt.connections.list(name="Target-DB"))
    assert len(only) == 1 and only[0].name == "Target-DB"
    assert list(mgmt.connections.list(name="nope")) == []
    assert len(list(mgmt.connections.list(strategy="auth0"))) == 2
    assert list(mgmt.connections.list(strategy=["google-oauth2", "samlp"])) == []


def test_checkpoint_paging_follows_next(mgmt, http, auth_headers) -> None:  # noqa: ANN001
    for i in range(7):
        make_conn(mgmt, f"db-{i}")
    pager = mgmt.connections.list(take=3)
    assert [c.name for c in pager] == [f"db-{i}" for i in range(7)]  # the SDK followed `next` twice
    first = http.get(f"{API}/connections", params={"take": 3}, headers=auth_headers).json()
    assert len(first["connections"]) == 3 and "next" in first and "total" not in first
    second = http.get(f"{API}/connections", params={"take": 3, "from": first["next"]}, headers=auth_headers).json()
    assert [c["name"] for c in second["connections"]] == ["db-3", "db-4", "db-5"]
    last = http.get(f"{API}/connections", params={"take": 5, "from": second["next"]}, headers=auth_headers).json()
    assert [c["name"] for c in last["connections"]] == ["db-6"] and "next" not in last
    # `from` may also be a connection id
    by_id = http.get(f"{API}/connections", params={"take": 2, "from": second["connections"][0]["id"]},
                     headers=auth_headers).json()
    assert [c["name"] for c in by_id["connections"]] == ["db-3", "db-4"]


def test_offset_paging_and_fields(mgmt, http, auth_headers) -> None:  # noqa: ANN001
    for i in range(5):
        make_conn(mgmt, f"db-{i}")
    r = http.get(f"{API}/connections", params={"page": 1, "per_page": 2, "include_totals": "true"},
                 headers=auth_headers)
    body = r.json()
    assert r.status_code == 200
    assert body["start"] == 2 and body["limit"] == 2 and body["total"] == 5
    assert [c["name"] for c in body["connections"]] == ["db-2", "db-3"]
    plain = http.get(f"{API}/connections", params={"per_page": 2}, headers=auth_headers).json()
    assert isinstance(plain, list) and len(plain) == 2
    assert all("enabled_clients" not in c for c in plain)  # ConnectionForList has no such key
    names = http.get(f"{API}/connections", params={"fields": "name,id"}, headers=auth_headers).json()
    assert all(set(c) == {"name", "id"} for c in names)
    without = http.get(f"{API}/connections", params={"fields": "options", "include_fields": "false"},
                       headers=auth_headers).json()
    assert all("options" not in c and "name" in c for c in without)
    sdk_fields = list(mgmt.connections.list(fields="name", include_fields=True))
    assert sdk_fields[0].name == "db-0" and sdk_fields[0].id is None


@pytest.mark.parametrize("params, fragment", [
    ({"per_page": "abc"}, "Expected type integer"),
    ({"per_page": "101"}, "greater than maximum 100"),
    ({"take": "0"}, "less than minimum 1"),
    ({"take": "500"}, "greater than maximum 100"),
    ({"page": "-1"}, "less than minimum 0"),
    ({"include_totals": "maybe"}, "Expected type boolean"),
    ({"strategy": "nope"}, 'No enum match for: "nope"'),
    ({"fields": "name,secret"}, "does not match pattern"),
    ({"take": "5", "from": "not-a-checkpoint"}, "Invalid checkpoint"),
])
def test_list_rejects_bad_query(http, auth_headers, params, fragment) -> None:  # noqa: ANN001
    r = http.get(f"{API}/connections", params=params, headers=auth_headers)
    assert r.status_code == 400
    body = r.json()
    assert body["statusCode"] == 400 and body["error"] == "Bad Request" and fragment in body["message"]
    assert body["errorCode"] == "invalid_query_string"


def test_get_unknown_and_malformed_ids(mgmt, http, auth_headers) -> None:  # noqa: ANN001
    with pytest.raises(NotFoundError) as exc:
        mgmt.connections.get("con_AAAAAAAAAAAAAAAA")
    assert exc.value.body["message"] == "The connection does not exist."
    for method in ("GET", "DELETE"):
        r = http.request(method, f"{API}/connections/not-an-id", headers=auth_headers)
        assert r.status_code == 400 and "Path validation error" in r.json()["message"]


def test_create_errors(mgmt, http, auth_headers) -> None:  # noqa: ANN001
    make_conn(mgmt, "dup")
    with pytest.raises(ConflictError) as exc:
        make_conn(mgmt, "dup")
    assert exc.value.body == {"statusCode": 409, "error": "Conflict",
                              "message": "A connection with the same name already exists",
                              "errorCode": "connection_conflict"}
    with pytest.raises(BadRequestError) as bad:
        mgmt.connections.create(name="social", strategy="google-oauth2")
    assert "only supports database connections" in bad.value.body["message"]
    cases = [
        (b"{not json", "Invalid request payload JSON format"),
        (b"[1,2]", "Expected type object but found type array"),
        (b'{"strategy":"auth0"}', "Missing required property: name"),
        (b'{"name":"x"}', "Missing required property: strategy"),
        (b'{"name":"bad name","strategy":"auth0"}', "does not match pattern"),
        (b'{"name":"-x","strategy":"auth0"}', "does not match pattern"),
        (b'{"name":"x","strategy":"nope"}', 'No enum match for: "nope"'),
        (b'{"name":"x","strategy":"auth0","colour":"red"}', "Additional properties not allowed: colour"),
        (b'{"name":"x","strategy":"auth0","options":[]}', "Expected type object but found type array"),
        (b'{"name":' + b'"' + b"a" * 129 + b'","strategy":"auth0"}', "String is too long (129 chars)"),
    ]
    for payload, fragment in cases:
        r = http.post(f"{API}/connections", content=payload,
                      headers={**auth_headers, "content-type": "application/json"})
        assert r.status_code == 400, payload
        assert fragment in r.json()["message"], (payload, r.json())


def test_delete_connection_takes_its_users(mgmt, tenant, http, auth_headers) -> None:  # noqa: ANN001
    src = make_conn(mgmt, "Old-DB")
    keep = make_conn(mgmt, "New-DB")
    store = tenant.store
    with store.tx() as db:
        for i in range(3):
            directory.insert_user(db, directory.get_connection(store, src.id), {"email": f"u{i}@x.test"}, None, 0.0)
        directory.insert_user(db, directory.get_connection(store, keep.id), {"email": "u0@x.test"}, None, 0.0)
    gone: list[str] = []
    store.user_deleted_hooks.append(gone.append)
    r = http.delete(f"{API}/connections/{src.id}", headers=auth_headers)
    assert r.status_code == 204 and r.content == b""
    assert len(gone) == 3
    assert store.one("SELECT COUNT(*) FROM users")[0] == 1
    with pytest.raises(NotFoundError):
        mgmt.connections.get(src.id)
    mgmt.connections.delete(src.id)  # already gone: still 204
    assert [c.name for c in mgmt.connections.list()] == ["New-DB"]


def test_delete_connection_user_by_email(mgmt, tenant, http, auth_headers) -> None:  # noqa: ANN001
    a = make_conn(mgmt, "A-DB")
    b = make_conn(mgmt, "B-DB")
    store = tenant.store
    with store.tx() as db:
        # the keep-id hazard: the same user id in two connections
        directory.insert_user(db, directory.get_connection(store, a.id), {"email": "same@x.test"}, None, 0.0,
                              user_id="auth0|abc")
        directory.insert_user(db, directory.get_connection(store, b.id), {"email": "same@x.test"}, None, 0.0,
                              user_id="auth0|abc")
    mgmt.connections.users.delete_by_email(a.id, email="Same@X.test")
    rows = store.query("SELECT connection_id FROM users WHERE user_id = 'auth0|abc'")
    assert [r["connection_id"] for r in rows] == [b.id]  # only A's copy went
    mgmt.connections.users.delete_by_email(a.id, email="same@x.test")  # nobody left there: still 204
    with pytest.raises(BadRequestError) as exc:
        mgmt.connections.users.delete_by_email("con_AAAAAAAAAAAAAAAA", email="same@x.test")
    assert exc.value.body["message"] == "The connection does not exist"
    r = http.delete(f"{API}/connections/{b.id}/users", headers=auth_headers)
    assert r.status_code == 400 and "Missing required property: email" in r.json()["message"]
    assert store.one("SELECT COUNT(*) FROM users")[0] == 1


def test_scopes_are_enforced(http) -> None:  # noqa: ANN001
    from auth0_migrate.tenant import oauth
    from tests.conftest import fetch_token

    oauth.create_client(http.app.state.tenant.store, "reader", "reader-secret", scopes=("read:users",))
    headers = {"authorization": f"Bearer {fetch_token(http, 'reader', 'reader-secret')}"}
    r = http.get(f"{API}/connections", headers=headers)
    assert r.status_code == 403 and "read:connections" in r.json()["message"]
    r = http.post(f"{API}/connections", json={"name": "x", "strategy": "auth0"}, headers=headers)
    assert r.status_code == 403 and "create:connections" in r.json()["message"]
    r = http.delete(f"{API}/connections/con_AAAAAAAAAAAAAAAA/users?email=a@b.c", headers=headers)
    assert r.status_code == 403 and "delete:users" in r.json()["message"]


def test_sdk_error_types_are_parsed(mgmt) -> None:  # noqa: ANN001
    with pytest.raises(SdkApiError) as exc:
        mgmt.connections.get("con_AAAAAAAAAAAAAAAA")
    assert exc.value.status_code == 404
