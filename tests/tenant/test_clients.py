"""Clients, client grants and connections' enabled clients on the local tenant, through the official SDK.

A token carries exactly the scopes its client was granted for the audience (no grant: Auth0's 403
`access_denied`), and a bulk import goes only into a connection enabled for some client.
"""

from __future__ import annotations

import json

import httpx
import pytest
from auth0.management import Auth0
from auth0.management.core.api_error import ApiError as SdkApiError

from auth0_migrate.tenant import TenantConfig, create_app
from tests.conftest import BASE_URL

AUDIENCE = f"{BASE_URL}/api/v2/"


def client_token(http: httpx.Client, client_id: str, secret: str, audience: str = AUDIENCE) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                           "client_secret": secret, "audience": audience})


def sdk_error(fn, *args, **kwargs) -> SdkApiError:  # noqa: ANN001
    with pytest.raises(SdkApiError) as info:
        fn(*args, **kwargs)
    return info.value


def test_a_token_carries_only_the_scopes_granted_to_its_client(mgmt: Auth0, http: httpx.Client) -> None:
    created = mgmt.clients.create(name="reader app", app_type="non_interactive")
    assert created.client_secret and created.app_type == "non_interactive"
    refused = client_token(http, created.client_id, created.client_secret)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "access_denied",
        "error_description": f'Client is not authorized to access "{AUDIENCE}". You need to create a "client-grant" '
                             'associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/'
                             'post_client_grants'}
    grant = mgmt.client_grants.create(client_id=created.client_id, audience=AUDIENCE,
                                      scope=["read:users", "read:roles"])
    assert (grant.client_id, grant.audience, grant.scope) == (created.client_id, AUDIENCE, ["read:users", "read:roles"])
    granted = client_token(http, created.client_id, created.client_secret)
    assert granted.status_code == 200 and granted.json()["scope"] == "read:users read:roles"
    narrowed = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": created.client_id,
                                               "client_secret": created.client_secret, "audience": AUDIENCE,
                                               "scope": "read:users delete:users"})
    assert narrowed.json()["scope"] == "read:users"
    reader = Auth0(base_url=f"{BASE_URL}/api/v2", token=granted.json()["access_token"], httpx_client=http,
                   max_retries=0)
    assert reader.roles.list().items == []
    err = sdk_error(reader.connections.list)
    assert err.status_code == 403 and "read:connections" in err.body["message"]


def test_an_audience_that_is_no_api_of_the_tenant(http: httpx.Client, tenant) -> None:  # noqa: ANN001
    """The Management API reached through a custom domain is not an API of the tenant: Auth0's answer."""
    r = client_token(http, tenant.client_id, tenant.client_secret, "https://login.example.com/api/v2/")
    assert r.status_code == 403
    assert r.json() == {"error": "access_denied",
                        "error_description": "Service not enabled within domain: https://login.example.com/api/v2/"}


def test_the_default_client_gets_a_real_grant_with_the_configured_scopes(clock, oas_wrap) -> None:  # noqa: ANN001
    from starlette.testclient import TestClient

    app = create_app(TenantConfig(client_id="narrow", client_secret="narrow-secret", clock=clock, base_url=BASE_URL,
                                  client_scopes=("read:users", "read:client_grants")))
    try:
        with oas_wrap(TestClient(app, base_url=BASE_URL)) as http:
            r = client_token(http, "narrow", "narrow-secret")
            assert r.status_code == 200 and r.json()["scope"] == "read:users read:client_grants"
            mgmt = Auth0(base_url=f"{BASE_URL}/api/v2", token=r.json()["access_token"], httpx_client=http,
                         max_retries=0)
            grants = list(mgmt.client_grants.list(client_id="narrow"))
            assert [(g.audience, g.scope) for g in grants] == [(AUDIENCE, ["read:users", "read:client_grants"])]
    finally:
        app.state.tenant.close()


