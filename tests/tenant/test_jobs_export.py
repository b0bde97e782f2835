"""Bulk export jobs on the local tenant: `POST /jobs/users-exports`, polling, the signed 60 s download link."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from auth0.management.core.api_error import ApiError as SdkApiError

from auth0_migrate.tenant import directory, oauth
from auth0_migrate.tenant.jobs import DEFAULT_EXPORT_FIELDS
from auth0_migrate.tenant.store import dumps
from tests.conftest import fetch_token


@pytest.fixture
def source(tenant, clock):  # noqa: ANN001, ANN201
    """A connection with three users: one full profile, one with quotes and a formula, one bare."""
    connection = directory.create_connection(tenant.store, "Source", now=clock.now())
    with tenant.store.tx() as db:
        directory.insert_user(db, connection, {
            "email": "ann@example.com", "email_verified": True, "username": "ann", "given_name": "Ann",
            "app_metadata": {"plan": "gold", "nested": {"tier": 2}}, "user_metadata": {"lang": "en"},
            "logins_count": 4}, {"password_hash": "never-exported"}, clock.now(), user_id="auth0|" + "a" * 24)
        directory.insert_user(db, connection, {"email": "bob@example.com", "name": 'Bob "the" =SUM(A1)'},
                              None, clock.now() + 1, user_id="auth0|bob")
        directory.insert_user(db, connection, {"email": "cy@example.com"}, None, clock.now() + 2)
    return connection


def lines_of(http, location: str) -> list[str]:  # noqa: ANN001
    r = http.get(location)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    return gzip.decompress(r.content).decode().splitlines()


def export(mgmt, http, **body: Any) -> list[str]:  # noqa: ANN001
    job = mgmt.jobs.users_exports.create(**body)
    done = mgmt.jobs.get(job.id)
    assert done.status == "completed", done
    return lines_of(http, done.location)


def test_export_job_and_ndjson_file(mgmt, http, tenant, source) -> None:  # noqa: ANN001
    fields = [{"name": "user_id"}, {"name": "email"}, {"name": "email_verified"}, {"name": "app_metadata"},
              {"name": "identities"}, {"name": "created_at"}, {"name": "logins_count"}]
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", fields=fields)
    raw = job.model_dump(exclude_none=True)
    assert raw == {"type": "users_export", "status": "pending", "id": job.id, "connection_id": source["id"],
                   "connection": "Source", "format": "json", "fields": fields,
                   "created_at": "2026-01-01T00:00:00.000Z"}
    done = mgmt.jobs.get(job.id)
    assert done.status == "completed" and done.format == "json"
    assert done.location.startswith(f"http://tenant.local/exports/{job.id}/test-tenant.json.gz?expires=")
    assert mgmt.jobs.errors.get(job.id) is None  # 204
    first, second, third = (json.loads(line) for line in lines_of(http, done.location))
    assert first == {"user_id": "auth0|" + "a" * 24, "email": "ann@example.com", "email_verified": True,
                     "app_metadata": {"plan": "gold", "nested": {"tier": 2}},
                     "identities": [{"connection": "Source", "user_id": "a" * 24, "provider": "auth0",
                                     "isSocial": False}],
                     "created_at": "2026-01-01T00:00:00.000Z", "logins_count": 4}
    assert second["user_id"] == "auth0|bob" and second["created_at"] == "2026-01-01T00:00:01.000Z"
    assert "logins_count" not in second  # a value the user does not have is left out
    assert third["user_id"].startswith("auth0|") and third["email"] == "cy@example.com"


def test_dot_paths_and_export_as(mgmt, http, source) -> None:  # noqa: ANN001
    lines = export(mgmt, http, connection_id=source["id"], format="json", fields=[
        {"name": "email", "export_as": "Email"}, {"name": "identities[0].connection", "export_as": "provider"},
        {"name": "app_metadata.nested.tier"}, {"name": "identities[3].connection"}, {"name": "", "export_as": "e"}])
    assert json.loads(lines[0]) == {"Email": "ann@example.com", "provider": "Source", "app_metadata.nested.tier": 2}
    assert json.loads(lines[1]) == {"Email": "bob@example.com", "provider": "Source"}


def test_default_fields_and_limit(mgmt, http, source) -> None:  # noqa: ANN001
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", limit=2)
    assert [f.name for f in job.fields] == list(DEFAULT_EXPORT_FIELDS) and job.limit == 2
    lines = lines_of(http, mgmt.jobs.get(job.id).location)
    assert len(lines) == 2
    assert set(json.loads(lines[0])) == set(DEFAULT_EXPORT_FIELDS) - {"family_name"}  # Ann has none


def test_csv_uses_owasp_escaping(mgmt, http, source) -> None:  # noqa: ANN001
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], fields=[
        {"name": "email"}, {"name": "name", "export_as": "Full name"}, {"name": "email_verified"},
        {"name": "created_at"}, {"name": "app_metadata.plan"}, {"name": "logins_count"}])
    assert job.format == "csv"  # the default format
    done = mgmt.jobs.get(job.id)
    assert done.location.split("?")[0].endswith("/test-tenant.csv.gz")
    header, ann, bob, _ = lines_of(http, done.location)
    assert header == "email,Full name,email_verified,created_at,app_metadata.plan,logins_count"
    assert ann == "\"'ann@example.com\",\"'ann@example.com\",true,2026-01-01T00:00:00.000Z,\"'gold\",4"
    assert bob == "\"'bob@example.com\",\"'Bob \"\"the\"\" =SUM(A1)\",false,2026-01-01T00:00:01.000Z,,"


def test_csv_limits(http, auth_headers, source) -> None:  # noqa: ANN001
    url = "/api/v2/jobs/users-exports"
    too_many = [{"name": f"app_metadata.k{i}"} for i in range(31)]
    r = http.post(url, headers=auth_headers, json={"connection_id": source["id"], "format": "csv",
                                                   "fields": too_many})
    assert r.status_code == 400
    r = http.post(url, headers=auth_headers, json={"connection_id": source["id"], "format": "csv",
                                                   "fields": too_many[:30]})
    assert r.status_code == 200
    r = http.post(url, headers=auth_headers, json={"connection_id": source["id"], "format": "csv",
                                                   "fields": [{"name": "user_metadata"}]})
    assert r.status_code == 400 and "user_metadata" in r.json()["message"]
    r = http.post(url, headers=auth_headers, json={"connection_id": source["id"], "format": "json",
                                                   "fields": [{"name": "user_metadata"}] + too_many})
    assert r.status_code == 200  # whole objects and many fields are fine in JSON


@pytest.mark.parametrize(("body", "message"), [
    ({"format": "json", "extra": 1}, "Payload validation error: 'Additional properties not allowed: extra'."),
    # z-schema's pattern text shows the value, as on every JSON body the tenant checks.
    ({"connection_id": "con_x"}, "Payload validation error: 'String does not match pattern"
                                 " ^con_[A-Za-z0-9]{16}$: con_x' on property connection_id."),
    ({"connection_id": "con_AAAAAAAAAAAAAAAA"}, "The connection does not exist."),
    ({"format": "ndjson"}, "Payload validation error: 'No enum match for: \"ndjson\"' on property format."),
    ({"limit": 0}, "Payload validation error: 'Value 0 is less than minimum 1' on property limit."),
    ({"limit": "5"}, "Payload validation error: 'Expected type integer but found type string' on property limit."),
    ({"fields": [{"export_as": "x"}]}, "Payload validation error: 'Missing required property: name' on property"
                                       " fields[0]."),
    ({"fields": [{"name": "x" * 101}]}, "Payload validation error: 'String is too long (101 chars), maximum 100'"
                                        " on property fields[0].name."),
    ({"fields": [{"name": "email", "as": "x"}]}, "Payload validation error: 'Additional properties not allowed:"
                                                 " as' on property fields[0]."),
])
def test_bad_export_bodies_get_400(http, auth_headers, body, message) -> None:  # noqa: ANN001
    r = http.post("/api/v2/jobs/users-exports", headers=auth_headers, json=body)
    assert r.status_code == 400
    assert r.json()["message"] == message and r.json()["statusCode"] == 400


def test_form_urlencoded_body(http, auth_headers, source) -> None:  # noqa: ANN001
    r = http.post("/api/v2/jobs/users-exports", headers=auth_headers,
                  data={"connection_id": source["id"], "format": "json", "limit": "1",
                        "fields": json.dumps([{"name": "email"}])})
    assert r.status_code == 200, r.text
    assert (r.json()["limit"], r.json()["fields"]) == (1, [{"name": "email"}])
    job = http.get(f"/api/v2/jobs/{r.json()['id']}", headers=auth_headers).json()
    assert [json.loads(line) for line in lines_of(http, job["location"])] == [{"email": "ann@example.com"}]


def test_tenant_wide_export_without_connection(mgmt, http, tenant, source, clock) -> None:  # noqa: ANN001
    other = directory.create_connection(tenant.store, "Other", now=clock.now())
    with tenant.store.tx() as db:
        directory.insert_user(db, other, {"email": "zed@example.com"}, None, clock.now())
    job = mgmt.jobs.users_exports.create(format="json", fields=[{"name": "email"},
                                                                {"name": "identities[0].connection"}])
    assert job.connection_id is None and job.model_dump()["connection"] == ""
    lines = [json.loads(line) for line in lines_of(http, mgmt.jobs.get(job.id).location)]
    assert [line["identities[0].connection"] for line in lines] == ["Source"] * 3 + ["Other"]


def test_export_needs_read_users_scope(http, tenant, source) -> None:  # noqa: ANN001
    oauth.create_client(tenant.store, "writer", "writer-secret", scopes=("create:users",))
    headers = {"authorization": f"Bearer {fetch_token(http, 'writer', 'writer-secret')}"}
    r = http.post("/api/v2/jobs/users-exports", headers=headers, json={"connection_id": source["id"]})
    assert r.status_code == 403 and r.json()["message"] == "Insufficient scope; expected any of: read:users"


# --- the download link ---------------------------------------------------------------------------

def test_link_is_valid_60_seconds_and_each_poll_issues_a_fresh_one(mgmt, http, source, clock) -> None:  # noqa: ANN001
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", fields=[{"name": "email"}])
    first = mgmt.jobs.get(job.id).location
    clock.advance(60)
    assert len(lines_of(http, first)) == 3  # still valid at exactly 60 s
    clock.advance(1)
    r = http.get(first)
    assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content and b"expired" in r.content
    fresh = mgmt.jobs.get(job.id).location
    assert fresh != first
    assert len(lines_of(http, fresh)) == 3


def test_link_is_not_authenticated_but_signed(mgmt, http, source) -> None:  # noqa: ANN001
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", fields=[{"name": "email"}])
    location = mgmt.jobs.get(job.id).location
    assert "authorization" not in {k.lower() for k in http.headers}
    parts = urlsplit(location)
    query = parse_qs(parts.query)
    later = int(query["expires"][0]) + 3600
    tampered = urlunsplit(parts._replace(query=f"expires={later}&signature={query['signature'][0]}"))
    other_file = urlunsplit(parts._replace(path=parts.path.replace(".json.gz", ".csv.gz")))
    for url in (tampered, other_file, location.split("?")[0], location.replace("signature=", "signature=x"),
                location.replace("signature=", "signature=%C3%A9"), location.replace("expires=", "expires=%C2%B2")):
        r = http.get(url)
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/xml")


def test_the_first_n_links_are_born_expired(mgmt, http, tenant, source) -> None:  # noqa: ANN001
    tenant.faults.expire_links = 2
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", fields=[{"name": "email"}])
    for _ in range(2):
        refused = http.get(mgmt.jobs.get(job.id).location)
        assert refused.status_code == 403 and "Request has expired" in refused.text
    assert tenant.faults.injected["expire_links"] == 2
    assert tenant.faults.expire_links == 0  # counted down
    assert len(lines_of(http, mgmt.jobs.get(job.id).location)) == 3  # the third link is good
    assert tenant.faults.injected["expire_links"] == 2


@pytest.mark.parametrize("action", [503, "drop"])
def test_a_fault_on_the_download_path_fires_then_the_link_serves(mgmt, http, tenant, source, action) -> None:  # noqa: ANN001
    tenant.faults.fail_call("GET /exports/{id}/{file}", nth=1, action=action)
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", fields=[{"name": "email"}])
    location = mgmt.jobs.get(job.id).location
    if action == "drop":
        with pytest.raises(ConnectionResetError):
            http.get(location)
    else:
        r = http.get(location)
        assert (r.status_code, r.headers["content-type"], r.headers["x-injected-fault"]) == (
            503, "application/xml", "true")
        assert "<Code>ServiceUnavailable</Code>" in r.text
    assert tenant.faults.injected == {"GET /exports/{id}/{file}": 1}
    assert len(lines_of(http, location)) == 3  # the same link, asked again


def test_export_job_data_is_purged_after_24_hours(mgmt, http, tenant, source, clock) -> None:  # noqa: ANN001
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", fields=[{"name": "email"}])
    mgmt.jobs.get(job.id)
    clock.advance(86_399)
    location = mgmt.jobs.get(job.id).location
    clock.advance(1)
    with pytest.raises(SdkApiError) as info:
        mgmt.jobs.get(job.id)
    assert info.value.status_code == 404
    assert http.get(location).status_code == 404  # the link is still in date, the file is gone
    assert tenant.store.one("SELECT COUNT(*) AS n FROM job_files")["n"] == 0


def test_export_timing_pending_polls_and_failure(mgmt, tenant, source, clock) -> None:  # noqa: ANN001
    tenant.config.job_seconds = 10
    tenant.faults.job_pending_polls = 1
    tenant.faults.fail_jobs = {2}
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json")
    failing = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json")
    assert mgmt.jobs.get(job.id).status == "pending"  # its one pending poll
    clock.advance(5)
    polled = mgmt.jobs.get(job.id)
    assert (polled.status, polled.percentage_done, polled.time_left_seconds, polled.location) == (
        "processing", 50, 5, None)
    clock.advance(5)
    assert mgmt.jobs.get(job.id).status == "completed"
    assert tenant.faults.injected == {"job_pending_polls": 1}
    assert mgmt.jobs.get(failing.id).status == "pending"  # its one pending poll
    failed = mgmt.jobs.get(failing.id)
    assert tenant.faults.injected == {"job_pending_polls": 2, "fail_jobs": 1}
    assert failed.status == "failed" and failed.location is None and failed.status_details
    assert mgmt.jobs.errors.get(failing.id).status == "failed"


# --- scale ---------------------------------------------------------------------------------------

def test_a_big_export_carries_every_user_in_order(mgmt, http, tenant, clock) -> None:  # noqa: ANN001
    """20,000 users through one export job, every line there and in order. How fast it goes (at 100,000
    users) is measured by `python -m bench --tenant`, not bounded here: timings on a shared box flake."""
    connection = directory.create_connection(tenant.store, "Big", now=clock.now())
    now = clock.now()
    with tenant.store.tx() as db:  # seeded by SQL: insert_user one by one would take longer than the export
        db.executemany(
            "INSERT INTO users (user_id, connection_id, email, username, phone_number, profile, credential,"
            " created_at, updated_at, visible_at) VALUES (?, ?, ?, ?, NULL, ?, NULL, ?, ?, ?)",
            ((f"auth0|{i:024x}", connection["id"], f"user{i:06d}@example.com", f"user{i:06d}", dumps({
                "email_verified": True, "given_name": "Given", "family_name": "Family",
                "name": f"user{i:06d}@example.com", "nickname": f"user{i:06d}", "picture": directory.default_picture(
                    f"user{i:06d}@example.com"), "app_metadata": {"plan": "gold", "n": i},
                "user_metadata": {"lang": "en"}}), now + i / 1000, now + i / 1000, now) for i in range(20_000)))
    fields = [{"name": name} for name in ("user_id", "email", "email_verified", "username", "given_name",
                                          "family_name", "name", "nickname", "picture", "app_metadata",
                                          "user_metadata", "identities", "created_at", "updated_at")]
    job = mgmt.jobs.users_exports.create(connection_id=connection["id"], format="json", fields=fields)
    text = gzip.decompress(http.get(mgmt.jobs.get(job.id).location).content)
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["email"] for line in lines] == [f"user{i:06d}@example.com" for i in range(20_000)]
    last = lines[-1]
    assert last["app_metadata"]["n"] == 19_999 and last["created_at"] == "2026-01-01T00:00:19.999Z"


@pytest.mark.parametrize("encoded", [False, True], ids=["gzip-bytes", "content-encoding-gzip"])
def test_a_truncated_download_is_half_the_gzip_answered_200_then_the_link_serves(mgmt, http, tenant, source,  # noqa: ANN001
                                                                                 encoded) -> None:
    tenant.config.download_content_encoding = encoded
    tenant.faults.fail_call("GET /exports/{id}/{file}", nth=1, action="truncated")
    job = mgmt.jobs.users_exports.create(connection_id=source["id"], format="json", fields=[{"name": "email"}])
    location = mgmt.jobs.get(job.id).location
    with http.stream("GET", location) as cut:
        body = b"".join(cut.iter_raw())
        assert (cut.status_code, cut.headers["x-injected-fault"]) == (200, "true")
        assert cut.headers.get("content-encoding") == ("gzip" if encoded else None)
    with http.stream("GET", location) as whole:
        full = b"".join(whole.iter_raw())
    assert body[:2] == full[:2] == b"\x1f\x8b" and body == full[:len(full) // 2]
    with pytest.raises(EOFError):
        gzip.decompress(body)
    assert tenant.faults.injected == {"GET /exports/{id}/{file}": 1}
    assert len(gzip.decompress(full).splitlines()) == 3
