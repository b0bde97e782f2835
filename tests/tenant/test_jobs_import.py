"""Bulk import jobs on the local tenant: `POST /jobs/users-imports`, polling, errors, Auth0's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from auth0.management import Auth0
from auth0.management.core.api_error import ApiError as SdkApiError
from starlette.testclient import TestClient

from auth0_migrate import passwords
from auth0_migrate.tenant import TenantConfig, connections, create_app, credentials, directory, oauth
from auth0_migrate.tenant.jobs import HASH_DEFINED_MESSAGE, IMPORT_MAX_BYTES
from auth0_migrate.tenant.store import loads
from tests.conftest import BASE_URL, CLIENT_ID, CLIENT_SECRET, fetch_token

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def bcrypt10() -> str:
    return passwords.bcrypt_hash(PASSWORD)


@pytest.fixture
def cid(tenant, clock) -> str:  # noqa: ANN001
    connection_id = directory.create_connection(tenant.store, "Target", now=clock.now())["id"]
    connections.enable_clients(tenant.store, connection_id, [tenant.client_id])  # Auth0 imports need one
    return connection_id


def start(mgmt, cid: str, users: Any, upsert: bool = False, **extra: Any) -> str:  # noqa: ANN001
    data = users if isinstance(users, bytes) else json.dumps(users).encode()
    job = mgmt.jobs.users_imports.create(users=("users.json", data, "application/json"), connection_id=cid,
                                         upsert=upsert, send_completion_email=False, **extra)
    return job.id


def run(mgmt, cid: str, users: Any, upsert: bool = False) -> Any:  # noqa: ANN001
    """Import and poll once (job_seconds is 0, so the first poll finishes the job)."""
    job = mgmt.jobs.get(start(mgmt, cid, users, upsert))
    assert job.status == "completed", job
    return job


def user_row(tenant, cid: str, email: str):  # noqa: ANN001, ANN201
    return tenant.store.one("SELECT * FROM users WHERE connection_id = ? AND email = ?", (cid, email))


def multipart(fields: dict[str, str], users: bytes, boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="users"; filename="users.json"\r\n'
            "Content-Type: application/json\r\n\r\n").encode() + users + f"\r\n--{boundary}--\r\n".encode()
    return out, {"content-type": f"multipart/form-data; boundary={boundary}"}


# --- creation ----------------------------------------------------------------------------------

def test_import_creates_job_and_inserts_users(mgmt, tenant, cid, clock, bcrypt10) -> None:  # noqa: ANN001
    job = mgmt.jobs.users_imports.create(
        users=("users.json", json.dumps([{"email": "Ann@Example.com", "password_hash": bcrypt10},
                                         {"email": "bob@example.com", "user_id": "bob-1", "email_verified": True},
                                         {"email": "cy@example.com", "user_id": "auth0|cy"}]).encode(),
               "application/json"),
        connection_id=cid, upsert=False, external_id="run-7", send_completion_email=False)
    raw = job.model_dump()
    assert (raw["status"], raw["type"], raw["connection_id"], raw["connection"]) == ("pending", "users_import",
                                                                                      cid, "Target")
    assert raw["external_id"] == "run-7" and raw["created_at"] == "2026-01-01T00:00:00.000Z"
    assert raw["upsert"] is False and raw["send_completion_email"] is False
    done = mgmt.jobs.get(job.id)
    assert done.status == "completed"
    assert done.summary.model_dump() == {"failed": 0, "updated": 0, "inserted": 3, "total": 3}
    assert mgmt.jobs.errors.get(job.id) is None  # 204: no errors

    ann = user_row(tenant, cid, "ann@example.com")
    assert ann["user_id"].startswith("auth0|") and len(ann["user_id"]) == len("auth0|") + 24
    assert loads(ann["credential"]) == {"password_hash": bcrypt10}
    assert loads(ann["profile"])["email_verified"] is False  # false unless the file says true
    bob = user_row(tenant, cid, "bob@example.com")
    assert bob["user_id"] == "auth0|bob-1" and loads(bob["profile"])["email_verified"] is True
    assert bob["credential"] is None  # imported without a hash: stays without
    assert user_row(tenant, cid, "cy@example.com")["user_id"] == "auth0|auth0|cy"  # Auth0 prefixes again


def test_booleans_only_the_string_true_is_true(http, auth_headers, tenant, cid) -> None:  # noqa: ANN001
    users = json.dumps([{"email": "a@example.com"}]).encode()
    r = http.post("/api/v2/jobs/users-imports", headers=auth_headers,
                  files={"users": ("u.json", users, "application/json")},
                  data={"connection_id": cid, "upsert": "True", "send_completion_email": "yes"})
    assert r.status_code == 202, r.text
    assert r.json()["upsert"] is False and r.json()["send_completion_email"] is False
    r = http.post("/api/v2/jobs/users-imports", headers=auth_headers,
                  files={"users": ("u.json", users, "application/json")}, data={"connection_id": cid})
    assert r.json()["upsert"] is False and r.json()["send_completion_email"] is True  # Auth0's defaults
    r = http.post("/api/v2/jobs/users-imports", headers=auth_headers,
                  files={"users": ("u.json", users, "application/json")},
                  data={"connection_id": cid, "upsert": "true"})
    assert r.json()["upsert"] is True


def test_payload_limit_is_512000_bytes_of_the_whole_request(http, auth_headers, mgmt, cid) -> None:  # noqa: ANN001
    def request_of(total: int) -> tuple[bytes, dict[str, str]]:
        envelope, _ = multipart({"connection_id": cid, "send_completion_email": "false"}, b"[]")
        body, headers = multipart({"connection_id": cid, "send_completion_email": "false"},
                                  b"[" + b" " * (total - len(envelope)) + b"]")
        assert len(body) == total
        return body, headers

    body, headers = request_of(IMPORT_MAX_BYTES)
    r = http.post("/api/v2/jobs/users-imports", content=body, headers={**auth_headers, **headers})
    assert r.status_code == 413
    assert r.json() == {"statusCode": 413, "error": "Request Entity Too Large",
                        "message": "Payload content length greater than maximum allowed: 512000."}
    body, headers = request_of(IMPORT_MAX_BYTES - 1)
    r = http.post("/api/v2/jobs/users-imports", content=body, headers={**auth_headers, **headers})
    assert r.status_code == 202, r.text
    # The SDK sees the 413 too, for a users file that alone is under the limit but not with its envelope.
    with pytest.raises(SdkApiError) as info:
        start(mgmt, cid, b"[" + b" " * (IMPORT_MAX_BYTES - 300) + b"]")
    assert info.value.status_code == 413


def test_a_body_without_content_length_is_counted_as_it_streams(http, auth_headers, cid) -> None:  # noqa: ANN001
    body, headers = multipart({"connection_id": cid}, b"[" + b" " * IMPORT_MAX_BYTES + b"]")

    def chunks():  # noqa: ANN202 - a generator body is sent chunked, without content-length
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = http.post("/api/v2/jobs/users-imports", content=chunks(), headers={**auth_headers, **headers})
    assert r.status_code == 413


@pytest.mark.parametrize(("case", "message"), [
    ("no_users", "Must provide 'users' file as multipart part."),
    ("empty_users", "Users file must not be empty."),
    ("no_connection", "Must provide 'connection_id' as multipart part."),
    ("bad_pattern", "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property"
                    " connection_id."),
    ("unknown_connection", "The connection does not exist."),
    ("json_body", "Payload validation error: 'Invalid multipart payload format'."),
    ("garbled", "Payload validation error: 'Invalid multipart payload format'."),
])
def test_bad_requests_get_auth0_400s(http, auth_headers, cid, case, message) -> None:  # noqa: ANN001
    url = "/api/v2/jobs/users-imports"
    users = ("u.json", b'[{"email":"a@example.com"}]', "application/json")
    if case == "no_users":
        r = http.post(url, headers=auth_headers, files={"other": users}, data={"connection_id": cid})
    elif case == "empty_users":
        r = http.post(url, headers=auth_headers, files={"users": ("u.json", b"  ", "application/json")},
                      data={"connection_id": cid})
    elif case == "no_connection":
        r = http.post(url, headers=auth_headers, files={"users": users})
    elif case == "bad_pattern":
        r = http.post(url, headers=auth_headers, files={"users": users}, data={"connection_id": "con_short"})
    elif case == "unknown_connection":
        r = http.post(url, headers=auth_headers, files={"users": users},
                      data={"connection_id": "con_AAAAAAAAAAAAAAAA"})
    elif case == "json_body":
        r = http.post(url, headers=auth_headers, json={"users": [], "connection_id": cid})
    else:
        r = http.post(url, headers={**auth_headers, "content-type": "multipart/form-data; boundary=xyz"},
                      content=b"--xyz\r\nContent-Disposition: form-data; name=\"users\"\r\n\r\n\x00garbage")
    assert r.status_code == 400, r.text
    body = r.json()
    assert (body["statusCode"], body["error"], body["message"]) == (400, "Bad Request", message)


def test_target_must_be_a_database_connection(http, auth_headers, tenant, clock) -> None:  # noqa: ANN001
    social = directory.create_connection(tenant.store, "google", strategy="google-oauth2", now=clock.now())
    custom = directory.create_connection(tenant.store, "legacy-db", now=clock.now(),
                                         options={"enabledDatabaseCustomization": True})
    for connection, message in ((social, "Connection must be a database connection."),
                                (custom, "Custom Database Connections without import mode are not allowed.")):
        r = http.post("/api/v2/jobs/users-imports", headers=auth_headers, data={"connection_id": connection["id"]},
                      files={"users": ("u.json", b'[{"email":"a@example.com"}]', "application/json")})
        assert (r.status_code, r.json()["message"]) == (400, message)


def test_import_needs_create_users_scope(http, tenant, cid) -> None:  # noqa: ANN001
    oauth.create_client(tenant.store, "reader", "reader-secret", scopes=("read:users",))
    headers = {"authorization": f"Bearer {fetch_token(http, 'reader', 'reader-secret')}"}
    r = http.post("/api/v2/jobs/users-imports", headers=headers, data={"connection_id": cid},
                  files={"users": ("u.json", b'[{"email":"a@example.com"}]', "application/json")})
    assert r.status_code == 403 and r.json()["message"] == "Insufficient scope; expected any of: create:users"


# --- concurrency and the job's life ------------------------------------------------------------

def test_third_active_import_job_gets_429(mgmt, http, auth_headers, tenant, cid, clock) -> None:  # noqa: ANN001
    tenant.config.job_seconds = 60
    first = start(mgmt, cid, [{"email": "a@example.com"}])
    start(mgmt, cid, [{"email": "b@example.com"}])
    r = http.post("/api/v2/jobs/users-imports", headers=auth_headers, data={"connection_id": cid},
                  files={"users": ("u.json", b'[{"email":"c@example.com"}]', "application/json")})
    assert r.status_code == 429
    assert r.json() == {"statusCode": 429, "error": "Too Many Requests",
                        "message": "There are 2 active import users jobs, please wait until some of them are"
                                   " finished and try again"}
    clock.advance(30)
    assert mgmt.jobs.get(first).status == "processing"  # still active
    with pytest.raises(SdkApiError) as info:
        start(mgmt, cid, [{"email": "c@example.com"}])
    assert info.value.status_code == 429
    clock.advance(30)  # both are due now: counting the active jobs finishes them
    third = start(mgmt, cid, [{"email": "c@example.com"}])
    assert tenant.store.one("SELECT status FROM jobs WHERE id = ?", (first,))["status"] == "completed"
    assert mgmt.jobs.get(third).status == "processing"


def test_job_seconds_timing_with_the_manual_clock(mgmt, tenant, cid, clock) -> None:  # noqa: ANN001
    tenant.config.job_seconds = 40
    job_id = start(mgmt, cid, [{"email": "a@example.com"}])
    clock.advance(10)
    job = mgmt.jobs.get(job_id)
    assert (job.status, job.percentage_done, job.time_left_seconds) == ("processing", 25, 30)
    assert mgmt.jobs.errors.get(job_id) is None  # nothing to report before it finished
    assert user_row(tenant, cid, "a@example.com") is None
    clock.advance(29.5)
    assert mgmt.jobs.get(job_id).time_left_seconds == 1
    clock.advance(0.5)
    job = mgmt.jobs.get(job_id)
    assert job.status == "completed" and job.percentage_done is None and job.summary.inserted == 1
    row = user_row(tenant, cid, "a@example.com")
    assert row["created_at"] == clock.now()  # processed when it became due


def test_job_answers_pending_to_its_first_k_polls(mgmt, tenant, cid) -> None:  # noqa: ANN001
    tenant.faults.job_pending_polls = 3
    job_id = start(mgmt, cid, [{"email": "a@example.com"}])
    assert [mgmt.jobs.get(job_id).status for _ in range(3)] == ["pending"] * 3
    assert tenant.faults.injected == {"job_pending_polls": 3}
    assert user_row(tenant, cid, "a@example.com") is None
    assert mgmt.jobs.get(job_id).status == "completed"


def test_held_jobs_stay_active_for_the_concurrency_limit(mgmt, tenant, cid) -> None:  # noqa: ANN001
    tenant.faults.job_pending_polls = 1
    first = start(mgmt, cid, [{"email": "a@example.com"}])
    start(mgmt, cid, [{"email": "b@example.com"}])
    with pytest.raises(SdkApiError) as info:
        start(mgmt, cid, [{"email": "c@example.com"}])
    assert info.value.status_code == 429
    assert mgmt.jobs.get(first).status == "pending"  # its one pending poll; now it may progress
    assert tenant.faults.injected == {"job_pending_polls": 1}
    start(mgmt, cid, [{"email": "c@example.com"}])  # counting finished `first`


def test_failed_and_expired_jobs_use_the_generic_errors_shape(mgmt, tenant, cid) -> None:  # noqa: ANN001
    tenant.faults.fail_jobs = {1}
    tenant.faults.expire_jobs = {2}
    failed = start(mgmt, cid, [{"email": "a@example.com"}])
    expired = start(mgmt, cid, [{"email": "b@example.com"}])
    job = mgmt.jobs.get(failed)
    assert tenant.faults.injected["fail_jobs"] == 1
    assert job.status == "failed" and job.status_details and job.summary is None
    errors = mgmt.jobs.errors.get(failed)
    assert not isinstance(errors, list)
    assert errors.model_dump(exclude_none=True) == {
        "status": "failed", "type": "users_import", "created_at": "2026-01-01T00:00:00.000Z", "id": failed,
        "connection_id": cid, "status_details": job.status_details}
    assert mgmt.jobs.get(expired).status == "expired"
    assert mgmt.jobs.errors.get(expired).status == "expired"
    assert tenant.store.one("SELECT COUNT(*) AS n FROM users")["n"] == 0


def test_unparseable_file_fails_the_job(mgmt, cid) -> None:  # noqa: ANN001
    for data in (b"{not json", b'{"email": "a@example.com"}'):
        job_id = start(mgmt, cid, data)
        job = mgmt.jobs.get(job_id)
        assert job.status == "failed" and job.status_details
        assert mgmt.jobs.errors.get(job_id).status == "failed"


def test_jobs_are_purged_after_24_hours(mgmt, cid, clock) -> None:  # noqa: ANN001
    job_id = start(mgmt, cid, [{"email": "a@example.com"}, {"email": "a@example.com"}])
    assert mgmt.jobs.get(job_id).status == "completed"
    clock.advance(86_399)
    assert len(mgmt.jobs.errors.get(job_id)) == 1
    clock.advance(1)
    for call in (mgmt.jobs.get, mgmt.jobs.errors.get):
        with pytest.raises(SdkApiError) as info:
            call(job_id)
        assert info.value.status_code == 404


def test_job_id_is_checked(http, auth_headers) -> None:  # noqa: ANN001
    r = http.get("/api/v2/jobs/job_nope", headers=auth_headers)
    assert r.status_code == 400 and r.json()["errorCode"] == "invalid_uri"
    r = http.get("/api/v2/jobs/job_AAAAAAAAAAAAAAAA", headers=auth_headers)
    assert (r.status_code, r.json()["message"]) == (404, "Job not found.")
    r = http.get("/api/v2/jobs/job_AAAAAAAAAAAAAAAA/errors", headers=auth_headers)
    assert r.status_code == 404


def test_jobs_survive_a_restart_with_a_db_file(tmp_path, clock) -> None:  # noqa: ANN001
    config = {"name": "t", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "clock": clock,
              "base_url": BASE_URL, "db_path": str(tmp_path / "tenant.sqlite"), "job_seconds": 10}
    app = create_app(TenantConfig(**config))
    with TestClient(app, base_url=BASE_URL) as http:
        mgmt = Auth0(base_url=f"{BASE_URL}/api/v2", token=fetch_token(http), httpx_client=http, max_retries=0)
        cid = directory.create_connection(app.state.tenant.store, "Target", now=clock.now())["id"]
        connections.enable_clients(app.state.tenant.store, cid, [CLIENT_ID])
        job_id = start(mgmt, cid, [{"email": "a@example.com"}, {"email": "a@example.com"}])
    app.state.tenant.close()
    clock.advance(10)
    app = create_app(TenantConfig(**config))
    try:
        with TestClient(app, base_url=BASE_URL) as http:
            mgmt = Auth0(base_url=f"{BASE_URL}/api/v2", token=fetch_token(http), httpx_client=http, max_retries=0)
            assert mgmt.jobs.get(job_id).summary.model_dump() == {"failed": 1, "updated": 0, "inserted": 1,
                                                                  "total": 2}
            assert mgmt.jobs.errors.get(job_id)[0].errors[0].code == "DUPLICATED_USER"
    finally:
        app.state.tenant.close()


# --- Auth0's per-user rules ----------------------------------------------------------------------

def test_duplicates_inside_one_file(mgmt, tenant, cid) -> None:  # noqa: ANN001
    job = run(mgmt, cid, [
        {"email": "a@example.com", "username": "ann", "user_id": "1"},
        {"email": "A@example.com"},
        {"email": "b@example.com", "username": "ann"},
        {"email": "c@example.com", "user_id": "1"},
        {"email": "d@example.com", "username": "dee"},
    ])
    assert job.summary.model_dump() == {"failed": 3, "updated": 0, "inserted": 2, "total": 5}
    errors = mgmt.jobs.errors.get(job.id)
    assert [(e.user["email"], e.errors[0].code, e.errors[0].message) for e in errors] == [
        ("A@example.com", "DUPLICATED_USER", "A user with this email was already provided."),
        ("b@example.com", "DUPLICATED_USER", "A user with this username was already provided."),
        ("c@example.com", "DUPLICATED_USER", "A user with this user_id was already provided."),
    ]
    assert tenant.store.one("SELECT COUNT(*) AS n FROM users")["n"] == 2


def test_existing_users_without_upsert_fail_as_recorded(mgmt, http, auth_headers, tenant, cid) -> None:  # noqa: ANN001
    """DUPLICATED_USER, Auth0's message, no `path`: the go-auth0 recording TestJobManager_ReadErrors."""
    run(mgmt, cid, [{"email": "a@example.com", "username": "ann", "user_id": "u1", "phone_number": "+15550001"}])
    job = run(mgmt, cid, [
        {"email": "a@example.com", "email_verified": True},
        {"email": "x@example.com", "user_id": "u1"},
        {"email": "y@example.com", "username": "ann"},
        {"email": "z@example.com", "phone_number": "+15550001"},
        {"email": "new@example.com"},
    ])
    assert job.summary.model_dump() == {"failed": 4, "updated": 0, "inserted": 1, "total": 5}
    raw = http.get(f"/api/v2/jobs/{job.id}/errors", headers=auth_headers).json()
    assert raw[0] == {"user": {"email": "a@example.com", "email_verified": True}, "errors": [
        {"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"}]}
    assert [item["errors"] for item in raw[1:]] == [
        [{"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"}]] * 3
    assert [e.errors[0].path for e in mgmt.jobs.errors.get(job.id)] == [None] * 4  # the SDK takes it as recorded


