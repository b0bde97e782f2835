"""Stage 4: export record -> import record, validated locally, then packed into import files.

Every user is transformed and checked against Auth0's import schema before anything is uploaded,
so a bad user fails here with a clear reason (stage `transform`) and does not poison a file. A
user with no hash, when a hash file was given, is held back (left in the source) unless
`--missing-hash import`: a user imported without a hash can never be given one later.

A stale hash is one taken before the user last changed their password: the export's
`last_password_reset` is later than the hash file's `password_set_date` for that line. Imported,
it would let the old password in and keep the new one out, so the user is held back,
`STALE_HASH`, named with both dates (never the hash), unless the owner chose
`--stale-hash import-without-hash`: then the user is imported with no hash (they must reset their
password) and a `stale-hash` problem names them.

Choices where Auth0 is silent
-----------------------------
- Two users ready to import with one email (possible only with `--from-file`: a connection
  holds one user per email): the first in source order goes on and each later one is refused,
  `DUPLICATE_EMAIL`, naming the first. The import would refuse one of them anyway, but which one
  and with which code depends on the job's order, and the id map (by email) could then give two
  source users one target user.
- A password changed at the very moment the hash was taken (`last_password_reset` equal to
  `password_set_date`) is not stale: the hash is of that password. A hash whose line gives no
  date, for a user who has a `last_password_reset`, may be older than that change: held back
  (or imported without a hash) as stale, the message saying the file gives no date. An export
  `last_password_reset` that is not a date counts as a change of unknown time, so the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..formats.hash_file import parse_date, plain_credential
from ..formats.import_file import encode_record, pack_encoded
from ..formats.import_record import plain_import_record, target_user_id, to_import_record
from ..formats.users_file import credential_of
from ..ledger import ImportRow, UserRef, UserStatus, dumps
from ..model import MigrationOptions
from .context import Migration

CHUNK = 5000


@dataclass(slots=True)
class Outcome:
    """What transform decided for one user: `ready` (with its record and credential as ledger JSON),
    `held_back` or `invalid` (with a code and a message naming the field)."""

    status: UserStatus
    record: str | None = None
    credential: str | None = None
    target_id: str | None = None
    code: str | None = None
    message: str | None = None
    stale_note: str | None = None
    """Set when a stale hash was left out (`--stale-hash import-without-hash`): the report's line for the user."""

    @property
    def stage(self) -> str:
        return "hashes" if self.status == "held_back" else "transform"

    def encoded(self) -> bytes:
        """The user as its import file carries it: record and credential in one object."""
        return combine(self.record or "{}", self.credential)


def stale_hash(export: dict[str, Any], hash_set_date: str | None) -> str | None:
    """Why this user's hash from the hash file is older than their last password change, or None if it is not."""
    changed = export.get("last_password_reset")
    if changed is None:
        return None
    changed_at, set_at = parse_date(changed), parse_date(hash_set_date)
    if changed_at is not None and set_at is not None and changed_at <= set_at:
        return None
    shown = changed if isinstance(changed, str) else json.dumps(changed)
    taken = f"the hash file's password_set_date is {hash_set_date}" if hash_set_date else \
        "the hash file gives no password_set_date for its hash"
    if changed_at is None:
        return f"last_password_reset {shown} is not a date, so the hash may predate it ({taken})"
    if set_at is None:
        return f"last_password_reset is {shown} and {taken}, so the hash may predate it"
    return f"last_password_reset {shown} is later than the hash's password_set_date {hash_set_date}"


def transform_one(options: MigrationOptions, source_id: str, export: dict[str, Any],
                  given: dict[str, Any] | str | None, hash_set_date: str | None = None) -> Outcome:
    """Transform and validate one user, exactly as the import will see it; never raises for bad data.

    `given` (the credential) and `hash_set_date` come from the hash file (the line's hash and its
    password_set_date); the credential as an object, or as the ledger holds it (its JSON, `ledger.dumps`).
    """
    credential: dict[str, Any] | None
    plain = None  # (the credential, its JSON) when it is a plain password_hash, given as the ledger holds it
    if isinstance(given, str):
        credential = plain_credential(given)
        if credential is not None:
            plain = credential, given
        elif given:
            credential = orjson.loads(given)
    else:
        credential = given
    stale_note = None
    # (stale_hash is None without a last_password_reset: asked here, that spares most users a call)
    if credential is not None and options.password_hashes and export.get("last_password_reset") is not None:
        why = stale_hash(export, hash_set_date)
        if why is not None and options.stale_hash == "hold":
            return Outcome("held_back", code="STALE_HASH",
                           message=f"{source_id}: {why}: the hash may be of an old password; left in the source "
                                   "(use a newer hash file, or --stale-hash import-without-hash to import the user "
                                   "without a hash: they must then reset their password)")
        if why is not None:
            credential = None
            stale_note = (f"{source_id}: {why}: imported without a password hash (--stale-hash "
                          "import-without-hash); the user must reset their password")
    if options.from_file:
        credential = credential or credential_of(export)
        for key in ("password_hash", "custom_password_hash"):
            export.pop(key, None)
    if credential is None and options.missing_hash == "hold" and options.password_hashes and stale_note is None:
        return Outcome("held_back", code="NO_PASSWORD_HASH",
                       message=f"no password hash for {source_id} in {options.password_hashes}; left in the source "
                               "(use --missing-hash import to import it without one)")
    strategy = options.user_ids
    # The common user (no credential, or a plain password_hash, which is valid with any record that is), with
    # less work; anything else, or anything it is unsure of, goes the whole way below.
    if not credential or (plain is not None and credential is plain[0]):
        text = plain_import_record(export, strategy=strategy, prefix=options.id_prefix,
                                   record_source_id=options.record_source_id)
        if text is not None:
            return Outcome("ready", text.decode(), plain[1] if credential and plain else None,
                           None if strategy == "regenerate" else
                           target_user_id(str(export["user_id"]), strategy, options.id_prefix),
                           stale_note=stale_note)
    record, problems = to_import_record(export, credential=credential, strategy=strategy,
                                        prefix=options.id_prefix, record_source_id=options.record_source_id)
    if record is None or problems:
        message = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems)
        return Outcome("invalid", code=problems[0].code, message=message)
    if credential:
        for key in credential:  # the only hash keys of the record (the export's are dropped)
            del record[key]  # the credential lives in its own column, cleared once imported
    # Valid, so any id the strategy gives is well formed (to_import_record built it from the same user_id).
    target_id = None if strategy == "regenerate" else\
        target_user_id(str(export["user_id"]), strategy, options.id_prefix)
    return Outcome("ready", dumps(record), dumps(credential) if credential else None, target_id,
                   stale_note=stale_note)


