"""Bulk jobs: create, poll with back-off, download an export, submit an import.

Polling never runs faster than a job can finish: it starts at `first_poll` seconds, follows the
job's `time_left_seconds` when Auth0 gives one, and backs off to `max_poll`. An export's download
link lives 60 s; a download that fails is retried with a fresh link from `GET /jobs/{id}`. The
downloaded file is read as gzip when its first bytes are gzip's magic number (1f 8b) and as plain
NDJSON otherwise. Whether the storage says `Content-Encoding: gzip` is not documented; either way the
gzip is kept as it came, and inflated as it arrives (`GzipCheck`), so a body cut short or corrupt is
fetched again like any failed download, instead of failing the export stage later as if the user's own
input were bad.

An import upload is sent once (`SEND_ONCE`): when its answer is lost (dropped connection, timeout,
5xx) Auth0 may have made the job, so `submit_import` raises `AnswerLost` and the caller settles what
happened from the target. A 429 whose message says two import jobs are active raises
`ImportSlotsBusy` (wait for a slot); any other 429 is a rate limit, and the upload was refused.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from isal import isal_zlib

from ..errors import AnswerLost, ImportSlotsBusy, NotFoundError, RateLimited, TransientError
from ..formats.export_file import parse_export_lines, read_export_chunks
from ..formats.hash_file import GZIP_MAGIC, INFLATE_ERRORS
from .client import TenantClient
from .governor import SEND_ONCE

EXPORT_FIELDS = ("user_id", "email", "email_verified", "username", "phone_number", "phone_verified",
                 "given_name", "family_name", "name", "nickname", "picture", "blocked", "app_metadata",
                 "user_metadata", "identities", "created_at", "updated_at", "last_login", "logins_count",
                 "last_password_reset", "multifactor")
"""Every profile field the import can carry, plus what the ledger needs (reference §1.5); always explicit.
`last_password_reset` (an exported root attribute, Auth0's User Profile Structure) is not imported: the
transform compares it with the hash file's `password_set_date` to hold back stale hashes. `multifactor` (the
MFA providers a user is enrolled with) is not imported either: it tells `stages.mfa` whose factors to read."""


UPLOAD = "start a users import"
SLOTS_BUSY = "active import users jobs"
"""What Auth0's 429 for a third concurrent import says ("There are 2 active import users jobs, ...")."""


@dataclass
class JobState:
    id: str
    status: str
    location: str | None = None
    summary: dict[str, int] | None = None
    time_left: float | None = None
    details: str | None = None


def _state(job: Any) -> JobState:
    data = job.model_dump()
    summary = data.get("summary")
    return JobState(id=data["id"], status=str(data.get("status")), location=data.get("location"),
                    summary=dict(summary) if summary else None, time_left=data.get("time_left_seconds"),
                    details=str(data.get("status_details")) if data.get("status_details") else None)


async def get_job(client: TenantClient, job_id: str) -> JobState:
    return _state(await client.call(f"read job {job_id}", client.sdk.jobs.get, job_id))


async def wait_for_job(client: TenantClient, job_id: str, *, first_poll: float = 1.0, max_poll: float = 10.0,
                       patience: float = 3 * 3600) -> JobState:
    """Poll until the job leaves pending/processing; Auth0 fails jobs itself after 2 h (imports) or 8 h."""
    clock = client.governor.clock
    started = clock.now()
    delay = first_poll
    while True:
        job = await get_job(client, job_id)
        if job.status not in ("pending", "processing"):
            return job
        if clock.now() - started > patience:
            raise TransientError(f"job {job_id} is still {job.status} after {patience:.0f} s", operation="poll job")
        wait = job.time_left if job.time_left and job.time_left > 0 else delay
        await clock.sleep(min(max_poll, max(first_poll / 2, wait)))
        delay = min(max_poll, delay * 1.5)


async def start_export(client: TenantClient, connection_id: str, fields: tuple[str, ...] = EXPORT_FIELDS) -> str:
    job = await client.call("start a users export", client.sdk.jobs.users_exports.create,
                            connection_id=connection_id, format="json",
                            fields=[{"name": f} for f in fields])
    return str(job.id)


class CorruptDownload(Exception):
    """A downloaded body that is gzip but does not inflate to its end (cut short, or damaged)."""


class GzipCheck:
    """Inflate a download as its chunks arrive, keeping nothing: `done` says whether it was whole.

    A body that does not start with gzip's magic number is not checked: it is plain NDJSON (decoded from
    an encoding other than gzip by httpx, or sent so). The inflating costs about 1 s of CPU for a million
    users' export, spent while the network is the wait.
    """

    def __init__(self) -> None:
        self.head = b""
        self.inflater: Any = None
        self.plain = False

    def feed(self, chunk: bytes) -> None:
        if self.plain:
            return
        if self.inflater is None:
            self.head += chunk
            if len(self.head) < len(GZIP_MAGIC):
                return
            if not self.head.startswith(GZIP_MAGIC):
                self.plain = True
                return
            chunk, self.head = self.head, b""
            self.inflater = isal_zlib.decompressobj(wbits=31)
        self._inflate(chunk)

    def _inflate(self, data: bytes) -> None:
        # Output is taken 64 KB at a time and dropped; a call that leaves no input may still hold output back
        # (the rest of a long match), so calls go on until one gives nothing and has nothing left to read.
        try:
            while True:
                out = self.inflater.decompress(data, 1 << 16)
                data = self.inflater.unconsumed_tail
                if self.inflater.eof:  # a member ended; another may follow (as gzip allows)
                    data = self.inflater.unused_data
                    if not data:
                        return
                    self.inflater = isal_zlib.decompressobj(wbits=31)
                elif not data and not out:
                    return
        except INFLATE_ERRORS as exc:
            raise CorruptDownload(f"the gzip data is corrupt ({exc})") from None

    def done(self) -> None:
        """Raise `CorruptDownload` unless the body ended where its last gzip member does."""
        if (self.inflater is not None and not self.inflater.eof) or (self.head and GZIP_MAGIC.startswith(self.head)):
            raise CorruptDownload("the gzip data ends before its last member does (cut short)")


