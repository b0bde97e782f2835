"""Import jobs run on the tenant's clock, polled or not; an import whose answer is lost still runs;
the errors endpoint's 204; export downloads with and without `Content-Encoding: gzip`."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from auth0.management.core.api_error import ApiError as SdkApiError

from auth0_migrate.tenant import connections, directory
from auth0_migrate.tenant.jobs import LOST_ANSWER


@pytest.fixture
def cid(tenant, clock) -> str:  # noqa: ANN001
    connection_id = directory.create_connection(tenant.store, "Target", now=clock.now())["id"]
    connections.enable_clients(tenant.store, connection_id, [tenant.client_id])  # Auth0 imports need one
    return connection_id


def start(mgmt, cid: str, users: list[dict[str, Any]]) -> str:  # noqa: ANN001
    job = mgmt.jobs.users_imports.create(users=("users.json", json.dumps(users).encode(), "application/json"),
                                         connection_id=cid, upsert=False, send_completion_email=False)
    return job.id


def in_target(mgmt, email: str) -> list[str]:  # noqa: ANN001
    """The connections holding a user with this email, read through the API (an observation)."""
    return [i.connection for u in mgmt.users.list_users_by_email(email=email) for i in u.identities or []]


def test_a_job_nobody_polls_still_runs_when_it_is_due(mgmt, tenant, cid, clock) -> None:  # noqa: ANN001
    tenant.config.job_seconds = 30
    job_id = start(mgmt, cid, [{"email": "a@example.com"}])
    clock.advance(29)
    assert in_target(mgmt, "a@example.com") == []
    clock.advance(1)
    assert in_target(mgmt, "a@example.com") == ["Target"]  # no poll of the job came first
    row = tenant.store.one("SELECT status, created_at, finished_at FROM jobs WHERE id = ?", (job_id,))
    assert (row["status"], row["finished_at"] - row["created_at"]) == ("completed", 30)
    user = tenant.store.one("SELECT created_at FROM users WHERE email = 'a@example.com'")
    assert user["created_at"] == row["finished_at"]  # it ran when it became due
    assert mgmt.jobs.get(job_id).status == "completed"


def test_jobs_run_in_the_order_they_became_due(mgmt, tenant, cid, clock) -> None:  # noqa: ANN001
    """An export due before an import does not see its users, even when the import was made first and
    both are first observed together, long after."""
    tenant.config.job_seconds = 100
    start(mgmt, cid, [{"email": "a@example.com"}])  # due at 100
    tenant.config.job_seconds = 10
    clock.advance(5)
    export = mgmt.jobs.users_exports.create(connection_id=cid, format="json", fields=[{"name": "email"}]).id
    clock.advance(200)
    assert in_target(mgmt, "a@example.com") == ["Target"]
    assert mgmt.jobs.get(export).status == "completed"
    data = tenant.store.one("SELECT data FROM job_files WHERE job_id = ? AND kind = 'export'", (export,))["data"]
    assert gzip.decompress(data) == b""  # it ran at 15, before the import's user existed


@pytest.mark.parametrize("action", ["drop", 503])
def test_a_lost_answer_still_makes_the_job_and_it_holds_a_slot(mgmt, http, tenant, cid, clock, action) -> None:  # noqa: ANN001
    tenant.config.job_seconds = 60
    tenant.faults.lose_import_answers.append(action)
    if action == "drop":
        with pytest.raises(OSError):
            start(mgmt, cid, [{"email": "lost@example.com"}])
    else:
        with pytest.raises(SdkApiError) as info:
            start(mgmt, cid, [{"email": "lost@example.com"}])
        assert info.value.status_code == 503
    assert tenant.faults.injected[LOST_ANSWER] == 1  # the fault fired
    assert tenant.faults.lose_import_answers == []
    start(mgmt, cid, [{"email": "second@example.com"}])
    with pytest.raises(SdkApiError) as busy:  # the lost job is one of the two active ones
        start(mgmt, cid, [{"email": "third@example.com"}])
    assert busy.value.status_code == 429 and "2 active import users jobs" in str(busy.value.body)
    clock.advance(60)
    assert in_target(mgmt, "lost@example.com") == ["Target"]  # it ran, though nobody knows its id
    start(mgmt, cid, [{"email": "third@example.com"}])  # both slots are free again
    assert tenant.faults.injected[LOST_ANSWER] == 1


def test_errors_of_a_finished_job_without_errors_are_204_with_no_body(mgmt, http, auth_headers, cid) -> None:  # noqa: ANN001
    job_id = start(mgmt, cid, [{"email": "a@example.com"}])
    assert mgmt.jobs.get(job_id).status == "completed"
    r = http.get(f"/api/v2/jobs/{job_id}/errors", headers=auth_headers)
    assert (r.status_code, r.content) == (204, b"")
    assert mgmt.jobs.errors.get(job_id) is None  # auth0-python 6.8.0 takes the 204 as "no errors"


@pytest.mark.parametrize("encoded", [False, True])
def test_download_says_content_encoding_only_when_configured(mgmt, app, tenant, cid, encoded) -> None:  # noqa: ANN001
    from starlette.testclient import TestClient

    tenant.config.download_content_encoding = encoded
    start(mgmt, cid, [{"email": "a@example.com"}])
    job = mgmt.jobs.users_exports.create(connection_id=cid, format="json", fields=[{"name": "email"}])
    location = mgmt.jobs.get(job.id).location
    client = TestClient(app)
    with client.stream("GET", location) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert r.headers.get("content-encoding") == ("gzip" if encoded else None)
    assert gzip.decompress(raw) == b'{"email":"a@example.com"}\n'  # the same gzip bytes either way


def test_tenant_serve_flags_switch_the_lost_answer_and_the_download_encoding(clock) -> None:  # noqa: ANN001
    from starlette.testclient import TestClient

    from auth0_migrate.cli import build_parser
    from auth0_migrate.tenant.serve import build_app

    args = build_parser().parse_args(["tenant", "serve", "--client-id", "c", "--client-secret", "s",
                                      "--lose-import-answer", "drop", "--lose-import-answer", "503",
                                      "--download-content-encoding"])
    app, _ = build_app(args)
    tenant = app.state.tenant
    try:
        assert tenant.faults.lose_import_answers == ["drop", 503]
        assert tenant.config.download_content_encoding is True
        cid = directory.create_connection(tenant.store, "Target", now=tenant.clock.now())["id"]
        connections.enable_clients(tenant.store, cid, [tenant.client_id])
        client = TestClient(app, base_url=tenant.config.base_url)
        token = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "c",
                                                  "client_secret": "s", "audience": tenant.config.audience})
        headers = {"authorization": f"Bearer {token.json()['access_token']}"}
        files = {"users": ("u.json", b'[{"email":"a@example.com"}]', "application/json")}
        with pytest.raises(OSError):
            client.post("/api/v2/jobs/users-imports", headers=headers, data={"connection_id": cid}, files=files)
        r = client.post("/api/v2/jobs/users-imports", headers=headers, data={"connection_id": cid}, files=files)
        assert r.status_code == 503 and r.headers["x-injected-fault"] == "true"
        assert tenant.faults.injected[LOST_ANSWER] == 2
        assert tenant.store.one("SELECT COUNT(*) AS n FROM jobs")["n"] == 2  # both jobs were made
    finally:
        tenant.close()
