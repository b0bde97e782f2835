"""Each exported user joined to its hash, transformed and validated: the per-user work of the export stage.

The work is pure: it reads the hash rows from the ledger but writes nothing. What it finds besides
the user's own row (problems, linked secondaries, MFA factors, users of a `--users` list found, the
counts of what the import cannot take) is collected in a `Findings` for the export stage
(`export._Ingest`) to write, in the order of the export's lines. So the same code runs in this
process or, for a large export, in worker processes (`findings_of_export`, `auth0_migrate.workers`): each
takes a piece of the export's text (`formats.export_file.read_export_chunks`, about a thousand users) and
hands back its `Findings`; this process packs and writes them in order, in its one transaction. The
ledger's rows, files and problems come out the same either way (tests/e2e/test_export_workers.py).

A worker reads the hash rows through a read-only connection of its own (`HashReader`): the hash file
was loaded in an earlier, committed transaction, so what it sees does not change while the export's
transaction writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import collector, workers
from ..formats.export_file import parse_export_lines, read_export_chunks
from ..formats.mfa_file import MfaSecrets
from ..ledger import HashReader, UserRow, dumps
from ..model import MigrationOptions
from . import mfa
from .identities import LinkedAccounts
from .inventory import ImportLeftovers
from .transform import combined_size, transform_one

HashLookup = Callable[[list[str]], Mapping[str, tuple[str | None, str | None]]]
"""User ids -> {user id: (credential JSON or None, password_set_date or None)} for those the hash file gives
a hash to use (a user id it holds back for disagreeing lines is absent): one query for a piece's users."""


@dataclass
class Findings:
    """What the work found in some users, in their order, for the export stage to write."""

    rows: list[UserRow] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    """Bytes of each row's user in an import file (`transform.combine`), 0 for a user not ready: the packing
    needs only these."""
    problems: list[tuple[str, str | None, str]] = field(default_factory=list)
    linked: list[tuple[int, str, str]] = field(default_factory=list)
    factors: list[tuple[int, str]] = field(default_factory=list)
    found: set[str] = field(default_factory=set)
    leftovers: dict[str, int] = field(default_factory=dict)


