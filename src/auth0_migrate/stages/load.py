"""Stage 5: import files as bulk import jobs, at most two in flight, every error kept.

Each file's state is in the ledger before and after each step: `packed` -> `submitting` (about to
POST) -> `submitted` (job id known) -> `done`. A run killed after a POST but before its job id was
recorded resubmits the file: the users the lost job created then come back as CONFLICT errors and
are recognised (by the id map) as already in the target, never imported twice. A 413 splits the
file in two; a failed or expired job is submitted again, up to three times. After that its users
fail with `JOB_FAILED`/`JOB_EXPIRED`, codes the ledger counts as retryable: the next run packs and
imports them again (`Ledger.requeue_retryable`), while users Auth0 refused for their data keep
Auth0's own code and stay failed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..auth0 import jobs
from ..errors import TerminalError
from ..passwords import redact
from .context import Job
from .prepare import import_body

MAX_IN_FLIGHT = 2
MAX_ATTEMPTS = 3
ALREADY_CODES = frozenset({"CONFLICT", "CONFLICT_EMAIL", "CONFLICT_USERNAME", "DUPLICATED_USER"})
"""Codes that mean 'a user like this already exists': confirmed against the target by the id map."""


async def import_users(job: Job) -> None:
    ledger = job.ledger
    if ledger.phase_done("import"):
        return
    total = ledger.scalar("SELECT COUNT(*) FROM files WHERE status != 'done'")
    job.reporter.phase("import files", total=total)
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def one(file_id: int) -> None:
        async with slots:
            await _import_file(job, file_id)
            job.reporter.advance()

    while True:
        todo = [r["file_id"] for r in ledger.q("SELECT file_id FROM files WHERE status != 'done' ORDER BY "
                                               "(status = 'submitted') DESC, file_id")]
        if not todo:
            break
        tasks = [asyncio.ensure_future(one(f)) for f in todo]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
    ledger.mark_phase("import")


async def _import_file(job: Job, file_id: int) -> None:
    ledger = job.ledger
    while True:
        row = ledger.one("SELECT * FROM files WHERE file_id = ?", (file_id,))
        if row is None or row["status"] == "done":
            return
        job_id = row["job_id"] if row["status"] == "submitted" else None
        if job_id is None:
            if row["attempts"] >= MAX_ATTEMPTS:
                _fail_file(job, file_id, *_job_failure(file_id, row["attempts"], row["summary"]))
                return
            users = ledger.q("SELECT ordinal, record, credential FROM users WHERE file_id = ? ORDER BY ordinal",
                             (file_id,))
            if not users:
                ledger.db.execute("UPDATE files SET status = 'done' WHERE file_id = ?", (file_id,))
                return
            body = import_body(users)
            ledger.db.execute("UPDATE files SET status = 'submitting', attempts = attempts + 1, bytes = ? "
                              "WHERE file_id = ?", (len(body), file_id))
            external_id = f"auth0-migrate-{ledger.get_meta('run_id', 'run')}-{file_id}"
            try:
                job_id = await jobs.submit_import(job.target, job.target_connection.id, body, external_id)
            except TerminalError as exc:
                if exc.status == 413 and len(users) > 1:
                    _split(job, file_id, [u["ordinal"] for u in users])
                    continue
                raise
            ledger.db.execute("UPDATE files SET status = 'submitted', job_id = ? WHERE file_id = ?",
                              (job_id, file_id))
        state = await jobs.wait_for_job(job.target, job_id)
        if state.status != "completed":
            ledger.db.execute("UPDATE files SET status = 'packed', job_id = NULL, summary = ? WHERE file_id = ?",
                              (f'{{"status":"{state.status}"}}', file_id))
            job.reporter.warn(f"import job {job_id} (file {file_id}) ended {state.status}; submitting it again")
            continue
        failed = (state.summary or {}).get("failed", 1)
        errors = await jobs.import_errors(job.target, job_id) if failed else []
        if isinstance(errors, dict):  # a job-level failure reported on a completed job: treat as failed
            ledger.db.execute("UPDATE files SET status = 'packed', job_id = NULL WHERE file_id = ?", (file_id,))
            continue
        _record_results(job, file_id, job_id, errors, state.summary or {})
        return


def _split(job: Job, file_id: int, ordinals: list[int]) -> None:
    """After an unexpected 413: move the second half of the file's users to a new file."""
    ledger = job.ledger
    half = ordinals[len(ordinals) // 2:]
    with ledger.tx() as db:
        new_id = (ledger.scalar("SELECT MAX(file_id) FROM files") or 0) + 1
        db.execute("INSERT INTO files (file_id, users) VALUES (?, ?)", (new_id, len(half)))
        db.executemany("UPDATE users SET file_id = ? WHERE ordinal = ?", [(new_id, o) for o in half])
        db.execute("UPDATE files SET status = 'packed', users = ?, attempts = attempts - 1 WHERE file_id = ?",
                   (len(ordinals) - len(half), file_id))
    job.reporter.warn(f"import file {file_id} was refused as too large (413); split it in two")


def _job_failure(file_id: int, attempts: int, summary: str | None) -> tuple[str, str]:
    """(code, message) for the users of a file whose every job failed or expired: job-level, so retryable."""
    try:
        last = str(json.loads(summary or "{}").get("status") or "failed")
    except (ValueError, AttributeError):  # not the {"status": ...} a failed attempt writes
        last = "failed"
    code = "JOB_EXPIRED" if last == "expired" else "JOB_FAILED"
    return code, (f"the import job of file {file_id} failed or expired {attempts} times (the last one {last}); "
                  "nothing is known to be wrong with the user: run the same command again to retry")


def _fail_file(job: Job, file_id: int, code: str, message: str) -> None:
    with job.ledger.tx() as db:
        ready = db.execute("SELECT ordinal FROM users WHERE file_id = ? AND status = 'ready'", (file_id,)).fetchall()
        for row in ready:
            job.ledger.fail_user(row["ordinal"], "import", code, message)
        db.execute("UPDATE files SET status = 'done' WHERE file_id = ?", (file_id,))


def _error_email(item: dict[str, Any]) -> str | None:
    user = item.get("user") or {}
    email = user.get("email") if isinstance(user, dict) else None
    return email.lower() if isinstance(email, str) else None


def _record_results(job: Job, file_id: int, job_id: str, errors: list[dict[str, Any]],
                    summary: dict[str, int]) -> None:
    ledger = job.ledger
    with ledger.tx() as db:
        by_email = {r["email"]: r["ordinal"] for r in
                    db.execute("SELECT ordinal, email FROM users WHERE file_id = ?", (file_id,)).fetchall()}
        for item in errors:
            email = _error_email(item)
            details = item.get("errors") or [{}]
            first = details[0] if isinstance(details[0], dict) else {}
            code = str(first.get("code") or "IMPORT_ERROR")
            message = str(first.get("message") or "")
            path = str(first.get("path") or "")
            db.execute("INSERT INTO job_errors (job_id, file_id, email, code, message, path) VALUES (?, ?, ?, ?, ?, ?)",
                       (job_id, file_id, email, code, message, path))
            ordinal = by_email.get(email) if email else None
            if ordinal is None:
                job.reporter.warn(f"job {job_id} reported an error for a user not in file {file_id}: "
                                  f"{redact(item.get('user') or {}).get('email', '?')} {code}")
                continue
            if code in ALREADY_CODES:
                db.execute("UPDATE users SET status = 'conflict', stage = 'import', code = ?, message = ?, "
                           "credential = NULL WHERE ordinal = ?", (code, message, ordinal))
            else:
                ledger.fail_user(ordinal, "import", code, f"{path}: {message}" if path else message)
        db.execute("UPDATE users SET status = 'imported', credential = NULL WHERE file_id = ? AND status = 'ready'",
                   (file_id,))
        db.execute("UPDATE files SET status = 'done', summary = ? WHERE file_id = ?",
                   (str(summary).replace("'", '"'), file_id))
