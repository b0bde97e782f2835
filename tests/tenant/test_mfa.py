"""Users' MFA factors on the local tenant: imported, listed masked (SDK), handed out, deleted with the user."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from auth0.management.core.api_error import ApiError as SdkApiError

from auth0_migrate.tenant import connections, directory, mfa
from auth0_migrate.tenant.store import Store
from tests.tenant.test_jobs_import import run as import_users

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def cid(tenant, clock) -> str:  # noqa: ANN001
    connection_id = directory.create_connection(tenant.store, "Target", now=clock.now())["id"]
    connections.enable_clients(tenant.store, connection_id, [tenant.client_id])
    return connection_id


def imported(mgmt, tenant, cid: str) -> str:  # noqa: ANN001
    import_users(mgmt, cid, [{"email": "chuck334@example.com", "email_verified": True, "mfa_factors": [
        {"totp": {"secret": SECRET}}, {"phone": {"value": "+44207183875044"}},
        {"email": {"value": "foo@example.com"}}]}])
    return str(tenant.store.row("SELECT user_id FROM users WHERE email = 'chuck334@example.com'")["user_id"])


def test_imported_factors_are_listed_masked_as_auth0_masks_them(mgmt, tenant, cid) -> None:  # noqa: ANN001
    user_id = imported(mgmt, tenant, cid)
    methods = list(mgmt.users.authentication_methods.list(user_id, include_totals=True))
    assert [m.type for m in methods] == ["totp", "phone", "email"]
    totp, phone, email = methods
    assert phone.phone_number == "XXXXXXXXXXX5044"  # the recorded mask of +44207183875044
    assert email.email == "****@exam*******"  # the recorded mask of foo@example.com
    assert mfa.mask_email("chuck334@example.com") == "chuc****@exam*******"  # the other recorded one
    assert SECRET not in json.dumps([m.dict() for m in methods], default=str)
    assert mgmt.users.get(user_id).multifactor == ["guardian"]  # as Auth0 shows a Guardian enrollment


def test_a_user_without_factors_lists_none_and_an_unknown_user_is_404(mgmt, tenant, cid) -> None:  # noqa: ANN001
    import_users(mgmt, cid, [{"email": "plain@example.com"}])
    user_id = tenant.store.row("SELECT user_id FROM users WHERE email = 'plain@example.com'")["user_id"]
    assert list(mgmt.users.authentication_methods.list(user_id, include_totals=True)) == []
    assert mgmt.users.get(user_id).multifactor is None
    with pytest.raises(SdkApiError) as err:
        list(mgmt.users.authentication_methods.list("auth0|nobody", include_totals=True))
    assert err.value.status_code == 404


def test_factors_go_with_their_user_and_the_secrets_file_carries_only_importable_ones(mgmt, tenant, cid,  # noqa: ANN001
                                                                                       clock) -> None:  # noqa: ANN001
    user_id = imported(mgmt, tenant, cid)
    mfa.enroll(tenant.store, user_id, "push", now=clock.now())
    mfa.enroll(tenant.store, user_id, "webauthn-roaming", now=clock.now())
    assert len(list(mgmt.users.authentication_methods.list(user_id, include_totals=True))) == 5
    out = io.StringIO()
    assert mfa.export_secrets(tenant.store, "Target", out) == 1
    line = json.loads(out.getvalue())
    assert line == {"user_id": user_id, "email": "chuck334@example.com", "mfa_factors": [
        {"totp": {"secret": SECRET}}, {"phone": {"value": "+44207183875044"}}, {"email": {"value": "foo@example.com"}}]}
    mgmt.users.delete(user_id)
    assert tenant.store.one("SELECT COUNT(*) AS n FROM mfa_factors")["n"] == 0


def test_the_scope_is_read_authentication_methods(tenant, cid, http) -> None:  # noqa: ANN001
    from auth0_migrate.tenant import oauth
    from tests.conftest import fetch_token

    oauth.create_client(tenant.store, "no-mfa", "no-mfa-secret", scopes=["read:users"])
    token = fetch_token(http, "no-mfa", "no-mfa-secret")
    r = http.get("/api/v2/users/auth0%7Cx/authentication-methods", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert "read:authentication_methods" in r.json()["message"]


def test_factors_survive_a_restart_and_the_cli_writes_the_file_0600(tmp_path, clock) -> None:  # noqa: ANN001
    from auth0_migrate.tenant.app import SCHEMAS

    db = str(tmp_path / "tenant.sqlite")
    store = Store(db, SCHEMAS)
    conn = directory.create_connection(store, "Legacy", now=clock.now())
    with store.tx() as tx:
        user_id = directory.insert_user(tx, conn, {"email": "a@example.com"}, None, clock.now())["user_id"]
    mfa.enroll(store, user_id, "totp", SECRET, now=clock.now())
    mfa.enroll(store, user_id, "recovery-code", now=clock.now())
    store.close()
    out = tmp_path / "mfa.ndjson"
    done = subprocess.run([sys.executable, "-m", "auth0_migrate", "tenant", "export-mfa-secrets", "--db", db,
                           "--connection", "Legacy", "--out", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert json.loads(out.read_text()) == {"user_id": user_id, "email": "a@example.com",
                                           "mfa_factors": [{"totp": {"secret": SECRET}}]}
    assert SECRET not in done.stdout + done.stderr
