"""What the two SQLite databases of the project share: the ledger (`ledger.py`) and the local tenant's store
(`tenant/store.py`) are separate files with separate schemas, but open a write transaction the same way.

Example::

    with transaction(conn):
        conn.execute("UPDATE users SET status = 'ready' WHERE ordinal = ?", (1,))
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: every write inside lands, or none does; nested calls join the outer one.

    `BEGIN IMMEDIATE` takes the write lock up front, so a transaction never fails half-way for want
    of it. The connection must be in autocommit mode (`isolation_level=None`), as both are.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
