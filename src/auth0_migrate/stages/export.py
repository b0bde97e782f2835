"""Stage 1: the source users, from a bulk export job (or `--from-file`), into the ledger.

The export is one job, streamed from its gzipped file: no search API, so no 1,000-user cap. The
job id is kept in the ledger so a run killed while the job runs picks the same job up again.
A `--users` list narrows the selection; listed users that are not in the source are reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..auth0 import jobs
from ..formats.import_file import FileSizer, SizedFile
from ..formats.users_file import read_selection
from ..ledger import KnownUser, UserRow, dumps
from . import mfa
from .context import Migration
from .ingest import Findings, UserWork, findings_of_export
from .inventory import ImportLeftovers

BATCH = 5000
USER_INDEXES = ("users_email", "users_status", "users_file")
"""Indexes the export builds once, after its rows (`Ledger.indexes_deferred`)."""


class _Ingest:
    """Each source user, as it is read, joined to its hash, transformed, validated (`ingest.UserWork`, here or in
    worker processes) and packed: one write a user.

    A user the hash file has no row for is stored as it came (`exported`) for `join_hashes` (the
    email fallback) and `transform_users`; the users of the last, partly filled file stay `ready`
    with no file, for `pack_users` to pack with those.
    """

    def __init__(self, migration: Migration) -> None:
        self.migration = migration
        self.ledger = migration.ledger
        self.options = migration.options
        chosen = read_selection(migration.options.users_file) if migration.options.users_file else None
        if chosen:
            migration.ledger.add_problems(("users-list", str(p.line_no), f"{migration.options.users_file}, {p}")
                                          for p in chosen.problems)
        self.work = UserWork(self.options, migration.source_connection.name, mfa.secrets(migration),
                             (chosen.ids, chosen.emails) if chosen else None)
        self.found: set[str] = set()
        self.packer = FileSizer()  # the bodies are built at upload, from the rows
        self.next_file = migration.ledger.next_file_id()
        self.waiting: dict[str, UserRow] = {}  # ordinal -> row, for users of the open file
        self.rows: list[UserRow] = []
        self.leftovers = ImportLeftovers(migration.options.user_ids)
        self.factors: list[tuple[int, str]] = []  # MFA holdings found: enrolled users, factors from the secrets file

    def add(self, ordinal: int, source_id: str, email: str | None, record: dict[str, Any], text: str) -> None:
        """One user, read by this process (a refresh's export, a --from-file user)."""
        hashes = self.ledger.hashes_for([source_id]) if self.options.password_hashes else {}
        self.work.user(ordinal, source_id, email, record, text, hashes)
        if len(self.work.findings.rows) >= BATCH or self.work.findings.problems:
            self.write(self.work.take())

    def write(self, findings: Findings) -> None:
        """What the work found, in the export's order: rows packed as they come, the rest to the ledger."""
        ledger = self.ledger
        if findings.problems:
            ledger.add_problems(findings.problems)
        if findings.linked:
            ledger.add_linked_identities(findings.linked)
        self.factors += findings.factors
        self.found |= findings.found
        self.leftovers.add(findings.leftovers)
        for row, size in zip(findings.rows, findings.sizes, strict=True):
            if row[8] != "ready":
                self.rows.append(row)
                continue
            key = str(row[0])
            self.waiting[key] = row
            for packed in self.packer.add(key, size):
                self._close(packed)
        self._flush_rows()

    def _close(self, packed: SizedFile) -> None:
        if packed.oversize:
            for key in packed.keys:
                row = self.waiting.pop(key)
                self.rows.append((*row[:8], "failed", "pack", "USER_TOO_LARGE",
                                  "the user's import record alone exceeds Auth0's 500 KB file limit", None))
            return
        file_id = self.next_file
        self.next_file += 1
        self.ledger.add_file(file_id, packed.size, len(packed.keys))
        for key in packed.keys:
            self.rows.append((*self.waiting.pop(key)[:12], file_id))

    def _flush_rows(self, force: bool = False) -> None:
        if len(self.rows) >= BATCH or (force and self.rows):
            self.ledger.add_users(self.rows)
            self.migration.reporter.advance(len(self.rows))
            self.rows.clear()

    def finish(self) -> None:
        self.write(self.work.take())
        self.rows.extend(self.waiting.values())  # the open file's users: packed later, with the stragglers
        self.waiting.clear()
        self._flush_rows(force=True)
        self.ledger.add_holdings("mfa-factor", self.factors)
        if self.work.selection is not None:
            ids, emails = self.work.selection
            absent = sorted((ids | emails) - self.found)
            self.migration.ledger.add_problems(
                ("not-in-source", v, f"{v} is listed in {self.options.users_file} but is not a user of "
                                     f"{self.migration.source_connection.name}") for v in absent)


def _start(migration: Migration) -> _Ingest:
    migration.ledger.reset_export()
    return _Ingest(migration)


async def export_source(migration: Migration) -> None:
    ledger = migration.ledger
    if ledger.phase_done("export"):
        return
    migration.reporter.phase("export source users")
    if migration.options.from_file:
        _load_from_file(migration)
    else:
        job_id = ledger.get_meta("export_job_id")
        job_id, path = await jobs.export_connection(migration.source, migration.source_connection.id, job_id=job_id)\
            if job_id else await _fresh_export(migration)
        try:
            with ledger.tx(), ledger.indexes_deferred(*USER_INDEXES):
                ingest = _start(migration)
                for findings in findings_of_export(ingest.work, path, ledger.hashes_for, ledger.path):
                    ingest.write(findings)
                ingest.finish()
                ingest.leftovers.save(ledger)
                ledger.mark_phase("export")
        finally:
            os.unlink(path)


async def export_again(migration: Migration, generation: int,
                       compare: Callable[[KnownUser, dict[str, Any]], None]) -> None:
    """A refresh's export of the source: users new since the last export, and users held back for their hash
    (the newer hash file decides again), are ingested as the first run's were (joined, transformed, packed);
    each other known user is handed to `compare`; migrated users the export no longer shows are marked gone.
    One transaction: a killed run reads the same job again."""
    ledger = migration.ledger
    if ledger.phase_done("refresh-export"):
        return
    migration.reporter.phase("export source users again")
    job_id = ledger.get_meta("refresh_export_job_id")
    if job_id is None:
        job_id = await jobs.start_export(migration.source, migration.source_connection.id)
        ledger.set_meta("refresh_export_job_id", job_id)
    job_id, path = await jobs.export_connection(migration.source, migration.source_connection.id, job_id=job_id)
    try:
        with ledger.tx():
            ledger.reset_refresh_export(generation)
            ingest = _Ingest(migration)
            base = int(ledger.get_meta("refresh_base", 0))
            seen: list[int] = []
            retried: list[int] = []
            for number, text, record, problem in jobs.iter_export_lines(path):
                if record is None or not isinstance(record.get("user_id"), str):
                    ledger.add_problem("export", str(number), problem or f"export line {number} has no user_id")
                    continue
                known = ledger.known_user(record["user_id"])
                ordinal = base + number
                if known is not None and known.status == "held_back":
                    # Held back for its hash: the newer hash file decides again, as for a new user.
                    ledger.forget_held_back(known.ordinal)
                    retried.append(known.ordinal)
                    ordinal = known.ordinal
                elif known is not None:
                    seen.append(known.ordinal)
                    compare(known, record)
                    continue
                email = record.get("email")
                ingest.add(ordinal, record["user_id"], email.lower() if isinstance(email, str) else None,
                           record, text)
            ingest.finish()
            ledger.mark_seen(seen, generation)
            ledger.mark_new(generation, retried)
            ledger.mark_gone_from_source(generation)
            ledger.mark_phase("refresh-export")
    finally:
        os.unlink(path)


async def _fresh_export(migration: Migration) -> tuple[str, str]:
    job_id = await jobs.start_export(migration.source, migration.source_connection.id)
    migration.ledger.set_meta("export_job_id", job_id)  # recorded before we wait: a resumed run polls this job
    return await jobs.export_connection(migration.source, migration.source_connection.id, job_id=job_id)


def _load_from_file(migration: Migration) -> None:
    from ..formats.users_file import iter_users_file, source_key

    ledger = migration.ledger
    with ledger.tx():
        ingest = _start(migration)
        seen: set[str] = set()
        for item in iter_users_file(migration.options.from_file or ""):
            if not isinstance(item, tuple):
                ledger.add_problem("users-file", str(item.line_no), f"{migration.options.from_file}, {item}")
                continue
            ordinal, user = item
            key = source_key(user)
            if key in seen:
                ledger.add_problem("users-file", str(ordinal), f"{migration.options.from_file}, user {ordinal}: {key} "
                                                               "appears again in the file; the first is used")
                continue
            seen.add(key)
            email = user.get("email")
            ingest.add(ordinal, key, email.lower() if isinstance(email, str) else None, user, dumps(user))
        ingest.finish()
        ingest.leftovers.save(ledger)
        ledger.mark_phase("export")

