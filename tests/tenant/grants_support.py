"""Helpers shared by the grants tests (roles, permissions) of the local tenant."""

from __future__ import annotations

import pytest
from auth0.management import Auth0
from auth0.management.core.api_error import ApiError as SdkError
from auth0.management.types import PermissionRequestPayload

from auth0_migrate.tenant import directory, oauth

API = "https://api.example.com/"
BASE = "http://tenant.local"


def sdk_error(call, *args, **kwargs) -> SdkError:  # noqa: ANN001
    with pytest.raises(SdkError) as info:
        call(*args, **kwargs)  # a pager makes its first request when created
    return info.value


def weak_sdk(tenant, http, scopes: tuple[str, ...]) -> Auth0:  # noqa: ANN001
    """An SDK on a token for a client that holds only `scopes`."""
    oauth.create_client(tenant.store, "weak", "weak-secret", scopes=scopes)
    r = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "weak",
                                         "client_secret": "weak-secret", "audience": f"{BASE}/api/v2/"})
    assert r.status_code == 200, r.text
    return Auth0(base_url=f"{BASE}/api/v2", token=r.json()["access_token"], httpx_client=http, max_retries=0)


def make_users(tenant, n: int, connection: str = "Username-Password-Authentication", prefix: str = "user",
               user_ids: list[str] | None = None) -> list[str]:  # noqa: ANN001
    conn = directory.connection_by_name(tenant.store, connection) or directory.create_connection(
        tenant.store, connection)
    with tenant.store.tx() as db:
        rows = [directory.insert_user(db, conn, {"email": f"{prefix}{i}@example.com"}, None, tenant.clock.now(),
                                      user_id=user_ids[i] if user_ids else None) for i in range(n)]
    return [r["user_id"] for r in rows]


def perm(name: str, api: str = API) -> PermissionRequestPayload:
    return PermissionRequestPayload(resource_server_identifier=api, permission_name=name)
