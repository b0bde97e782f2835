"""A user's grants on the local tenant: direct permissions, roles, the permissions roles bring
(`sources`), their limits, and what deleting a user does to them. Driven through the official SDK
wherever it has the call (raw HTTP for malformed input)."""

from __future__ import annotations

import pytest
from auth0.management import Auth0
from auth0.management.types import ResourceServerScope

from auth0_migrate.tenant import directory

from .grants_support import make_users, perm, sdk_error, weak_sdk

API = "https://api.example.com/"
OTHER_API = "urn:other-api"
BASE = "http://tenant.local"

DIRECT = {"source_id": "", "source_name": "", "source_type": "DIRECT"}










def grants(mgmt: Auth0, user_id: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(API, permission, [(source type, source name)]) for each permission the SDK lists."""
    return [(p.resource_server_identifier, p.permission_name,
             [(s["source_type"], s["source_name"]) for s in p.sources]) for p in mgmt.users.permissions.list(user_id)]


@pytest.fixture
def apis(mgmt: Auth0) -> None:
    mgmt.resource_servers.create(identifier=API, name="Example API",
                                 scopes=[ResourceServerScope(value="read:things", description="Read things"),
                                         ResourceServerScope(value="write:things", description="Write things"),
                                         ResourceServerScope(value="admin")])
    mgmt.resource_servers.create(identifier=OTHER_API, name="Other", scopes=[ResourceServerScope(value="use")])


# --- direct permissions and sources ----------------------------------------------------------

def test_direct_permissions(mgmt: Auth0, http, auth_headers, tenant, apis) -> None:  # noqa: ANN001
    (uid,) = make_users(tenant, 1)
    assert list(mgmt.users.permissions.list(uid)) == []
    mgmt.users.permissions.create(uid, permissions=[perm("write:things"), perm("read:things"), perm("use", OTHER_API)])
    mgmt.users.permissions.create(uid, permissions=[perm("read:things")])  # idempotent

    listed = list(mgmt.users.permissions.list(uid))
    assert [(p.resource_server_identifier, p.permission_name, p.resource_server_name, p.description)
            for p in listed] == [(API, "read:things", "Example API", "Read things"),
                                 (API, "write:things", "Example API", "Write things"),
                                 (OTHER_API, "use", "Other", None)]
    # `sources` is not a field of the SDK model; its pydantic config keeps it as an extra attribute.
    assert all(p.sources == [DIRECT] for p in listed)

    raw = http.get(f"/api/v2/users/{uid}/permissions", headers=auth_headers)
    assert raw.status_code == 200 and isinstance(raw.json(), list) and raw.json()[0] == {
        "permission_name": "read:things", "description": "Read things", "resource_server_name": "Example API",
        "resource_server_identifier": API, "sources": [DIRECT]}

    mgmt.users.permissions.delete(uid, permissions=[perm("write:things"), perm("use", OTHER_API)])
    assert [p.permission_name for p in mgmt.users.permissions.list(uid)] == ["read:things"]
    r = http.request("DELETE", f"/api/v2/users/{uid}/permissions", headers=auth_headers,
                     json={"permissions": [{"resource_server_identifier": API, "permission_name": "read:things"}]})
    assert r.status_code == 204 and r.content == b""


def test_sources_direct_role_and_both(mgmt: Auth0, tenant, apis) -> None:  # noqa: ANN001
    (uid,) = make_users(tenant, 1)
    readers = mgmt.roles.create(name="readers")
    admins = mgmt.roles.create(name="admins")
    mgmt.roles.permissions.add(readers.id, permissions=[perm("read:things")])
    mgmt.roles.permissions.add(admins.id, permissions=[perm("read:things"), perm("admin")])
    mgmt.users.permissions.create(uid, permissions=[perm("read:things"), perm("write:things")])
    mgmt.users.roles.assign(uid, roles=[readers.id, admins.id])

    assert grants(mgmt, uid) == [
        (API, "admin", [("ROLE", "admins")]),
        (API, "read:things", [("DIRECT", ""), ("ROLE", "admins"), ("ROLE", "readers")]),
        (API, "write:things", [("DIRECT", "")]),
    ]
    read = next(p for p in mgmt.users.permissions.list(uid) if p.permission_name == "read:things")
    assert {"source_id": readers.id, "source_name": "readers", "source_type": "ROLE"} in read.sources

    # What a restore keeps: the DIRECT ones only.
    direct = [p.permission_name for p in mgmt.users.permissions.list(uid)
              if any(s["source_type"] == "DIRECT" for s in p.sources)]
    assert direct == ["read:things", "write:things"]

    mgmt.users.permissions.delete(uid, permissions=[perm("read:things")])
    mgmt.users.roles.delete(uid, roles=[admins.id])
    assert grants(mgmt, uid) == [(API, "read:things", [("ROLE", "readers")]), (API, "write:things", [("DIRECT", "")])]
    mgmt.roles.delete(readers.id)
    assert grants(mgmt, uid) == [(API, "write:things", [("DIRECT", "")])]


def test_offset_paging_of_user_permissions(mgmt: Auth0, http, auth_headers, tenant) -> None:  # noqa: ANN001
    mgmt.resource_servers.create(identifier=API, scopes=[ResourceServerScope(value=f"p:{i:03d}") for i in range(120)])
    (uid,) = make_users(tenant, 1)
    mgmt.users.permissions.create(uid, permissions=[perm(f"p:{i:03d}") for i in range(120)])

    pages = list(mgmt.users.permissions.list(uid, per_page=50).iter_pages())
    assert [len(p.items) for p in pages] == [50, 50, 20]  # the SDK stops at the first empty page
    assert pages[0].response.total == 120 and pages[1].response.start == 50 and pages[1].response.limit == 50
    names = [p.permission_name for p in mgmt.users.permissions.list(uid, per_page=50)]
    assert names == [f"p:{i:03d}" for i in range(120)]
    assert len(list(mgmt.users.permissions.list(uid, per_page=100))) == 120

    url = f"/api/v2/users/{uid}/permissions"
    assert http.get(url, params={"page": 3, "per_page": 50}, headers=auth_headers).json() == []
    body = http.get(url, params={"page": 1, "per_page": 100, "include_totals": "true"}, headers=auth_headers).json()
    assert (body["start"], body["limit"], body["total"], len(body["permissions"])) == (100, 100, 120, 20)
    for params in ({"per_page": 101}, {"per_page": 0}, {"page": -1}, {"per_page": "ten"},
                   {"include_totals": "yes please"}):
        r = http.get(url, params=params, headers=auth_headers)
        assert r.status_code == 400 and r.json()["errorCode"] == "invalid_query_string", params


def test_direct_permission_limit(mgmt: Auth0, tenant) -> None:  # noqa: ANN001
    mgmt.resource_servers.create(identifier=API, scopes=[ResourceServerScope(value=f"p:{i}") for i in range(1001)])
    (uid,) = make_users(tenant, 1)
    mgmt.users.permissions.create(uid, permissions=[perm(f"p:{i}") for i in range(600)])
    mgmt.users.permissions.create(uid, permissions=[perm(f"p:{i}") for i in range(400, 1000)])  # 1000 in all
    err = sdk_error(mgmt.users.permissions.create, uid, permissions=[perm("p:1000")])
    assert err.status_code == 400 and err.body["message"] == "No more permissions can be assigned to this user."
    mgmt.users.permissions.create(uid, permissions=[perm("p:999")])  # already held: still fine
    assert mgmt.users.permissions.list(uid, per_page=1).response.total == 1000


def test_unknown_apis_permissions_and_users_are_refused(mgmt: Auth0, http, auth_headers, tenant,  # noqa: ANN001
                                                        apis) -> None:
    (uid,) = make_users(tenant, 1)
    err = sdk_error(mgmt.users.permissions.create, uid, permissions=[perm("read:things", "https://nowhere/")])
    assert err.status_code == 404 and err.body["errorCode"] == "inexistent_resource_server"
    err = sdk_error(mgmt.users.permissions.create, uid, permissions=[perm("read:things"), perm("fly")])
    assert err.status_code == 400 and "'fly'" in err.body["message"]
    assert list(mgmt.users.permissions.list(uid)) == []  # a refused batch changes nothing
    assert sdk_error(mgmt.users.permissions.delete, uid, permissions=[perm("fly")]).status_code == 400

    missing = "auth0|000000000000000000000000"
    for call, kwargs in [(mgmt.users.permissions.list, {}), (mgmt.users.permissions.create,
                                                              {"permissions": [perm("read:things")]}),
                         (mgmt.users.permissions.delete, {"permissions": [perm("read:things")]}),
                         (mgmt.users.roles.list, {}), (mgmt.users.roles.assign, {"roles": ["rol_x"]}),
                         (mgmt.users.roles.delete, {"roles": ["rol_x"]})]:
        err = sdk_error(call, missing, **kwargs)
        assert err.status_code == 404 and err.body == {"statusCode": 404, "error": "Not Found",
                                                       "message": "The user does not exist.",
                                                       "errorCode": "inexistent_user"}


def test_malformed_permission_bodies(http, auth_headers, tenant, apis) -> None:  # noqa: ANN001
    (uid,) = make_users(tenant, 1)
    url = f"/api/v2/users/{uid}/permissions"
    headers = {**auth_headers, "content-type": "application/json"}
    r = http.post(url, content=b"{oops", headers=headers)
    assert r.status_code == 400 and r.json() == {"statusCode": 400, "error": "Bad Request",
                                                 "message": "Invalid request payload JSON format",
                                                 "errorCode": "invalid_body"}
    for body, needle in [([], "Expected type object but found type array"),
                         ({"permissions": []}, "Array is too short (0), minimum 1"),
                         ({"permissions": [{"resource_server_identifier": API}]},
                          "Missing required property: permission_name' on property permissions[0]"),
                         ({"permissions": [{"resource_server_identifier": API, "permission_name": 7}]},
                          "Expected type string but found type integer"),
                         ({"permissions": [], "extra": True}, "Additional properties not allowed: extra")]:
        for method in ("POST", "DELETE"):
            r = http.request(method, url, json=body, headers=auth_headers)
            assert r.status_code == 400 and needle in r.json()["message"], (method, body, r.text)
            assert r.json()["errorCode"] == "invalid_body"


# --- user roles ------------------------------------------------------------------------------

def test_user_roles(mgmt: Auth0, http, auth_headers, tenant) -> None:  # noqa: ANN001
    (uid,) = make_users(tenant, 1)
    b = mgmt.roles.create(name="beta", description="B")
    a = mgmt.roles.create(name="alpha")
    assert list(mgmt.users.roles.list(uid)) == []
    mgmt.users.roles.assign(uid, roles=[b.id, a.id])
    mgmt.users.roles.assign(uid, roles=[a.id])  # idempotent
    listed = list(mgmt.users.roles.list(uid))
    assert [(r.id, r.name, r.description) for r in listed] == [(a.id, "alpha", None), (b.id, "beta", "B")]
    assert [m.user_id for m in mgmt.roles.users.list(a.id)] == [uid]
    page = mgmt.users.roles.list(uid, per_page=1, page=1)
    assert page.response.total == 2 and [r.name for r in page.items] == ["beta"]

    r = http.post(f"/api/v2/users/{uid}/roles", json={"roles": [a.id]}, headers=auth_headers)
    assert r.status_code == 204 and r.content == b""
    mgmt.users.roles.delete(uid, roles=[a.id])
    mgmt.users.roles.delete(uid, roles=[a.id])  # not held: nothing to do
    assert [r.name for r in mgmt.users.roles.list(uid)] == ["beta"]

    err = sdk_error(mgmt.users.roles.assign, uid, roles=["rol_doesnotexist00", a.id])
    assert err.status_code == 400 and "rol_doesnotexist00" in err.body["message"]
    assert [r.name for r in mgmt.users.roles.list(uid)] == ["beta"]  # nothing of the refused batch applied
    assert sdk_error(mgmt.users.roles.delete, uid, roles=["rol_doesnotexist00"]).status_code == 400
    for body in ({"roles": []}, {"roles": [""]}, {"roles": "rol_x"}, {}):
        r = http.post(f"/api/v2/users/{uid}/roles", json=body, headers=auth_headers)
        assert r.status_code == 400, body
    r = http.get(f"/api/v2/users/{uid}/roles", params={"per_page": 500}, headers=auth_headers)
    assert r.status_code == 400


def test_roles_per_user_limit(mgmt: Auth0, tenant) -> None:  # noqa: ANN001
    (uid,) = make_users(tenant, 1)
    role_ids = [mgmt.roles.create(name=f"r{i:02d}").id for i in range(52)]
    mgmt.users.roles.assign(uid, roles=role_ids[:30])
    mgmt.users.roles.assign(uid, roles=role_ids[20:50])  # 50 in all
    err = sdk_error(mgmt.users.roles.assign, uid, roles=[role_ids[50]])
    assert err.status_code == 400 and err.body["errorCode"] == "too_many_entities"
    err = sdk_error(mgmt.users.roles.assign, uid, roles=role_ids[49:52])
    assert err.status_code == 400
    assert mgmt.users.roles.list(uid, per_page=1).response.total == 50
    mgmt.users.roles.delete(uid, roles=[role_ids[0]])
    mgmt.users.roles.assign(uid, roles=[role_ids[50]])


def test_user_grant_scopes(mgmt: Auth0, http, tenant, apis) -> None:  # noqa: ANN001
    (uid,) = make_users(tenant, 1)
    role = mgmt.roles.create(name="r")
    weak = weak_sdk(tenant, http, ("read:users",))
    assert list(weak.users.permissions.list(uid)) == []  # read:users is enough here
    cases = [
        (weak.users.permissions.create, {"permissions": [perm("admin")]},
         "Insufficient scope; expected any of: update:users"),
        (weak.users.permissions.delete, {"permissions": [perm("admin")]},
         "Insufficient scope; expected any of: update:users"),
        (weak.users.roles.list, {},
         "Insufficient scope; expected any of: read:role_members; or all of: read:users, read:roles"),
        (weak.users.roles.assign, {"roles": [role.id]},
         "Insufficient scope; expected any of: update:users, create:role_members"),
        (weak.users.roles.delete, {"roles": [role.id]},
         "Insufficient scope; expected any of: update:users, delete:role_members"),
    ]
    for call, kwargs, message in cases:
        err = sdk_error(call, uid, **kwargs)
        assert err.status_code == 403 and err.body["message"] == message
        assert err.body["errorCode"] == "insufficient_scope"
    nothing = weak_sdk(tenant, http, ("read:roles",))
    assert sdk_error(nothing.users.permissions.list, uid).body["message"] == (
        "Insufficient scope; expected any of: read:users")

    members = weak_sdk(tenant, http, ("read:role_members", "create:role_members", "delete:role_members"))
    members.users.roles.assign(uid, roles=[role.id])
    assert [r.id for r in members.users.roles.list(uid)] == [role.id]
    members.users.roles.delete(uid, roles=[role.id])
    both = weak_sdk(tenant, http, ("read:users", "read:roles"))
    assert list(both.users.roles.list(uid)) == []


# --- deleting users --------------------------------------------------------------------------

def test_deleting_a_user_drops_its_grants(mgmt: Auth0, tenant, apis) -> None:  # noqa: ANN001
    gone, kept = make_users(tenant, 2)
    role = mgmt.roles.create(name="team")
    mgmt.roles.permissions.add(role.id, permissions=[perm("admin")])
    for uid in (gone, kept):
        mgmt.users.roles.assign(uid, roles=[role.id])
        mgmt.users.permissions.create(uid, permissions=[perm("read:things")])

    directory.delete_user_row(tenant.store, directory.require_user(tenant.store, gone))
    assert [m.user_id for m in mgmt.roles.users.list(role.id)] == [kept]
    assert [p.permission_name for p in mgmt.users.permissions.list(kept)] == ["admin", "read:things"]
    held = tenant.store.one("SELECT (SELECT COUNT(*) FROM role_members WHERE user_id = :u)"
                            " + (SELECT COUNT(*) FROM user_permissions WHERE user_id = :u) AS n", {"u": gone})
    assert held["n"] == 0

    # A user created again under the same id starts with nothing.
    make_users(tenant, 1, prefix="again", user_ids=[gone])
    assert list(mgmt.users.permissions.list(gone)) == [] and list(mgmt.users.roles.list(gone)) == []


def test_same_id_in_two_connections_shares_grants_and_loses_them_with_either(mgmt: Auth0, tenant,  # noqa: ANN001
                                                                             apis) -> None:
    shared = "auth0|5f7c8ec7c33c6c004bbafe82"
    make_users(tenant, 1, connection="old-db", prefix="old", user_ids=[shared])
    make_users(tenant, 1, connection="new-db", prefix="new", user_ids=[shared])
    role = mgmt.roles.create(name="keep-id")
    mgmt.users.roles.assign(shared, roles=[role.id])
    mgmt.users.permissions.create(shared, permissions=[perm("write:things")])
    # Role members show the first-created copy, as id-only endpoints do.
    assert [(m.user_id, m.email) for m in mgmt.roles.users.list(role.id)] == [(shared, "old0@example.com")]

    # Cutover deletes the old copy by connection; the pessimistic model drops the id's grants.
    old = tenant.store.one("SELECT u.* FROM users u JOIN connections c ON c.id = u.connection_id"
                           " WHERE c.name = 'old-db'")
    directory.delete_user_row(tenant.store, old)
    assert list(mgmt.users.roles.list(shared)) == [] and list(mgmt.users.permissions.list(shared)) == []

    # ...so the tool re-applies them to the copy that remains.
    mgmt.users.roles.assign(shared, roles=[role.id])
    mgmt.users.permissions.create(shared, permissions=[perm("write:things")])
    assert [(m.user_id, m.email) for m in mgmt.roles.users.list(role.id)] == [(shared, "new0@example.com")]
    assert grants(mgmt, shared) == [(API, "write:things", [("DIRECT", "")])]


def test_deleting_a_connection_drops_its_users_grants(mgmt: Auth0, tenant, apis) -> None:  # noqa: ANN001
    users = make_users(tenant, 3, connection="doomed")
    role = mgmt.roles.create(name="crew")
    mgmt.roles.users.assign(role.id, users=users)
    mgmt.users.permissions.create(users[0], permissions=[perm("admin")])
    directory.delete_connection(tenant.store, directory.connection_by_name(tenant.store, "doomed")["id"])
    assert list(mgmt.roles.users.list(role.id)) == []
    assert tenant.store.one("SELECT COUNT(*) AS n FROM user_permissions")["n"] == 0
