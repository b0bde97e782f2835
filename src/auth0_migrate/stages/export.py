"""Stage 1: the source users, from a bulk export job (or `--from-file`), into the ledger.

The export is one job, streamed from its gzipped file: no search API, so no 1,000-user cap. The
job id is kept in the ledger so a run killed while the job runs picks the same job up again.
A `--users` list narrows the selection; listed users that are not in the source are reported.
"""

from __future__ import annotations

import os

from ..auth0 import jobs
from ..errors import InputError
from ..ledger import dumps
from .context import Job

BATCH = 5000


def _insert(job: Job, batch: list[tuple[int, str, str | None, str]]) -> None:
    job.ledger.db.executemany("INSERT OR IGNORE INTO users (ordinal, source_id, email, record) VALUES (?, ?, ?, ?)",
                              batch)
    batch.clear()


async def export_source(job: Job) -> None:
    ledger = job.ledger
    if ledger.phase_done("export"):
        return
    job.reporter.phase("export source users")
    if job.options.from_file:
        _load_from_file(job)
    else:
        job_id = ledger.get_meta("export_job_id")
        job_id, path = await jobs.export_connection(job.source, job.source_connection.id, job_id=job_id) \
            if job_id else await _fresh_export(job)
        try:
            with ledger.tx():
                ledger.db.execute("DELETE FROM users")
                batch: list[tuple[int, str, str | None, str]] = []
                for number, text, record, problem in jobs.iter_export_lines(path):
                    if record is None or not isinstance(record.get("user_id"), str):
                        ledger.add_problem("export", str(number), problem or f"export line {number} has no user_id")
                        continue
                    email = record.get("email")
                    # The line is stored as it came (it is one JSON object): encoding it again would cost
                    # as much as reading it.
                    batch.append((number, record["user_id"], email.lower() if isinstance(email, str) else None,
                                  text))
                    if len(batch) >= BATCH:
                        _insert(job, batch)
                        job.reporter.advance(BATCH)
                _insert(job, batch)
        finally:
            os.unlink(path)
    _select(job)
    ledger.mark_phase("export")


async def _fresh_export(job: Job) -> tuple[str, str]:
    job_id = await jobs.start_export(job.source, job.source_connection.id)
    job.ledger.set_meta("export_job_id", job_id)  # recorded before we wait: a resumed run polls this job
    return await jobs.export_connection(job.source, job.source_connection.id, job_id=job_id)


def _load_from_file(job: Job) -> None:
    from .users_file import iter_users_file, source_key

    ledger = job.ledger
    with ledger.tx():
        ledger.db.execute("DELETE FROM users")
        batch: list[tuple[int, str, str | None, str]] = []
        seen: set[str] = set()
        for item in iter_users_file(job.options.from_file or ""):
            if not isinstance(item, tuple):
                ledger.add_problem("users-file", str(item.line_no), f"{job.options.from_file}, {item}")
                continue
            ordinal, user = item
            key = source_key(user)
            if key in seen:
                ledger.add_problem("users-file", str(ordinal), f"user {ordinal}: {key} appears twice in the file")
                continue
            seen.add(key)
            email = user.get("email")
            batch.append((ordinal, key, email.lower() if isinstance(email, str) else None, dumps(user)))
            if len(batch) >= BATCH:
                _insert(job, batch)
        _insert(job, batch)


def read_selection(path: str) -> tuple[set[str], set[str]]:
    """`--users FILE`: one email or user id per line ('#' comments allowed) -> (ids, emails)."""
    ids: set[str] = set()
    emails: set[str] = set()
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                entry = line.split("#", 1)[0].strip()
                if not entry:
                    continue
                if "|" in entry:
                    ids.add(entry)
                elif "@" in entry:
                    emails.add(entry.lower())
                else:
                    raise InputError(f"{path}, line {number}: {entry!r} is neither an email nor a user id "
                                     "(user ids look like auth0|...)")
    except OSError as exc:
        raise InputError(f"cannot read the --users file {path}: {exc.strerror}") from exc
    return ids, emails


def _select(job: Job) -> None:
    if not job.options.users_file:
        return
    ids, emails = read_selection(job.options.users_file)
    ledger = job.ledger
    with ledger.tx():
        ledger.db.execute("UPDATE users SET selected = 0")
        found_ids: set[str] = set()
        found_emails: set[str] = set()
        for value in ids:
            if ledger.db.execute("UPDATE users SET selected = 1 WHERE source_id = ?", (value,)).rowcount:
                found_ids.add(value)
        for value in emails:
            if ledger.db.execute("UPDATE users SET selected = 1 WHERE email = ?", (value,)).rowcount:
                found_emails.add(value)
        absent = sorted((ids - found_ids) | (emails - found_emails))
        missing: list[tuple[str, str | None, str]] = [
            ("not-in-source", v, f"{v} is listed in {job.options.users_file} but is not a user of "
                                 f"{job.source_connection.name}") for v in absent]
        ledger.add_problems(missing)
        ledger.db.execute("DELETE FROM users WHERE selected = 0")

