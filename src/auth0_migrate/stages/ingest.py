"""Each exported user joined to its hash, transformed and validated: the per-user work of the export stage.

The work is pure: it reads the hash rows from the ledger but writes nothing. What it finds besides
the user's own row (problems, linked secondaries, MFA factors, users of a `--users` list found, the
counts of what the import cannot take) is collected in a `Findings` for the export stage
(`export._Ingest`) to write, in the order of the export's lines. So the same code runs in this
process or, for a large export, in worker processes (`findings_of_export`): each takes a piece of the
export's text (`jobs.read_export_chunks`, about a thousand users) and hands back its `Findings`; this
process packs and writes them in order, in its one transaction. The ledger's rows, files and
problems come out the same either way (tests/e2e/test_export_workers.py).

Why processes: a million users is about a minute of Python a core (parse, join, transform,
validate, encode), and SQLite's writes are another core's worth; on two cores the work overlaps.
A worker reads the hash rows through a read-only connection of its own (`HashReader`): the hash
file was loaded in an earlier, committed transaction, so what it sees does not change while the
export's transaction writes.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ..auth0.jobs import parse_export_lines, read_export_chunks
from ..formats.mfa_file import MfaSecrets
from ..ledger import HashReader, UserRow, dumps
from ..model import MigrationOptions
from . import mfa
from .identities import LinkedAccounts
from .inventory import ImportLeftovers
from .transform import transform_one

HashLookup = Callable[[list[str]], Mapping[str, tuple[str | None, str | None]]]
"""User ids -> {user id: (credential JSON or None, password_set_date or None)} for those the hash file gives
a hash to use (a user id it holds back for disagreeing lines is absent)."""

IN_FLIGHT = 2
"""Pieces of the export a worker holds at a time: one to work on, one waiting, so it never waits for this process."""
WORKERS: int | None = None
"""How many worker processes read a large export: None for one a core (at most 4; none on one core)."""
WORKERS_FROM_BYTES = 16 << 20
"""An export file (as downloaded, gzipped) of at least this size is read by worker processes (about 30,000
users); a smaller one in this process, where starting the workers would cost more than they save."""


@dataclass
class Findings:
    """What the work found in some users, in their order, for the export stage to write."""

    rows: list[UserRow] = field(default_factory=list)
    problems: list[tuple[str, str | None, str]] = field(default_factory=list)
    linked: list[tuple[int, str, str]] = field(default_factory=list)
    factors: list[tuple[int, str]] = field(default_factory=list)
    found: set[str] = field(default_factory=set)
    leftovers: dict[str, int] = field(default_factory=dict)


class UserWork:
    """The per-user work of the export stage; `user` returns the user's ledger row and notes the rest."""

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

    def user(self, ordinal: int, source_id: str, email: str | None, record: dict[str, Any], text: str,
             hashes: Mapping[str, tuple[str | None, str | None]]) -> None:
        """One user: its row joins `findings.rows` (none for a user not selected or not ours)."""
        if not self.selected(source_id, email):
            return
        if self.linked is not None:
            elsewhere = self.linked.note_record(ordinal, source_id, record)
            if elsewhere is not None:  # a primary of another connection holding one of ours as a secondary
                self.findings.problems.append(("linked-elsewhere", source_id, elsewhere))
                return
        self.leftovers.see(record)
        factors = self.findings.factors
        if record.get("multifactor"):
            factors.append((ordinal, mfa.ENROLLED))
        if self.mfa_secrets is not None or "mfa_factors" in record:
            record, text, items = mfa.with_secrets(self.mfa_secrets, source_id, email, record, text)
            factors += [(ordinal, item) for item in items]
        options = self.options
        credential_text: str | None = None
        set_date: str | None = None
        hash_match = None
        if options.password_hashes:
            known = hashes.get(source_id)
            if known is None:
                self.findings.rows.append((ordinal, source_id, email, text, None, 0, None, None, "exported", None,
                                           None, None, None))
                return
            credential_text, set_date = known
            hash_match = "id"
        outcome = transform_one(options, source_id, record,
                                orjson.loads(credential_text) if credential_text else None, set_date)
        if outcome.stale_note:
            self.findings.problems.append(("stale-hash", source_id, outcome.stale_note))
        # A user that is not ready keeps its source record, less any hash (transform took those out).
        stored = outcome.record or (dumps(record) if options.from_file else text)
        self.findings.rows.append((ordinal, source_id, email, stored, outcome.credential,
                                   1 if outcome.credential else 0, hash_match, outcome.target_id, outcome.status,
                                   None if outcome.status == "ready" else outcome.stage, outcome.code,
                                   outcome.message, None))

    def chunk(self, chunk: bytes, first: int, lookup: HashLookup) -> Findings:
        """The users of a piece of the export's text (`jobs.read_export_chunks`), their hashes looked up at once."""
        lines = list(parse_export_lines(chunk, first))
        hashes = lookup([r["user_id"] for _, _, r, _ in lines if r is not None and isinstance(r.get("user_id"), str)])\
            if self.options.password_hashes else {}
        for number, text, record, problem in lines:
            if record is None or not isinstance(record.get("user_id"), str):
                self.findings.problems.append(("export", str(number),
                                               problem or f"export line {number} has no user_id"))
                continue
            email = record.get("email")
            self.user(number, record["user_id"], email.lower() if isinstance(email, str) else None, record,
                      text.decode(), hashes)
        return self.take()


