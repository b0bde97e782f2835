"""The ledger: one SQLite file per migration, the only code that knows its SQL.

Every side effect is recorded before and after it happens, so a run killed at any moment can be
started again with the same command and continue: users are never imported twice, never lost, and
never deleted from the source before they are verified in the target.

Stages ask the ledger in their own words (`users_ready_for_file`, `mark_imported`, `fail_file_users`,
`user_counts`...) and get small typed records back (`ImportRow`, `ImportFile`, `Role`...), never
SQL rows: no SQL text lives outside this module. The hot paths (the export's user rows, the hash
index, packing) write with `executemany` and plain tuples, as many rows a statement as before.

What it holds (schema version `SCHEMA_VERSION`):

- `meta`: the job's fingerprint (which tenants, connections and options) and the phases done.
- `users`: one row per source user: the import record, its credential until the import is
  confirmed (then cleared: the ledger keeps no hashes of imported users), the target id, status
  (`UserStatus`), failure, and the progress flags of restore, verification and cutover.
- `hashes`: the support-ticket hash file indexed on disk for the join, the first row of each user id;
  `hash_repeats`: the later rows of a user id (kept by `add_hashes` as the file is read), and
  `hash_held`: users whose rows disagree, held back. All three are emptied once joined.
- `permissions`, `roles`, `role_members`: each user's DIRECT permissions and role memberships.
- `files`, `job_errors`: import files (users by `file_id`; bodies are rebuilt, never stored), their
  state (`FileStatus`), jobs and every per-user error Auth0 returned (Auth0 deletes them after 24 h).
- `problems`: input problems (bad lines, hashes with no user, listed users not in the source).
- `holdings`: what each user holds beside profile, hash and grants (`HoldingKind`: organization
  memberships and roles, linked secondary accounts, MFA factors), each `found` -> `carried` ->
  `verified`, or `cannot` with the reason; cutover deletes a source copy only when all are verified
  (or their group is in `--allow-loss`: `unverified_holdings`).
- `identity_moves`: each linked secondary of a source user, its connection and how far it moved from the
  old primary to the new one (`IdentityStep`), so an unlink is never left without its link.
- `reread_roles`, `reread_role_members`, `reread_users`, `reread_permissions`: the source's grants as
  a grants refresh (`stages/grants_delta.py`) read them again, kept until that refresh is applied
  and verified, then emptied; `role_members` and `permissions` then hold the new state.
- `sessions`, `stage_times`, `rate_samples`: the timeline of every command that used this ledger (a resumed run
  adds a session): when each stage started and ended, the Management API calls (429s, retries) it made, and the
  rate-limit headroom the governor saw every few seconds (`timeline.py`); what `--report` draws.
- generations (schema 2): `meta.generation` is the export the users were last carried from (1: the first
  run's); a refresh (`begin_refresh` ... `finish_refresh`) exports again and records per user the
  generation that last showed it, its `delta` (new, updated, deleted), what it could not carry
  (`delta_code`, `delta_message`), the upserts due, and a digest of the hash it was imported with.

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
row whatever path wrote it (a transform's refusal, a row written refused by the export's ingest)
after transform and packing and when the ledger is closed. (Triggers did the same in one place,
but cost five times the CPU of the id map's per-user updates: they read the whole row.) A user
failed for a retryable reason keeps both, in this 0600 file, because the retry has to rebuild its
import file; nothing else could bring the hash back without the owner's files.

MFA secrets (`--mfa-secrets`: TOTP secrets, phones and emails of factors) travel in the import record's
`mfa_factors` and leave it the same way: `forget_mfa_secrets` takes them out of every user no import
will send again (imported, found in the target, refused), after the imports and when the ledger is closed.

Choices where Auth0 is silent
-----------------------------
- A failed or expired import job says nothing about its users (Auth0 documents no partial
  outcome of a failed job), so they are retried, not refused. If such a job did create some of
  them, the retry meets them as DUPLICATED_USER/CONFLICT: never imported twice; the id map
  recognises them as already in the target where their id (keep, prefix) or `--record-source-id`
  proves them this migration's, and otherwise names them `STRANGER_IN_TARGET` (never adopted on
  a guess: stages/idmap.py).
- Users Auth0 refused one by one (the job's errors) are final: Auth0 judged their data, and the
  same data would be refused again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, get_args

import orjson

from .errors import LedgerError, UsageError
from .sqlite import transaction

SCHEMA_VERSION = 2
"""2: `hash_set_date` on users, `set_date` on hashes and hash_repeats (`_migrate`), and export generations
and the delta of a refresh (`_REFRESH_COLUMNS`, `_add_refresh_columns`): a version-1 ledger gains both on open."""

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

HoldingKind = Literal["organization", "organization-role", "identity", "mfa-factor"]
"""What a user holds beside its profile, hash and grants, one row each in `holdings`: a membership of an
organization (item: the source organization id), a role in one (item: `<org id> <role id>`), a linked secondary
account (item: `<provider>|<user id>`), an MFA factor (item: its type, e.g. `totp`, `phone`, `push`)."""
HoldingState = Literal["found", "carried", "verified", "cannot"]
"""`found` in the source -> `carried` (written to the target) -> `verified` (read back there); or `cannot`
(no way to carry it, `detail` says why). Only `verified` lets cutover delete the source copy (`LOSS_GROUPS`)."""
LOSS_GROUPS: Final = {"organizations": ("organization", "organization-role"), "identities": ("identity",),
                      "mfa": ("mfa-factor",)}
"""The names `--allow-loss` takes, and the holding kinds each lets cutover delete although not verified."""

BackStep = Literal["unlinking", "unlinked", "linking", "linked", "verified"]
"""How far `rollback` has moved a secondary back to its old primary (`stages/rollback.py`), each step written before
(`unlinking`, `linking`) or after (`unlinked`, `linked`, `verified`) the call it names, as `IdentityStep`."""
IdentityStep = Literal["found", "unlinking", "unlinked", "parked", "linking", "linked"]
"""How far a linked secondary has moved from the old primary to the new one (`stages/identities.py`): each
step is written BEFORE the call it names (`unlinking`, `linking`) and after the call it confirms (`unlinked`,
`linked`), so a run killed between two calls knows which one may have happened. `parked`: unlinked and
waiting for cutover (keep in one tenant: the new primary shares the old one's id until the old is deleted)."""

FileStatus = Literal["packed", "submitting", "submitted", "done"]
"""Where an import file stands: `packed` (to send) -> `submitting` (POST about to go, or its answer lost)
-> `submitted` (job id known) -> `done` (its users settled)."""

UserRow = tuple[int, str, "str | None", "str | None", "str | None", int, "str | None", "str | None", str,
                "str | None", "str | None", "str | None", "int | None"]
"""A user as the export writes it: ordinal, source_id, email, record, credential, has_credential, hash_match,
target_id, status, stage, code, message, file_id (a plain tuple: a million of them are built in the hot path)."""


class HashRepeat(NamedTuple):
    """A later line of a user id in the hash file, beside the first line kept for it."""

    user_id: str
    line_no: int
    credential: str | None
    first_line: int
    first_credential: str | None
    set_date: str | None = None


class HeldHash(NamedTuple):
    user_id: str
    lines: str


class HashLine(NamedTuple):
    """A hash-file line named in a report: its line number and the user id it gives or matched."""

    line_no: int
    user_id: str


class WaitingUser(NamedTuple):
    """A user the export could not settle as it read it, for the transform."""

    ordinal: int
    source_id: str
    email: str | None
    record: str
    credential: str | None
    hash_set_date: str | None = None


class ImportRow(NamedTuple):
    """A user's import record and credential, as ledger JSON (`stages.transform.import_body` joins them)."""

    ordinal: int
    record: str
    credential: str | None


class UserRef(NamedTuple):
    ordinal: int
    source_id: str
    email: str | None


class ImportFile(NamedTuple):
    file_id: int
    bytes: int | None
    users: int | None
    job_id: str | None
    status: FileStatus
    attempts: int
    summary: str | None


class JobError(NamedTuple):
    """One per-user error of an import job, as Auth0 reported it."""

    email: str | None
    code: str
    message: str
    path: str


class MappedUser(NamedTuple):
    """What the id map needs of a user it found in the target."""

    record: str
    target_id: str | None
    status: UserStatus


class UserState(NamedTuple):
    status: UserStatus
    code: str | None
    message: str | None


class Role(NamedTuple):
    source_role_id: str
    name: str
    target_role_id: str | None


class Member(NamedTuple):
    ordinal: int
    target_id: str


class Permission(NamedTuple):
    ordinal: int
    api: str
    name: str


class PermissionToRestore(NamedTuple):
    ordinal: int
    target_id: str
    api: str
    name: str


class MigratedUser(NamedTuple):
    ordinal: int
    target_id: str
    diffs: str | None


class NotCarried(NamedTuple):
    """A user the summary lists: not migrated, or migrated but its source deletion not confirmed."""

    source_id: str
    email: str | None
    status: UserStatus
    stage: str | None
    code: str | None
    message: str | None
    file_id: int | None


class Difference(NamedTuple):
    source_id: str
    target_id: str | None
    email: str | None
    diffs: str


class KnownUser(NamedTuple):
    """A user of an earlier export, as a refresh's re-export compares it."""

    ordinal: int
    status: UserStatus
    record: str | None
    has_credential: int
    credential_digest: str | None
    deleted: int


class UpsertRow(NamedTuple):
    """A user to upsert: its ledger ordinal, email, carried record, and the newer hash when one goes in."""

    ordinal: int
    email: str | None
    record: str
    credential: str | None


class GoneUser(NamedTuple):
    """A migrated user the last export no longer shows."""

    ordinal: int
    source_id: str
    email: str | None
    target_id: str | None
    status: UserStatus
    target_deleted: int


class Holding(NamedTuple):
    """One thing a user holds (`HoldingKind`), and how far the migration carried it."""

    ordinal: int
    source_id: str
    target_id: str | None
    kind: HoldingKind
    item: str
    state: HoldingState
    detail: str | None


class RollbackUser(NamedTuple):
    """A user `rollback` handles: its ids, email, and (for a source copy to import again) its carried record."""

    ordinal: int
    source_id: str
    email: str | None
    target_id: str | None
    record: str | None


class Session(NamedTuple):
    """One command that used the ledger (`run`, a resumed `run`, `verify`...): what, with which options, how it ended.

    `outcome` is None while it runs, or when the process was killed before it could say."""

    session: int
    command: str
    options: str
    started: float
    ended: float | None
    outcome: str | None


class StageTime(NamedTuple):
    """A stage of a session: when it started and ended (None: still running, or the session stopped in it), and the
    Management API calls it made (both tenants), the 429s among them and the retries."""

    session: int
    seq: int
    stage: str
    started: float
    ended: float | None
    calls: int
    http_429: int
    retries: int


class RateSample(NamedTuple):
    """The lowest rate-limit headroom a tenant's answers showed since the sample before (`remaining` of `size`)."""

    session: int
    at: float
    tenant: str
    remaining: int
    size: int


class CannotGroup(NamedTuple):
    """Holdings of one kind that cannot be carried for one reason: how many, held by how many users."""

    kind: HoldingKind
    detail: str
    items: int
    users: int


class IdentityMove(NamedTuple):
    """A linked secondary (`item`: `<provider>|<user id>`, of `connection`) of a migrated primary, and its step."""

    ordinal: int
    source_id: str
    target_id: str | None
    item: str
    connection: str
    step: IdentityStep
    state: HoldingState
    deleted: int
    """1 once cutover deleted the old primary."""


_MFA_OF_DELETED = ("SELECT COUNT(*) FROM holdings h JOIN users u USING (ordinal) WHERE u.deleted = 1 AND "
                   "h.kind = 'mfa-factor' AND substr(h.item || ' ', 1, instr(h.item || ' ', ' ') - 1)")
"""MFA holdings of users cutover deleted, by factor type (`<type>` or `<type> <n>`): completed by the caller."""


class LinkBack(NamedTuple):
    """A secondary the run moved (its `IdentityMove`) and how far `rollback` has moved it back (None: not begun)."""

    move: IdentityMove
    back: BackStep | None
    reimported: int
    """1 once rollback imported the old primary into the source again (after cutover)."""


class Problem(NamedTuple):
    kind: str
    ref: str | None
    detail: str


def retryable(code: str | None) -> bool:
    """Whether a failed user is put back in line by the next run (job-level) or stays failed (its data)."""
    return code in RETRYABLE_CODES


def _sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


def _one_of(column: str, values: Iterable[str]) -> str:
    """A CHECK that `column` holds one of `values`, written `column = 'a' OR column = 'b' ...`.

    Not `column IN ('a', 'b', ...)`: SQLite builds that list into a temporary index again on every row a
    prepared statement writes, which made inserting users three times as costly (300,000 users: 5.8 s of CPU
    against 1.8 s). The two forms accept the same values; ledgers made before keep the IN form they were made with.
    """
    return " OR ".join(f"{column} = '{v}'" for v in sorted(values))


_MIGRATED = _sql_list(MIGRATED)
_HASH_KEYS = "'$.password_hash', '$.custom_password_hash'"
_NOT_RETRYABLE = f"(code IS NULL OR code NOT IN {_sql_list(RETRYABLE_CODES)})"
_WITHOUT_HASH = (f"credential = NULL, record = CASE WHEN instr(record, 'password_hash') = 0 THEN record "
                 f"WHEN json_valid(record) THEN json_remove(record, {_HASH_KEYS}) ELSE NULL END")
"""The SET clause that takes a user's hash material out: the credential, and any hash keys of a record
stored as it came (a --from-file user that waited for the join still has them)."""

_PERMISSIONS_TO_RESTORE = ("SELECT u.ordinal, u.target_id, p.api, p.name FROM users u JOIN permissions p USING "
                           f"(ordinal) WHERE u.status IN {_MIGRATED} AND u.target_id IS NOT NULL AND "
                           "u.perms_restored = 0 AND DUE ORDER BY u.ordinal")

_REREAD = (f"u.status IN {_MIGRATED} AND u.target_id IS NOT NULL AND u.deleted = 0 AND u.ordinal IN "
           "(SELECT ordinal FROM reread_users WHERE gone = 0)")
"""Users a grants refresh compares (`u`): migrated, read again, and still in the source."""
_REREAD_PERMISSIONS = _REREAD.replace("WHERE gone = 0)", "WHERE gone = 0 AND permissions = 1)")
"""Users a grants refresh compares the DIRECT permissions of (`u`): those whose permissions it read again too."""

_PARKED = ("(h.kind = 'identity' AND EXISTS (SELECT 1 FROM identity_moves m WHERE m.ordinal = h.ordinal AND "
           "m.item = h.item AND m.step = 'parked'))")
"""A holding (`h`) that is a secondary already unlinked from its old primary and waiting for cutover to link it
to the new one (keep in one tenant): deleting the old primary no longer deletes it, so it holds nothing back."""

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
    hash_set_date TEXT,
    target_id TEXT,
    status TEXT NOT NULL DEFAULT 'exported' CHECK (USER_STATUS_CHECK),
    file_id INTEGER,
    stage TEXT, code TEXT, message TEXT,
    perms_read INTEGER NOT NULL DEFAULT 0,
    perms_restored INTEGER NOT NULL DEFAULT 0,
    profile_ok INTEGER,
    diffs TEXT,
    grants_ok INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    reapplied INTEGER NOT NULL DEFAULT 0  -- written by older versions only (`_settle_two_round_grants`)
);
CREATE INDEX IF NOT EXISTS users_email ON users(email);
CREATE INDEX IF NOT EXISTS users_status ON users(status);
CREATE INDEX IF NOT EXISTS users_file ON users(file_id);
CREATE TABLE IF NOT EXISTS hashes (user_id TEXT PRIMARY KEY, email TEXT, credential TEXT, line_no INTEGER,
    set_date TEXT);
