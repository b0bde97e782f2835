"""Request bodies are checked against the OAS request schemas, by one validator (`tenant/bodies.py`).

Each case below is a rule the OAS states that no hand-written check of the tenant ever enforced;
the answer is Auth0's 400 `invalid_body` with z-schema's text and the property's path.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from auth0.management.errors import BadRequestError

from auth0_migrate.tenant import directory


@pytest.mark.parametrize(("method", "path", "body", "message"), [
    ("POST", "/api/v2/clients", {"name": "app", "description": "d" * 141},
     "Payload validation error: 'String is too long (141 chars), maximum 140' on property description."),
    ("POST", "/api/v2/resource-servers",
     {"identifier": "https://api.example.com/", "token_encryption": {"format": "compact-nested-jwe"}},
     "Payload validation error: 'Missing required property: encryption_key' on property token_encryption."),
    ("POST", "/api/v2/client-grants",
     {"client_id": "x", "audience": "https://api.example.com/", "organization_usage": "sometimes"},
     "Payload validation error: 'No enum match for: \"sometimes\"' on property organization_usage."),
])
def test_oas_rules_no_handler_wrote_are_enforced(http, auth_headers, method, path, body, message) -> None:  # noqa: ANN001
    r = http.request(method, path, headers=auth_headers, json=body)
    assert (r.status_code, r.json()["errorCode"], r.json()["message"]) == (400, "invalid_body", message)


def test_an_empty_connection_update_is_refused(http, auth_headers, app) -> None:  # noqa: ANN001
    """PatchConnection has `minProperties: 1`: an update that changes nothing is a 400."""
    store = app.state.tenant.store
    conn = directory.create_connection(store, "Target", "auth0", 0.0, {})
    r = http.patch(f"/api/v2/connections/{conn['id']}", headers=auth_headers, json={})
    assert r.status_code == 400
    assert r.json()["message"] == "Payload validation error: 'Too few properties defined (0), minimum 1'."


def test_the_sdk_sees_the_schema_answer(mgmt) -> None:  # noqa: ANN001
    with pytest.raises(BadRequestError) as caught:
        mgmt.clients.create(name="app", token_endpoint_auth_method="private_key_jwt_typo")
    assert caught.value.body["message"] == ("Payload validation error: 'No enum match for: \"private_key_jwt_typo\"'"
                                            " on property token_endpoint_auth_method.")


def test_starting_the_tenant_does_not_read_the_schemas() -> None:
    """The schemas are read on the first body checked, so `create_app` stays as cheap as before."""
    code = ("from auth0_migrate.tenant import bodies, create_app; create_app(); "
            "assert bodies._operations.cache_info().currsize == 0; "
            "bodies.check_body('POST /api/v2/roles', {'name': 'r'}); "
            "assert bodies._operations.cache_info().currsize == 1")
    subprocess.run([sys.executable, "-c", code], check=True)