# -- worker processes -------------------------------------------------------------------------------
# A worker is `python -c "...serve()"`: a process of its own, started the same way whatever program imported
# this module (multiprocessing's spawn would run that program's __main__ again in each worker). It reads
# pickled messages on stdin and answers each on stdout, framed by their length; the first message sets it up.
# Only this module's two sides speak on those pipes.

_FRAME = struct.Struct("<Q")


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    size = _FRAME.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def serve() -> None:
    """A worker's life: set up from the first message, then `UserWork.chunk` for each (chunk, first line) until
    None or the end of stdin (the parent stopped, or was killed)."""
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not land in the answers
    options, connection, secrets, selection, ledger_path = _receive(inbox)
    work, reader = UserWork(options, connection, secrets, selection), HashReader(ledger_path)
    while True:
        try:
            message = _receive(inbox)
        except EOFError:
            return
        if message is None:
            return
        try:
            chunk, first = message
            answer: object = work.chunk(chunk, first, reader.hashes_for)
        except Exception as exc:  # handed to the parent, which stops the export with it
            answer = _WorkerFailed(f"{type(exc).__name__}: {exc}")
        _send(outbox, answer)


@dataclass
class _WorkerFailed:
    reason: str


class _Worker:
    """One worker process, and a thread that feeds it: this process's thread never blocks on a full pipe, so it
    can always take the answer a worker is waiting to hand over."""

    def __init__(self, work: UserWork, ledger_path: str) -> None:
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (package_root,
                                                                          os.environ.get("PYTHONPATH"))))}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from auth0_migrate.stages.ingest import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.inbox, self.outbox = self.process.stdin, self.process.stdout
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.feeder = threading.Thread(target=self._feed, name=f"export worker {self.process.pid}", daemon=True)
        self.feeder.start()
        self.queue.put((work.options, work.source_connection, work.mfa_secrets, work.selection, ledger_path))

    def _feed(self) -> None:
        try:
            while True:
                message = self.queue.get()
                _send(self.inbox, message)
                if message is None:
                    break
        except OSError:  # the worker ended: `answer` says so
            pass
        with contextlib.suppress(OSError):
            self.inbox.close()

    def give(self, chunk: bytes, first: int) -> None:
        self.queue.put((chunk, first))

    def answer(self) -> Findings:
        try:
            found = _receive(self.outbox)
        except EOFError:
            raise RuntimeError(f"an export worker (pid {self.process.pid}) ended without answering "
                               f"(exit code {self.process.wait()})") from None
        if isinstance(found, _WorkerFailed):
            raise RuntimeError(f"an export worker failed: {found.reason}")
        assert isinstance(found, Findings)
        return found

    def stop(self) -> None:
        self.queue.put(None)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.feeder.join(timeout=10)
        self.outbox.close()


def worker_count(path: str) -> int:
    """How many worker processes read this export file: none for a small one or on one core."""
    if os.path.getsize(path) < WORKERS_FROM_BYTES:
        return 0
    if WORKERS is not None:
        return WORKERS
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4) if cores > 1 else 0


def findings_of_export(work: UserWork, path: str, lookup: HashLookup, ledger_path: str,
                       workers: int) -> Iterator[Findings]:
    """`work.chunk` of each piece of the export file, in order; by `workers` processes when there are any.

    Pieces go round the workers and answers are taken in the same turn, so they come in order. A worker holds
    `IN_FLIGHT` pieces and is given its next before its answer is handed on (it works while this process
    writes), so memory stays flat whatever the export's size.
    """
    pieces = read_export_chunks(path)
    if workers == 0:
        for first, chunk in pieces:
            yield work.chunk(chunk, first, lookup)
        return
    crew: list[_Worker] = []
    try:
        crew = [_Worker(work, ledger_path) for _ in range(workers)]
        given: deque[_Worker] = deque()  # in the order of the pieces
        for _ in range(IN_FLIGHT):
            for worker in crew:
                piece = next(pieces, None)
                if piece is None:
                    break
                worker.give(piece[1], piece[0])
                given.append(worker)
        while given:
            worker = given.popleft()
            found = worker.answer()
            piece = next(pieces, None)
            if piece is not None:
                worker.give(piece[1], piece[0])
                given.append(worker)
            yield found
    finally:
        for worker in crew:
            worker.stop()