CREATE INDEX IF NOT EXISTS hashes_email ON hashes(email);
CREATE INDEX IF NOT EXISTS hashes_no_password ON hashes(user_id) WHERE credential IS NULL;  -- rare lines
CREATE TABLE IF NOT EXISTS hash_repeats (user_id TEXT NOT NULL, line_no INTEGER NOT NULL, credential TEXT,
    set_date TEXT);
CREATE TABLE IF NOT EXISTS hash_held (user_id TEXT PRIMARY KEY, lines TEXT NOT NULL);
DROP TRIGGER IF EXISTS hashes_keep_repeats;  -- older versions kept repeats so; `add_hashes` does now
CREATE TABLE IF NOT EXISTS permissions (ordinal INTEGER NOT NULL, api TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (ordinal, api, name));
CREATE TABLE IF NOT EXISTS roles (source_role_id TEXT PRIMARY KEY, name TEXT NOT NULL, target_role_id TEXT,
    members_read INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS role_members (source_role_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    assigned INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (source_role_id, ordinal));
CREATE TABLE IF NOT EXISTS files (file_id INTEGER PRIMARY KEY, bytes INTEGER, users INTEGER, job_id TEXT,
    status TEXT NOT NULL DEFAULT 'packed' CHECK (FILE_STATUS_CHECK), attempts INTEGER NOT NULL DEFAULT 0,
    summary TEXT);
CREATE TABLE IF NOT EXISTS job_errors (job_id TEXT, file_id INTEGER, email TEXT, code TEXT, message TEXT,
    path TEXT);
CREATE TABLE IF NOT EXISTS problems (kind TEXT NOT NULL, ref TEXT, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rollback (ordinal INTEGER PRIMARY KEY, reimported INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0, grants_restored INTEGER NOT NULL DEFAULT 0, code TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS holdings (ordinal INTEGER NOT NULL, kind TEXT NOT NULL CHECK (HOLDING_KIND_CHECK),
    item TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'found' CHECK (HOLDING_STATE_CHECK), detail TEXT,
    PRIMARY KEY (ordinal, kind, item));
CREATE TABLE IF NOT EXISTS sessions (session INTEGER PRIMARY KEY, command TEXT NOT NULL, options TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, outcome TEXT);
CREATE TABLE IF NOT EXISTS stage_times (session INTEGER NOT NULL, seq INTEGER NOT NULL, stage TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, calls INTEGER NOT NULL DEFAULT 0, http_429 INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (session, seq));
CREATE TABLE IF NOT EXISTS rate_samples (session INTEGER NOT NULL, at REAL NOT NULL, tenant TEXT NOT NULL,
    remaining INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identity_moves (ordinal INTEGER NOT NULL, item TEXT NOT NULL, connection TEXT NOT NULL,
    step TEXT NOT NULL DEFAULT 'found' CHECK (IDENTITY_STEP_CHECK), PRIMARY KEY (ordinal, item));
CREATE TABLE IF NOT EXISTS rollback_links (ordinal INTEGER NOT NULL, item TEXT NOT NULL, step TEXT NOT NULL,
    PRIMARY KEY (ordinal, item));
CREATE TABLE IF NOT EXISTS reread_roles (source_role_id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reread_role_members (source_role_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    PRIMARY KEY (source_role_id, ordinal));
CREATE TABLE IF NOT EXISTS reread_users (ordinal INTEGER PRIMARY KEY, gone INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0, permissions INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS reread_permissions (ordinal INTEGER NOT NULL, api TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (ordinal, api, name));
""".replace("IDENTITY_STEP_CHECK", _one_of("step", get_args(IdentityStep))).replace(
    "HOLDING_KIND_CHECK", _one_of("kind", get_args(HoldingKind))).replace(
    "HOLDING_STATE_CHECK", _one_of("state", get_args(HoldingState))).replace(
    "FILE_STATUS_CHECK", _one_of("status", get_args(FileStatus))).replace(
    "USER_STATUS_CHECK", _one_of("status", get_args(UserStatus)))


_ADDED_COLUMNS: Final = (("users", "hash_set_date", "TEXT"), ("hashes", "set_date", "TEXT"),
                          ("reread_users", "permissions", "INTEGER NOT NULL DEFAULT 1"),
                          ("hash_repeats", "set_date", "TEXT"))
"""Columns newer than schema version 1, added to an older ledger by `_migrate`."""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an older ledger's tables up to `SCHEMA` (before it runs: its triggers use the new columns).

    Each added column is nullable, so the rows already written read as "not known" (no hash date).
    (The repeats trigger older versions had is dropped by `SCHEMA`: `add_hashes` keeps repeats now.)
    """
    with transaction(conn):
        for table, column, kind in _ADDED_COLUMNS:
            names = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if names and column not in names:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                if table == "hash_repeats":
                    conn.execute("DROP TRIGGER IF EXISTS hashes_keep_repeats")

_REFRESH_COLUMNS = (
    ("generation", "INTEGER NOT NULL DEFAULT 1"),  # the export generation that last showed the user
    ("delta", "TEXT"),  # this refresh's change: 'new', 'updated' or 'deleted'
    ("delta_code", "TEXT"),  # a change this refresh could not carry, and why
    ("delta_message", "TEXT"),
    ("upsert_profile", "INTEGER NOT NULL DEFAULT 0"),  # 1: the carried record is due in a profile upsert
    ("upsert_hash", "INTEGER NOT NULL DEFAULT 0"),  # 1: the newer hash (in `credential`) is due in an upsert
    ("credential_digest", "TEXT"),  # SHA-256 of the credential JSON the user was imported with
    ("target_deleted", "INTEGER NOT NULL DEFAULT 0"),  # deleted from the target by --propagate-deletes
)
"""Columns of `users` added by schema 2 (`_add_refresh_columns` adds them to a version-1 ledger)."""

DELTA_PROBLEM_KINDS: Final = ("deleted-in-source", "delta-not-carried", "delta-delete", "permissions-not-read-again")
"""Problem kinds a refresh writes; a new refresh starts without those of the one before."""
_REFRESH_PHASES: Final = ("hashes-loaded", "hashes", "grants", "transform", "pack", "import", "idmap",
                          "restore", "verify", "cutover", "reapply", "verify-after-cutover", "refresh-export",
                          "refresh-deletes", "refresh-upsert")


def _sha256(text: str | None) -> str | None:
    return None if text is None else credential_digest(text)


REFUSED_DIGEST: Final = "refused:"
"""Prefix of a `credential_digest` whose hash the target refused (the target holds an older one)."""


def _hashes_for(db: sqlite3.Connection, user_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    if not user_ids:
        return {}
    return {r[0]: (r[1], r[2]) for r in db.execute(
        "SELECT user_id, credential, set_date FROM hashes WHERE user_id IN (SELECT value FROM json_each(?)) "
        "AND user_id NOT IN (SELECT user_id FROM hash_held)", (dumps(user_ids),))}


class HashReader:
    """The hash rows of a ledger, read by another process while the ledger's own process writes (a worker of the
    export stage, `stages/ingest.py`): a read-only connection, which sees the last committed transaction."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(Path(os.path.abspath(path)).as_uri() + "?mode=ro", uri=True)

    def hashes_for(self, user_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
        return _hashes_for(self.db, user_ids)


def credential_digest(credential: str) -> str:
    """SHA-256 of a credential's ledger JSON: what the ledger keeps of a hash once the user is imported."""
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()


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
             create: bool = True, may_change: tuple[str, ...] = ()) -> Ledger:
        """`may_change`: fingerprint keys that may differ from the stored ones (then stored anew), e.g. a
        refresh's newer hash file."""
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
        if not exists:
            # A user's row holds its import record (about 1 KB): pages of 16 KiB take fourteen where 4 KiB take
            # three, which makes a million inserts about a fifth cheaper. Only a new file can choose.
            conn.execute("PRAGMA page_size=16384")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Cleared credentials must not linger in freed pages: not every SQLite build has this on by default.
        conn.execute("PRAGMA secure_delete=ON")
        conn.create_function("sha256", 1, _sha256, deterministic=True)
        ledger = cls(path, conn, lock_fd)
        version = ledger._meta_raw("schema_version") if exists else None
        if version is not None and int(version) > SCHEMA_VERSION:
            ledger.close()
            raise LedgerError(f"{path} was written by a newer auth0-migrate (schema {version}); upgrade to use it")
        _migrate(conn)
        conn.executescript(SCHEMA)
        ledger._add_refresh_columns()
        ledger.set_meta("schema_version", SCHEMA_VERSION)
        if fingerprint is not None:
            ledger._check_fingerprint(fingerprint, may_change)
            ledger._settle_two_round_grants()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.chmod(path + suffix, 0o600)
        return ledger

    def _settle_two_round_grants(self) -> None:
        """A ledger an older auth0-migrate wrote under shared ids (`grants_after_cutover`) wrote the grants before
        cutover (phase `restore`) and again after it (`reapplied`, `role_members.assigned` 2, phases `reapply` and
        `verify-after-cutover`). Resumed here, its deleted users not yet given their grants again are due, and
        those whose grants were not read back after cutover are to verify, as `record_deletions` makes them now;
        once, as the phases that told are forgotten."""
        if not (self.grants_after_cutover and self.phase_done("restore")):
            return
        with self.tx():
            if not self.phase_done("reapply"):
                self.db.execute("UPDATE role_members SET assigned = 0 WHERE assigned = 1 AND ordinal IN "
                                "(SELECT ordinal FROM users WHERE deleted = 1 AND reapplied = 0)")
                self.db.execute("UPDATE users SET perms_restored = 0 WHERE deleted = 1 AND reapplied = 0")
            if not self.phase_done("verify-after-cutover"):
                self.db.execute("UPDATE users SET grants_ok = NULL WHERE deleted = 1")
            self.forget_meta(*(f"phase:{p}" for p in ("restore", "verify", "reapply", "verify-after-cutover")))

    def _add_refresh_columns(self) -> None:
        """Schema 1 -> 2: the refresh's columns, added to a ledger that lacks them (its users: generation 1)."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(users)")}
        for name, decl in _REFRESH_COLUMNS:
            if name not in have:
                self.db.execute(f"ALTER TABLE users ADD COLUMN {name} {decl}")  # names from the fixed table above

    def has_refresh_columns(self) -> bool:
        """Whether this ledger (maybe opened read-only) has schema 2's refresh columns."""
        return "delta" in {r[1] for r in self.db.execute("PRAGMA table_info(users)")}

    @staticmethod
    def snapshot(path: str, copy: str) -> None:
        """Copy a ledger (read-only, beside a run that may use it) to `copy`, created 0600: what a plan works on."""
        if not os.path.isfile(path) or not _is_ledger(path):
            raise LedgerError(f"no ledger at {path}: a refresh needs the ledger of an earlier run (--state)")
        os.close(os.open(copy, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        src = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    @staticmethod
    def remove(path: str) -> None:
        """Delete a throw-away ledger (closed) and the files beside it (SQLite's WAL and shared memory, the lock),
        those that exist."""
        for suffix in ("", "-wal", "-shm", ".lock"):
            with suppress(FileNotFoundError):
                os.unlink(path + suffix)

    def _meta_raw(self, key: str) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError:
            return None
        return None if row is None else str(row[0])

    def _check_fingerprint(self, fingerprint: dict[str, Any], may_change: tuple[str, ...] = ()) -> None:
        stored = self.get_meta("fingerprint")
        if stored is None:
            self.set_meta("fingerprint", fingerprint)
            return
        changed = sorted(k for k in set(stored) | set(fingerprint)
                         if stored.get(k) != fingerprint.get(k) and k not in may_change)
        if changed:
            self.close()
            raise LedgerError(f"{self.path} belongs to a different migration ({', '.join(changed)} differ); "
                              "run the original command again to resume it, or pass another --state")
        if stored != fingerprint:
            self.set_meta("fingerprint", fingerprint)

    def close(self) -> None:
        if self._lock_fd is not None:
            with suppress(sqlite3.Error):  # whatever path refused a user, its hash does not outlive the run
                self.clear_refused_hashes()
                self.forget_mfa_secrets()
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
    def tx(self) -> Iterator[None]:
        """One transaction (nested calls join the outer one): every write inside lands, or none does."""
        with transaction(self.db):
            yield

    @contextmanager
    def indexes_deferred(self, *names: str) -> Iterator[None]:
        """Inside a transaction: drop these secondary indexes, and build them again at the end.

        A bulk load of a million rows then writes each row once, and each index is built by one sort
        instead of a million random inserts into a tree much larger than the page cache. Nothing may
        look a row up through these indexes meanwhile (it would scan). Transactional: a killed run
        rolls the drop back with the rows.
        """
        schema = {name: sql for name, sql in self.db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN "
            f"({','.join('?' * len(names))})", names)}
        for name in schema:
            self.db.execute(f'DROP INDEX "{name}"')
        try:
            yield
        finally:
            for sql in schema.values():
                self.db.execute(sql)

    def _chunks(self, sql: str, size: int) -> Iterator[list[sqlite3.Row]]:
        """Rows of a query `... WHERE ordinal > ? ... ORDER BY ordinal LIMIT ?`, a chunk at a time (flat memory)."""
        last = -1
        while True:
            rows = self.db.execute(sql, (last, size)).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1]["ordinal"]

    def forget_meta(self, *keys: str) -> None:
        """Remove meta keys (a phase opened again, a job id no longer to follow)."""
        self.db.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in keys])

    def reopen_phase(self, phase: str) -> None:
        self.forget_meta(f"phase:{phase}")

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
        with self.tx():
            # A ledger of an older version cleared the credential of these users too: never import one hash-less.
            self.db.execute(f"UPDATE users SET code = 'HASH_NOT_KEPT', message = message || '; its password hash is "
                            "no longer in this ledger (an older auth0-migrate removed it), so it cannot be retried "
                            f"from here: run the same command with a new --state' WHERE {retry} "
                            "AND has_credential = 1 AND credential IS NULL")
            count = self.db.execute("UPDATE users SET status = 'ready', file_id = NULL, stage = NULL, code = NULL, "
                                    f"message = NULL WHERE {retry}").rowcount
            if count:
                self.forget_meta("phase:pack", "phase:import", "phase:idmap", "idmap_export_job_id", "phase:restore",
                                 "phase:verify", "phase:cutover", "phase:reapply", "phase:verify-after-cutover")
        return count

    # -- export (stage 1) --------------------------------------------------------------------------

    def reset_export(self) -> None:
        """Forget what an interrupted export wrote: its users, their files and grants, its problems."""
        for sql in ("DELETE FROM users", "DELETE FROM files", "DELETE FROM permissions", "DELETE FROM role_members",
                    "DELETE FROM problems WHERE kind IN ('export', 'users-file', 'users-list', 'not-in-source', "
                    "'stale-hash')"):
            self.db.execute(sql)

    def add_users(self, rows: Sequence[UserRow]) -> None:
        """Write exported users (a row already written stays as it is: a resumed export reads them again)."""
        self.db.executemany(
            "INSERT OR IGNORE INTO users (ordinal, source_id, email, record, credential, has_credential, "
            "hash_match, target_id, status, stage, code, message, file_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # -- hashes (stage 2) --------------------------------------------------------------------------

    def reset_hashes(self) -> None:
        for sql in ("DELETE FROM hashes", "DELETE FROM problems WHERE kind IN ('hash-file', 'hash-repeat')",
                    "DELETE FROM hash_repeats", "DELETE FROM hash_held"):
            self.db.execute(sql)

    def add_hashes(self, rows: Sequence[tuple[str, str | None, str | None, int, str | None]]) -> None:
        """(user_id, email, credential JSON, line_no, password_set_date) of hash-file lines; the first line of a
        user id stays, later ones go to `hash_repeats` for `hash_repeats()`.

        A repeat is rare, so it is looked for only when the insert kept fewer rows than it was given (a trigger
        that asked on every row made the load of a million lines a third slower).
        """
        before = self.db.total_changes
        self.db.executemany("INSERT OR IGNORE INTO hashes (user_id, email, credential, line_no, set_date) "
                            "VALUES (?, ?, ?, ?, ?)", rows)
        if self.db.total_changes - before == len(rows):
            return
        kept = {r[0]: r[1] for r in self.db.execute(
            "SELECT user_id, line_no FROM hashes WHERE user_id IN (SELECT value FROM json_each(?))",
            (dumps([row[0] for row in rows]),))}
        self.db.executemany("INSERT INTO hash_repeats (user_id, line_no, credential, set_date) VALUES (?, ?, ?, ?)",
                            [(user_id, line_no, credential, set_date) for user_id, _, credential, line_no, set_date
                             in rows if kept[user_id] != line_no])

    def hash_repeats(self) -> list[HashRepeat]:
        return [HashRepeat(*r) for r in self.db.execute(
            "SELECT r.user_id, r.line_no, r.credential, h.line_no, h.credential, r.set_date FROM hash_repeats r "
            "JOIN hashes h USING (user_id) ORDER BY r.user_id, r.line_no")]

    def hold_hash(self, user_id: str, lines: str) -> None:
        """A user id whose lines disagree: no hash kept for it, and listed for `hold_back_conflicting_hashes`."""
        self.db.execute("UPDATE hashes SET credential = NULL WHERE user_id = ?", (user_id,))
        self.db.execute("INSERT OR REPLACE INTO hash_held (user_id, lines) VALUES (?, ?)", (user_id, lines))

    def use_hash_line(self, user_id: str, credential: str | None, line_no: int, set_date: str | None = None) -> None:
        self.db.execute("UPDATE hashes SET credential = ?, line_no = ?, set_date = ? WHERE user_id = ?",
                        (credential, line_no, set_date, user_id))

    def forget_hash_repeats(self) -> None:
        self.db.execute("DELETE FROM hash_repeats")

    def hashes_for(self, user_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """{user id: (credential JSON or None, password_set_date or None)} of those the hash file gives a hash
        to use (`hash_for`, for many users in one query)."""
        return _hashes_for(self.db, user_ids)

    def hash_for(self, source_id: str) -> tuple[bool, str | None, str | None]:
        """(whether the hash file gives this user id a hash to use, that row's credential JSON or None, and its
        password_set_date or None)."""
        found = _hashes_for(self.db, [source_id]).get(source_id)
        return (False, None, None) if found is None else (True, *found)

    def held_hashes(self) -> list[HeldHash]:
        return [HeldHash(*r) for r in self.db.execute("SELECT user_id, lines FROM hash_held")]

    def hold_back_conflicting_hashes(self, rows: Iterable[tuple[str, str]]) -> None:
        """(message, source_id): exported users whose hash lines disagree, held back with the message."""
        self.db.executemany("UPDATE users SET status = 'held_back', stage = 'hashes', code = 'CONFLICTING_HASHES', "
                            "message = ?, hash_match = 'conflict' WHERE source_id = ? AND status = 'exported'", rows)

    def join_hashes(self) -> None:
        """Give the exported users their hash: by id, then by email when unambiguous on both sides; the rest
        are marked as matched by nothing."""
        # (has_credential is set in the same statement: a second pass would rewrite every matched row again)
        self.db.execute("UPDATE users SET (credential, has_credential, hash_match, hash_set_date) = (SELECT "
                        "h.credential, h.credential IS NOT NULL, 'id', h.set_date FROM hashes h "
                        "WHERE h.user_id = users.source_id) "
                        "WHERE status = 'exported' AND source_id IN (SELECT user_id FROM hashes)")
        self.db.execute("""
            WITH free AS (SELECT * FROM hashes WHERE user_id NOT IN (SELECT source_id FROM users)
                          AND email IS NOT NULL AND user_id NOT IN (SELECT user_id FROM hash_held)),
                 free_once AS (SELECT email FROM free GROUP BY email HAVING COUNT(*) = 1),
                 users_once AS (SELECT email FROM users WHERE hash_match IS NULL AND email IS NOT NULL
                                GROUP BY email HAVING COUNT(*) = 1)
            UPDATE users SET (credential, has_credential, hash_match, hash_set_date) =
                             (SELECT f.credential, f.credential IS NOT NULL, 'email', f.set_date FROM free f
                              WHERE f.email = users.email)
            WHERE hash_match IS NULL AND status = 'exported' AND email IN (SELECT email FROM free_once)
                  AND email IN (SELECT email FROM users_once)""")
        # Only a user stored unjoined (`exported`) can lack a match here: the status index finds them, where
        # `hash_match IS NULL` alone read every row (a million records, seconds).
        self.db.execute("UPDATE users SET hash_match = 'none' WHERE status = 'exported' AND hash_match IS NULL")

    def hash_lines_without_password(self) -> list[HashLine]:
        """Lines that matched a user (by id or email) but carry no passwordHash, by line number.

        Read from the few such lines (`hashes_no_password`, a partial index) outward: CROSS JOIN keeps SQLite
        from reading every user instead (a million records, about 2 s)."""
        return [HashLine(*r) for r in self.db.execute("""
            SELECT h.line_no, u.source_id FROM hashes h CROSS JOIN users u ON u.source_id = h.user_id
            WHERE h.credential IS NULL AND u.hash_match = 'id'
            UNION ALL
            SELECT h.line_no, u.source_id FROM hashes h CROSS JOIN users u ON u.email = h.email
            WHERE h.credential IS NULL AND u.hash_match = 'email' AND h.user_id NOT IN (SELECT source_id FROM users)
            ORDER BY 1""")]

    def hashes_without_user(self) -> list[HashLine]:
        return [HashLine(r[1], r[0]) for r in self.db.execute(
            "SELECT user_id, line_no FROM hashes WHERE user_id NOT IN (SELECT source_id FROM users) "
            "AND (email IS NULL OR email NOT IN (SELECT email FROM users WHERE hash_match = 'email'))")]

    def hash_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM hashes").fetchone()[0])

    def forget_hashes(self) -> None:
        """Empty the hash index once joined: hashes then live only on the rows of users still to import."""
        self.db.execute("DELETE FROM hashes")
        self.db.execute("DELETE FROM hash_held")

    # -- grants (stage 3) --------------------------------------------------------------------------

    def ordinals_by_source_id(self) -> dict[str, int]:
        return {r[1]: r[0] for r in self.db.execute("SELECT ordinal, source_id FROM users")}

    def role_members_read(self, role_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM roles WHERE source_role_id = ? AND members_read = 1",
                               (role_id,)).fetchone() is not None

    def add_role(self, role_id: str, name: str, members: Iterable[int]) -> None:
        """A source role and its members (ordinals), read in full."""
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO roles (source_role_id, name, members_read) VALUES (?, ?, 1)",
                            (role_id, name))
            self.db.executemany("INSERT OR IGNORE INTO role_members (source_role_id, ordinal) VALUES (?, ?)",
                                [(role_id, m) for m in members])

    def users_to_read_permissions(self) -> list[tuple[int, str]]:
        """(ordinal, source id) of users whose DIRECT permissions are still to read (not refused ones)."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT ordinal, source_id FROM users WHERE perms_read = 0 AND status NOT IN ('held_back', 'invalid') "
            "ORDER BY ordinal")]

    def add_permissions(self, read: Iterable[tuple[int, list[tuple[str, str]]]]) -> None:
        """(ordinal, [(API identifier, permission name)]) of users whose permissions were read."""
        with self.tx():
            for ordinal, perms in read:
                self.db.executemany("INSERT OR IGNORE INTO permissions (ordinal, api, name) VALUES (?, ?, ?)",
                                    [(ordinal, api, name) for api, name in perms])
                self.db.execute("UPDATE users SET perms_read = 1 WHERE ordinal = ?", (ordinal,))

    # -- transform and pack (stage 4) --------------------------------------------------------------

    def count_users(self, status: UserStatus) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM users WHERE status = ?", (status,)).fetchone()[0])

    def users_to_transform(self, size: int) -> Iterator[list[WaitingUser]]:
        for rows in self._chunks("SELECT ordinal, source_id, email, record, credential, hash_set_date FROM users "
                                 "WHERE status = "
                                 "'exported' AND ordinal > ? ORDER BY ordinal LIMIT ?", size):
            yield [WaitingUser(*r) for r in rows]

    def record_transformed(self, ready: Iterable[tuple[str | None, str | None, int, str | None, int]],
                           refused: Iterable[tuple[UserStatus, str, str | None, str | None, int]],
                           problems: Iterable[tuple[str, str | None, str]] = ()) -> None:
        """Ready users (record, credential, has_credential, target_id, ordinal) and refused ones (status,
        stage, code, message, ordinal; their credential goes), with the problems noted on the way, at once."""
        with self.tx():
            self.add_problems(problems)
            self.db.executemany("UPDATE users SET record = ?, credential = ?, has_credential = ?, target_id = ?, "
                                "status = 'ready' WHERE ordinal = ?", ready)
            self.db.executemany("UPDATE users SET status = ?, stage = ?, code = ?, message = ?, credential = NULL"
                                " WHERE ordinal = ?", refused)

    def users_to_pack(self, size: int) -> Iterator[list[ImportRow]]:
        """Ready users in no import file yet, in source order, a chunk at a time."""
        for rows in self._chunks("SELECT ordinal, record, credential FROM users WHERE status = 'ready' AND "
                                 "file_id IS NULL AND ordinal > ? ORDER BY ordinal LIMIT ?", size):
            yield [ImportRow(*r) for r in rows]

    def ready_users_sharing_email(self) -> list[UserRef]:
        """Ready users whose email another user has, by email then source order."""
        return [UserRef(*r) for r in self.db.execute(
            "SELECT ordinal, source_id, email FROM users WHERE status = 'ready' AND email IN "
            "(SELECT email FROM users WHERE email IS NOT NULL GROUP BY email HAVING COUNT(*) > 1) "
            "ORDER BY email, ordinal")]

    def take_out_of_file(self, ordinal: int) -> None:
        self.db.execute("UPDATE users SET file_id = NULL WHERE ordinal = ?", (ordinal,))

    def next_file_id(self) -> int:
        return int(self.db.execute("SELECT MAX(file_id) FROM files").fetchone()[0] or 0) + 1

    def add_file(self, file_id: int, size: int | None, users: int, ordinals: Iterable[int] = ()) -> None:
        """An import file of `users` users (`size` bytes when known), and the users given to it."""
        self.db.execute("INSERT INTO files (file_id, bytes, users) VALUES (?, ?, ?)", (file_id, size, users))
        self.db.executemany("UPDATE users SET file_id = ? WHERE ordinal = ?", [(file_id, o) for o in ordinals])

    # -- import (stage 5) --------------------------------------------------------------------------

    def files_to_import(self) -> list[int]:
        """Files not done, those with a job already submitted first."""
        return [r[0] for r in self.db.execute(
            "SELECT file_id FROM files WHERE status != 'done' ORDER BY (status = 'submitted') DESC, file_id")]

    def file(self, file_id: int) -> ImportFile | None:
        row = self.db.execute("SELECT file_id, bytes, users, job_id, status, attempts, summary FROM files "
                              "WHERE file_id = ?", (file_id,)).fetchone()
        return None if row is None else ImportFile(*row)

    def files(self) -> list[ImportFile]:
        return [ImportFile(*r) for r in self.db.execute(
            "SELECT file_id, bytes, users, job_id, status, attempts, summary FROM files ORDER BY file_id")]

    def users_ready_for_file(self, file_id: int) -> list[ImportRow]:
        return [ImportRow(*r) for r in self.db.execute(
            "SELECT ordinal, record, credential FROM users WHERE file_id = ? AND status = 'ready' ORDER BY ordinal",
            (file_id,))]

    def users_of_file(self, file_id: int) -> list[ImportRow]:
        """Every user of a file, whatever its state (as it was packed)."""
        return [ImportRow(*r) for r in self.db.execute(
            "SELECT ordinal, record, credential FROM users WHERE file_id = ? ORDER BY ordinal", (file_id,))]

    def ready_emails_of_file(self, file_id: int) -> dict[str, int]:
        """email -> ordinal of a file's users still ready (those with an email)."""
        return {r[1]: r[0] for r in self.db.execute(
            "SELECT ordinal, email FROM users WHERE file_id = ? AND status = 'ready' AND email IS NOT NULL "
            "ORDER BY ordinal", (file_id,))}

    def count_attempt(self, file_id: int, size: int) -> None:
        """An upload of this file is about to be built and sent (`size` bytes)."""
        self.db.execute("UPDATE files SET attempts = attempts + 1, bytes = ? WHERE file_id = ?", (size, file_id))

    def file_submitting(self, file_id: int, sent_at: float) -> None:
        self.db.execute("UPDATE files SET status = 'submitting', summary = ? WHERE file_id = ?",
                        (dumps({"sent_at": sent_at}), file_id))

    def file_submitted(self, file_id: int, job_id: str) -> None:
        self.db.execute("UPDATE files SET status = 'submitted', job_id = ?, summary = NULL WHERE file_id = ?",
                        (job_id, file_id))

    def file_refused(self, file_id: int, *, forget_summary: bool = False) -> None:
        """The upload was refused, so no job was made: the file is to send again (`packed`)."""
        if forget_summary:
            self.db.execute("UPDATE files SET status = 'packed', summary = NULL WHERE file_id = ?", (file_id,))
        else:
            self.db.execute("UPDATE files SET status = 'packed' WHERE file_id = ?", (file_id,))

    def file_job_failed(self, file_id: int, job_status: str | None = None) -> None:
        """The file's job failed or expired as a whole: to send again; `job_status` is kept for the last failure."""
        if job_status is None:
            self.db.execute("UPDATE files SET status = 'packed', job_id = NULL WHERE file_id = ?", (file_id,))
        else:
            self.db.execute("UPDATE files SET status = 'packed', job_id = NULL, summary = ? WHERE file_id = ?",
                            (dumps({"status": job_status}), file_id))

    def file_done(self, file_id: int) -> None:
        self.db.execute("UPDATE files SET status = 'done' WHERE file_id = ?", (file_id,))

    def submitted_job_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT job_id FROM files WHERE status = 'submitted' AND job_id IS NOT NULL")]

    def record_settled(self, file_id: int, made: Sequence[int], older: Sequence[int], left: int) -> None:
        """A lost upload settled from the target: users its job `made`, users found `older` than the file
        (already in the target), and `left` users to send again (the file is done when none)."""
        with self.tx():
            self.db.executemany("UPDATE users SET status = 'imported', credential_digest = sha256(credential), "
                                "credential = NULL WHERE ordinal = ?", [(o,) for o in made])
            self.db.executemany("UPDATE users SET status = 'conflict', stage = 'import', code = 'DUPLICATED_USER', "
                                "message = 'already in the target before this file was sent', credential = NULL "
                                "WHERE ordinal = ?", [(o,) for o in older])
            self.db.execute("UPDATE files SET status = ?, job_id = NULL, summary = ? WHERE file_id = ?",
                            ("done" if left == 0 else "packed",
                             dumps({"settled": len(made) + len(older), "to_send": left}), file_id))

    def split_file(self, file_id: int, moved: Sequence[int], kept: int) -> int:
        """Move these users of a file to a new file (after a 413); the old keeps `kept` users. The new id."""
        with self.tx():
            new_id = self.next_file_id()
            self.add_file(new_id, None, len(moved), moved)
            self.db.execute("UPDATE files SET status = 'packed', users = ?, attempts = attempts - 1 "
                            "WHERE file_id = ?", (kept, file_id))
        return new_id

    def fail_file_users(self, file_id: int, code: str, message: str) -> None:
        """Every user of the file still ready fails with this code; the file is done."""
        with self.tx():
            for (ordinal,) in self.db.execute("SELECT ordinal FROM users WHERE file_id = ? AND status = 'ready'",
                                              (file_id,)).fetchall():
                self.fail_user(ordinal, "import", code, message)
            self.file_done(file_id)

    def emails_of_file(self, file_id: int) -> dict[str | None, int]:
        return {r[1]: r[0] for r in self.db.execute("SELECT ordinal, email FROM users WHERE file_id = ?",
                                                    (file_id,))}

    def add_job_error(self, job_id: str, file_id: int, error: JobError) -> None:
        self.db.execute("INSERT INTO job_errors (job_id, file_id, email, code, message, path) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (job_id, file_id, error.email, error.code, error.message, error.path))

    def mark_conflict(self, ordinal: int, code: str, message: str) -> None:
        """The import said a user like this one exists already: for the id map to confirm."""
        self.db.execute("UPDATE users SET status = 'conflict', stage = 'import', code = ?, message = ?, "
                        "credential = NULL WHERE ordinal = ?", (code, message, ordinal))

    def mark_imported(self, file_id: int, summary: dict[str, Any]) -> None:
        """The file's job completed: its users still ready are imported (credential cleared); the file is done."""
        self.db.execute("UPDATE users SET status = 'imported', credential_digest = sha256(credential), "
                        "credential = NULL WHERE file_id = ? AND status = 'ready'", (file_id,))
        self.db.execute("UPDATE files SET status = 'done', summary = ? WHERE file_id = ?", (dumps(summary), file_id))

    # -- id map (stage 6) --------------------------------------------------------------------------

    def emails_to_map(self) -> dict[str, int]:
        """email -> ordinal of users the import made or met in the target (to find there)."""
        return {r[1]: r[0] for r in self.db.execute(
            f"SELECT ordinal, email FROM users WHERE status IN {_sql_list((*MIGRATED, 'conflict'))} "
            "AND email IS NOT NULL AND target_deleted = 0")}

    def user_to_map(self, ordinal: int) -> MappedUser | None:
        row = self.db.execute("SELECT record, target_id, status FROM users WHERE ordinal = ?", (ordinal,)).fetchone()
        return None if row is None else MappedUser(*row)

    def user_state(self, ordinal: int) -> UserState | None:
        row = self.db.execute("SELECT status, code, message FROM users WHERE ordinal = ?", (ordinal,)).fetchone()
        return None if row is None else UserState(*row)

    def id_mismatch(self, ordinal: int, found_id: str, message: str) -> None:
        self.db.execute("UPDATE users SET status = 'failed', stage = 'idmap', code = 'ID_MISMATCH', message = ?, "
                        "target_id = ? WHERE ordinal = ?", (message, found_id, ordinal))

    def mark_found(self, ordinal: int, target_id: str, status: UserStatus, diffs: list[str]) -> None:
        """The user is in the target with this id; its profile differs in `diffs` (field names)."""
        self.db.execute("UPDATE users SET target_id = ?, status = ?, profile_ok = ?, diffs = ? WHERE ordinal = ?",
                        (target_id, status, 0 if diffs else 1, json.dumps(diffs) if diffs else None, ordinal))

    # -- restore and verify (stages 7, 8) ----------------------------------------------------------

    def roles(self) -> list[Role]:
        return [Role(*r) for r in self.db.execute("SELECT source_role_id, name, target_role_id FROM roles")]

    def map_roles(self, mapping: Iterable[tuple[str, str | None]] | None) -> None:
        """(source role id, target role id or None) pairs; None: one tenant, each role is itself."""
        with self.tx():
            if mapping is None:
                self.db.execute("UPDATE roles SET target_role_id = source_role_id")
            else:
                self.db.executemany("UPDATE roles SET target_role_id = ? WHERE source_role_id = ?",
                                    [(t, s) for s, t in mapping])

    def forget_problems(self, kinds: Iterable[str]) -> None:
        """Drop every problem of these kinds (a stage that finds them afresh on each run records them again)."""
        self.db.executemany("DELETE FROM problems WHERE kind = ?", [(k,) for k in kinds])

    def add_problem_once(self, kind: str, ref: str, detail: str) -> None:
        if self.db.execute("SELECT 1 FROM problems WHERE kind = ? AND ref = ?", (kind, ref)).fetchone() is None:
            self.add_problem(kind, ref, detail)

    # -- restore and verify (stages 7, 8; with shared ids after cutover) ---------------------------

    @property
    def grants_after_cutover(self) -> bool:
        """Whether this migration writes and verifies grants only after cutover: `keep` in one tenant.

        There the target user has its source copy's id, and Auth0 keys role memberships and DIRECT
        permissions by the id: until the source copy is deleted the shared id holds the source's grants
        already, so a write is a no-op and a read-back reads the source copy (a check that cannot fail).
        So a user's grants are due (`members_to_assign`, `permissions_to_restore`) once its source copy is
        deleted, each deletion makes them due again (`record_deletions`), and they count as verified
        (`user_counts`) only when read back after it (`users_with_grants_to_verify`). Told from the
        fingerprint (`user_ids` keep, the same tenant on both sides), so `status` knows it too.
        """
        fingerprint = self.get_meta("fingerprint") or {}
        return bool(fingerprint.get("user_ids") == "keep" and fingerprint.get("source") == fingerprint.get("target"))

    def _due(self) -> str:
        """The condition (on `users`) for a migrated user's grants to be written and verified now."""
        return "deleted = 1" if self.grants_after_cutover else "1 = 1"  # only `users` has `deleted`

    def members_to_assign(self, source_role_id: str) -> list[Member]:
        """Migrated members of a role not yet given it in the target (with shared ids: once their copy is deleted)."""
        return [Member(*r) for r in self.db.execute(
            "SELECT m.ordinal, u.target_id FROM role_members m JOIN users u USING (ordinal) "
            f"WHERE m.source_role_id = ? AND m.assigned = 0 AND u.status IN {_MIGRATED} "
            f"AND u.target_id IS NOT NULL AND {self._due()} ORDER BY m.ordinal", (source_role_id,))]

    def mark_assigned(self, source_role_id: str, ordinals: Iterable[int]) -> None:
        with self.tx():
            self.db.executemany("UPDATE role_members SET assigned = 1 WHERE source_role_id = ? AND ordinal = ?",
                                [(source_role_id, o) for o in ordinals])

    def permissions_to_restore(self) -> list[PermissionToRestore]:
        """DIRECT permissions of migrated users not yet written to the target (with shared ids: once their copy is
        deleted)."""
        return [PermissionToRestore(*r) for r in self.db.execute(
            _PERMISSIONS_TO_RESTORE.replace("DUE", self._due()))]

    def mark_permissions_restored(self, ordinals: Iterable[int]) -> None:
        with self.tx():
            self.db.executemany("UPDATE users SET perms_restored = 1 WHERE ordinal = ?", [(o,) for o in ordinals])

    def mark_without_permissions_restored(self) -> None:
        """Migrated users with no DIRECT permissions need no write: restored as they are (once due)."""
        self.db.execute(f"UPDATE users SET perms_restored = 1 WHERE status IN {_MIGRATED} AND {self._due()} "
                        "AND ordinal NOT IN (SELECT ordinal FROM permissions)")

    def role_memberships(self) -> list[tuple[str, int]]:
        """(source role id, ordinal) of every membership read from the source."""
        return [(r[0], r[1]) for r in self.db.execute("SELECT source_role_id, ordinal FROM role_members")]

    def permissions(self) -> list[Permission]:
        return [Permission(*r) for r in self.db.execute("SELECT ordinal, api, name FROM permissions")]

    def migrated_users(self) -> list[MigratedUser]:
        """Migrated users with a target id, in source order, with the profile differences found so far."""
        return [MigratedUser(*r) for r in self.db.execute(
            f"SELECT ordinal, target_id, diffs FROM users WHERE status IN {_MIGRATED} AND target_id IS NOT NULL "
            "ORDER BY ordinal")]

    def ordinals_already_in_target(self) -> set[int]:
        """Migrated users the target held before this run (not inserted by its import)."""
        return {r[0] for r in self.db.execute("SELECT ordinal FROM users WHERE status = 'already_in_target'")}

    def users_with_grants_to_verify(self) -> list[MigratedUser]:
        """With shared ids (`grants_after_cutover`): migrated users whose source copy is deleted and whose grants
        were not read back since; else none."""
        if not self.grants_after_cutover:
            return []
        return [MigratedUser(*r) for r in self.db.execute(
            f"SELECT ordinal, target_id, diffs FROM users WHERE status IN {_MIGRATED} AND target_id IS NOT NULL "
            "AND deleted = 1 AND grants_ok IS NULL ORDER BY ordinal")]

    def record_grants_check(self, results: Iterable[tuple[int, bool, list[str]]]) -> None:
        """(ordinal, grants all there, every difference found) of verified users."""
        with self.tx():
            self.db.executemany("UPDATE users SET grants_ok = ?, diffs = ? WHERE ordinal = ?",
                                [(1 if ok else 0, json.dumps(diffs) if diffs else None, ordinal)
                                 for ordinal, ok, diffs in results])

    # -- cutover (stage 9) -------------------------------------------------------------------------

    def users_to_delete(self) -> list[UserRef]:
        """Migrated users verified in the target whose source copy is not yet deleted (after a refresh: not those
        with a change it did not carry, nor those already gone from the source). With shared ids the profile is
        what is verified first: the grants are written and verified after the deletion (`grants_after_cutover`)."""
        grants = "" if self.grants_after_cutover else "AND grants_ok = 1 "
        return [UserRef(*r) for r in self.db.execute(
            f"SELECT ordinal, source_id, email FROM users WHERE status IN {_MIGRATED} AND profile_ok = 1 "
            f"{grants}AND deleted = 0 AND email IS NOT NULL AND delta_code IS NULL "
            "AND (delta IS NULL OR delta != 'deleted') ORDER BY ordinal")]

    def record_deletions(self, deleted: Iterable[int], not_confirmed: Iterable[tuple[str, int]], code: str) -> None:
        """Users confirmed gone from the source, and (message, ordinal) of those still there (failed `code`).
        A deleted user's earlier cutover note (not confirmed, kept in the source) is cleared. With shared ids
        (`grants_after_cutover`) the deletion makes the user's grants due: to write, and to read back after it
        (whatever was written or read under the shared id before it, e.g. by a refresh, held for the source copy)."""
        due = self.grants_after_cutover
        with self.tx():
            for ordinal in deleted:
                self.db.execute("UPDATE users SET deleted = 1 WHERE ordinal = ?", (ordinal,))
                self.db.execute("UPDATE users SET stage = NULL, code = NULL, message = NULL WHERE ordinal = ? AND "
                                "stage = 'cutover'", (ordinal,))
                if due:
                    self.db.execute("UPDATE users SET perms_restored = 0, grants_ok = NULL WHERE ordinal = ?",
                                    (ordinal,))
                    self.db.execute("UPDATE role_members SET assigned = 0 WHERE ordinal = ?", (ordinal,))
            self.db.executemany("UPDATE users SET stage = 'cutover', code = ?, message = ? WHERE ordinal = ?",
                                [(code, message, ordinal) for message, ordinal in not_confirmed])

    def record_kept_in_source(self, kept: Iterable[tuple[int, str]], code: str) -> None:
        """(ordinal, message) of migrated users cutover keeps in the source (what they hold was not verified in
        the target): noted at stage `cutover` with `code`, so the summary names them; a later cutover that
        deletes one clears the note (`record_deletions`)."""
        with self.tx():
            self.db.executemany("UPDATE users SET stage = 'cutover', code = ?, message = ? WHERE ordinal = ? "
                                "AND deleted = 0", [(code, message, ordinal) for ordinal, message in kept])

    def deletions_not_confirmed(self, code: str) -> bool:
        return self.db.execute("SELECT 1 FROM users WHERE code = ? AND deleted = 0", (code,)).fetchone() is not None

    def deleted_from_source(self, ordinals: Iterable[int]) -> set[int]:
        """Those of these users whose source copy cutover deleted (and confirmed gone)."""
        wanted = list(ordinals)
        found: set[int] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.update(r[0] for r in self.db.execute(
                f"SELECT ordinal FROM users WHERE deleted = 1 AND ordinal IN ({','.join('?' * len(chunk))})", chunk))
        return found

    # -- the summary -------------------------------------------------------------------------------

    def _count(self, sql: str) -> int:
        return int(self.db.execute(sql).fetchone()[0] or 0)

    def user_counts(self) -> dict[str, int]:
        """Users by where they stand, as the summary names them (each user in exactly one of the first six
        but `selected`, which counts all)."""
        counts = {status: n for status, n in self.db.execute("SELECT status, COUNT(*) FROM users GROUP BY status")}
        one = self._count
        after = self.grants_after_cutover
        return {
            "selected": sum(counts.values()),
            "imported": counts.get("imported", 0),
            "already_in_target": counts.get("already_in_target", 0),
            "held_back": counts.get("held_back", 0),
            "failed": counts.get("failed", 0) + counts.get("invalid", 0),
            "pending": sum(n for s, n in counts.items() if s not in MIGRATED and s not in NOT_CARRIED),
            "deleted_from_source": one("SELECT COUNT(*) FROM users WHERE deleted = 1"),
            "deletion_not_confirmed": one("SELECT COUNT(*) FROM users WHERE deleted = 0 AND stage = 'cutover' "
                                          "AND code != 'KEPT_IN_SOURCE'"),
            "kept_in_source": one("SELECT COUNT(*) FROM users WHERE deleted = 0 AND stage = 'cutover' "
                                  "AND code = 'KEPT_IN_SOURCE'"),
            "verified": one(f"SELECT COUNT(*) FROM users WHERE status IN {_MIGRATED} AND profile_ok = 1 "
                            "AND grants_ok = 1" + (" AND deleted = 1" if after else "")),
            # shared ids: profile verified, grants written and read back only once the source copy is deleted
            "grants_after_cutover": one(f"SELECT COUNT(*) FROM users WHERE status IN {_MIGRATED} AND profile_ok = 1 "
                                        "AND (deleted = 0 OR grants_ok IS NULL)") if after else 0,
            "with_password_hash": one("SELECT COUNT(*) FROM users WHERE has_credential = 1"),
            # held back as stale, or imported without a hash under --stale-hash import-without-hash (a problem each)
            "stale_hash": one("SELECT COUNT(*) FROM users WHERE code = 'STALE_HASH'")
            + one("SELECT COUNT(*) FROM problems WHERE kind = 'stale-hash'"),
        }

    def grant_counts(self) -> dict[str, int]:
        one = self._count
        return {
            "permissions_restored": one("SELECT COUNT(*) FROM permissions p JOIN users u USING (ordinal) "
                                        "WHERE u.perms_restored = 1"),
            "roles_restored": one("SELECT COUNT(*) FROM role_members WHERE assigned >= 1"),
            "permissions_in_source": one("SELECT COUNT(*) FROM permissions"),
            "role_memberships_in_source": one("SELECT COUNT(*) FROM role_members"),
        }

    def users_not_carried(self) -> list[NotCarried]:
        """Users not migrated, and migrated users whose source deletion was not confirmed, in source order."""
        return [NotCarried(*r) for r in self.db.execute(
            "SELECT source_id, email, status, stage, code, message, file_id FROM users "
            f"WHERE status NOT IN {_MIGRATED} OR (deleted = 0 AND stage = 'cutover') ORDER BY ordinal")]

    def differences(self) -> list[Difference]:
        return [Difference(*r) for r in self.db.execute(
            f"SELECT source_id, target_id, email, diffs FROM users WHERE status IN {_MIGRATED} AND "
            "diffs IS NOT NULL ORDER BY ordinal")]

    def problems(self) -> list[Problem]:
        return [Problem(*r) for r in self.db.execute("SELECT kind, ref, detail FROM problems ORDER BY rowid")]

    # -- rollback: take out of the target what the run put there, bring back what cutover deleted ---------

    def rollback_counts(self) -> dict[str, int]:
        """What the run did that a rollback undoes or cannot, and how far a rollback has come."""
        one = self._count
        return {
            "imported_by_run": one("SELECT COUNT(*) FROM users WHERE status = 'imported' AND target_id IS NOT NULL"
                                   " AND target_deleted = 0"),
            "deleted_from_source_by_run": one("SELECT COUNT(*) FROM users WHERE deleted = 1"),
            "already_in_target": one("SELECT COUNT(*) FROM users WHERE status = 'already_in_target'"),
            "grants_written_to_existing_users": one(
                "SELECT (SELECT COUNT(*) FROM role_members m JOIN users u USING (ordinal) WHERE m.assigned >= 1 AND "
                "u.status = 'already_in_target') + (SELECT COUNT(*) FROM permissions p JOIN users u USING (ordinal) "
                "WHERE u.perms_restored = 1 AND u.status = 'already_in_target')"),
            "removed_from_target": one("SELECT COUNT(*) FROM rollback WHERE removed = 1"),
            "restored_to_source": one("SELECT COUNT(*) FROM rollback WHERE reimported = 1"),
            "not_rolled_back": one("SELECT COUNT(*) FROM rollback WHERE code IS NOT NULL"),
            "mfa_factors_of_deleted": one(_MFA_OF_DELETED + " IN ('totp', 'phone', 'email')"),
            "mfa_enrolments_lost": one(_MFA_OF_DELETED + " NOT IN ('totp', 'phone', 'email', 'enrolled')"),
            "links_lost_with_deleted": one(
                "SELECT COUNT(*) FROM holdings h JOIN users u USING (ordinal) WHERE u.deleted = 1 AND "
                "h.kind = 'identity' AND h.state = 'cannot'"),
            "links_moved_by_run": one("SELECT COUNT(*) FROM identity_moves WHERE step != 'found'"),
            "links_moved_back": one("SELECT COUNT(*) FROM rollback_links WHERE step = 'verified'")
            if self._has_table("rollback_links") else 0,  # a ledger written before rollback_links, read-only
        }

    def links_to_move_back(self) -> list[LinkBack]:
        """Every secondary the run moved off its old primary (any step past `found`), not yet verified back."""
        return [LinkBack(IdentityMove(*r[:8]), r[8], r[9]) for r in self.db.execute(
            "SELECT m.ordinal, u.source_id, u.target_id, m.item, m.connection, m.step, h.state, u.deleted, b.step, "
            "COALESCE(r.reimported, 0) FROM identity_moves m JOIN users u USING (ordinal) "
            "JOIN holdings h ON h.ordinal = m.ordinal AND h.kind = 'identity' AND h.item = m.item "
            "LEFT JOIN rollback_links b ON b.ordinal = m.ordinal AND b.item = m.item "
            "LEFT JOIN rollback r ON r.ordinal = m.ordinal "
            "WHERE m.step != 'found' AND COALESCE(b.step, '') != 'verified' ORDER BY m.ordinal, m.item")]

    def set_link_back(self, ordinal: int, item: str, step: BackStep) -> None:
        """Record how far a secondary has moved back (its own transaction unless inside one)."""
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO rollback_links (ordinal, item, step) VALUES (?, ?, ?)",
                            (ordinal, item, step))

    def users_to_remove_from_target(self) -> list[RollbackUser]:
        """Users this run imported into the target (never one that was there before), not yet removed."""
        return [RollbackUser(*r) for r in self.db.execute(
            "SELECT u.ordinal, u.source_id, u.email, u.target_id, NULL FROM users u LEFT JOIN rollback r "
            "USING (ordinal) WHERE u.status = 'imported' AND u.target_id IS NOT NULL AND u.target_deleted = 0 AND "
            "COALESCE(r.removed, 0) = 0 ORDER BY u.ordinal")]

    def users_to_reimport(self) -> list[RollbackUser]:
        """Users whose source copy cutover deleted, not yet imported into the source again, with their record."""
        return [RollbackUser(*r) for r in self.db.execute(
            "SELECT u.ordinal, u.source_id, u.email, u.target_id, u.record FROM users u LEFT JOIN rollback r "
            "USING (ordinal) WHERE u.deleted = 1 AND COALESCE(r.reimported, 0) = 0 ORDER BY u.ordinal")]

    def users_to_regrant(self, *, every_migrated: bool) -> list[RollbackUser]:
        """Users whose source grants a rollback writes again: the source copies it imported again, and with
        `every_migrated` (kept ids in one tenant) every migrated user, whose shared id lost its grants when the
        target copy was deleted."""
        which = f"u.status IN {_MIGRATED}" if every_migrated else "r.reimported = 1"
        return [RollbackUser(*r) for r in self.db.execute(
            "SELECT u.ordinal, u.source_id, u.email, u.target_id, NULL FROM users u LEFT JOIN rollback r "
            f"USING (ordinal) WHERE ({which}) AND COALESCE(r.grants_restored, 0) = 0 AND "
            "COALESCE(r.code, '') = '' ORDER BY u.ordinal")]

    def mark_rolled_back(self, step: Literal["reimported", "removed", "grants_restored"],
                         ordinals: Iterable[int]) -> None:
        """Record a rollback step done for these users (clears a failure the same step recorded before)."""
        with self.tx():
            for ordinal in ordinals:
                self.db.execute("INSERT OR IGNORE INTO rollback (ordinal) VALUES (?)", (ordinal,))
                self.db.execute(f"UPDATE rollback SET {step} = 1, code = NULL, message = NULL WHERE ordinal = ?",
                                (ordinal,))  # `step` is one of three fixed column names (the Literal)

    def fail_rollback(self, rows: Iterable[tuple[int, str, str]]) -> None:
        """(ordinal, code, message) of users a rollback step could not undo."""
        with self.tx():
            for ordinal, code, message in rows:
                self.db.execute("INSERT OR IGNORE INTO rollback (ordinal) VALUES (?)", (ordinal,))
                self.db.execute("UPDATE rollback SET code = ?, message = ? WHERE ordinal = ?", (code, message, ordinal))

    def rollback_failures(self) -> list[NotCarried]:
        return [NotCarried(*r) for r in self.db.execute(
            "SELECT u.source_id, u.email, u.status, 'rollback', r.code, r.message, u.file_id FROM rollback r "
            "JOIN users u USING (ordinal) WHERE r.code IS NOT NULL ORDER BY u.ordinal")]

    def clear_rollback_failures(self) -> None:
        self.db.execute("UPDATE rollback SET code = NULL, message = NULL")

    # -- what users hold beside profile, hash and grants (organizations, linked accounts, MFA) -------

    def add_holdings(self, kind: HoldingKind, rows: Iterable[tuple[int, str]]) -> None:
        """(ordinal, item) found in the source; a row already known keeps its state (a re-read is idempotent)."""
        self.db.executemany("INSERT OR IGNORE INTO holdings (ordinal, kind, item) VALUES (?, ?, ?)",
                            [(ordinal, kind, item) for ordinal, item in rows])

    def set_holdings(self, kind: HoldingKind, state: HoldingState, rows: Iterable[tuple[int, str]],
                     detail: str | None = None) -> None:
        """Move (ordinal, item) rows of `kind` to `state`; `detail` says why for `cannot` (None clears it)."""
        self.db.executemany("UPDATE holdings SET state = ?, detail = ? WHERE ordinal = ? AND kind = ? AND item = ?",
                            [(state, detail, ordinal, kind, item) for ordinal, item in rows])

    def forget_holdings(self, kind: HoldingKind, rows: Iterable[tuple[int, str]]) -> None:
        """Remove (ordinal, item) rows of `kind`: a provisional row replaced by what a closer read found."""
        self.db.executemany("DELETE FROM holdings WHERE ordinal = ? AND kind = ? AND item = ?",
                            [(ordinal, kind, item) for ordinal, item in rows])

    def forget_mfa_secrets(self) -> int:
        """Take `mfa_factors` (TOTP secrets, phones, emails) out of the import record of every user no import
        will send again (imported, in the target already, refused); how many. Users still to import (ready,
        exported, or failed for a retryable reason) keep them, as they keep their hash."""
        return self.db.execute(
            "UPDATE users SET record = json_remove(record, '$.mfa_factors') WHERE instr(record, '\"mfa_factors\"') > 0 "
            f"AND status NOT IN ('ready', 'exported') AND NOT (status = 'failed' AND code IN "
            f"{_sql_list(RETRYABLE_CODES)})").rowcount

    def users_with_mfa_secrets(self) -> int:
        """Users whose ledger record still holds `mfa_factors` (a test and `status` can check none are left)."""
        return self._count("SELECT COUNT(*) FROM users WHERE instr(record, '\"mfa_factors\"') > 0")

    def holdings(self, kind: HoldingKind, states: Iterable[HoldingState] | None = None) -> list[Holding]:
        """The holdings of `kind` (in `states`, when given), in user and item order, with the user's ids."""
        where = f" AND h.state IN {_sql_list(states)}" if states is not None else ""
        return [Holding(*r) for r in self.db.execute(
            "SELECT h.ordinal, u.source_id, u.target_id, h.kind, h.item, h.state, h.detail FROM holdings h "
            f"JOIN users u USING (ordinal) WHERE h.kind = ?{where} ORDER BY h.ordinal, h.item", (kind,))]

    def holding_counts(self) -> dict[str, dict[str, int]]:
        """{kind: {state: rows, "users": users holding any}} for every kind (zeros included)."""
        counts: dict[str, dict[str, int]] = {kind: {state: 0 for state in get_args(HoldingState)} | {"users": 0}
                                             for kind in get_args(HoldingKind)}
        for kind, state, n in self.db.execute("SELECT kind, state, COUNT(*) FROM holdings GROUP BY kind, state"):
            counts[kind][state] = n
        for kind, n in self.db.execute("SELECT kind, COUNT(DISTINCT ordinal) FROM holdings GROUP BY kind"):
            counts[kind]["users"] = n
        return counts

    def unverified_holdings(self, allowed: Iterable[str] = (), *,
                            verified_after_cutover: Iterable[HoldingKind] = ()) -> dict[int, list[Holding]]:
        """Per migrated user, what it holds that was not verified in the target, but for the `--allow-loss`
        groups in `allowed` (`LOSS_GROUPS`) and secondaries parked for cutover (`_PARKED`): cutover must keep
        these users in the source. Holdings of the kinds in `verified_after_cutover` count once `carried`: they
        can only be read back in the target after the source copy is gone (MFA factors under a shared id)."""
        later = _sql_list(verified_after_cutover) if verified_after_cutover else "('')"
        let_go = {kind for group in allowed for kind in LOSS_GROUPS[group]}
        kinds = [k for k in get_args(HoldingKind) if k not in let_go]
        found: dict[int, list[Holding]] = {}
        if not kinds:
            return found
        for r in self.db.execute(
                "SELECT h.ordinal, u.source_id, u.target_id, h.kind, h.item, h.state, h.detail FROM holdings h "
                f"JOIN users u USING (ordinal) WHERE u.status IN {_MIGRATED} AND h.state != 'verified' AND "
                f"h.kind IN {_sql_list(kinds)} AND NOT {_PARKED} AND NOT (h.state = 'carried' AND h.kind IN {later}) "
                "ORDER BY h.ordinal, h.kind, h.item"):
            found.setdefault(r[0], []).append(Holding(*r))
        return found

    # -- the timeline of the commands that used this ledger (timeline.py; what --report draws) --------

    def begin_session(self, command: str, options: str, started: float) -> int:
        """A new session (a command run on this ledger); its number."""
        cur = self.db.execute("INSERT INTO sessions (command, options, started) VALUES (?, ?, ?)",
                              (command, options, started))
        return int(cur.lastrowid or 0)

    def end_session(self, session: int, ended: float, outcome: str) -> None:
        self.db.execute("UPDATE sessions SET ended = ?, outcome = ? WHERE session = ?", (ended, outcome, session))

    def begin_stage(self, session: int, seq: int, stage: str, started: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO stage_times (session, seq, stage, started) VALUES (?, ?, ?, ?)",
                        (session, seq, stage, started))

    def end_stage(self, session: int, seq: int, ended: float, calls: int, http_429: int, retries: int) -> None:
        self.db.execute("UPDATE stage_times SET ended = ?, calls = ?, http_429 = ?, retries = ? "
                        "WHERE session = ? AND seq = ?", (ended, calls, http_429, retries, session, seq))

    def add_rate_sample(self, session: int, at: float, tenant: str, remaining: int, size: int) -> None:
        self.db.execute("INSERT INTO rate_samples (session, at, tenant, remaining, size) VALUES (?, ?, ?, ?, ?)",
                        (session, at, tenant, remaining, size))

    def _has_table(self, name: str) -> bool:
        """Whether a table exists: a ledger written before it, opened read-only (`status`), lacks it."""
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (name,)).fetchone() is not None

    def sessions(self) -> list[Session]:
        if not self._has_table("sessions"):
            return []
        return [Session(*r) for r in self.db.execute(
            "SELECT session, command, options, started, ended, outcome FROM sessions ORDER BY session")]

    def stage_times(self) -> list[StageTime]:
        if not self._has_table("stage_times"):
            return []
        return [StageTime(*r) for r in self.db.execute(
            "SELECT session, seq, stage, started, ended, calls, http_429, retries FROM stage_times "
            "ORDER BY session, seq")]

    def rate_samples(self) -> list[RateSample]:
        if not self._has_table("rate_samples"):
            return []
        return [RateSample(*r) for r in self.db.execute(
            "SELECT session, at, tenant, remaining, size FROM rate_samples ORDER BY at, rowid")]

    def cannot_groups(self) -> list[CannotGroup]:
        """Holdings in state `cannot`, grouped by kind and reason (items and users each), for the plan's inventory."""
        return [CannotGroup(*r) for r in self.db.execute(
            "SELECT kind, COALESCE(detail, ''), COUNT(*), COUNT(DISTINCT ordinal) FROM holdings WHERE state = 'cannot' "
            "GROUP BY kind, detail ORDER BY kind, detail")]

    def users_holding_cannot(self, kinds: Iterable[str]) -> int:
        """Users with at least one holding of these kinds that cannot be carried."""
        return self._count("SELECT COUNT(DISTINCT ordinal) FROM holdings WHERE state = 'cannot' "
                           f"AND kind IN {_sql_list(kinds)}")


    def add_linked_identities(self, rows: Iterable[tuple[int, str, str]]) -> None:
        """(ordinal, `<provider>|<user id>`, connection name) of each secondary linked to a source user: an
        `identity` holding found, and its move; idempotent like `add_holdings`."""
        listed = list(rows)
        self.add_holdings("identity", ((ordinal, item) for ordinal, item, _ in listed))
        self.db.executemany("INSERT OR IGNORE INTO identity_moves (ordinal, item, connection) VALUES (?, ?, ?)",
                            listed)

    def identity_moves(self, steps: Iterable[IdentityStep], *, migrated: bool = True) -> list[IdentityMove]:
        """Secondaries at one of `steps` whose holding can still be carried (not `cannot`), of users migrated and
        verified in the target (`migrated`) or of every user, in user order."""
        where = f" AND u.status IN {_MIGRATED} AND u.target_id IS NOT NULL AND u.profile_ok = 1" if migrated else ""
        return [IdentityMove(*r) for r in self.db.execute(
            "SELECT m.ordinal, u.source_id, u.target_id, m.item, m.connection, m.step, h.state, u.deleted "
            "FROM identity_moves m "
            "JOIN users u USING (ordinal) JOIN holdings h ON h.ordinal = m.ordinal AND h.kind = 'identity' AND "
            f"h.item = m.item WHERE m.step IN {_sql_list(steps)} AND h.state != 'cannot'{where} "
            "ORDER BY m.ordinal, m.item")]

    def set_identity_step(self, ordinal: int, item: str, step: IdentityStep) -> None:
        """Record a secondary's step at once (its own transaction unless inside one): before and after each call."""
        with self.tx():
            self.db.execute("UPDATE identity_moves SET step = ? WHERE ordinal = ? AND item = ?", (step, ordinal, item))

    def phases_done(self) -> list[str]:
        return sorted(r[0].removeprefix("phase:") for r in self.db.execute(
            "SELECT key FROM meta WHERE key LIKE 'phase:%'"))

    # -- grants refresh (stages/grants_delta.py) ----------------------------------------------------

    def refresh_progress(self) -> tuple[int, int]:
        """(grants added, grants removed) by the grants refresh under way (0, 0 when none is)."""
        added, removed = self.get_meta("grants-refresh:counts", [0, 0])
        return int(added), int(removed)

    def _count_refresh(self, added: int, removed: int) -> None:
        before = self.refresh_progress()
        self.set_meta("grants-refresh:counts", [before[0] + added, before[1] + removed])

    def reread_role_done(self, role_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM reread_roles WHERE source_role_id = ?", (role_id,)).fetchone() is not None

    def add_reread_role(self, role_id: str, name: str, members: Iterable[int]) -> None:
        """A source role and its members (ordinals) as read again, in full."""
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO reread_roles (source_role_id, name) VALUES (?, ?)", (role_id, name))
            self.db.executemany("INSERT OR IGNORE INTO reread_role_members (source_role_id, ordinal) VALUES (?, ?)",
                                [(role_id, m) for m in members])

    def users_to_reread(self, only: set[int] | None = None) -> list[tuple[int, str]]:
        """(ordinal, source id) of migrated users still in the source whose DIRECT permissions are to read again:
        all of them, or those of `only`; the others are compared by their roles alone (`add_roles_only_users`)."""
        rows = self.db.execute(
            f"SELECT ordinal, source_id FROM users WHERE status IN {_MIGRATED} AND target_id IS NOT NULL "
            "AND deleted = 0 AND ordinal NOT IN (SELECT ordinal FROM reread_users) ORDER BY ordinal")
        return [(r[0], r[1]) for r in rows if only is None or r[0] in only]

    def add_roles_only_users(self, ordinals: Iterable[int]) -> None:
        """Users whose roles a grants refresh compares, but not their DIRECT permissions (not read again)."""
        self.db.executemany("INSERT OR IGNORE INTO reread_users (ordinal, gone, permissions) VALUES (?, 0, 0)",
                            [(o,) for o in ordinals])

    def add_reread_permissions(self, read: Iterable[tuple[int, list[tuple[str, str]] | None]]) -> None:
        """(ordinal, [(API identifier, permission name)], or None for a user the source no longer has)."""
        with self.tx():
            for ordinal, perms in read:
                self.db.execute("INSERT OR REPLACE INTO reread_users (ordinal, gone) VALUES (?, ?)",
                                (ordinal, 1 if perms is None else 0))
                self.db.executemany("INSERT OR IGNORE INTO reread_permissions (ordinal, api, name) VALUES (?, ?, ?)",
                                    [(ordinal, api, name) for api, name in perms or []])

    def add_reread_roles_to_map(self) -> None:
        """Roles new in the source since the last read join `roles`, to be matched in the target."""
        self.db.execute("INSERT OR IGNORE INTO roles (source_role_id, name, members_read) "
                        "SELECT source_role_id, name, 1 FROM reread_roles")

    def reread_role_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT source_role_id FROM reread_roles")}

    def role_members_to_add(self) -> list[tuple[str, int, str]]:
        """(source role id, ordinal, target id) held in the source now and not carried to the target yet."""
        return [(r[0], r[1], r[2]) for r in self.db.execute(
            "SELECT n.source_role_id, n.ordinal, u.target_id FROM reread_role_members n JOIN users u USING (ordinal) "
            f"WHERE {_REREAD} AND NOT EXISTS (SELECT 1 FROM role_members m WHERE m.source_role_id = "
            "n.source_role_id AND m.ordinal = n.ordinal AND m.assigned >= 1) ORDER BY n.source_role_id, n.ordinal")]

    def role_members_to_remove(self) -> list[tuple[str, int, str]]:
        """(source role id, ordinal, target id) this migration carried that the source no longer holds."""
        return [(r[0], r[1], r[2]) for r in self.db.execute(
            "SELECT m.source_role_id, m.ordinal, u.target_id FROM role_members m JOIN users u USING (ordinal) "
            f"WHERE m.assigned >= 1 AND {_REREAD} AND NOT EXISTS (SELECT 1 FROM reread_role_members n "
            "WHERE n.source_role_id = m.source_role_id AND n.ordinal = m.ordinal) ORDER BY m.ordinal")]

    def mark_reread_changed(self, ordinals: Iterable[int]) -> None:
        """Users whose grants in the source differ from what was carried: verified once the refresh is applied."""
        self.db.executemany("UPDATE reread_users SET changed = 1 WHERE ordinal = ?", [(o,) for o in ordinals])

    def record_roles_added(self, source_role_id: str, ordinals: Sequence[int]) -> None:
        """These members were given the role in the target (counted as added)."""
        with self.tx():
            self.db.executemany("INSERT OR REPLACE INTO role_members (source_role_id, ordinal, assigned) "
                                "VALUES (?, ?, 1)", [(source_role_id, o) for o in ordinals])
            self._count_refresh(len(ordinals), 0)

    def record_roles_removed(self, ordinal: int, source_role_ids: Sequence[str], *, counted: bool) -> None:
        """The user no longer holds these roles (removed in the target by the refresh when `counted`)."""
        with self.tx():
            self.db.executemany("DELETE FROM role_members WHERE source_role_id = ? AND ordinal = ?",
                                [(r, ordinal) for r in source_role_ids])
            if counted:
                self._count_refresh(0, len(source_role_ids))

    def permission_changes(self) -> list[tuple[int, str, list[tuple[str, str]], list[tuple[str, str]]]]:
        """(ordinal, target id, [(API, name)] to add, [(API, name)] to remove) of users whose DIRECT permissions
        in the source differ from what this migration carried (nothing carried for a user not restored yet)."""
        changes: dict[int, tuple[str, list[tuple[str, str]], list[tuple[str, str]]]] = {}
        for ordinal, target_id, api, name in self.db.execute(
                "SELECT n.ordinal, u.target_id, n.api, n.name FROM reread_permissions n JOIN users u USING (ordinal) "
                f"WHERE {_REREAD_PERMISSIONS} AND NOT (u.perms_restored = 1 AND EXISTS (SELECT 1 FROM permissions p "
                "WHERE p.ordinal = n.ordinal AND p.api = n.api AND p.name = n.name)) ORDER BY n.ordinal"):
            changes.setdefault(ordinal, (target_id, [], []))[1].append((api, name))
        for ordinal, target_id, api, name in self.db.execute(
                "SELECT p.ordinal, u.target_id, p.api, p.name FROM permissions p JOIN users u USING (ordinal) "
                f"WHERE u.perms_restored = 1 AND {_REREAD_PERMISSIONS} AND NOT EXISTS (SELECT 1 FROM "
                "reread_permissions n WHERE n.ordinal = p.ordinal AND n.api = p.api AND n.name = p.name) "
                "ORDER BY p.ordinal"):
            changes.setdefault(ordinal, (target_id, [], []))[2].append((api, name))
        return [(o, t, add, remove) for o, (t, add, remove) in sorted(changes.items())]

    def record_permissions_changed(self, done: Iterable[tuple[int, int, int]]) -> None:
        """(ordinal, permissions added, removed in the target): the user's DIRECT permissions are now the source's."""
        with self.tx():
            for ordinal, added, removed in done:
                self._take_reread_permissions(ordinal)
                self._count_refresh(added, removed)

    def _take_reread_permissions(self, ordinal: int) -> None:
        self.db.execute("DELETE FROM permissions WHERE ordinal = ?", (ordinal,))
        self.db.execute("INSERT INTO permissions (ordinal, api, name) SELECT ordinal, api, name FROM "
                        "reread_permissions WHERE ordinal = ?", (ordinal,))
        self.db.execute("UPDATE users SET perms_read = 1, perms_restored = 1 WHERE ordinal = ?", (ordinal,))

    def settle_reread_grants(self) -> None:
        """Every compared user's grants in the ledger become the source's as read again: memberships of roles
        the target lacks are recorded (not carried), and users whose permissions needed no write take theirs."""
        with self.tx():
            self.db.execute("INSERT OR IGNORE INTO role_members (source_role_id, ordinal, assigned) "
                            "SELECT n.source_role_id, n.ordinal, 0 FROM reread_role_members n JOIN users u "
                            f"USING (ordinal) WHERE {_REREAD}")
            compared = f"(SELECT u.ordinal FROM users u WHERE {_REREAD})"
            self.db.execute(f"DELETE FROM role_members WHERE assigned = 0 AND ordinal IN {compared} AND NOT EXISTS "
                            "(SELECT 1 FROM reread_role_members n WHERE n.source_role_id = role_members.source_role_id "
                            "AND n.ordinal = role_members.ordinal)")
            compared = f"(SELECT u.ordinal FROM users u WHERE {_REREAD_PERMISSIONS})"
            self.db.execute(f"DELETE FROM permissions WHERE ordinal IN {compared}")
            self.db.execute("INSERT INTO permissions (ordinal, api, name) SELECT ordinal, api, name FROM "
                            f"reread_permissions WHERE ordinal IN {compared}")
            self.db.execute(f"UPDATE users SET perms_read = 1, perms_restored = 1 WHERE ordinal IN {compared}")

    def changed_users(self) -> list[MigratedUser]:
        """Users whose grants changed in the source (written to the target or not), to verify."""
        return [MigratedUser(*r) for r in self.db.execute(
            "SELECT u.ordinal, u.target_id, u.diffs FROM users u JOIN reread_users r USING (ordinal) "
            "WHERE r.changed = 1 AND u.target_id IS NOT NULL ORDER BY u.ordinal")]

    def finish_grants_refresh(self) -> tuple[int, int]:
        """The refresh is applied and verified: forget what it read and its phases; its (added, removed)."""
        counts = self.refresh_progress()
        with self.tx():
            for sql in ("DELETE FROM reread_roles", "DELETE FROM reread_role_members", "DELETE FROM reread_users",
                        "DELETE FROM reread_permissions"):
                self.db.execute(sql)
            self.db.execute("DELETE FROM meta WHERE key LIKE 'phase:grants-refresh:%' OR key = "
                            "'grants-refresh:counts'")
        return counts

    # -- refresh: a later export of the source, and what changed since -----------------------------

    def generation(self) -> int:
        """The export generation the ledger's users were last carried from (1: the first run's export)."""
        return int(self.get_meta("generation", 1))

    def refresh_in_progress(self) -> int | None:
        """The generation of a refresh that started and has not finished (to resume), or None."""
        value = self.get_meta("refresh_generation")
        return None if value is None else int(value)

    def begin_refresh(self) -> int:
        """Start the next generation: the phases a refresh walks again are opened, the last delta forgotten."""
        generation = self.generation() + 1
        with self.tx():
            self.forget_meta(*(f"phase:{p}" for p in _REFRESH_PHASES), "idmap_export_job_id",
                             "refresh_export_job_id", "input_files", "refresh_grants")
            self.db.execute("UPDATE users SET delta = NULL, delta_code = NULL, delta_message = NULL, "
                            "upsert_profile = 0, upsert_hash = 0")
            self.db.executemany("DELETE FROM problems WHERE kind = ?", [(k,) for k in (
                *DELTA_PROBLEM_KINDS, "export", "not-in-source", "hash-without-user", "hash-without-password")])
            self.set_meta("refresh_base", int(self.db.execute("SELECT MAX(ordinal) FROM users").fetchone()[0] or 0))
            self.set_meta("refresh_generation", generation)
        return generation

    def finish_refresh(self, generation: int) -> None:
        with self.tx():
            self.set_meta("generation", generation)
            self.forget_meta("refresh_generation")

    def reset_refresh_export(self, generation: int) -> None:
        """Forget what an interrupted re-export wrote: its new users, and what it noted on the others."""
        base = int(self.get_meta("refresh_base", 0))
        self.db.execute("DELETE FROM users WHERE ordinal > ?", (base,))
        self.db.execute("UPDATE users SET delta = NULL, delta_code = NULL, delta_message = NULL, upsert_profile = 0,"
                        " upsert_hash = 0, credential = CASE WHEN upsert_hash = 1 THEN NULL ELSE credential END, "
                        "generation = CASE WHEN generation >= ? THEN ? ELSE generation END",
                        (generation, generation - 1))
        self.db.execute("DELETE FROM files WHERE file_id NOT IN (SELECT file_id FROM users WHERE file_id IS NOT NULL)")
        self.db.executemany("DELETE FROM problems WHERE kind = ?",
                            [(k,) for k in (*DELTA_PROBLEM_KINDS, "export", "not-in-source")])

    def known_user(self, source_id: str) -> KnownUser | None:
        row = self.db.execute("SELECT ordinal, status, record, has_credential, credential_digest, deleted FROM users "
                              "WHERE source_id = ?", (source_id,)).fetchone()
        return None if row is None else KnownUser(*row)

    def mark_seen(self, ordinals: Iterable[int], generation: int) -> None:
        """Users the re-export shows again (whatever changed in them)."""
        self.db.executemany("UPDATE users SET generation = ? WHERE ordinal = ?", [(generation, o) for o in ordinals])

    def mark_new(self, generation: int, retried: Iterable[int] = ()) -> None:
        """The users this re-export added, and those it `retried` that are no longer held back, are `new`, of
        this generation."""
        self.db.execute("UPDATE users SET delta = 'new', generation = ? WHERE ordinal > ?",
                        (generation, int(self.get_meta("refresh_base", 0))))
        self.db.executemany("UPDATE users SET generation = ?, delta = CASE WHEN status = 'held_back' THEN NULL "
                            "ELSE 'new' END WHERE ordinal = ?", [(generation, o) for o in retried])

    def forget_held_back(self, ordinal: int) -> None:
        """A held-back user, forgotten so the re-export ingests it again (under the same ordinal, so the role
        memberships read for it stay its own)."""
        self.db.execute("DELETE FROM users WHERE ordinal = ? AND status = 'held_back'", (ordinal,))

    def record_profile_change(self, ordinal: int, record: str | None, *, upsert: bool) -> None:
        """A migrated user whose profile changed: `record` is the profile as it will be carried (None: as it was)."""
        if record is None:
            self.db.execute("UPDATE users SET delta = 'updated' WHERE ordinal = ?", (ordinal,))
        else:
            self.db.execute("UPDATE users SET delta = 'updated', record = ?, upsert_profile = ? WHERE ordinal = ?",
                            (record, 1 if upsert else 0, ordinal))

    def record_newer_hash(self, ordinal: int, credential: str) -> None:
        """A migrated user's newer hash, due in a hash upsert (cleared once that is settled)."""
        self.db.execute("UPDATE users SET delta = 'updated', credential = ?, upsert_hash = 1 WHERE ordinal = ?",
                        (credential, ordinal))

    def name_delta_exception(self, ordinal: int, code: str, message: str) -> None:
        """A change this refresh does not carry, with why (several join with '; ')."""
        self.db.execute("UPDATE users SET delta = COALESCE(delta, 'updated'), delta_code = CASE WHEN delta_code "
                        "IS NULL THEN ? ELSE delta_code || ',' || ? END, delta_message = CASE WHEN delta_message "
                        "IS NULL THEN ? ELSE delta_message || '; ' || ? END WHERE ordinal = ?",
                        (code, code, message, message, ordinal))

    def mark_gone_from_source(self, generation: int) -> int:
        """Migrated users (not deleted by cutover) the re-export did not show: `deleted`; how many."""
        return self.db.execute(f"UPDATE users SET delta = 'deleted' WHERE generation < ? AND status IN {_MIGRATED} "
                               "AND deleted = 0", (generation,)).rowcount

    def users_to_upsert(self, *, hashes: bool) -> list[UpsertRow]:
        """Users due in the profile upsert, or (`hashes`) in the hash upsert with their newer hash."""
        flag = "upsert_hash" if hashes else "upsert_profile"
        return [UpsertRow(*r) for r in self.db.execute(
            f"SELECT ordinal, email, record, credential FROM users WHERE {flag} = 1 ORDER BY ordinal")]

    def upsert_settled(self, ordinals: Iterable[int], *, hashes: bool) -> None:
        """These users' upsert job ended (refused ones were named first); a newer hash leaves the ledger."""
        sql = ("UPDATE users SET upsert_hash = 0, credential_digest = sha256(credential), credential = NULL "
               "WHERE ordinal = ? AND upsert_hash = 1" if hashes else
               "UPDATE users SET upsert_profile = 0 WHERE ordinal = ?")
        with self.tx():
            self.db.executemany(sql, [(o,) for o in ordinals])

    def hash_upsert_refused(self, ordinal: int, code: str, message: str) -> None:
        """The target kept the old hash: the user is named, and the newer hash leaves the ledger (its digest is kept,
        marked `REFUSED_DIGEST`, so a later refresh names the user again without sending the same hash)."""
        with self.tx():
            self.name_delta_exception(ordinal, code, message)
            self.db.execute(f"UPDATE users SET upsert_hash = 0, credential_digest = '{REFUSED_DIGEST}' || "
                            "sha256(credential), credential = NULL WHERE ordinal = ?", (ordinal,))

    def users_gone_from_source(self) -> list[GoneUser]:
        return [GoneUser(*r) for r in self.db.execute(
            "SELECT ordinal, source_id, email, target_id, status, target_deleted FROM users WHERE delta = 'deleted' "
            "ORDER BY ordinal")]

    def record_target_deletions(self, ordinals: Iterable[int]) -> None:
        """Users confirmed deleted from the target (`--propagate-deletes`); an earlier unconfirmed try is forgotten."""
        with self.tx():
            for ordinal in ordinals:
                self.db.execute("UPDATE users SET target_deleted = 1 WHERE ordinal = ?", (ordinal,))
                self.db.execute("DELETE FROM problems WHERE kind = 'delta-delete' AND ref = "
                                "(SELECT source_id FROM users WHERE ordinal = ?)", (ordinal,))

    def open_refresh_verification(self) -> None:
        """Before the refresh's verification: every carried profile is checked again (the target's export), and
        the grants of the users that changed."""
        self.db.execute(f"UPDATE users SET profile_ok = NULL WHERE status IN {_MIGRATED}")
        self.db.execute("UPDATE users SET grants_ok = NULL WHERE delta IN ('new', 'updated')")

    def delta_ordinals(self, kinds: tuple[str, ...] = ("new", "updated")) -> set[int]:
        """Users this refresh carried something of (by default new or updated)."""
        marks = ", ".join("?" * len(kinds))
        return {r[0] for r in self.db.execute(f"SELECT ordinal FROM users WHERE delta IN ({marks})", kinds)}

    def delta_exceptions(self) -> list[tuple[str, str | None, str, str]]:
        """(source id, email, code, message) of each user with a change this refresh did not carry."""
        return [(r[0], r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT source_id, email, delta_code, delta_message FROM users WHERE delta_code IS NOT NULL "
            "ORDER BY ordinal")]

    def delta_counts(self) -> dict[str, int]:
        """Users this refresh found new, updated (carried or named) and deleted in the source."""
        counts = {k: n for k, n in self.db.execute("SELECT delta, COUNT(*) FROM users WHERE delta IS NOT NULL "
                                                   "GROUP BY delta")}
        return {"new": counts.get("new", 0), "updated": counts.get("updated", 0),
                "deleted_in_source": counts.get("deleted", 0)}

    def upserts_due(self) -> tuple[int, int]:
        """(users due in the profile upsert, users due in the hash upsert)."""
        row = self.db.execute("SELECT COALESCE(SUM(upsert_profile), 0), COALESCE(SUM(upsert_hash), 0) "
                              "FROM users").fetchone()
        return int(row[0]), int(row[1])
