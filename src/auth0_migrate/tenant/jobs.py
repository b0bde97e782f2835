"""Bulk user jobs: `POST /jobs/users-exports`, `POST /jobs/users-imports`, `GET /jobs/{id}`,
`GET /jobs/{id}/errors`, and the signed download of export files (`GET /exports/...`).

A job lives in the `jobs` table and moves pending -> processing -> completed | failed | expired.
It runs on the tenant clock whether or not anyone polls it, as on Auth0: once the clock reaches
`created_at + config.job_seconds` (and it has answered `faults.job_pending_polls` polls with
`pending`) it is due, and `advance` runs every due job, in the order they became due, before the
app serves any request; so a poll, a users read, the active-import count of a new job or an export
all see its effects, and a job whose answer was lost (`faults.lose_import_answers`) still runs and
holds one of the two import slots until then. Until it is due a poll answers `processing` with
`percentage_done` and `time_left_seconds`. The fault outcome (`faults.next_job_outcome()`) is drawn
when the job is created and applied when it finishes. Choices where Auth0 is silent: a job's work
is dated when it became due (its users' `created_at`), however late it is observed; a job held by
`job_pending_polls` is dated when its last pending poll released it; whether the export download
carries `Content-Encoding: gzip` is a knob (`config.download_content_encoding`, off by default).
Everything about a job (its row, the uploaded file until it is processed, the per-user errors,
the export file) is deleted 24 h after creation, as Auth0 does; then every route answers 404.

An import request of 512,000 bytes or more, multipart envelope included (reference §2.2), gets
413; a third import while two are pending or processing gets 429 (§2.3).

Import follows Auth0's rules (reference §2.3-2.7): per-user schema errors (`import_schema`),
`DUPLICATED_USER` for a second user in one file with the same email, username or user_id, and
against the target connection's users:

* upsert false: a match on email, user_id, username or phone number fails the user with code
  `DUPLICATED_USER`, "The user already exist and upsert parameter is false", and no `path`: what
  real Auth0 answered for a match on email (go-auth0 recording TestJobManager_ReadErrors), and what
  Auth0 support describes for any matching user (community.auth0.com/t/149738). The recording
  matched on email only; the same answer for the other keys is our choice.
* `CONFLICT`: Auth0 documents `CONFLICT`, `CONFLICT_EMAIL` and `CONFLICT_USERNAME` but no source
  (docs, recordings, SDKs, community) says when they are answered (only a tenant flag,
  `import_user_match_user_profile_on_user_id`, that this tenant does not model). So `CONFLICT` is
  kept only for the two upsert refusals below, where Auth0 publishes a message but no code.
* upsert true: a match on email updates only the upsertable fields (metadata replaced, not
  merged). A user that matches on another field only fails with `CONFLICT` (choice: inserting it
  would duplicate the key). `password_hash` is never updated (ignored). A `custom_password_hash`
  replaces the stored one only when the user still holds an imported custom hash and has never
  logged in; otherwise, and for any hash given to a user that has none, the user fails with code
  `CONFLICT`, path naming the field, and Auth0's message "A custom_password_hash was provided, but
  the user already has password hash defined" (the code is our choice; Auth0 publishes none).
* `email_verified` is false unless the file says true, also on upsert (the OAS: "with or without
  upsert ... set to false when the email address is added or updated").

The errors endpoint answers 204 with no body when a finished job has no per-user errors (the OAS:
"The job was retrieved, but no errors were found"), and also while a job has not finished (choice:
Auth0 documents nothing for that case); the generic job object for `failed` and `expired` jobs.

Export files are gzipped NDJSON (or CSV with Auth0's OWASP escaping), named after the tenant and
served at `{base_url}/exports/{job_id}/{tenant}.json.gz?expires=...&signature=...`: an HMAC of the
path and expiry under `config.signing_key`, valid for 60 s from the poll that issued it. Choices
where Auth0 is silent (all UNCONFIRMED, reference §1.5/§10): `format` defaults to `csv` (the
original export format); without `fields` the legacy Import/Export extension's set
(`DEFAULT_EXPORT_FIELDS`) is used; a dotted name without `export_as` keeps the dotted name as its
key; a tenant-wide export (no `connection_id`) answers `"connection": ""`, since the OAS requires
the key; a missing value is left out of a JSON line and empty in CSV.

Example::

    job = mgmt.jobs.users_exports.create(connection_id=cid, format="json", fields=[{"name": "email"}])
    location = mgmt.jobs.get(job.id).location      # completed once job_seconds have passed
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import re
import sqlite3
import zlib
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response

from .. import passwords
from ..import_schema import json_type
from . import mfa
from .connections import require_enabled_client
from .directory import LINKED_KEY, connection_names, get_connection, insert_user, iso, new_id, update_profile, user_json
from .errors import ApiError, body_error
from .faults import DroppedConnection
from .http import Ctx, Router
from .import_validation import parse_import_file, validate_user
from .state import Tenant
from .store import Store, dumps, loads

router = Router()


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    connection_id TEXT,
    connection TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL,
    due_at REAL NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    finished_at REAL,
    summary TEXT,
    status_details TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs(type, status);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(status, due_at);
CREATE TABLE IF NOT EXISTS job_files (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, kind)
);
-- Import conflict checks look users up by phone number too; directory.py indexes the other keys.
CREATE INDEX IF NOT EXISTS users_conn_phone ON users(connection_id, phone_number);
"""

