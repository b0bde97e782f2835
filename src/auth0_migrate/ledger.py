"""The ledger: one SQLite file per migration, the only code that knows its SQL.

Every side effect is recorded before and after it happens, so a run killed at any moment can be
started again with the same command and continue: users are never imported twice, never lost, and
never deleted from the source before they are verified in the target.

What it holds (schema version `SCHEMA_VERSION`):

- `meta`: the job's fingerprint (which tenants, connections and options) and the phases done.
- `users`: one row per source user: the import record, its credential until the import is
  confirmed (then cleared: the ledger keeps no hashes of imported users), the target id, status
  (`UserStatus`), failure, and the progress flags of restore, verification and cutover.
- `hashes`: the support-ticket hash file indexed on disk for the join, the first row of each user id;
  `hash_repeats`: the later rows of a user id (kept by a trigger as the file is read), and
  `hash_held`: users whose rows disagree, held back. All three are emptied once joined.
- `permissions`, `roles`, `role_members`: each user's DIRECT permissions and role memberships.
- `files`, `job_errors`: import files (users by `file_id`; bodies are rebuilt, never stored), their
  jobs and every per-user error Auth0 returned (Auth0 deletes them after 24 h).
- `problems`: input problems (bad lines, hashes with no user, listed users not in the source).

The file is created 0600 and locked (`flock`) while a run uses it. An existing `--state` that is not a
ledger is refused and left untouched (`_check_ours`): no mode change, no `.lock` beside it.

User states, and which failures a re-run retries
------------------------------------------------
Every user ends a run migrated (`MIGRATED`), not carried with a reason (`NOT_CARRIED`), or still
on its way (`UNFINISHED`, which the summary lists as not carried too). A failure is either
*final* (Auth0 or the tool refused the user's data: it stays failed until the data changes) or
*retryable* (`RETRYABLE_CODES`: the user's import job failed or expired as a whole, so nothing is
known to be wrong with the user). `retryable()` is the one place that decides; a re-run puts
retryable users back in line (`requeue_retryable`).

Hash material leaves the ledger as soon as a user is migrated or finally refused: `fail_user`
empties `credential` and takes `password_hash`/`custom_password_hash` out of `record`, the import
clears the credential of the users it confirms, and `clear_refused_hashes` sweeps every refused
row whatever path wrote it (a stage's own UPDATE, a row written refused by the export's ingest)
after transform and packing and when the ledger is closed. (Triggers did the same in one place,
but cost five times the CPU of the id map's per-user updates: they read the whole row.) A user
failed for a retryable reason keeps both, in this 0600 file, because the retry has to rebuild its
import file; nothing else could bring the hash back without the owner's files.

Choices where Auth0 is silent
-----------------------------
- A failed or expired import job says nothing about its users (Auth0 documents no partial
  outcome of a failed job), so they are retried, not refused. If such a job did create some of
  them, the retry meets them as DUPLICATED_USER/CONFLICT and the id map recognises them as
  already in the target: never imported twice.
- Users Auth0 refused one by one (the job's errors) are final: Auth0 judged their data, and the
  same data would be refused again.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final, Literal, get_args

import orjson

from .errors import LedgerError, UsageError

SCHEMA_VERSION = 1

UserStatus = Literal["exported", "ready", "conflict", "imported", "already_in_target", "held_back", "failed",
                     "invalid"]
"""Where a user stands; every status a row can hold (the `users.status` CHECK of new ledgers)."""
MIGRATED: Final = ("imported", "already_in_target")
NOT_CARRIED: Final = ("failed", "invalid", "held_back")
"""Ended without being carried, with a stage, a code and a message."""
UNFINISHED: Final = ("exported", "ready", "conflict")
"""On the way: a run that ends with users here did not finish them (the summary names each one)."""
RETRYABLE_CODES: Final = frozenset({"JOB_FAILED", "JOB_EXPIRED"})
"""Failure codes a re-run retries: the import job failed or expired as a whole (never a user's data)."""

assert set(get_args(UserStatus)) == {*MIGRATED, *NOT_CARRIED, *UNFINISHED}


def retryable(code: str | None) -> bool:
    """Whether a failed user is put back in line by the next run (job-level) or stays failed (its data)."""
    return code in RETRYABLE_CODES


def _sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


_HASH_KEYS = "'$.password_hash', '$.custom_password_hash'"
_NOT_RETRYABLE = f"(code IS NULL OR code NOT IN {_sql_list(RETRYABLE_CODES)})"
_WITHOUT_HASH = (f"credential = NULL, record = CASE WHEN instr(record, 'password_hash') = 0 THEN record "
                 f"WHEN json_valid(record) THEN json_remove(record, {_HASH_KEYS}) ELSE NULL END")
"""The SET clause that takes a user's hash material out: the credential, and any hash keys of a record
stored as it came (a --from-file user that waited for the join still has them)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    ordinal INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL UNIQUE,
    email TEXT,
    selected INTEGER NOT NULL DEFAULT 1,
    record TEXT,
    credential TEXT,
    has_credential INTEGER NOT NULL DEFAULT 0,
    hash_match TEXT,
    target_id TEXT,
    status TEXT NOT NULL DEFAULT 'exported' CHECK (status IN STATUSES),
    file_id INTEGER,
    stage TEXT, code TEXT, message TEXT,
    perms_read INTEGER NOT NULL DEFAULT 0,
    perms_restored INTEGER NOT NULL DEFAULT 0,
    profile_ok INTEGER,
    diffs TEXT,
    grants_ok INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    reapplied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS users_email ON users(email);
CREATE INDEX IF NOT EXISTS users_status ON users(status);
CREATE INDEX IF NOT EXISTS users_file ON users(file_id);
CREATE TABLE IF NOT EXISTS hashes (user_id TEXT PRIMARY KEY, email TEXT, credential TEXT, line_no INTEGER);
CREATE INDEX IF NOT EXISTS hashes_email ON hashes(email);
CREATE TABLE IF NOT EXISTS hash_repeats (user_id TEXT NOT NULL, line_no INTEGER NOT NULL, credential TEXT);
CREATE TABLE IF NOT EXISTS hash_held (user_id TEXT PRIMARY KEY, lines TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS hashes_keep_repeats BEFORE INSERT ON hashes
    WHEN EXISTS (SELECT 1 FROM hashes WHERE user_id = NEW.user_id)
    BEGIN INSERT INTO hash_repeats (user_id, line_no, credential) VALUES (NEW.user_id, NEW.line_no, NEW.credential);
    END;
CREATE TABLE IF NOT EXISTS permissions (ordinal INTEGER NOT NULL, api TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (ordinal, api, name));
CREATE TABLE IF NOT EXISTS roles (source_role_id TEXT PRIMARY KEY, name TEXT NOT NULL, target_role_id TEXT,
    members_read INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS role_members (source_role_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    assigned INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (source_role_id, ordinal));
CREATE TABLE IF NOT EXISTS files (file_id INTEGER PRIMARY KEY, bytes INTEGER, users INTEGER, job_id TEXT,
    status TEXT NOT NULL DEFAULT 'packed', attempts INTEGER NOT NULL DEFAULT 0, summary TEXT);
CREATE TABLE IF NOT EXISTS job_errors (job_id TEXT, file_id INTEGER, email TEXT, code TEXT, message TEXT,
    path TEXT);
CREATE TABLE IF NOT EXISTS problems (kind TEXT NOT NULL, ref TEXT, detail TEXT NOT NULL);
""".replace("STATUSES", _sql_list(get_args(UserStatus)))


def dumps(value: Any) -> str:
    """Compact JSON text, as import files carry it (orjson: a million records a second matter here).

    A string with a lone surrogate has no UTF-8 form; such a value falls back to ASCII escapes.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: lone surrogates, keys that are not strings
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_ours(path: str, exists: bool) -> None:
    """Refuse a `--state` that cannot be a ledger, naming it, without changing anything on disk.

    A missing folder or a path under a regular file cannot hold one; an existing file is ours only
    when it is empty (a ledger killed before its first write), or an SQLite database that is empty
    too or has our `meta` table with a schema version. Anything else (a report, someone's other
    database) is left exactly as it was: no mode change, no `.lock` beside it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not exists:
        if not os.path.isdir(folder):
            what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
            raise UsageError(f"--state {path}: cannot create the ledger there: {folder} {what}")
        return
    if not os.path.isfile(path):
        raise UsageError(f"--state {path} is not a file; give the path of a ledger file")
    if os.path.getsize(path) and not _is_ledger(path):
        raise UsageError(f"--state {path} is not an auth0-migrate ledger and was left untouched; give a new "
                         "file name, or the ledger of this migration")


def _is_ledger(path: str) -> bool:
    """Whether an existing file reads as a ledger (or an empty SQLite database), opened without side files."""
    try:
        with open(path, "rb") as f:
            if f.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                return False
        # immutable=1: no locks, no -wal or -shm created beside a file that may not be ours.
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return True  # only a header: a ledger killed before its schema reached the file
            if "meta" not in tables:
                return False
            return conn.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone() is not None
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return False


class Ledger:
    """Open (creating if needed) and lock a ledger file.

    Example::

        with Ledger.open("migration.sqlite", fingerprint) as ledger:
            ledger.phase_done("export")
    """

    def __init__(self, path: str, conn: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self.db = conn
        self._lock_fd = lock_fd

    @classmethod
    def open_readonly(cls, path: str) -> Ledger:
        """Open for reading only (`status`), beside a run that may hold the lock and be writing."""
        if not os.path.exists(path):
            raise LedgerError(f"no state file at {path}: nothing has run with this --state yet")
        if not os.path.isfile(path) or not _is_ledger(path):
            raise UsageError(f"--state {path} is not an auth0-migrate ledger")
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        ledger = cls(path, conn, None)
        version = ledger._meta_raw("schema_version")
        if version is None or int(version) > SCHEMA_VERSION:
            ledger.close()
            raise LedgerError(f"{path} is not a ledger this auth0-migrate can read (schema {version})")
        return ledger

    @classmethod
    def open(cls, path: str, fingerprint: dict[str, Any] | None = None, *, lock: bool = True,
             create: bool = True) -> Ledger:
        exists = os.path.exists(path)
        if not exists and not create:
            raise LedgerError(f"no state file at {path}: nothing has run with this --state yet")
        _check_ours(path, exists)  # before any chmod, lock or write: never touch a file that is not ours
        if not exists:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        lock_fd = None
        if lock:
            lock_fd = os.open(path + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock_fd)
                raise LedgerError(f"{path} is in use by another auth0-migrate process; wait for it to finish") from None
        conn = sqlite3.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Cleared credentials must not linger in freed pages: not every SQLite build has this on by default.
        conn.execute("PRAGMA secure_delete=ON")
        ledger = cls(path, conn, lock_fd)
        version = ledger._meta_raw("schema_version") if exists else None
        if version is not None and int(version) > SCHEMA_VERSION:
            ledger.close()
            raise LedgerError(f"{path} was written by a newer auth0-migrate (schema {version}); upgrade to use it")
        conn.executescript(SCHEMA)
        ledger.set_meta("schema_version", SCHEMA_VERSION)
        if fingerprint is not None:
            ledger._check_fingerprint(fingerprint)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.chmod(path + suffix, 0o600)
        return ledger

    def _meta_raw(self, key: str) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError:
            return None
        return None if row is None else str(row[0])

    def _check_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        stored = self.get_meta("fingerprint")
        if stored is None:
            self.set_meta("fingerprint", fingerprint)
            return
        changed = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
        if changed:
            self.close()
            raise LedgerError(f"{self.path} belongs to a different migration ({', '.join(changed)} differ); "
                              "run the original command again to resume it, or pass another --state")

    def close(self) -> None:
        if self._lock_fd is not None:
            with suppress(sqlite3.Error):  # whatever path refused a user, its hash does not outlive the run
                self.clear_refused_hashes()
            # Fold the write-ahead log into the file and empty it, so cleared hashes do not outlive the run there.
            with suppress(sqlite3.Error):
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta and phases ---------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        raw = self._meta_raw(key)
        return default if raw is None else json.loads(raw)

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, dumps(value)))

    def phase_done(self, phase: str) -> bool:
        return bool(self.get_meta(f"phase:{phase}", False))

    def mark_phase(self, phase: str) -> None:
        self.set_meta(f"phase:{phase}", True)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return self.db.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.db.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def chunks(self, sql: str, params: Sequence[Any] = (), size: int = 5000) -> Iterator[list[sqlite3.Row]]:
        """Rows of a query `... WHERE ordinal > ? ... ORDER BY ordinal LIMIT ?`, a chunk at a time (flat memory)."""
        last = -1
        while True:
            rows = self.db.execute(sql, (*params, last, size)).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1]["ordinal"]

    def add_problem(self, kind: str, ref: str | None, detail: str) -> None:
        self.db.execute("INSERT INTO problems (kind, ref, detail) VALUES (?, ?, ?)", (kind, ref, detail))

    def add_problems(self, rows: Iterable[tuple[str, str | None, str]]) -> None:
        self.db.executemany("INSERT INTO problems (kind, ref, detail) VALUES (?, ?, ?)", rows)

    def fail_user(self, ordinal: int, stage: str, code: str, message: str, status: UserStatus = "failed") -> None:
        """Record why a user was not carried; its hash goes with it unless the failure is `retryable`."""
        clear = "" if retryable(code) else f", {_WITHOUT_HASH}"
        self.db.execute(f"UPDATE users SET status = ?, stage = ?, code = ?, message = ?{clear} WHERE ordinal = ?",
                        (status, stage, code, message, ordinal))

    def clear_refused_hashes(self) -> int:
        """Take the hash material out of every finally refused user that still has some; how many.

        Through the status index: refused users are few, so this is cheap to run after each stage.
        """
        return self.db.execute(f"UPDATE users SET {_WITHOUT_HASH} WHERE (status IN {_sql_list(NOT_CARRIED)} "
                               f"AND {_NOT_RETRYABLE} AND (credential IS NOT NULL OR instr(record, 'password_hash')"
                               " > 0)) OR (status = 'conflict' AND credential IS NOT NULL)").rowcount

    def requeue_retryable(self) -> int:
        """Put users whose import job failed or expired back in line (ready, no file); how many.

        The phases after packing are opened again, so this run packs, imports, maps, restores and
        verifies them (each phase skips what it already did for the others).
        """
        retry = f"status = 'failed' AND code IN {_sql_list(RETRYABLE_CODES)}"
        with self.tx() as db:
            # A ledger of an older version cleared the credential of these users too: never import one hash-less.
            db.execute(f"UPDATE users SET code = 'HASH_NOT_KEPT', message = message || '; its password hash is no "
                       "longer in this ledger (an older auth0-migrate removed it), so it cannot be retried from "
                       f"here: run the same command with a new --state' WHERE {retry} AND has_credential = 1 "
                       "AND credential IS NULL")
            count = db.execute(f"UPDATE users SET status = 'ready', file_id = NULL, stage = NULL, code = NULL, "
                               f"message = NULL WHERE {retry}").rowcount
            if count:
                db.execute("DELETE FROM meta WHERE key IN ('phase:pack', 'phase:import', 'phase:idmap', "
                           "'idmap_export_job_id', 'phase:restore', 'phase:verify', 'phase:cutover', "
                           "'phase:reapply', 'phase:verify-after-cutover')")
        return count