def combine(record: str, credential: str | None) -> bytes:
    """`encode_record(record | credential)` from their ledger JSON, without decoding and encoding again.

    Both are compact JSON objects with no key in common (transform moved the hash keys out of the
    record), so joining the texts gives byte for byte what merging and encoding would.
    """
    if credential and credential != "{}":
        text = credential if record == "{}" else record[:-1] + "," + credential[1:]
    else:
        text = record
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: let encode_record choose the fallback
        user = json.loads(record)
        if credential:
            user.update(json.loads(credential))
        return encode_record(user)


def combined_size(record: str, credential: str | None) -> int:
    """`len(combine(record, credential))`, without building it when both are ASCII (one byte a character)."""
    if not (record.isascii() and (credential is None or credential.isascii())):
        return len(combine(record, credential))
    if credential and credential != "{}":
        return len(credential) if record == "{}" else len(record) + len(credential) - 1
    return len(record)


def transform_users(migration: Migration) -> None:
    """Transform the users still waiting (those the export could not settle as it read them).

    Then every refused user loses any hash it was written with (here, or by the export's ingest).
    """
    ledger = migration.ledger
    if ledger.phase_done("transform"):
        return
    options = migration.options
    total = ledger.count_users("exported")
    migration.reporter.phase("transform and validate", total=total)
    for rows in ledger.users_to_transform(CHUNK):
        outcomes = [(row.ordinal, transform_one(options, row.source_id, json.loads(row.record),
                                                json.loads(row.credential) if row.credential else None,
                                                row.hash_set_date))
                    for row in rows]
        ledger.record_transformed([(o.record, o.credential, 1 if o.credential else 0, o.target_id, ordinal)
                                   for ordinal, o in outcomes if o.status == "ready"],
                                  [(o.status, o.stage, o.code, o.message, ordinal)
                                   for ordinal, o in outcomes if o.status != "ready"],
                                  [("stale-hash", row.source_id, o.stale_note)
                                   for row, (_, o) in zip(rows, outcomes, strict=True) if o.stale_note])
        migration.reporter.advance(len(rows))
    ledger.clear_refused_hashes()
    ledger.mark_phase("transform")


def import_body(rows: Iterable[ImportRow]) -> bytes:
    """The JSON array an import file carries for these ledger rows: byte for byte what the packer sized."""
    return b"[" + b",".join(combine(row.record, row.credential) for row in rows) + b"]"


def _ready(migration: Migration) -> Iterator[tuple[str, bytes]]:
    """(ordinal, the user's import record as `encode_record` encodes it) for every ready user not yet packed."""
    for rows in migration.ledger.users_to_pack(CHUNK):
        for row in rows:
            yield str(row.ordinal), combine(row.record, row.credential)


def refuse_duplicate_emails(migration: Migration) -> int:
    """Users ready to import whose email an earlier ready user has: refused, named, before any upload.

    A connection holds one user per email, so the import would refuse all but one of them, and the
    id map (which finds new ids by email) could give two source users one target user. The first
    (in source order) goes on; each later one fails with `DUPLICATE_EMAIL`, naming the first.
    Returns how many were refused.
    """
    ledger = migration.ledger
    first: dict[str | None, UserRef] = {}
    refused = 0
    with ledger.tx():
        for row in ledger.ready_users_sharing_email():
            kept = first.setdefault(row.email, row)
            if kept is row:
                continue
            ledger.fail_user(row.ordinal, "transform", "DUPLICATE_EMAIL",
                             f"email: {row.email} is also the email of {kept.source_id}, which is "
                             "imported in its place; a connection holds one user per email")
            ledger.take_out_of_file(row.ordinal)
            refused += 1
    return refused


def pack_users(migration: Migration) -> None:
    """Assign every ready user to an import file as close to the size limit as is safe.

    Users a failed or expired import job left behind are put back in line first (a re-run retries them).

    One transaction, written file by file as the packer hands them over: memory stays flat however
    many users there are.
    """
    ledger = migration.ledger
    retried = ledger.requeue_retryable()
    if retried:
        migration.reporter.info(f"{retried} users whose import job failed or expired are packed and imported again")
    if ledger.phase_done("pack"):
        return
    migration.reporter.phase("pack import files")
    refuse_duplicate_emails(migration)
    with ledger.tx():
        next_id = ledger.next_file_id()
        for packed in pack_encoded(_ready(migration)):
            if packed.oversize:
                for key in packed.keys:
                    ledger.fail_user(int(key), "pack", "USER_TOO_LARGE",
                                     "the user's import record alone exceeds Auth0's 500 KB file limit")
                continue
            ledger.add_file(next_id, len(packed.body), len(packed.keys), [int(k) for k in packed.keys])
            next_id += 1
        ledger.clear_refused_hashes()
    ledger.mark_phase("pack")
