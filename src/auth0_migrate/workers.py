"""Worker processes for the local work of a large migration: a file read in pieces, each piece's work done
by another core, the answers handed back in the order of the pieces.

A million users is about a minute of Python a core to parse, join, transform and validate, and the
ledger's writes are another core's worth: the export stage (`stages/ingest.py`) and the hash load
(`stages/hashes.py`) hand the pieces to workers while this process writes what they answer, in its one
transaction. The work a worker does must be pure: it reads (the ledger, read-only, and the files) and
writes nothing; what it finds comes back as its answer.

A worker is `python -c "...serve()"`, a process of its own, started the same way whatever program imported
this module (multiprocessing's spawn would run that program's `__main__` again in each worker). The first
message names the job, `"module:function"` of this package, and its set-up arguments; the function returns
the callable each piece is given to. Messages are pickled frames on the worker's stdin and stdout, which only
the two sides of this module use. A thread writes to each worker and another reads its answers, so this
process never blocks on a full pipe and a worker never waits for this process to be free to read. The threads
only move bytes (a read or write releases the GIL); pickling stays in this process's own thread, since a thread
that held the GIL to unpickle would stall the ledger's writes, which give the GIL up at every row. When this
process stops, or is killed, a worker's stdin ends and so does the worker.

Example::

    for answer in in_workers("auth0_migrate.stages.hashes:hash_job", (path, connection), pieces, workers=2):
        write(answer)
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from .errors import UsageError

IN_FLIGHT = 2
"""Pieces a worker holds at a time: one to work on and one waiting, so it does not wait for this process."""
FROM_BYTES = 8 << 20
"""A file of at least this size is read by workers; a smaller one in this process (starting a worker costs
about a third of a second)."""
COUNT: int | None = None
"""How many workers read a large file: None for `AUTH0_MIGRATE_WORKERS`, or else one a core (at most 4; none on
one core)."""
ENV = "AUTH0_MIGRATE_WORKERS"
"""An environment variable that sets how many workers read a large file (0: none, all in this process)."""

_FRAME = struct.Struct("<Q")


def worker_count(path: str) -> int:
    """How many workers read this file: none for a small one, on one core, or in a frozen program (no Python to
    start); `AUTH0_MIGRATE_WORKERS` decides when set."""
    if os.path.getsize(path) < FROM_BYTES or getattr(sys, "frozen", False):
        return 0
    if COUNT is not None:
        return COUNT
    if os.environ.get(ENV, "").strip():
        try:
            return max(0, int(os.environ[ENV]))
        except ValueError:
            raise UsageError(f"{ENV}={os.environ[ENV]!r}: give a number of worker processes (0 for none)") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4) if cores > 1 else 0


def in_workers(job: str, setup: tuple[Any, ...], pieces: Iterable[tuple[int, bytes]], workers: int) -> Iterator[Any]:
    """`job(*setup)(piece, first)` of each `(first, piece)`, by `workers` processes, answers in the pieces' order.

    Pieces go round the workers and answers are taken in the same turn. A worker is given its next piece
    before its answer is handed on (it works while the caller writes), and holds at most `IN_FLIGHT`, so
    memory stays flat whatever the file's size. A worker that fails stops the lot (RuntimeError).
    """
    supply = iter(pieces)
    crew: list[_Worker] = []
    try:
        crew = [_Worker(job, setup) for _ in range(workers)]
        given: deque[_Worker] = deque()  # in the order of the pieces
        for _ in range(IN_FLIGHT):
            for worker in crew:
                piece = next(supply, None)
                if piece is None:
                    break
                worker.give(piece)
                given.append(worker)
        while given:
            worker = given.popleft()
            answer = worker.answer()
            piece = next(supply, None)
            if piece is not None:
                worker.give(piece)
                given.append(worker)
            yield answer
    finally:
        for worker in crew:
            worker.stop()


def serve() -> None:
    """A worker's life: the job from the first message, then its answer to each piece until None or the end of
    stdin (the parent stopped, or was killed)."""
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not land among the answers
    job, setup = _receive(inbox)
    module, _, name = job.partition(":")
    work = getattr(importlib.import_module(module), name)(*setup)
    while True:
        try:
            message = _receive(inbox)
        except EOFError:
            return
        if message is None:
            return
        first, piece = message
        try:
            answer: object = work(piece, first)
        except Exception as exc:  # handed to the parent, which stops with it
            answer = _Failed(f"{type(exc).__name__}: {exc}")
        try:
            _send(outbox, answer)
        except BrokenPipeError:  # the parent is gone
            return


@dataclass
class _Failed:
    reason: str


def _send(stream: IO[bytes], message: object) -> None:
    _send_bytes(stream, _pickled(message))


def _pickled(message: object) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _send_bytes(stream: IO[bytes], data: bytes) -> None:
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    return pickle.loads(_receive_bytes(stream))


def _receive_bytes(stream: IO[bytes]) -> bytes:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    size = _FRAME.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


class _Worker:
    """One worker process, a thread that feeds it and a thread that takes its answers: the worker never waits
    for this process to be free to read, and this process never blocks on a full pipe."""

    def __init__(self, job: str, setup: tuple[Any, ...]) -> None:
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (package_root,
                                                                          os.environ.get("PYTHONPATH"))))}
        self.process = subprocess.Popen([sys.executable, "-c", "from auth0_migrate.workers import serve; serve()"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.inbox, self.outbox = self.process.stdin, self.process.stdout
        self.pieces: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.answers: queue.SimpleQueue[bytes | object] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._feed, name=f"feeds worker {self.process.pid}", daemon=True),
                        threading.Thread(target=self._take, name=f"reads worker {self.process.pid}", daemon=True)]
        for thread in self.threads:
            thread.start()
        self.pieces.put(_pickled((job, setup)))

    def _feed(self) -> None:
        try:
            while True:
                message = self.pieces.get()
                _send_bytes(self.inbox, _pickled(None) if message is None else message)
                if message is None:
                    break
        except OSError:  # the worker ended: `answer` says so
            pass
        with contextlib.suppress(OSError):
            self.inbox.close()

    def _take(self) -> None:
        while True:
            try:
                answer = _receive_bytes(self.outbox)
            except (EOFError, OSError):
                self.answers.put(_ENDED)
                return
            self.answers.put(answer)

    def give(self, piece: tuple[int, bytes]) -> None:
        self.pieces.put(_pickled(piece))

    def answer(self) -> Any:
        data = self.answers.get()
        if not isinstance(data, bytes):  # _ENDED
            raise RuntimeError(f"a worker process (pid {self.process.pid}) ended without answering "
                               f"(exit code {self.process.wait()})")
        answer = pickle.loads(data)
        if isinstance(answer, _Failed):
            raise RuntimeError(f"a worker process failed: {answer.reason}")
        return answer

    def stop(self) -> None:
        self.pieces.put(None)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for thread in self.threads:
            thread.join(timeout=10)
        self.outbox.close()


_ENDED = object()