IMPORT_MAX_BYTES = 512_000
"""A request of this many bytes or more is refused with 413 (the whole multipart payload)."""
MAX_ACTIVE_IMPORTS = 2
RETENTION_SECONDS = 86_400
LINK_SECONDS = 60
CSV_MAX_FIELDS = 30
DEFAULT_EXPORT_FIELDS: tuple[str, ...] = (
    "user_id", "given_name", "family_name", "nickname", "name", "email", "email_verified", "picture",
    "identities[0].connection", "created_at", "updated_at",
)
"""UNCONFIRMED: Auth0 says only "a predefined set"; these are the legacy extension's defaults (ref §1.5)."""
UPSERTABLE = ("app_metadata", "user_metadata", "given_name", "family_name", "name", "nickname", "picture")
ISO_DATE_FIELDS = frozenset({"created_at", "updated_at", "last_login", "last_password_reset"})

JOB_ID_PATTERN = r"^job_[A-Za-z0-9]{16}$"
CONNECTION_ID_PATTERN = r"^con_[A-Za-z0-9]{16}$"
_JOB_ID_RE = re.compile(JOB_ID_PATTERN)
_CONNECTION_ID_RE = re.compile(CONNECTION_ID_PATTERN)

EXISTS_MESSAGE = "The user already exist and upsert parameter is false"
"""Recorded with code `DUPLICATED_USER` and no `path` (go-auth0 recording TestJobManager_ReadErrors)."""
HASH_DEFINED_MESSAGE = "A custom_password_hash was provided, but the user already has password hash defined"
LOST_ANSWER = "POST /api/v2/jobs/users-imports: answer lost"
"""The key of `faults.injected` that counts import jobs made whose answer `faults.lose_import_answers` lost."""
TOO_MANY_IMPORTS = (f"There are {MAX_ACTIVE_IMPORTS} active import users jobs, please wait until some of them"
                    " are finished and try again")


# --- job rows ----------------------------------------------------------------------------------

def _purge(db: sqlite3.Connection, now: float) -> None:
    """Drop every job (and, by cascade, its files) older than 24 h."""
    db.execute("DELETE FROM jobs WHERE created_at <= ?", (now - RETENTION_SECONDS,))


def _create_job(tenant: Tenant, kind: str, connection: sqlite3.Row | None, params: dict[str, Any],
                now: float, upload: bytes | None = None) -> sqlite3.Row:
    job_id = new_id("job_")
    with tenant.store.tx() as db:
        db.execute("INSERT INTO jobs (id, type, status, outcome, connection_id, connection, params, created_at,"
                   " due_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                   (job_id, kind, tenant.faults.next_job_outcome(), connection["id"] if connection else None,
                    connection["name"] if connection else "", dumps(params), now, now + tenant.config.job_seconds))
        if upload is not None:
            db.execute("INSERT INTO job_files (job_id, kind, data) VALUES (?, 'upload', ?)", (job_id, upload))
        job: sqlite3.Row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return job


