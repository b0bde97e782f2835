"""Stage 1: the source users, from a bulk export job (or `--from-file`), into the ledger.

The export is one job, streamed from its gzipped file: no search API, so no 1,000-user cap. The
job id is kept in the ledger so a run killed while the job runs picks the same job up again.
A `--users` list narrows the selection; listed users that are not in the source are reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import orjson

from ..auth0 import jobs
from ..formats.import_file import FilePacker, PackedFile
from ..formats.users_file import read_selection
from ..ledger import KnownUser, UserRow, dumps
from . import mfa
from .context import Migration
from .identities import LinkedAccounts
from .inventory import ImportLeftovers
from .transform import transform_one

BATCH = 5000


class _Ingest:
    """Each source user, as it is read, joined to its hash, transformed, validated and packed: one write a user.

    A user the hash file has no row for is stored as it came (`exported`) for `join_hashes` (the
    email fallback) and `transform_users`; the users of the last, partly filled file stay `ready`
    with no file, for `pack_users` to pack with those.
    """

    def __init__(self, migration: Migration) -> None:
        self.migration = migration
        self.ledger = migration.ledger
        self.options = migration.options
        chosen = read_selection(migration.options.users_file) if migration.options.users_file else None
        self.selection = (chosen.ids, chosen.emails) if chosen else None
        if chosen:
            migration.ledger.add_problems(("users-list", str(p.line_no), f"{migration.options.users_file}, {p}")
                                          for p in chosen.problems)
        self.found: set[str] = set()
        self.packer = FilePacker()
        self.next_file = migration.ledger.next_file_id()
        self.waiting: dict[str, UserRow] = {}  # ordinal -> row, for users of the open file
        self.rows: list[UserRow] = []
        self.leftovers = ImportLeftovers(migration.options.user_ids)
        # Linked accounts are read from the export's `identities` (a --from-file user has none to move).
        self.linked = None if migration.options.from_file else LinkedAccounts(migration.ledger,
                                                                               migration.source_connection.name)
        self.mfa_secrets = mfa.secrets(migration)
        self.factors: list[tuple[int, str]] = []  # MFA holdings found: enrolled users, factors from the secrets file

    def selected(self, source_id: str, email: str | None) -> bool:
        if self.selection is None:
            return True
        ids, emails = self.selection
        hit = [v for v in (source_id, email) if v in ids or v in emails]
        self.found.update(hit)
        return bool(hit)

    def add(self, ordinal: int, source_id: str, email: str | None, record: dict[str, Any], text: str) -> None:
        if not self.selected(source_id, email):
            return
        if self.linked is not None and not self.linked.note_record(ordinal, source_id, record):
            return  # a primary of another connection holding one of ours as a secondary: reported, not ours
        self.leftovers.see(record)
        if record.get("multifactor"):
            self.factors.append((ordinal, mfa.ENROLLED))
        if self.mfa_secrets is not None or "mfa_factors" in record:
            record, text, items = mfa.with_secrets(self.mfa_secrets, source_id, email, record, text)
            self.factors += [(ordinal, item) for item in items]
        credential_text: str | None = None
        set_date: str | None = None
        hash_match = None
        if self.options.password_hashes:
            known, credential_text, set_date = self.ledger.hash_for(source_id)
            if not known:
                self.rows.append((ordinal, source_id, email, text, None, 0, None, None, "exported", None, None,
                                  None, None))
                self._flush_rows()
                return
            hash_match = "id"
        outcome = transform_one(self.options, source_id, record,
                                orjson.loads(credential_text) if credential_text else None, set_date)
        if outcome.stale_note:
            self.ledger.add_problem("stale-hash", source_id, outcome.stale_note)
        # A user that is not ready keeps its source record, less any hash (transform took those out).
        stored = outcome.record or (dumps(record) if self.options.from_file else text)
        row = (ordinal, source_id, email, stored, outcome.credential,
               1 if outcome.credential else 0, hash_match, outcome.target_id, outcome.status,
               None if outcome.status == "ready" else outcome.stage, outcome.code, outcome.message, None)
        if outcome.status != "ready":
            self.rows.append(row)
        else:
            key = str(ordinal)
            self.waiting[key] = row
            for packed in self.packer.add(key, outcome.encoded()):
                self._close(packed)
        self._flush_rows()

    def _close(self, packed: PackedFile) -> None:
        if packed.oversize:
            for key in packed.keys:
                row = self.waiting.pop(key)
                self.rows.append((*row[:8], "failed", "pack", "USER_TOO_LARGE",
                                  "the user's import record alone exceeds Auth0's 500 KB file limit", None))
            return
        file_id = self.next_file
        self.next_file += 1
        self.ledger.add_file(file_id, len(packed.body), len(packed.keys))
        for key in packed.keys:
            self.rows.append((*self.waiting.pop(key)[:12], file_id))

    def _flush_rows(self, force: bool = False) -> None:
        if len(self.rows) >= BATCH or (force and self.rows):
            self.ledger.add_users(self.rows)
            self.migration.reporter.advance(len(self.rows))
            self.rows.clear()

    def finish(self) -> None:
        self.rows.extend(self.waiting.values())  # the open file's users: packed later, with the stragglers
        self.waiting.clear()
        self._flush_rows(force=True)
        if self.linked is not None:
            self.linked.flush()
        self.ledger.add_holdings("mfa-factor", self.factors)
        if self.selection is not None:
            ids, emails = self.selection
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
            with ledger.tx():
                ingest = _start(migration)
                for number, text, record, problem in jobs.iter_export_lines(path):
                    if record is None or not isinstance(record.get("user_id"), str):
                        ledger.add_problem("export", str(number), problem or f"export line {number} has no user_id")
                        continue
                    email = record.get("email")
                    ingest.add(number, record["user_id"], email.lower() if isinstance(email, str) else None,
                               record, text)
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

