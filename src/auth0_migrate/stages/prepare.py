"""Stage 4: export record -> import record, validated locally, then packed into import files.

Every user is transformed and checked against Auth0's import schema before anything is uploaded,
so a bad user fails here with a clear reason (stage `transform`) and does not poison a file. A
user with no hash, when a hash file was given, is held back (left in the source) unless
`--missing-hash import`: a user imported without a hash can never be given one later.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..ledger import dumps
from .context import Job
from .pack import encode_file, encode_record, pack_encoded
from .transform import to_import_record
from .users_file import credential_of

CHUNK = 5000


def transform_users(job: Job) -> None:
    ledger = job.ledger
    if ledger.phase_done("transform"):
        return
    options = job.options
    hold = options.missing_hash == "hold" and bool(options.password_hashes)
    total = ledger.scalar("SELECT COUNT(*) FROM users WHERE status = 'exported'")
    job.reporter.phase("transform and validate", total=total)
    for rows in ledger.chunks("SELECT ordinal, source_id, email, record, credential FROM users WHERE status = "
                              "'exported' AND ordinal > ? ORDER BY ordinal LIMIT ?", size=CHUNK):
        updates: list[tuple[Any, ...]] = []
        failures: list[tuple[str, str, str, int]] = []
        held: list[tuple[str, int]] = []
        for row in rows:
            export = json.loads(row["record"])
            credential = json.loads(row["credential"]) if row["credential"] else None
            if options.from_file:
                credential = credential or credential_of(export)
                for key in ("password_hash", "custom_password_hash"):
                    export.pop(key, None)
            if credential is None and hold:
                held.append((f"no password hash for {row['source_id']} in {options.password_hashes}; left in the "
                             "source (use --missing-hash import to import it without one)", row["ordinal"]))
                continue
            record, problems = to_import_record(export, credential=credential, strategy=options.user_ids,
                                                prefix=options.id_prefix, record_source_id=options.record_source_id)
            if record is None or problems:
                message = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems)
                failures.append((problems[0].code, message, "invalid", row["ordinal"]))
                continue
            for key in ("password_hash", "custom_password_hash"):
                record.pop(key, None)  # the credential lives in its own column, cleared once imported
            target_id = _target_id(record, options.user_ids)
            updates.append((dumps(record), dumps(credential) if credential else None, 1 if credential else 0,
                            target_id, row["ordinal"]))
        with ledger.tx() as db:
            db.executemany("UPDATE users SET record = ?, credential = ?, has_credential = ?, target_id = ?, "
                           "status = 'ready' WHERE ordinal = ?", updates)
            db.executemany("UPDATE users SET status = ?, stage = 'transform', code = ?, message = ?, credential = NULL"
                           " WHERE ordinal = ?", [(s, c, m, o) for c, m, s, o in failures])
            db.executemany("UPDATE users SET status = 'held_back', stage = 'hashes', code = 'NO_PASSWORD_HASH', "
                           "message = ?, credential = NULL WHERE ordinal = ?", held)
        job.reporter.advance(len(rows))
    ledger.mark_phase("transform")


def _target_id(record: dict[str, Any], strategy: str) -> str | None:
    if strategy == "regenerate" or "user_id" not in record:
        return None
    return "auth0|" + str(record["user_id"])


def import_body(rows: list[Any]) -> bytes:
    """The JSON array an import file carries for these ledger rows (record + credential)."""
    users = []
    for row in rows:
        user = json.loads(row["record"])
        if row["credential"]:
            user.update(json.loads(row["credential"]))
        users.append(user)
    return encode_file(users)  # byte for byte what the packer sized


def _ready(job: Job) -> Iterator[tuple[str, bytes]]:
    """(ordinal, the user's import record as `encode_record` encodes it) for every ready user not yet packed.

    The ledger holds the record and the credential as compact JSON objects with no key in common
    (transform moved the hash keys out of the record), so the user's encoding is the two joined:
    byte for byte what decoding, merging and encoding again would give, at a fraction of the cost.
    """
    for rows in job.ledger.chunks("SELECT ordinal, record, credential FROM users WHERE status = 'ready' AND "
                                  "file_id IS NULL AND ordinal > ? ORDER BY ordinal LIMIT ?", size=CHUNK):
        for row in rows:
            record: str = row["record"]
            credential: str | None = row["credential"]
            if credential and credential != "{}":
                text = credential if record == "{}" else record[:-1] + "," + credential[1:]
            else:
                text = record
            try:
                part = text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: let encode_record choose the fallback
                user = json.loads(record)
                if credential:
                    user.update(json.loads(credential))
                part = encode_record(user)
            yield str(row["ordinal"]), part


def pack_users(job: Job) -> None:
    """Assign every ready user to an import file as close to the size limit as is safe.

    One transaction, written file by file as the packer hands them over: memory stays flat however
    many users there are.
    """
    ledger = job.ledger
    if ledger.phase_done("pack"):
        return
    job.reporter.phase("pack import files")
    with ledger.tx() as db:
        next_id = (ledger.scalar("SELECT MAX(file_id) FROM files") or 0) + 1
        for packed in pack_encoded(_ready(job)):
            if packed.oversize:
                for key in packed.keys:
                    ledger.fail_user(int(key), "pack", "USER_TOO_LARGE",
                                     "the user's import record alone exceeds Auth0's 500 KB file limit")
                continue
            db.execute("INSERT INTO files (file_id, bytes, users) VALUES (?, ?, ?)",
                       (next_id, len(packed.body), len(packed.keys)))
            db.executemany("UPDATE users SET file_id = ? WHERE ordinal = ?", [(next_id, int(k)) for k in packed.keys])
            next_id += 1
    ledger.mark_phase("pack")