def _job_id(ctx: Ctx) -> str:
    job_id = ctx.path("id")
    if not _JOB_ID_RE.fullmatch(job_id):
        raise ApiError(400, f"Path validation error: 'String does not match pattern {JOB_ID_PATTERN}' on"
                            " property id.", "invalid_uri")
    return job_id


def advance(tenant: Tenant, now: float | None = None) -> int:
    """Run every job that is due by the tenant clock, in the order they became due; returns how many ran.

    Jobs run on the tenant's clock whether or not anyone polls them, as on Auth0: the app calls this
    before every request it serves, so any observation (a poll, a users read, the active-import count
    of a new job, a download) sees the effects of every job due by then. A job held by
    `faults.job_pending_polls` waits until it has answered that many polls.
    """
    now = tenant.config.clock.now() if now is None else now
    held = tenant.faults.job_pending_polls
    due = tenant.store.query("SELECT id FROM jobs WHERE status = 'pending' AND due_at <= ? AND polls >= ?"
                             " ORDER BY due_at, created_at", (now, held))
    if not due:
        return 0
    with tenant.store.tx() as db:
        for found in due:
            job = db.execute("SELECT * FROM jobs WHERE id = ? AND status = 'pending'", (found["id"],)).fetchone()
            if job is not None:
                # Unheld, it ran when it became due; a held job runs when its last pending poll released it.
                _finish(tenant, db, job, job["due_at"] if held == 0 else now)
    return len(due)


def _poll(tenant: Tenant, job_id: str, now: float, missing: str) -> tuple[sqlite3.Row, bool]:
    """Count one poll of the job (after `advance`); 404 if it is unknown or purged.

    Returns the job and whether this poll is one of the first `faults.job_pending_polls`, which
    answer `pending` whatever the clock says.
    """
    advance(tenant, now)
    with tenant.store.tx() as db:
        _purge(db, now)
        db.execute("UPDATE jobs SET polls = polls + 1 WHERE id = ? AND status = 'pending'", (job_id,))
        job = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if job is None:
            raise ApiError(404, missing, "inexistent_job")
        held = job["status"] == "pending" and job["polls"] <= tenant.faults.job_pending_polls
        if held:
            tenant.faults.injected["job_pending_polls"] += 1
    return job, held


def _active_imports(tenant: Tenant, now: float) -> int:
    """Import jobs still pending or processing, after running those that are due."""
    advance(tenant, now)
    with tenant.store.tx() as db:
        _purge(db, now)
        return int(db.execute("SELECT COUNT(*) FROM jobs WHERE type = 'users_import' AND status = 'pending'")
                   .fetchone()[0])


def _finish(tenant: Tenant, db: sqlite3.Connection, job: sqlite3.Row, now: float) -> None:
    """Run a due job to its end inside the caller's transaction."""
    status, summary, details = "completed", None, None
    if job["outcome"] == "failed":
        status, details = "failed", "The job failed while processing (fault injected by the local tenant)."
        tenant.faults.injected["fail_jobs"] += 1
    elif job["outcome"] == "expired":
        status = "expired"
        tenant.faults.injected["expire_jobs"] += 1
    elif job["type"] == "users_import":
        status, summary, details = _run_import(tenant, db, job, now)
    else:
        status, details = _run_export(tenant, db, job)
    db.execute("DELETE FROM job_files WHERE job_id = ? AND kind = 'upload'", (job["id"],))
    db.execute("UPDATE jobs SET status = ?, summary = ?, status_details = ?, finished_at = ? WHERE id = ?",
               (status, dumps(summary) if summary else None, details, now, job["id"]))