def test_same_email_in_another_connection_is_no_conflict(mgmt, tenant, cid, clock) -> None:  # noqa: ANN001
    other = directory.create_connection(tenant.store, "Other", now=clock.now())["id"]
    connections.enable_clients(tenant.store, other, [tenant.client_id])
    run(mgmt, other, [{"email": "a@example.com", "user_id": "same"}])
    job = run(mgmt, cid, [{"email": "a@example.com", "user_id": "same"}])
    assert job.summary.inserted == 1  # user ids are only unique per connection here, as in Auth0


def test_upsert_overwrites_metadata_and_upsertable_fields_only(mgmt, tenant, cid) -> None:  # noqa: ANN001
    run(mgmt, cid, [{"email": "a@example.com", "email_verified": True, "username": "ann", "blocked": False,
                     "given_name": "Ann", "app_metadata": {"plan": "gold", "seats": 3},
                     "user_metadata": {"lang": "en"}}])
    before = user_row(tenant, cid, "a@example.com")
    job = run(mgmt, cid, [{"email": "A@Example.com", "username": "other", "blocked": True, "name": "Ann B",
                           "app_metadata": {"plan": "silver"}, "picture": "https://example.com/a.png"}],
              upsert=True)
    assert job.summary.model_dump() == {"failed": 0, "updated": 1, "inserted": 0, "total": 1}
    after = user_row(tenant, cid, "a@example.com")
    profile = loads(after["profile"])
    assert profile["app_metadata"] == {"plan": "silver"}  # replaced, not merged
    assert profile["user_metadata"] == {"lang": "en"}  # not in the file: left alone
    assert (profile["name"], profile["given_name"], profile["picture"]) == ("Ann B", "Ann",
                                                                            "https://example.com/a.png")
    assert profile["email_verified"] is False  # not given: reset to false, as the OAS warns
    assert profile["blocked"] is False and after["username"] == "ann"  # not upsertable
    assert after["user_id"] == before["user_id"] and after["pk"] == before["pk"]


