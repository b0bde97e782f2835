"""Stage 5: import files as bulk import jobs, at most two in flight, every error kept.

Each file's state is in the ledger before and after each step: `packed` -> `submitting` (about to
POST, with the time it was sent) -> `submitted` (job id known) -> `done`. An upload is never sent
again blindly: if its answer is lost (dropped connection, timeout, 5xx), or a killed run left the
file `submitting`, Auth0 may have made a job we cannot see (it has no job list), which runs anyway.
So the file is settled from the target first (`_settle`): its users are looked up by email until the
lost job shows (a user created since the file was sent) or `SETTLE_PATIENCE` passes, and again while
more keep appearing; those found are recorded, and only the rest are sent again, in a new job. A 429
"There are 2 active import users jobs" waits for a slot (our jobs are polled meanwhile), it is not
a rate limit. A 413 splits the file in two; a failed or expired job is submitted again, up to three
times. After that its users fail with `JOB_FAILED`/`JOB_EXPIRED`, codes the ledger counts as
retryable: the next run packs and imports them again (`Ledger.requeue_retryable`), while users Auth0
refused for their data keep Auth0's own code and stay failed.

Choices where Auth0 is silent:
- `SETTLE_PATIENCE` (10 min from the send) for a lost job to show: Auth0 publishes no queue delay;
  a job that starts later than that meets a second job for the users not found, whose users then
  fail `DUPLICATED_USER` and are recognised (by the id map) as already in the target: never twice.
  A run killed (SIGKILL, a crash) while an upload was on the wire leaves nothing that tells whether
  Auth0 made its job: the next run, started within those 10 minutes, waits what is left of them
  unless the users show sooner, and says so.
- A user found in the target counts as made by the lost job when it was created no earlier than
  `CLOCK_SKEW` before the file was sent (our clock against Auth0's `created_at`) and, where the user can
  carry proof (computed id with keep/prefix, `--record-source-id`), it carries it; an older one, or one
  without the proof, was made by someone else and is recorded as a conflict, as a resend would have met
  it, for the id map to judge (`idmap.why_not_ours`: a stranger is never adopted). With `regenerate` and no
  `--record-source-id`, creation time is the only evidence: a sign-up with the same email within
  `CLOCK_SKEW` of a lost upload would be taken for ours (record the source id to close that gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from datetime import datetime
from typing import Any

from ..auth0 import jobs
from ..errors import AnswerLost, ImportSlotsBusy, PayloadTooLarge, Refused, TransientError
from ..ledger import ImportFile, JobError
from ..passwords import redact
from ..pool import run_pool
from ..report import duration
from .context import Migration
from .idmap import NO_PROOF, find_in_target, why_not_ours
from .transform import import_body

MAX_IN_FLIGHT = 2
MAX_ATTEMPTS = 3
SETTLE_PATIENCE = 600.0
"""Seconds (our clock), from its send, to wait for the job of a lost upload to show its users in the target."""
CLOCK_SKEW = 300.0
"""Seconds our clock may be ahead of Auth0's when telling the lost job's users from older ones."""
UPLOAD_GRACE = 30.0
"""Seconds an interrupted run waits for an upload already on the wire to be answered (`_submit_uninterrupted`)."""
SLOT_POLL = 5.0
SLOT_MAX_WAIT = 60.0
"""Longest sleep between uploads refused for want of a slot: each refused upload sends the file again."""
SLOT_PATIENCE = 3 * 3600.0
"""Auth0 fails import jobs after 2 h, so slots free up within that; after this, stop (exit 75, resume later)."""
ALREADY_CODES = frozenset({"CONFLICT", "CONFLICT_EMAIL", "CONFLICT_USERNAME", "DUPLICATED_USER"})
"""Codes that mean 'a user like this already exists': confirmed against the target by the id map."""


async def import_users(migration: Migration) -> None:
    ledger = migration.ledger
    if ledger.phase_done("import"):
        return
    total = len(ledger.files_to_import())
    migration.reporter.phase("import files", total=total)
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def one(file_id: int) -> None:
        async with slots:
            await _import_file(migration, file_id)
            migration.reporter.advance()

    while True:
        todo = ledger.files_to_import()
        if not todo:
            break
        tasks = [asyncio.ensure_future(one(f)) for f in todo]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
    ledger.mark_phase("import")


async def _import_file(migration: Migration, file_id: int) -> None:
    ledger = migration.ledger
    lost_here = False
    while True:
        row = ledger.file(file_id)
        if row is None or row.status == "done":
            return
        if row.status == "submitting":  # an upload whose answer never came, in this run or a killed one
            await _settle(migration, file_id, row, lost_here=lost_here)
            continue
        job_id = row.job_id if row.status == "submitted" else None
        if job_id is None:
            if row.attempts >= MAX_ATTEMPTS:
                code, message = _job_failure(file_id, row.attempts, row.summary)
                ledger.fail_file_users(file_id, code, message)
                return
            users = ledger.users_ready_for_file(file_id)
            if not users:
                ledger.file_done(file_id)
                return
            body = import_body(users)
            ledger.count_attempt(file_id, len(body))
            try:
                job_id = await _submit_uninterrupted(migration, file_id, body)
            except AnswerLost as exc:
                lost_here = True
                migration.reporter.warn(f"the answer to the upload of file {file_id} was lost ({exc}); "
                                        "checking the target before sending it again")
                continue
            except Refused as exc:  # no job was made; any other failure is settled later
                ledger.file_refused(file_id)
                if isinstance(exc, PayloadTooLarge) and len(users) > 1:
                    _split(migration, file_id, [u.ordinal for u in users])
                    continue
                raise
            ledger.file_submitted(file_id, job_id)
        state = await jobs.wait_for_job(migration.target, job_id)
        if state.status != "completed":
            ledger.file_job_failed(file_id, state.status)
            migration.reporter.warn(f"import job {job_id} (file {file_id}) ended {state.status}; submitting it again")
            continue
        failed = (state.summary or {}).get("failed", 1)
        errors = await jobs.import_errors(migration.target, job_id) if failed else []
        if isinstance(errors, dict):  # a job-level failure reported on a completed job: treat as failed
            ledger.file_job_failed(file_id)
            continue
        _record_results(migration, file_id, job_id, errors, state.summary or {})
        return


async def _submit_uninterrupted(migration: Migration, file_id: int, body: bytes) -> str:
    """`_submit`, finished even when the run is interrupted (Ctrl-C, SIGTERM) while the upload is on the wire.

    The permission reads run beside the uploads, so an interruption often comes mid-upload; cut short, the
    upload would leave its file `submitting` and the next run would spend up to `SETTLE_PATIENCE` finding
    out whether a job was made. Let to finish (within `UPLOAD_GRACE`), its answer records the job, or the
    refusal, and the next run simply polls the job.
    """
    upload = asyncio.ensure_future(_submit(migration, file_id, body))
    try:
        return await asyncio.shield(upload)
    except asyncio.CancelledError:
        # An interruption cancels this task more than once (the pools and `together` above it each cancel
        # their tasks as they stop): every further cancellation is waited through too, up to the grace.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UPLOAD_GRACE
        while not upload.done() and loop.time() < deadline:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({upload}, timeout=deadline - loop.time())
        if upload.done() and not upload.cancelled() and upload.exception() is None:
            migration.ledger.file_submitted(file_id, upload.result())
        upload.cancel()
        raise


async def _submit(migration: Migration, file_id: int, body: bytes) -> str:
    """POST the file, recorded `submitting` (with the time) just before; wait for a slot while two jobs run.

    `AnswerLost` leaves the file `submitting` for `_settle`; a refusal (429, 4xx) leaves it `packed`.
    """
    ledger = migration.ledger
    clock = migration.target.governor.clock
    external_id = f"auth0-migrate-{ledger.get_meta('run_id', 'run')}-{file_id}"
    waited_since = clock.now()
    refusals = busy = 0
    while True:
        ledger.file_submitting(file_id, clock.now())
        try:
            return await jobs.submit_import(migration.target, migration.target_connection.id, body, external_id)
        except AnswerLost:
            raise
        except ImportSlotsBusy:
            ledger.file_refused(file_id, forget_summary=True)
            if clock.now() - waited_since > SLOT_PATIENCE:
                raise
            busy += 1
            await _wait_for_slot(migration, busy)
        except TransientError as exc:  # a 429 (or no token): the upload was refused, so sending it again is safe
            ledger.file_refused(file_id, forget_summary=True)
            refusals += 1
            if refusals >= migration.target.governor.max_attempts:
                raise
            migration.reporter.warn(f"upload of file {file_id} refused by the rate limit ({exc.status}); "
                                    "sending it again")
            await clock.sleep(migration.target.governor.backoff(refusals))


async def _wait_for_slot(migration: Migration, busy: int) -> None:
    """Both import slots are taken (the `busy`-th time in a row): poll our own running jobs and sleep
    until the first is due to end; when none of ours runs (the slots are someone else's), back off."""
    clock = migration.target.governor.clock
    waits = [min(SLOT_MAX_WAIT, SLOT_POLL * 2 ** (busy - 1))]
    for job_id in migration.ledger.submitted_job_ids():
        state = await jobs.get_job(migration.target, job_id)
        ended = state.status not in ("pending", "processing")
        waits.append(1.0 if ended else state.time_left or SLOT_POLL)  # ended: its slot is free now
    await clock.sleep(max(1.0, min(waits)))


def _epoch(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def _settle(migration: Migration, file_id: int, row: ImportFile, *, lost_here: bool = False) -> None:
    """Find out from the target what a `submitting` file's lost upload did, before anything is sent again.

    Bounded: a small sample of the file's users is looked up until one shows that the lost job ran
    (created since the file was sent) or `SETTLE_PATIENCE` has passed since it was sent (a run resumed
    later waits only what is left of it, and says so); then every user not yet found is
    looked up, again while each pass finds more (a job still running). Found users are recorded
    (`imported` when made since the file was sent, `conflict` when older: already in the target);
    the file is done when all were found, and otherwise `packed` with only the rest left to send.
    """
    ledger = migration.ledger
    clock = migration.target.governor.clock
    sent_at = (json.loads(row.summary) if row.summary else {}).get("sent_at")
    users = ledger.ready_emails_of_file(file_id)
    emails = list(users)
    # Patience counts from the send: a run resumed long after a killed one has nothing more to wait for. (A send
    # time ahead of our clock, which was stepped back since, counts from now: never longer than the patience.)
    deadline = min(clock.now(), sent_at if isinstance(sent_at, (int, float)) else math.inf) + SETTLE_PATIENCE
    if not lost_here:  # a lost answer of this run was named when it was lost; say why a resumed run waits
        left = deadline - clock.now()
        wait = (f"for up to {duration(left)}" if left > 0
                else f"once (it was sent more than {duration(SETTLE_PATIENCE)} ago)")
        migration.reporter.warn(f"file {file_id} was being uploaded when an earlier run stopped: its users are "
                                f"looked for in the target {wait}, in case its job was made, before the rest is "
                                "sent again")

    def ours(email: str, user: dict[str, Any] | None) -> bool:
        created = _epoch(user.get("created_at")) if user else None
        if user is None or not (sent_at is None or (created is not None and created >= sent_at - CLOCK_SKEW)):
            return False
        mapped = ledger.user_to_map(users[email])
        return mapped is not None and why_not_ours(migration, mapped.target_id, json.loads(mapped.record),
                                                   user) in (None, NO_PROOF)

    found: dict[str, dict[str, Any]] = {}

    async def look(wanted: list[str]) -> dict[str, dict[str, Any]]:
        hits: dict[str, dict[str, Any]] = {}

        def keep(email: str, user: dict[str, Any] | None) -> None:
            if user is not None:
                hits[email] = user

        await run_pool(wanted, lambda email: find_in_target(migration, email), on_result=keep)
        return hits

    delay = SLOT_POLL
    sample = list(dict.fromkeys(emails[i] for i in {0, len(emails) // 2, len(emails) - 1} if emails))
    while sample and not any(ours(e, u) for e, u in (await look(sample)).items()) and clock.now() < deadline:
        await clock.sleep(min(delay, deadline - clock.now()))
        delay = min(60.0, delay * 2)
    while True:
        new = await look([e for e in emails if e not in found])
        found.update(new)
        if not new or len(found) == len(emails) or clock.now() >= deadline:
            break
        await clock.sleep(SLOT_POLL)  # the job may still be running: look again for the rest
    left = len(emails) - len(found)
    made = {e for e, u in found.items() if ours(e, u)}
    ledger.record_settled(file_id, [users[e] for e in found if e in made],
                          [users[e] for e in found if e not in made], left)
    migration.reporter.warn(f"file {file_id}: {len(found)} of its users are in the target after the lost upload; "
                            f"{left} to send again")


def _split(migration: Migration, file_id: int, ordinals: list[int]) -> None:
    """After an unexpected 413: move the second half of the file's users to a new file."""
    half = ordinals[len(ordinals) // 2:]
    migration.ledger.split_file(file_id, half, len(ordinals) - len(half))
    migration.reporter.warn(f"import file {file_id} was refused as too large (413); split it in two")


def _job_failure(file_id: int, attempts: int, summary: str | None) -> tuple[str, str]:
    """(code, message) for the users of a file whose every job failed or expired: job-level, so retryable."""
    try:
        last = str(json.loads(summary or "{}").get("status") or "failed")
    except (ValueError, AttributeError):  # not the {"status": ...} a failed attempt writes
        last = "failed"
    code = "JOB_EXPIRED" if last == "expired" else "JOB_FAILED"
    return code, (f"the import job of file {file_id} failed or expired {attempts} times (the last one {last}); "
                  "nothing is known to be wrong with the user: run the same command again to retry")


def _error_email(item: dict[str, Any]) -> str | None:
    user = item.get("user") or {}
    email = user.get("email") if isinstance(user, dict) else None
    return email.lower() if isinstance(email, str) else None


def _record_results(migration: Migration, file_id: int, job_id: str, errors: list[dict[str, Any]],
                    summary: dict[str, int]) -> None:
    ledger = migration.ledger
    with ledger.tx():
        by_email = ledger.emails_of_file(file_id)
        for item in errors:
            details = item.get("errors") or [{}]
            first = details[0] if isinstance(details[0], dict) else {}
            error = JobError(_error_email(item), str(first.get("code") or "IMPORT_ERROR"),
                             str(first.get("message") or ""), str(first.get("path") or ""))
            ledger.add_job_error(job_id, file_id, error)
            ordinal = by_email.get(error.email) if error.email else None
            if ordinal is None:
                migration.reporter.warn(f"job {job_id} reported an error for a user not in file {file_id}: "
                                        f"{redact(item.get('user') or {}).get('email', '?')} {error.code}")
                continue
            if error.code in ALREADY_CODES:
                ledger.mark_conflict(ordinal, error.code, error.message)
            else:
                ledger.fail_user(ordinal, "import", error.code,
                                 f"{error.path}: {error.message}" if error.path else error.message)
        ledger.mark_imported(file_id, summary)