def _job_json(tenant: Tenant, job: sqlite3.Row, now: float, held: bool = True) -> dict[str, Any]:
    """The job as Auth0 shows it; an unfinished job shows `pending` while `held`, else `processing`."""
    params = loads(job["params"])
    body: dict[str, Any] = {"type": job["type"], "status": job["status"], "id": job["id"],
                            "created_at": iso(job["created_at"]), "connection": job["connection"]}
    if job["connection_id"]:
        body["connection_id"] = job["connection_id"]
    body.update(params)
    if job["status"] == "pending" and not held and now < job["due_at"]:
        span = job["due_at"] - job["created_at"]
        body["status"] = "processing"
        body["percentage_done"] = min(99, int(100 * (now - job["created_at"]) / span)) if span > 0 else 0
        body["time_left_seconds"] = max(1, math.ceil(job["due_at"] - now))
    if job["summary"]:
        body["summary"] = loads(job["summary"])
    if job["status_details"]:
        body["status_details"] = job["status_details"]
    if job["type"] == "users_export" and job["status"] == "completed":
        body["location"] = _sign_location(tenant, job, now)
    return body


# --- import ------------------------------------------------------------------------------------

_BOOLEAN_PARTS = {"upsert": False, "send_completion_email": True}
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


async def _read_capped(ctx: Ctx) -> bytes:
    """The request body, refused with Auth0's 413 as soon as it reaches IMPORT_MAX_BYTES."""
    too_large = ApiError(413, f"Payload content length greater than maximum allowed: {IMPORT_MAX_BYTES}.")
    declared = ctx.request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) >= IMPORT_MAX_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in ctx.request.stream():
        size += len(chunk)
        if size >= IMPORT_MAX_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart(ctx: Ctx, body: bytes) -> dict[str, bytes | str]:
    """The parts of a multipart/form-data body (file parts as bytes), or Auth0's 400."""
    invalid = body_error("Invalid multipart payload format")
    content_type = ctx.request.headers.get("content-type", "")
    boundary = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or boundary is None:
        raise invalid
    # The parser takes a body cut short for a complete one; Auth0 refuses it.
    if not body.rstrip().endswith(b"--" + boundary.group(1).encode() + b"--"):
        raise invalid

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(ctx.request.headers, stream(), max_part_size=IMPORT_MAX_BYTES).parse()
    except MultiPartException:
        raise invalid from None
    parts: dict[str, bytes | str] = {}
    try:
        for name, value in form.multi_items():
            parts.setdefault(name, await value.read() if isinstance(value, UploadFile) else value)
    finally:
        await form.close()
    return parts


@router.route("POST", "/api/v2/jobs/users-imports", scopes=["create:users"])
async def create_import(ctx: Ctx) -> Response:
    parts = await _multipart(ctx, await _read_capped(ctx))
    users = parts.get("users")
    if users is None:
        raise ApiError(400, "Must provide 'users' file as multipart part.", "invalid_body")
    data = users.encode() if isinstance(users, str) else users
    if not data.strip():
        raise ApiError(400, "Users file must not be empty.", "invalid_body")
    connection_id = parts.get("connection_id")
    if connection_id is None:
        raise ApiError(400, "Must provide 'connection_id' as multipart part.", "invalid_body")
    connection = _target_connection(ctx, _text(connection_id))
    options = loads(connection["options"]) or {}
    if connection["strategy"] != "auth0":
        raise ApiError(400, "Connection must be a database connection.", "invalid_body")
    if options.get("enabledDatabaseCustomization") and not options.get("import_mode"):
        raise ApiError(400, "Custom Database Connections without import mode are not allowed.", "invalid_body")
    require_enabled_client(ctx.store, connection)  # choice and reason: tenant/connections.py
    params: dict[str, Any] = {name: _text(parts[name]) == "true" if name in parts else default
                              for name, default in _BOOLEAN_PARTS.items()}
    if "external_id" in parts:
        params["external_id"] = _text(parts["external_id"])
    now = ctx.now
    if _active_imports(ctx.tenant, now) >= MAX_ACTIVE_IMPORTS:
        raise ApiError(429, TOO_MANY_IMPORTS)
    job = _create_job(ctx.tenant, "users_import", connection, params, now, upload=data)
    faults = ctx.tenant.faults
    if faults.lose_import_answers:
        lost = faults.lose_import_answers.pop(0)
        faults.injected[LOST_ANSWER] += 1
        if lost == "drop":
            raise DroppedConnection(f"fault switch dropped the answer of import job {job['id']}")
        raise ApiError(int(lost), "Injected fault", "fault_injected", headers={"x-injected-fault": "true"})
    return ctx.json(_job_json(ctx.tenant, job, now), 202)


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise body_error("Invalid multipart payload format") from None
    return value


