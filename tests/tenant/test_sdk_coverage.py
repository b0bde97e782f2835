"""Every endpoint the local tenant serves, driven once through the official auth0-python SDK.

The first test fails when an endpoint is added to the tenant without an SDK call here, so "the SDK
can drive every endpoint and parse every answer" stays true as the tenant grows. Every JSON answer
is also checked against the OpenAPI spec by the `http` fixture.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time

import pytest
import uvicorn
from auth0.authentication import GetToken
from auth0.authentication.exceptions import Auth0Error

from auth0_migrate.passwords import bcrypt_hash
from auth0_migrate.tenant import TenantConfig, create_app
from auth0_migrate.tenant.app import ROUTERS


def test_every_management_endpoint_through_the_sdk(mgmt, tenant, http) -> None:
    api = "https://api.coverage.example/"
    conn = mgmt.connections.create(name="Coverage-DB", strategy="auth0")
    assert mgmt.connections.get(conn.id).name == "Coverage-DB"
    # Clients, grants and enabled clients (a bulk import needs the connection enabled for a client).
    app_client = mgmt.clients.create(name="Coverage app", app_type="non_interactive")
    assert mgmt.clients.get(app_client.client_id).name == "Coverage app"
    assert app_client.client_id in [c.client_id for c in mgmt.clients.list()]
    grant = mgmt.client_grants.create(client_id=app_client.client_id, audience=f"{http.base_url}/api/v2/",
                                      scope=["read:users"])
    assert [g.id for g in mgmt.client_grants.list(client_id=app_client.client_id)] == [grant.id]
    mgmt.connections.clients.update(conn.id, request=[{"client_id": tenant.client_id, "status": True}])
    assert [c.client_id for c in mgmt.connections.clients.get(conn.id)] == [tenant.client_id]
    updated = mgmt.connections.update(conn.id, display_name="Coverage", enabled_clients=[tenant.client_id,
                                                                                         app_client.client_id])
    assert updated.enabled_clients == [tenant.client_id, app_client.client_id]
    assert [c.name for c in mgmt.connections.list(name="Coverage-DB")] == ["Coverage-DB"]
    rs = mgmt.resource_servers.create(name="Coverage API", identifier=api,
                                      scopes=[{"value": "read:things", "description": "read"},
                                              {"value": "write:things", "description": "write"}])
    assert any(r.identifier == api for r in mgmt.resource_servers.list())
    assert mgmt.resource_servers.get(rs.id).identifier == api
    mgmt.resource_servers.update(rs.id, name="Coverage API v2")
    user = mgmt.users.create(connection="Coverage-DB", email="ada@example.com", password="Correct-horse-1!")
    assert mgmt.users.get(user.user_id).email == "ada@example.com"
    mgmt.users.update(user.user_id, app_metadata={"plan": "pro"})
    second = mgmt.users.create(connection="Coverage-DB", email="ada.2@example.com", password="Correct-horse-2!")
    mgmt.users.identities.link(user.user_id, provider="auth0", user_id=second.user_id, connection_id=conn.id)
    mgmt.users.identities.delete(user.user_id, "auth0", second.user_id.removeprefix("auth0|"))
    mgmt.users.delete(second.user_id)
    assert [u.user_id for u in mgmt.users.list(q='email:"ada@example.com"', search_engine="v3")] == [user.user_id]
    assert [u.user_id for u in mgmt.users.list_users_by_email(email="ada@example.com")] == [user.user_id]
    role = mgmt.roles.create(name="coverage-role", description="r")
    assert mgmt.roles.get(role.id).name == "coverage-role"
    mgmt.roles.update(role.id, description="role for coverage")
    assert [r.name for r in mgmt.roles.list(name_filter="coverage")] == ["coverage-role"]
    perm = {"resource_server_identifier": api, "permission_name": "read:things"}
    mgmt.roles.permissions.add(role.id, permissions=[perm, {**perm, "permission_name": "write:things"}])
    mgmt.roles.permissions.delete(role.id, permissions=[{**perm, "permission_name": "write:things"}])
    assert [p.permission_name for p in mgmt.roles.permissions.list(role.id)] == ["read:things"]
    mgmt.roles.users.assign(role.id, users=[user.user_id])
    assert [u.user_id for u in mgmt.roles.users.list(role.id, take=10)] == [user.user_id]
    mgmt.users.roles.delete(user.user_id, roles=[role.id])
    mgmt.users.roles.assign(user.user_id, roles=[role.id])
    assert [r.id for r in mgmt.users.roles.list(user.user_id)] == [role.id]
    mgmt.users.permissions.create(user.user_id, permissions=[{**perm, "permission_name": "write:things"}])
    listed = {p.permission_name: getattr(p, "sources", None) for p in mgmt.users.permissions.list(user.user_id)}
    assert set(listed) == {"read:things", "write:things"}
    mgmt.users.permissions.delete(user.user_id, permissions=[{**perm, "permission_name": "write:things"}])
    # Jobs: import, poll, errors, export and its download.
    users = [{"email": "grace@example.com", "email_verified": True,
              "password_hash": bcrypt_hash("Grace-pass-1", cost=4).replace("$2b$04$", "$2b$10$", 1)},
             {"email": "not-an-email"}]
    job = mgmt.jobs.users_imports.create(users=("users.json", json.dumps(users).encode(), "application/json"),
                                         connection_id=conn.id, send_completion_email=False)
    done = mgmt.jobs.get(job.id)
    assert done.status == "completed" and done.summary.inserted == 1 and done.summary.failed == 1
    errors = mgmt.jobs.errors.get(job.id)
    # INVALID_FORMAT, not the documented FORMAT: the code a real tenant answered (tenant/import_validation.py).
    assert [e.errors[0].code for e in errors] == ["INVALID_FORMAT"]
    export = mgmt.jobs.users_exports.create(connection_id=conn.id, format="json",
                                            fields=[{"name": "user_id"}, {"name": "email"}])
    location = mgmt.jobs.get(export.id).location
    lines = gzip.decompress(http.get(location).content).decode().splitlines()
    assert {json.loads(line)["email"] for line in lines} == {"ada@example.com", "grace@example.com"}
    # Organizations: members with their organization roles, enabled connections, a user's organizations.
    org = mgmt.organizations.create(name="coverage-org", display_name="Coverage Org")
    assert mgmt.organizations.get(org.id).name == "coverage-org"
    assert mgmt.organizations.get_by_name("coverage-org").id == org.id
    assert [o.id for o in mgmt.organizations.list(take=10)] == [org.id]
    enabled = mgmt.organizations.enabled_connections.add(org.id, connection_id=conn.id)
    assert enabled.connection_id == conn.id
    assert [c.connection_id for c in mgmt.organizations.enabled_connections.list(org.id)] == [conn.id]
    mgmt.organizations.members.create(org.id, members=[user.user_id])
    mgmt.organizations.members.roles.assign(org.id, user.user_id, roles=[role.id])
    assert [r.id for r in mgmt.organizations.members.roles.list(org.id, user.user_id)] == [role.id]
    members = list(mgmt.organizations.members.list(org.id, take=10, fields="user_id,roles", include_fields=True))
    assert [(m.user_id, [r.name for r in m.roles or []]) for m in members] == [(user.user_id, ["coverage-role"])]
    assert [o.id for o in mgmt.users.organizations.list(user.user_id)] == [org.id]
    mgmt.organizations.members.roles.delete(org.id, user.user_id, roles=[role.id])
    mgmt.organizations.members.delete(org.id, members=[user.user_id])
    assert list(mgmt.organizations.members.list(org.id, take=10)) == []
    mgmt.roles.delete(role.id)
    mgmt.connections.users.delete_by_email(conn.id, email="grace@example.com")
    assert list(mgmt.users.authentication_methods.list(user.user_id, include_totals=True)) == []
    mgmt.users.delete(user.user_id)
    assert mgmt.users.list_users_by_email(email="ada@example.com") == []
    mgmt.connections.delete(conn.id)
    served = {e.name for router in ROUTERS for e in router.endpoints if e.api}
    missing = sorted(name for name in served if not tenant.stats.get(name))
    assert missing == [], f"endpoints no SDK call here reaches: {missing}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_tenant():
    """The tenant over a real socket (the SDK's Authentication API client uses `requests`, not httpx)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(TenantConfig(client_id="live", client_secret="live-secret", base_url=base))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield app, port
    server.should_exit = True
    thread.join(10)
    app.state.tenant.close()


def test_token_endpoint_through_the_sdk(live_tenant) -> None:
    app, port = live_tenant
    domain = f"127.0.0.1:{port}"
    tokens = GetToken(domain, "live", client_secret="live-secret", protocol="http")
    granted = tokens.client_credentials(audience=f"http://{domain}/api/v2/")
    assert granted["token_type"] == "Bearer" and "read:users" in granted["scope"]
    import httpx
    from auth0.management import Auth0

    with httpx.Client() as client:
        mgmt = Auth0(base_url=f"http://{domain}/api/v2", token=granted["access_token"], max_retries=0,
                     httpx_client=client)
        conn = mgmt.connections.create(name="Live-DB", strategy="auth0")
        mgmt.users.create(connection="Live-DB", email="live@example.com", password="Live-pass-1!")
    login = tokens.login(username="live@example.com", password="Live-pass-1!", realm="Live-DB",
                         audience=f"http://{domain}/api/v2/")
    assert login["access_token"]
    with pytest.raises(Auth0Error) as refused:
        tokens.login(username="live@example.com", password="wrong", realm="Live-DB")
    assert refused.value.status_code == 403 and refused.value.error_code == "invalid_grant"
    assert app.state.tenant.stats["POST /oauth/token"] >= 3
    assert conn.id.startswith("con_")


def test_drop_fault_cuts_a_served_connection(live_tenant) -> None:
    """Over a real socket the `drop` switch closes the connection mid-answer; the next call is served."""
    import httpx

    app, port = live_tenant
    app.state.tenant.faults.fail_call("GET /api/v2/connections", nth=1, action="drop")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        token = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "live",
                                                  "client_secret": "live-secret"}).json()["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/api/v2/connections", headers=headers)
        assert app.state.tenant.faults.injected == {"GET /api/v2/connections": 1}
        assert client.get("/api/v2/connections", headers=headers).status_code == 200