def test_upsert_never_updates_password_hash(mgmt, tenant, cid, bcrypt10) -> None:  # noqa: ANN001
    run(mgmt, cid, [{"email": "a@example.com", "password_hash": bcrypt10}])
    other = passwords.bcrypt_hash("another password")
    job = run(mgmt, cid, [{"email": "a@example.com", "password_hash": other, "nickname": "annie"}], upsert=True)
    assert job.summary.updated == 1
    row = user_row(tenant, cid, "a@example.com")
    assert loads(row["credential"]) == {"password_hash": bcrypt10}
    assert credentials.verify_password(PASSWORD, loads(row["credential"]))
    assert loads(row["profile"])["nickname"] == "annie"


def test_hashless_user_can_never_get_a_hash_later(mgmt, tenant, cid, bcrypt10) -> None:  # noqa: ANN001
    run(mgmt, cid, [{"email": "a@example.com"}])
    custom = {"algorithm": "md5", "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"}}
    job = run(mgmt, cid, [{"email": "a@example.com", "custom_password_hash": custom}], upsert=True)
    assert job.summary.model_dump() == {"failed": 1, "updated": 0, "inserted": 0, "total": 1}
    job2 = run(mgmt, cid, [{"email": "a@example.com", "password_hash": bcrypt10}], upsert=True)
    assert job2.summary.failed == 1
    for job_id in (job.id, job2.id):
        [entry] = mgmt.jobs.errors.get(job_id)
        assert entry.errors[0].message == HASH_DEFINED_MESSAGE
    assert user_row(tenant, cid, "a@example.com")["credential"] is None