def _target_connection(ctx: Ctx, connection_id: Any) -> sqlite3.Row:
    if not isinstance(connection_id, str):
        raise body_error(f"Expected type string but found type {json_type(connection_id)}", "connection_id")
    if not _CONNECTION_ID_RE.fullmatch(connection_id):
        raise body_error(f"String does not match pattern {CONNECTION_ID_PATTERN}", "connection_id")
    connection = get_connection(ctx.store, connection_id)
    if connection is None:
        raise ApiError(400, "The connection does not exist.", "inexistent_connection")
    return connection


class _Keys:
    """The target connection's users that an import file can collide with, by each matching key."""

    COLUMNS = ("email", "user_id", "username", "phone_number")

    def __init__(self) -> None:
        self.by: dict[str, dict[str, sqlite3.Row]] = {column: {} for column in self.COLUMNS}

    def load(self, db: sqlite3.Connection, connection_id: str, wanted: dict[str, set[str]]) -> None:
        """Fetch only the users whose keys appear in the file: a few IN queries, not one per user."""
        for column, values in wanted.items():
            ordered = sorted(values)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for row in db.execute(f"SELECT * FROM users WHERE connection_id = ? AND {column} IN ({marks})"
                                      " ORDER BY pk", (connection_id, *chunk)):
                    self.add(row)

    def add(self, row: sqlite3.Row) -> None:
        for column in self.COLUMNS:
            if row[column] is not None:
                self.by[column].setdefault(row[column], row)

    def match(self, keys: dict[str, str | None]) -> tuple[str, sqlite3.Row] | None:
        for column in self.COLUMNS:
            value = keys.get(column)
            if value is not None and value in self.by[column]:
                return column, self.by[column][value]
        return None


def _user_keys(user: dict[str, Any]) -> dict[str, str | None]:
    """The keys an import user is matched on, as stored: email lower-cased, user_id with its prefix."""
    email = user.get("email")
    return {"email": email.lower() if isinstance(email, str) else None,
            "user_id": f"auth0|{user['user_id']}" if user.get("user_id") is not None else None,
            "username": user.get("username"), "phone_number": user.get("phone_number")}


def _error(code: str, message: str, path: str | None = None) -> dict[str, str]:
    error = {"code": code, "message": message}
    if path:
        error["path"] = path
    return error