async def download_export(client: TenantClient, job: JobState, *, attempts: int = 5) -> str:
    """Download a completed export to a private temporary file; returns its path (caller deletes it).

    The link expires 60 s after it was issued, so a refused download gets a fresh link and tries again; so
    does a download whose gzip does not inflate to its end (`GzipCheck`).
    """
    fd, path = tempfile.mkstemp(prefix="auth0-export-", suffix=".json.gz")
    os.close(fd)
    os.chmod(path, 0o600)
    location = job.location
    for attempt in range(1, attempts + 1):
        if not location:
            job = await get_job(client, job.id)
            location = job.location
            continue
        try:
            async with client.http.stream("GET", location) as response:
                if response.status_code == 200:
                    check = GzipCheck()
                    # A body sent with `Content-Encoding: gzip` is kept as the gzip it is: httpx's own decoding
                    # would pass a body cut short in silence. Any other encoding is decoded by httpx.
                    encoding = response.headers.get("content-encoding", "").strip().lower()
                    chunks = response.aiter_raw(1 << 16) if encoding in ("gzip", "x-gzip") else\
                        response.aiter_bytes(1 << 16)
                    with open(path, "wb") as out:  # noqa: ASYNC230 - local disk, 64 KB chunks
                        async for chunk in chunks:
                            out.write(chunk)
                            check.feed(chunk)
                    check.done()
                    return path
        except (OSError, Exception) as exc:  # noqa: BLE001 - any failed download is retried with a new link
            if attempt == attempts:
                os.unlink(path)
                why = str(exc) if isinstance(exc, CorruptDownload) else type(exc).__name__
                raise TransientError(f"download of export {job.id} failed: {why}",
                                     operation="download export") from exc
        job = await get_job(client, job.id)
        location = job.location
    os.unlink(path)
    raise TransientError(f"download of export {job.id} was refused {attempts} times (expired links)",
                         operation="download export")


def iter_export_file(path: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, record, problem) for each line of a gzipped NDJSON export; constant memory."""
    for number, _line, record, problem in iter_export_lines(path):
        yield number, record, problem


def iter_export_lines(path: str) -> Iterator[tuple[int, str, dict[str, Any] | None, str | None]]:
    """(line number, the line's JSON text, record, problem) for each line of a gzipped NDJSON export.

    The text is kept for a caller that stores the record as it came, without encoding it again.
    """
    for first, chunk in read_export_chunks(path):
        for number, text, record, problem in parse_export_lines(chunk, first):
            yield number, text.decode("utf-8", "replace"), record, problem


async def export_connection(client: TenantClient, connection_id: str, fields: tuple[str, ...] = EXPORT_FIELDS,
                            *, job_id: str | None = None, attempts: int = 3) -> tuple[str, str]:
    """Run (or resume, given `job_id`) an export job to completion and download it: (job id, file path).

    A job that fails or expires is started again, up to `attempts` times.
    """
    for _ in range(attempts):
        if job_id is None:
            job_id = await start_export(client, connection_id, fields)
        try:
            job = await wait_for_job(client, job_id)
        except NotFoundError:  # purged (older than 24 h): start again
            job_id = None
            continue
        if job.status == "completed":
            return job_id, await download_export(client, job)
        job_id = None
    raise TransientError(f"the export of {connection_id} did not complete after {attempts} jobs",
                         operation="export")


async def submit_import(client: TenantClient, connection_id: str, body: bytes, external_id: str, *,
                        upsert: bool = False) -> str:
    """POST one import file, once; its job id. `AnswerLost` when Auth0 may have made a job we cannot see.

    `upsert`: users that match an existing user on email update its upsertable fields (a refresh)."""
    try:
        job = await client.call(UPLOAD, client.sdk.jobs.users_imports.create,
                                users=("users.json", body, "application/json"), connection_id=connection_id,
                                upsert=upsert, external_id=external_id, send_completion_email=False,
                                request_options={"additional_headers": {SEND_ONCE: "1"}})
    except RateLimited as exc:  # refused: no job was made
        if exc.operation == UPLOAD and SLOTS_BUSY in str(exc):
            raise ImportSlotsBusy(str(exc), status=exc.status, code=exc.code, operation=exc.operation) from exc
        raise
    except TransientError as exc:
        if exc.operation != UPLOAD:  # e.g. no token: the upload never went out
            raise
        # no answer, a timeout or a 5xx: the job may exist
        raise AnswerLost(str(exc), status=exc.status, code=exc.code, operation=exc.operation) from exc
    return str(job.id)


async def import_errors(client: TenantClient, job_id: str) -> list[dict[str, Any]] | dict[str, Any]:
    """Per-user errors of an import job ([] when none); a dict for a job-level failure."""
    result = await client.call(f"read errors of job {job_id}", client.sdk.jobs.errors.get, job_id)
    if result is None:
        return []
    if isinstance(result, list):
        return [item.model_dump() for item in result]
    return dict(result.model_dump())