class UserWork:
    """The per-user work of the export stage: `user` (or `chunk`, for a piece of the export) adds each user's
    ledger row, and what else it found, to `findings`; `take` hands them over."""

    def __init__(self, options: MigrationOptions, source_connection: str, mfa_secrets: MfaSecrets | None,
                 selection: tuple[frozenset[str], frozenset[str]] | None) -> None:
        self.options = options
        self.source_connection = source_connection
        self.mfa_secrets = mfa_secrets
        self.selection = selection
        self.findings = Findings()
        # Linked accounts are read from the export's `identities` (a --from-file user has none to move).
        self.linked = None if options.from_file else LinkedAccounts(source_connection)
        self.leftovers = ImportLeftovers(options.user_ids)

    def take(self) -> Findings:
        """What was found since the last `take`."""
        found = self.findings
        if self.linked is not None:
            found.linked = self.linked.rows
            self.linked = LinkedAccounts(self.source_connection)
        found.leftovers = self.leftovers.counts()
        self.leftovers = ImportLeftovers(self.options.user_ids)
        self.findings = Findings()
        return found

    def selected(self, source_id: str, email: str | None) -> bool:
        if self.selection is None:
            return True
        ids, emails = self.selection
        hit = [v for v in (source_id, email) if v in ids or v in emails]
        self.findings.found.update(hit)
        return bool(hit)

    def user(self, ordinal: int, source_id: str, email: str | None, record: dict[str, Any], text: str | bytes,
             hashes: Mapping[str, tuple[str | None, str | None]]) -> None:
        """One user: its row joins `findings.rows` (none for a user not selected or not ours).

        `text` is the record's JSON as read; as bytes (a piece of the export) it is decoded only for a row that
        keeps it: a user ready to import is stored as its import record instead.
        """
        if self.selection is not None and not self.selected(source_id, email):
            return
        findings = self.findings
        if self.linked is not None:
            elsewhere = self.linked.note_record(ordinal, source_id, record)
            if elsewhere is not None:  # a primary of another connection holding one of ours as a secondary
                findings.problems.append(("linked-elsewhere", source_id, elsewhere))
                return
        self.leftovers.see(record)
        factors = findings.factors
        if record.get("multifactor"):
            factors.append((ordinal, mfa.ENROLLED))
        if self.mfa_secrets is not None or "mfa_factors" in record:
            record, text, items = mfa.with_secrets(self.mfa_secrets, source_id, email, record, _decoded(text))
            factors += [(ordinal, item) for item in items]
        options = self.options
        credential_text: str | None = None
        set_date: str | None = None
        hash_match = None
        if options.password_hashes:
            known = hashes.get(source_id)
            if known is None:
                findings.rows.append((ordinal, source_id, email, _decoded(text), None, 0, None, None, "exported", None,
                                      None, None, None))
                findings.sizes.append(0)
                return
            credential_text, set_date = known
            hash_match = "id"
        outcome = transform_one(options, source_id, record, credential_text, set_date)
        if outcome.stale_note:
            findings.problems.append(("stale-hash", source_id, outcome.stale_note))
        credential, status = outcome.credential, outcome.status
        if status == "ready":
            stored = outcome.record or "{}"  # (a ready user always has its record)
            findings.rows.append((ordinal, source_id, email, stored, credential, 1 if credential else 0, hash_match,
                                  outcome.target_id, status, None, outcome.code, outcome.message, None))
            findings.sizes.append(combined_size(stored, credential))
            return
        # A user that is not ready keeps its source record, less any hash (transform took those out).
        stored = outcome.record or (dumps(record) if options.from_file else _decoded(text))
        findings.rows.append((ordinal, source_id, email, stored, credential, 1 if credential else 0, hash_match,
                              outcome.target_id, status, outcome.stage, outcome.code, outcome.message, None))
        findings.sizes.append(0)

    def chunk(self, chunk: bytes, first: int, lookup: HashLookup) -> Findings:
        """The users of a piece of the export's text (`jobs.read_export_chunks`), their hashes looked up at once."""
        with collector.paused():
            return self._chunk(chunk, first, lookup)

    def _chunk(self, chunk: bytes, first: int, lookup: HashLookup) -> Findings:
        lines = list(parse_export_lines(chunk, first))
        hashes = lookup([r["user_id"] for _, _, r, _ in lines if r is not None and isinstance(r.get("user_id"), str)])\
            if self.options.password_hashes else {}
        for number, text, record, problem in lines:
            if record is None or not isinstance(record.get("user_id"), str):
                self.findings.problems.append(("export", str(number),
                                               problem or f"export line {number} has no user_id"))
                continue
            email = record.get("email")
            self.user(number, record["user_id"], email.lower() if isinstance(email, str) else None, record, text,
                      hashes)
        return self.take()


def _decoded(text: str | bytes) -> str:
    return text if isinstance(text, str) else text.decode()


def users_job(options: MigrationOptions, source_connection: str, mfa_secrets: MfaSecrets | None,
              selection: tuple[frozenset[str], frozenset[str]] | None,
              ledger_path: str) -> Callable[[bytes, int], Findings]:
    """A worker's job (`workers.in_workers`): `UserWork.chunk`, the hashes read from the ledger read-only."""
    work, reader = UserWork(options, source_connection, mfa_secrets, selection), HashReader(ledger_path)
    return lambda chunk, first: work.chunk(chunk, first, reader.hashes_for)


def findings_of_export(work: UserWork, path: str, lookup: HashLookup, ledger_path: str) -> Iterator[Findings]:
    """`work.chunk` of each piece of the export file, in order: here, or by worker processes for a large file."""
    pieces = read_export_chunks(path)
    count = workers.worker_count(path)
    if count == 0:
        for first, chunk in pieces:
            yield work.chunk(chunk, first, lookup)
        return
    yield from workers.in_workers(f"{__name__}:users_job", (work.options, work.source_connection, work.mfa_secrets,
                                                           work.selection, ledger_path), pieces, count)