def login(http, email: str, password: str):  # noqa: ANN001, ANN201
    return http.post("/oauth/token", data={"grant_type": "http://auth0.com/oauth/grant-type/password-realm",
                                           "username": email, "password": password, "realm": "Target",
                                           "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})


def test_custom_hash_is_replaced_only_before_the_first_login(mgmt, http, tenant, cid) -> None:  # noqa: ANN001
    md5 = {"algorithm": "md5", "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"}}  # "password"
    # sha1("new-password")
    sha1 = {"algorithm": "sha1", "hash": {"value": "fefda504251b73d30a7cf3d047d241388a3c11b3", "encoding": "hex"}}
    run(mgmt, cid, [{"email": "a@example.com", "custom_password_hash": md5},
                    {"email": "b@example.com", "custom_password_hash": md5}])
    assert login(http, "b@example.com", "password").status_code == 200  # Auth0 re-hashes to its own bcrypt
    job = run(mgmt, cid, [{"email": "a@example.com", "custom_password_hash": sha1},
                          {"email": "b@example.com", "custom_password_hash": sha1}], upsert=True)
    assert (job.summary.updated, job.summary.failed) == (1, 1)
    assert loads(user_row(tenant, cid, "a@example.com")["credential"]) == {"custom_password_hash": sha1}
    assert set(loads(user_row(tenant, cid, "b@example.com")["credential"])) == {"password_hash"}
    [entry] = mgmt.jobs.errors.get(job.id)
    assert entry.user["email"] == "b@example.com"
    assert (entry.errors[0].message, entry.errors[0].path) == (HASH_DEFINED_MESSAGE, "custom_password_hash")
    assert login(http, "a@example.com", "password").status_code == 403  # the replaced hash is in force
    assert login(http, "a@example.com", "new-password").status_code == 200
    assert login(http, "b@example.com", "password").status_code == 200


def test_hashless_imported_user_cannot_log_in(mgmt, http, cid) -> None:  # noqa: ANN001
    run(mgmt, cid, [{"email": "a@example.com"}])
    r = login(http, "a@example.com", "anything")
    assert r.status_code == 403 and r.json()["error"] == "invalid_grant"


def test_upsert_does_not_merge_on_other_keys(mgmt, cid) -> None:  # noqa: ANN001
    run(mgmt, cid, [{"email": "a@example.com", "username": "ann"}])
    job = run(mgmt, cid, [{"email": "b@example.com", "username": "ann"}], upsert=True)
    assert job.summary.failed == 1
    [entry] = mgmt.jobs.errors.get(job.id)
    assert (entry.errors[0].code, entry.errors[0].path) == ("CONFLICT", "username")


def test_schema_errors_fail_the_user_not_the_job(mgmt, tenant, cid) -> None:  # noqa: ANN001
    job = run(mgmt, cid, [{"email": "not-an-email"}, {"username": "no-email"}, {"email": "ok@example.com"},
                          {"email": "x@example.com", "created_at": "2020-01-01"}])
    assert job.summary.model_dump() == {"failed": 3, "updated": 0, "inserted": 1, "total": 4}
    errors = mgmt.jobs.errors.get(job.id)
    assert len(errors) == 3 and all(e.errors and e.errors[0].code for e in errors)


def test_errors_endpoint_redacts_secrets(http, auth_headers, mgmt, cid, bcrypt10) -> None:  # noqa: ANN001
    secret = "3858f62230ac3c915f300c664312c63f"
    job = run(mgmt, cid, [
        {"email": "bad", "password_hash": bcrypt10},
        {"email": "bad2", "custom_password_hash": {"algorithm": "md5", "hash": {"value": secret, "encoding": "hex"},
                                                   "salt": {"value": "pepper-salt"}}},
    ])
    assert job.summary.failed == 2
    r = http.get(f"/api/v2/jobs/{job.id}/errors", headers=auth_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert bcrypt10 not in r.text and secret not in r.text and "pepper-salt" not in r.text
    first, second = r.json()
    assert first["user"]["password_hash"] == "*****"
    assert second["user"]["custom_password_hash"]["hash"] == {"value": "*****", "encoding": "hex"}
    assert second["user"]["custom_password_hash"]["salt"]["value"] == "*****"


def test_imported_users_honour_search_lag(mgmt, tenant, cid, clock) -> None:  # noqa: ANN001
    tenant.faults.search_lag = 5.0
    run(mgmt, cid, [{"email": "a@example.com"}])
    row = user_row(tenant, cid, "a@example.com")
    assert row["visible_at"] == clock.now() + 5.0
    assert mgmt.users.list(q="email:a@example.com", search_engine="v3").response.users == []
    assert tenant.faults.injected["search_lag"] == 1


def test_a_full_file_with_upserts_is_processed_by_one_poll(mgmt, tenant, cid, bcrypt10) -> None:  # noqa: ANN001
    """Its speed is measured by `python -m bench --tenant` (no wall-clock bound in a test)."""
    users = [{"email": f"user{i:04d}@example.com", "email_verified": True, "user_id": f"legacy-{i:04d}",
              "username": f"user{i:04d}", "given_name": "Given", "family_name": "Family", "name": f"User {i}",
              "password_hash": bcrypt10, "app_metadata": {"plan": "gold", "region": "eu", "n": i},
              "user_metadata": {"lang": "en", "theme": "dark", "bio": "x" * 90}} for i in range(1000)]
    data = json.dumps(users).encode()
    assert 400_000 < len(data) < IMPORT_MAX_BYTES - 1000
    # Half of them exist already (upsert path), so both the insert and the update path are taken.
    run(mgmt, cid, users[:500])
    job_id = start(mgmt, cid, data, upsert=True)
    job = mgmt.jobs.get(job_id)  # this poll processes the whole file
    assert job.summary.model_dump() == {"failed": 0, "updated": 500, "inserted": 500, "total": 1000}
    assert user_row(tenant, cid, "user0999@example.com") is not None