def _run_import(tenant: Tenant, db: sqlite3.Connection, job: sqlite3.Row,
                now: float) -> tuple[str, dict[str, int] | None, str | None]:
    """Process an import job's file in the caller's transaction; returns (status, summary, details)."""
    upload = db.execute("SELECT data FROM job_files WHERE job_id = ? AND kind = 'upload'", (job["id"],)).fetchone()
    connection = db.execute("SELECT * FROM connections WHERE id = ?", (job["connection_id"],)).fetchone()
    if upload is None or connection is None:
        return "failed", None, "The connection does not exist."
    users, problem = parse_import_file(upload["data"])
    if users is None:
        return "failed", None, problem
    upsert = bool(loads(job["params"]).get("upsert"))
    failures: list[dict[str, Any]] = []

    # Pass 1: the schema, then duplicates inside the file (the first user to bring a key keeps it).
    accepted: list[tuple[dict[str, Any], dict[str, str | None]]] = []
    provided: dict[str, set[str]] = {"email": set(), "username": set(), "user_id": set()}
    for user in users:
        problems = validate_user(user)
        if problems:
            failures.append({"user": user, "errors": [_error(p.code, p.message, p.path) for p in problems]})
            continue
        keys = _user_keys(user)
        duplicate = next((column for column in provided if keys[column] is not None
                          and keys[column] in provided[column]), None)
        if duplicate:
            failures.append({"user": user, "errors": [_error(
                "DUPLICATED_USER", f"A user with this {duplicate} was already provided.", duplicate)]})
            continue
        for column in provided:
            if keys[column] is not None:
                provided[column].add(keys[column])  # type: ignore[arg-type]
        accepted.append((user, keys))

    # Pass 2: against the connection's users, fetched once for every key the file holds.
    existing = _Keys()
    existing.load(db, connection["id"], {column: {value for _, k in accepted if (value := k[column]) is not None}
                                         for column in _Keys.COLUMNS})
    visible_at = now + tenant.faults.search_lag
    inserted = updated = 0
    for user, keys in accepted:
        match = existing.match(keys)
        if match is not None:
            column, row = match
            if not upsert:
                failures.append({"user": user, "errors": [_error("DUPLICATED_USER", EXISTS_MESSAGE)]})
                continue
            if column != "email":
                failures.append({"user": user, "errors": [_error(
                    "CONFLICT", f"The user already exist (same {column}) and upsert only updates users that"
                                " match on email", column)]})
                continue
            refusal = _upsert(db, row, user, now)
            if refusal:
                failures.append({"user": user, "errors": [refusal]})
                continue
            updated += 1
            continue
        credential = ({"password_hash": user["password_hash"]} if "password_hash" in user else
                      {"custom_password_hash": user["custom_password_hash"]} if "custom_password_hash" in user
                      else None)
        created = insert_user(db, connection, user, credential, now, user_id=keys["user_id"], visible_at=visible_at)
        if user.get("mfa_factors"):
            mfa.add_imported(db, created, user["mfa_factors"], now)
        existing.add(created)
        inserted += 1

    if failures:
        report = [{"user": passwords.redact(f["user"]), "errors": f["errors"]} for f in failures]
        db.execute("INSERT OR REPLACE INTO job_files (job_id, kind, data) VALUES (?, 'errors', ?)",
                   (job["id"], dumps(report).encode()))
    summary = {"failed": len(failures), "updated": updated, "inserted": inserted, "total": len(users)}
    return "completed", summary, None


def _upsert(db: sqlite3.Connection, row: sqlite3.Row, user: dict[str, Any], now: float) -> dict[str, str] | None:
    """Update an existing user's upsertable fields from an import user; an error entry if it must fail."""
    changes: dict[str, Any] = {k: user[k] for k in UPSERTABLE if k in user}
    changes["email_verified"] = bool(user.get("email_verified", False))
    stored = loads(row["credential"])
    for field in ("password_hash", "custom_password_hash"):
        if field not in user:
            continue
        if stored is None:
            # Auth0 gave the hash-less user a random hash at its first import: nothing can replace it.
            return _error("CONFLICT", HASH_DEFINED_MESSAGE, field)
        if field == "custom_password_hash":
            profile = loads(row["profile"])
            if "custom_password_hash" not in stored or profile.get("logins_count") or profile.get("last_login"):
                return _error("CONFLICT", HASH_DEFINED_MESSAGE, field)
            changes["credential"] = {"custom_password_hash": user["custom_password_hash"]}
        # password_hash: set at the first import only, silently left as it is.
    update_profile(db, row, changes, now)
    return None


# --- export ------------------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


def _compile_field(name: str) -> Callable[[dict[str, Any]], Any]:
    """A getter for a dotted/indexed field name such as `identities[0].connection` or `app_metadata.a.b`."""
    steps: list[str | int] = [int(index) if index else key for key, index in _PATH_TOKEN.findall(name)]
    if not steps:
        return lambda doc: _MISSING
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]
        return lambda doc: doc.get(key, _MISSING)

    def get(doc: dict[str, Any]) -> Any:
        value: Any = doc
        for step in steps:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return _MISSING
            elif not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
        return value

    return get


def _csv_cell(name: str, value: Any) -> str:
    """Auth0's OWASP CSV escaping: strings get `'` in front, `"` doubled, and double quotes around."""
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and name in ISO_DATE_FIELDS:
        return value  # Auth0-generated ISO-8601 dates are exempt
    text = value if isinstance(value, str) else dumps(value)
    return "\"'" + text.replace('"', '""') + '"'


def _csv_header(title: str) -> str:
    return '"' + title.replace('"', '""') + '"' if any(c in title for c in ',"\n\r') else title


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