def test_client_grants_are_checked(mgmt: Auth0, tenant) -> None:  # noqa: ANN001
    created = mgmt.clients.create(name="app")
    assert sdk_error(mgmt.client_grants.create, client_id="nope", audience=AUDIENCE).status_code == 404
    err = sdk_error(mgmt.client_grants.create, client_id=created.client_id, audience="https://no-such-api/")
    assert err.status_code == 404
    err = sdk_error(mgmt.client_grants.create, client_id=created.client_id, audience=AUDIENCE, scope=["fly:away"])
    assert err.status_code == 400 and "fly:away" in err.body["message"]
    mgmt.client_grants.create(client_id=created.client_id, audience=AUDIENCE, scope=["read:users"])
    err = sdk_error(mgmt.client_grants.create, client_id=created.client_id, audience=AUDIENCE, scope=["read:roles"])
    assert err.status_code == 409
    assert sdk_error(mgmt.clients.get, "no-such-client").status_code == 404
    assert {c.client_id for c in mgmt.clients.list()} == {tenant.client_id, created.client_id}


def _import(mgmt: Auth0, connection_id: str) -> str:
    users = json.dumps([{"email": "ada@example.com"}]).encode()
    return mgmt.jobs.users_imports.create(users=("users.json", users, "application/json"),
                                          connection_id=connection_id, send_completion_email=False).id


def test_an_import_into_a_connection_enabled_for_no_client_is_refused(mgmt: Auth0, tenant) -> None:  # noqa: ANN001
    conn = mgmt.connections.create(name="Lonely-DB", strategy="auth0")
    assert conn.enabled_clients == []  # the API's default when the field is omitted, as Auth0's
    assert list(mgmt.connections.clients.get(conn.id)) == []
    err = sdk_error(_import, mgmt, conn.id)
    assert err.status_code == 400 and err.body["errorCode"] == "connection_not_enabled"
    assert "Lonely-DB" in err.body["message"] and "Applications" in err.body["message"]
    assert tenant.store.query("SELECT * FROM jobs") == []
    mgmt.connections.clients.update(conn.id, request=[{"client_id": tenant.client_id, "status": True}])
    assert mgmt.jobs.get(_import(mgmt, conn.id)).summary.inserted == 1
    mgmt.connections.clients.update(conn.id, request=[{"client_id": tenant.client_id, "status": False}])
    assert list(mgmt.connections.clients.get(conn.id)) == []
    assert sdk_error(_import, mgmt, conn.id).status_code == 400


def test_enabled_clients_on_create_patch_and_paged(mgmt: Auth0, http: httpx.Client, auth_headers, tenant) -> None:  # noqa: ANN001
    apps = [mgmt.clients.create(name=f"app {i}").client_id for i in range(3)]
    conn = mgmt.connections.create(name="Shared-DB", strategy="auth0", enabled_clients=[apps[0], apps[1]])
    assert mgmt.connections.get(conn.id).enabled_clients == [apps[0], apps[1]]
    updated = mgmt.connections.update(conn.id, enabled_clients=[apps[2], tenant.client_id])
    assert updated.enabled_clients == [apps[2], tenant.client_id]
    first = http.get(f"/api/v2/connections/{conn.id}/clients", params={"take": 1}, headers=auth_headers).json()
    assert first["clients"] == [{"client_id": apps[2]}] and first["next"]
    second = http.get(f"/api/v2/connections/{conn.id}/clients", params={"take": 1, "from": first["next"]},
                      headers=auth_headers).json()
    assert second == {"clients": [{"client_id": tenant.client_id}]}
    assert [c.client_id for c in mgmt.connections.clients.get(conn.id, take=1)] == [apps[2], tenant.client_id]
    assert sdk_error(mgmt.connections.update, conn.id, enabled_clients=["ghost"]).status_code == 404
    err = sdk_error(mgmt.connections.clients.update, conn.id, request=[{"client_id": "ghost", "status": True}])
    assert err.status_code == 404
    assert sdk_error(mgmt.connections.clients.get, "con_AAAAAAAAAAAAAAAA").status_code == 404


def test_tenant_serve_grants_its_client_the_scopes_it_is_given(oas_wrap) -> None:  # noqa: ANN001
    from starlette.testclient import TestClient

    from auth0_migrate.cli import build_parser
    from auth0_migrate.tenant.serve import build_app

    args = build_parser().parse_args(["tenant", "serve", "--port", "8499", "--client-id", "served",
                                      "--client-secret", "served-secret", "--client-scopes", "read:users read:roles"])
    app, base_url = build_app(args)
    try:
        with oas_wrap(TestClient(app, base_url=base_url)) as http:
            r = client_token(http, "served", "served-secret", f"{base_url}/api/v2/")
            assert r.status_code == 200 and r.json()["scope"] == "read:users read:roles"
    finally:
        app.state.tenant.close()
