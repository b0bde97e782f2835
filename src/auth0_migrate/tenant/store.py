"""The tenant's state: one SQLite database, shared by every route module.

Each module that owns data declares its tables as a `SCHEMA` string; `app.SCHEMAS` lists them and
`Store(path, schemas)` runs them when it opens. Modules keep their own SQL; the store only
provides the connection, a lock, transactions and hooks.

The app serves every request on one event loop, so one connection behind a lock is enough; the
lock also makes the store safe when a test drives it from another thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from ..sqlite import transaction


class Store:
    """A SQLite file with the tenant's tables; `path=None` means a temporary file.

    `schemas` are scripts of `CREATE TABLE IF NOT EXISTS ...` run at open (none: an existing file
    is used as it is).
    """

    def __init__(self, path: str | None = None, schemas: Sequence[str] = ()) -> None:
        self._temp: str | None = None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="auth0-tenant-", suffix=".sqlite")
            os.close(fd)
            self._temp = path
        else:
            # Created 0600: the tenant stores imported password hashes.
            if not os.path.exists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.user_deleted_hooks: list[Callable[[str], None]] = []
        with self.lock:
            for sql in schemas:
                self.conn.executescript(sql)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested calls join the outer one."""
        with self.lock, transaction(self.conn) as conn:
            yield conn

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
            return row

    def row(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row:
        """The row a query cannot miss (one just written, a count): `LookupError` if there is none."""
        found = self.one(sql, params)
        if found is None:
            raise LookupError("expected row not found")
        return found

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, params)

    def user_deleted(self, user_id: str) -> None:
        """Tell the modules that hold data keyed by user id (grants) that a user is gone."""
        for hook in self.user_deleted_hooks:
            hook(user_id)

    def close(self) -> None:
        with self.lock:
            self.conn.close()
        if self._temp:
            for suffix in ("", "-wal", "-shm"):
                with suppress(FileNotFoundError):
                    os.unlink(self._temp + suffix)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