_HOLDS_SECONDARY_OF = (f"instr(profile, '\"{LINKED_KEY}\"') > 0 AND EXISTS (SELECT 1 FROM json_each(profile, "
                       f"'$.{LINKED_KEY}') j WHERE json_extract(j.value, '$.row.connection_id') = ?)")


def _export_batches(store: Store, job: sqlite3.Row, params: dict[str, Any]) -> Iterator[str]:
    """The export file's text, some lines at a time: one SELECT over the users, streamed by pk."""
    fields = [(_compile_field(f["name"]), f.get("export_as") or f["name"], f["name"]) for f in params["fields"]]
    csv = params["format"] == "csv"
    if csv:
        yield ",".join(_csv_header(title) for _, title, _ in fields) + "\n"
    names = connection_names(store)
    # A connection's export also shows the primaries (of other connections) that hold one of its users as a
    # linked secondary (identities.py; UNCONFIRMED), with their own connection first in `identities`.
    sql = "SELECT * FROM users" + (f" WHERE connection_id = ? OR ({_HOLDS_SECONDARY_OF})" if job["connection_id"]
                                   else "") + " ORDER BY pk"
    args: list[Any] = [job["connection_id"]] * 2 if job["connection_id"] else []
    if "limit" in params:
        sql += " LIMIT ?"
        args.append(params["limit"])
    cursor = store.conn.execute(sql, args)
    while rows := cursor.fetchmany(2000):
        docs = (user_json(row, names.get(row["connection_id"], "")) for row in rows)
        if csv:
            yield "".join(",".join(_csv_cell(name, get(doc)) for get, _, name in fields) + "\n" for doc in docs)
        else:
            yield "".join(_ENCODE({title: value for get, title, _ in fields if (value := get(doc)) is not _MISSING})
                          + "\n" for doc in docs)


def _run_export(tenant: Tenant, db: sqlite3.Connection, job: sqlite3.Row) -> tuple[str, str | None]:
    """Write the export file (gzip, compressed as it streams) for a due export job; returns (status, details)."""
    if job["connection_id"] and get_connection(tenant.store, job["connection_id"]) is None:
        return "failed", "The connection does not exist."
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip member; level 1: speed over size
    out = [packer.compress(text.encode()) for text in _export_batches(tenant.store, job, loads(job["params"]))]
    out.append(packer.flush())
    db.execute("INSERT OR REPLACE INTO job_files (job_id, kind, data) VALUES (?, 'export', ?)",
               (job["id"], b"".join(out)))
    return "completed", None


def _export_file_name(tenant: Tenant, job: sqlite3.Row) -> str:
    return f"{tenant.config.name}.{loads(job['params'])['format']}.gz"


