"""The local tenant judges import files with its own validator (tenant/import_validation.py), not the tool's.

Each test imports through the official SDK and reads the verdict back from `GET /jobs/{id}/errors`
or from the users the job made; the cases are the ones where the tenant's reading of Auth0's docs
differs from what a generic or a shared validator would answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from auth0_migrate import import_schema, passwords
from auth0_migrate.tenant import connections, directory, import_validation
from auth0_migrate.tenant.import_validation import is_email, load_schema, validate_user

BCRYPT_10 = "$2b$10$tK/RKhK3iOhhGjlUpS17uOcO2oQS4pnTP2qZo8QDjnqigKJ40uV4m"


@pytest.fixture
def cid(tenant, clock) -> str:  # noqa: ANN001
    connection_id = directory.create_connection(tenant.store, "Target", now=clock.now())["id"]
    connections.enable_clients(tenant.store, connection_id, [tenant.client_id])  # Auth0 imports need one
    return connection_id


def run(mgmt, cid: str, users: list[Any]) -> tuple[Any, dict[str, list[dict[str, str]]]]:  # noqa: ANN001
    """Import, poll once (job_seconds is 0), and return the job and {email: errors} of refused users."""
    created = mgmt.jobs.users_imports.create(users=("users.json", json.dumps(users).encode(), "application/json"),
                                             connection_id=cid, send_completion_email=False)
    job = mgmt.jobs.get(created.id)
    assert job.status == "completed", job
    refused = mgmt.jobs.errors.get(job.id) if job.summary.failed else []
    return job, {entry.user.get("email"): [e.model_dump(exclude_none=True) for e in entry.errors]
                 for entry in refused}


def test_a_bad_email_is_answered_as_a_real_tenant_answers_it(mgmt, cid) -> None:  # noqa: ANN001
    job, refused = run(mgmt, cid, [{"email": "akshay144@"}, {"email": "fine@example.com"}])
    assert job.summary.model_dump() == {"failed": 1, "updated": 0, "inserted": 1, "total": 2}
    # Code, path and message as seen from a real tenant (community.auth0.com topic 102951).
    assert refused["akshay144@"] == [{
        "code": "INVALID_FORMAT", "path": "identities[0].profileData.email",
        "message": "Error in identities[0].profileData.email property - Object didn't pass validation for format"
                   " email: akshay144@"}]


def test_a_password_hash_error_names_the_pattern_never_the_hash(mgmt, cid) -> None:  # noqa: ANN001
    cost_12 = "$2b$12$B9qdoiNtvwOi5wzJkBtxkugi14MbCDagn9JBZ2Yj2Ts72q3C94PCe"
    _, refused = run(mgmt, cid, [{"email": "a@example.com", "password_hash": cost_12}])
    [error] = refused["a@example.com"]
    assert (error["code"], error["path"]) == ("PATTERN", "passwordHash")
    assert error["message"] == ("Error in passwordHash property - String does not match pattern "
                                r"^\$2[ab]?\$10+\$[./A-Za-z0-9]{53}$")
    assert cost_12 not in json.dumps(refused)


def test_patterns_are_javascript_patterns_a_trailing_newline_fails(mgmt, cid) -> None:  # noqa: ANN001
    # Python's `$` (what jsonschema's stock `pattern` uses) matches before a final newline; JavaScript's does not.
    users = [{"email": "n@example.com", "mfa_factors": [{"totp": {"secret": "JBSWY3DPEHPK3PNP\n"}}]},
             {"email": "p@example.com", "mfa_factors": [{"phone": {"value": "+15551234567\n"}}]},
             {"email": "ok@example.com", "mfa_factors": [{"totp": {"secret": "JBSWY3DPEHPK3PNP"}}]}]
    job, refused = run(mgmt, cid, users)
    assert job.summary.inserted == 1
    assert [(e["code"], e["path"]) for e in refused["n@example.com"]] == [("PATTERN", "mfa_factors[0].totp.secret")]
    assert [(e["code"], e["path"]) for e in refused["p@example.com"]] == [("PATTERN", "mfa_factors[0].phone.value")]


def test_every_rule_of_a_bad_user_is_reported_in_auth0s_codes(mgmt, cid) -> None:  # noqa: ANN001
    bad = {"email": "x@example.com", "identities": [], "blocked": "no", "password_hash": BCRYPT_10,
           "custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "00", "encoding": "utf8"}, "cost": 3},
           "app_metadata": {"blocked": True, "a.b": 1}, "user_metadata": {"x": [{"$set": 1}]},
           "mfa_factors": [{}, {"totp": {"secret": "AB"}, "phone": {"value": "+1"}}]}
    _, refused = run(mgmt, cid, [bad])
    assert sorted((e["code"], e["path"]) for e in refused["x@example.com"]) == sorted([
        ("OBJECT_ADDITIONAL_PROPERTIES", "identities"),
        ("INVALID_TYPE", "blocked"),
        ("NOT_PASSED", "custom_password_hash"),  # password_hash and custom_password_hash together
        ("ENUM_MISMATCH", "custom_password_hash.hash.encoding"),  # scrypt wants hex or base64
        ("OBJECT_REQUIRED", "custom_password_hash.keylen"),
        ("INVALID_FORMAT", "custom_password_hash.cost"),  # not a power of two
        ("NOT_PASSED", "app_metadata.blocked"),
        ("PATTERN", "app_metadata.a.b"),
        ("PATTERN", "user_metadata.x[0].$set"),
        ("ANY_OF_MISSING", "mfa_factors[0]"),
        ("OBJECT_PROPERTIES_MAXIMUM", "mfa_factors[1]"),
    ])
    assert all(e["message"].startswith(f"Error in {e['path']} property - ") for e in refused["x@example.com"])


def test_the_tenant_accepts_what_auth0s_schema_accepts_even_where_the_tool_is_stricter(mgmt, tenant, cid) -> None:  # noqa: ANN001, E501
    # The tool refuses these before upload (POST /users limits, its dot-atom email check); Auth0's import
    # schema does not, so neither does the tenant. Proof that the tenant no longer asks the tool.
    users = [{"email": '"john doe"@example.com'}, {"email": "b@example.com", "given_name": ""},
             {"email": "c@example.com", "picture": "avatar.png"}]
    assert all(import_schema.validate_import_user(u) for u in users)
    job, refused = run(mgmt, cid, users)
    assert refused == {}
    assert job.summary.model_dump() == {"failed": 0, "updated": 0, "inserted": 3, "total": 3}
    rows = tenant.store.query("SELECT email FROM users WHERE connection_id = ?", (cid,))
    assert sorted(r["email"] for r in rows) == ['"john doe"@example.com', "b@example.com", "c@example.com"]


@pytest.mark.parametrize(("data", "detail"), [
    ("\ufeff[]".encode(), "Failed to parse users file: it starts with a byte order mark."),
    (b'[{"email": "a@example.com", "n": NaN}]', "Failed to parse users file JSON: NaN is not JSON."),
    (b'[{"email": "a@example.com", "password_hash": "$2b$10$x"', "Failed to parse users file JSON: "),
    (b"\xff[]", "Failed to parse users file: the file is not UTF-8 (byte 0)."),
    (b'{"email": "a@example.com"}', "The users file must hold a JSON array, not object."),
])
def test_a_file_node_cannot_parse_fails_the_whole_job_without_quoting_it(mgmt, cid, data, detail) -> None:  # noqa: ANN001
    created = mgmt.jobs.users_imports.create(users=("users.json", data, "application/json"), connection_id=cid,
                                             send_completion_email=False)
    job = mgmt.jobs.get(created.id)
    assert job.status == "failed" and job.summary is None
    assert job.status_details.startswith(detail)
    assert "$2b$10$x" not in job.status_details


@pytest.mark.parametrize(("email", "ok"), [
    ("a@b.co", True), ("ü@münchen.de", True), ("a+b/c=d?e^f@example.com", True), ('"a\\"b"@example.com', True),
    ("x" * 64 + "@example.com", True), ("x" * 65 + "@example.com", False), ("é" * 33 + "@example.com", False),
    ("a@x.ｃｏｍ", False), ("a@x_y.com", False), ("a@-x.com", False), ("a@x.c", False), ("a@x.123", False),
    ("a..b@example.com", False), ("a@example.com.", False), ("a@[127.0.0.1]", False), ("a@", False),
    ("a@" + "b" * 64 + ".com", False), ("a@exa\u2003mple.com", True),  # validator.js checks only the TLD for spaces
    ("a@example.c\u2003om", False), ('"a"b"@example.com', False),
])
def test_email_format_follows_validator_js(email: str, ok: bool) -> None:
    assert is_email(email) is ok


def test_the_published_schema_is_data_with_its_source_and_drives_the_verdict(monkeypatch) -> None:  # noqa: ANN001
    document = load_schema()
    assert document["source"].startswith("https://auth0.com/docs/manage-users/user-migration/")
    assert document["retrieved"]
    user = {"email": "a@example.com", "phone_verified": True}
    assert validate_user(user) == []
    # Take phone_verified out of the data file's schema: the same user is now refused for it.
    trimmed = json.loads(json.dumps(document))
    del trimmed["schema"]["properties"]["phone_verified"]
    monkeypatch.setattr(import_validation, "load_schema", lambda: trimmed)
    import_validation._validator.cache_clear()
    try:
        assert [(p.code, p.path) for p in validate_user(user)] == [("OBJECT_ADDITIONAL_PROPERTIES", "phone_verified")]
    finally:
        monkeypatch.undo()
        import_validation._validator.cache_clear()
    assert validate_user(user) == []


def test_importing_the_tenant_does_not_import_jsonschema() -> None:
    """The schema is compiled on the first import job, so `tenant serve` and every test start fast."""
    code = ("import sys, auth0_migrate.tenant.app, auth0_migrate.tenant.jobs; "
            "assert 'jsonschema' not in sys.modules, 'jsonschema imported at start'; "
            "from auth0_migrate.tenant.import_validation import validate_user; "
            "assert validate_user({'email': 'a@example.com'}) == []; assert 'jsonschema' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


CREDENTIALS: list[tuple[str, dict[str, Any]]] = [
    ("bcrypt", {"cost": 4, "custom": True}), ("bcrypt", {"cost": 5, "salt": "pepper", "salt_position": "suffix"}),
    ("argon2", {"memory_cost": 1024, "time_cost": 1}), ("argon2", {"memory_cost": 1024, "variant": "i"}),
    ("hmac", {"digest": "sha1", "encoding": "base64"}), ("ldap", {"scheme": "SSHA512"}), ("ldap", {"scheme": "MD5"}),
    ("md4", {}), ("md5", {"salt": "s", "salt_position": "suffix"}), ("sha1", {"encoding": "base64"}),
    ("sha256", {"password_encoding": "latin1"}), ("sha512", {}), ("pbkdf2", {"iterations": 10, "digest": "sha512"}),
    ("scrypt", {"cost": 16, "keylen": 16}),
]


def test_every_credential_the_tool_makes_is_imported_by_the_tenant(mgmt, cid) -> None:  # noqa: ANN001
    """The credential shapes of passwords.make_credential (demo, seeders, bench) pass both validators."""
    users = [{"email": f"c{i}@example.com", **passwords.make_credential("pw", algorithm, **params)}
             for i, (algorithm, params) in enumerate(CREDENTIALS)]
    assert [import_schema.validate_import_user(u) for u in users] == [[]] * len(users)
    job, refused = run(mgmt, cid, users)
    assert refused == {}
    assert job.summary.inserted == len(CREDENTIALS)