def _signature(tenant: Tenant, path: str, expires: int) -> str:
    mac = hmac.new(tenant.config.signing_key, f"{path}?expires={expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def _sign_location(tenant: Tenant, job: sqlite3.Row, now: float) -> str:
    """A fresh download link, valid LINK_SECONDS from now (born expired while `faults.expire_links` lasts)."""
    expires = math.floor(now) - 1 if tenant.faults.link_born_expired() else math.ceil(now) + LINK_SECONDS
    path = f"/exports/{job['id']}/{_export_file_name(tenant, job)}"
    return f"{tenant.config.base_url}{path}?expires={expires}&signature={_signature(tenant, path, expires)}"


def _export_request(raw: dict[str, Any]) -> dict[str, Any]:
    """A users-exports body (checked against CreateExportUsersRequestContent by `ctx.json_body`) as the job's params."""
    params: dict[str, Any] = {"format": raw.get("format", "csv")}
    if "limit" in raw:
        params["limit"] = raw["limit"]
    fields = raw.get("fields")
    if fields is None:
        fields = [{"name": name} for name in DEFAULT_EXPORT_FIELDS]
    if params["format"] == "csv":
        if len(fields) > CSV_MAX_FIELDS:
            raise ApiError(400, f"CSV exports are limited to {CSV_MAX_FIELDS} fields.", "invalid_body")
        whole = next((f["name"] for f in fields if f["name"] in ("app_metadata", "user_metadata")), None)
        if whole:
            raise ApiError(400, f"The field {whole} cannot be exported as a whole object in CSV; list its"
                                " sub-fields (e.g. app_metadata.plan) or use the json format.", "invalid_body")
    params["fields"] = [dict(item) for item in fields]
    return params


async def _export_body(ctx: Ctx) -> dict[str, Any]:
    """The JSON or form-urlencoded body; form values are strings, so `limit` and `fields` are decoded."""
    if "application/x-www-form-urlencoded" not in ctx.request.headers.get("content-type", ""):
        return await ctx.json_body()
    try:
        form: dict[str, Any] = dict(parse_qsl((await ctx.body()).decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise ApiError(400, "Invalid request payload format", "invalid_body") from None
    if "limit" in form and re.fullmatch(r"-?\d+", form["limit"]):
        form["limit"] = int(form["limit"])
    if "fields" in form:
        with contextlib.suppress(ValueError):  # left a string: reported as a type error by the validation
            form["fields"] = json.loads(form["fields"])
    return form


@router.route("POST", "/api/v2/jobs/users-exports", scopes=["read:users"])
async def create_export(ctx: Ctx) -> Response:
    raw = await _export_body(ctx)
    params = _export_request(raw)
    connection = _target_connection(ctx, raw["connection_id"]) if "connection_id" in raw else None
    now = ctx.now
    job = _create_job(ctx.tenant, "users_export", connection, params, now)
    return ctx.json(_job_json(ctx.tenant, job, now))


# --- polling and errors ------------------------------------------------------------------------

@router.route("GET", "/api/v2/jobs/{id}", scopes=["read:users", "create:users"])
async def get_job(ctx: Ctx) -> Response:
    now = ctx.now
    job, held = _poll(ctx.tenant, _job_id(ctx), now, "Job not found.")
    return ctx.json(_job_json(ctx.tenant, job, now, held))


@router.route("GET", "/api/v2/jobs/{id}/errors", scopes=["read:users", "create:users"])
async def get_job_errors(ctx: Ctx) -> Response:
    now = ctx.now
    job, _ = _poll(ctx.tenant, _job_id(ctx), now, "The job does not exist")
    if job["status"] in ("failed", "expired"):
        generic = {key: value for key, value in _job_json(ctx.tenant, job, now).items()
                   if key in ("status", "type", "created_at", "id", "connection_id", "status_details")}
        return ctx.json(generic)
    found = ctx.store.one("SELECT data FROM job_files WHERE job_id = ? AND kind = 'errors'", (job["id"],))
    if found is None:
        return ctx.empty(204)
    return Response(found["data"], media_type="application/json")


# --- downloads (the CDN's part: no token, a signed link) ----------------------------------------

def _cdn_error(status: int, code: str, message: str) -> Response:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
           "</Error>")
    return Response(xml, status_code=status, media_type="application/xml")


@router.route("GET", "/exports/{id}/{file}", auth=False, api=False)
async def download_export(ctx: Ctx) -> Response:
    job_id, file_name = ctx.path("id"), ctx.path("file")
    expires_raw, signature = ctx.query("expires") or "", ctx.query("signature") or ""
    path = f"/exports/{job_id}/{file_name}"
    if not (expires_raw.isascii() and expires_raw.isdigit()) or not signature:
        return _cdn_error(403, "AccessDenied", "Missing or malformed signature parameters")
    expires = int(expires_raw)
    if not hmac.compare_digest(signature.encode(), _signature(ctx.tenant, path, expires).encode()):
        return _cdn_error(403, "AccessDenied", "Signature does not match")
    if ctx.now > expires:
        return _cdn_error(403, "AccessDenied", "Request has expired")
    with ctx.store.tx() as db:
        _purge(db, ctx.now)
        found = db.execute("SELECT data FROM job_files WHERE job_id = ? AND kind = 'export'", (job_id,)).fetchone()
    if found is None:
        return _cdn_error(404, "NoSuchKey", "The specified key does not exist.")
    headers = {"content-disposition": f'attachment; filename="{file_name}"'}
    if ctx.tenant.config.download_content_encoding:
        headers["content-encoding"] = "gzip"
    return Response(found["data"], media_type="application/gzip", headers=headers)

