"""A refresh: what changed in the source since the ledger's last export, carried to the target.

`run --refresh` exports the source again (`export.export_again`): users it has not seen before are
ingested like the first run's (joined to the newer hash file, transformed, packed, imported, mapped,
verified); every known user is handed to `compare`, which diffs its profile against the record the
ledger carried, and its hash against the digest of the hash it was imported with. Migrated users
the export no longer shows are `deleted` in the delta. What changed is then carried:

- profile changes through Auth0's import upsert (`upsert=true`, matched on email), only the
  upsertable fields (`UPSERTABLE`, reference §2.5); any other changed field (`blocked`, `username`,
  `phone_number`, `email`...) is named per user, `NOT_UPSERTABLE`, and the carried record keeps the
  old value, so verification compares the target with what was really carried;
- a changed password: a newer `custom_password_hash` goes in through a second upsert job, which
  Auth0 accepts only for a user who still holds an imported custom hash and has not logged in; a
  user it refuses, or whose newer hash is a `password_hash` (never replaced by an upsert), or who
  was imported without a hash, is named `PASSWORD_RESET_NEEDED` for the owner to ask for a reset;
- users deleted from the source are reported (`deleted-in-source`); with `--propagate-deletes` the
  ones this migration made (`imported`, not `already_in_target`) are deleted from the target
  connection by email, each confirmed by `GET /users/{target id}` answering 404.

A refresh makes no per-user call for a user that did not change: one export on each side, the
jobs that carry the changes, and per-user reads only for the users it carries.

Choices where Auth0 is silent
-----------------------------
- A changed password is told by a SHA-256 digest of the credential JSON the user was imported
  with, kept in the 0600 ledger once the hash itself is cleared (a digest of a hash is no login
  secret). A ledger written before digests were kept cannot tell: its users' hashes are left as
  they are, and nobody is named.
- The profile upsert sends the email and the upsertable fields only (never `user_id`, `username`
  or a hash): Auth0 matches on email, and a field it would not change could only make the match
  ambiguous. Metadata removed in the source is sent as `{}` (upsert replaces metadata whole); a
  removed name field cannot be cleared by an upsert and is named like a non-upsertable one.
- An upsert job that fails or expires as a whole is sent again (the same upsert twice does what
  it does once), up to three times; then the run stops with a transient error and resumes later.
- A user whose source copy is gone but who was in the target before this migration
  (`already_in_target`) is never deleted by `--propagate-deletes`: it is not this migration's.
"""

from __future__ import annotations

import json
from typing import Any

from ..auth0 import jobs
from ..errors import AnswerLost, ImportSlotsBusy, NotFoundError, RateLimited, TransientError
from ..formats.import_file import pack_encoded
from ..formats.import_record import to_import_record
from ..ledger import MIGRATED, REFUSED_DIGEST, KnownUser, UpsertRow, credential_digest, dumps
from ..pool import run_pool
from .context import Migration
from .idmap import DEFAULTS, PROFILE_FIELDS
from .transform import combine, stale_hash

UPSERTABLE = ("app_metadata", "user_metadata", "email_verified", "given_name", "family_name", "name", "nickname",
              "picture")
"""The fields an upsert changes (reference §2.5; Auth0's bulk import schema, "upsertable")."""
_CLEARABLE = ("app_metadata", "user_metadata", "email_verified")
"""Upsertable fields a removal can be carried for (sent as their empty value)."""
MAX_JOB_ATTEMPTS = 3
SLOT_WAIT = 5.0


def _value(record: dict[str, Any], field: str) -> Any:
    value = record.get(field, DEFAULTS.get(field))
    return value.lower() if field == "email" and isinstance(value, str) else value


def compare(migration: Migration, known: KnownUser, export: dict[str, Any]) -> None:
    """Diff one re-exported user against what the ledger carried; record what a refresh carries or names."""
    if known.status not in MIGRATED or known.deleted or known.record is None:
        return
    ledger = migration.ledger
    options = migration.options
    source_id = str(export.get("user_id"))
    new, problems = to_import_record(export, credential=None, strategy=options.user_ids, prefix=options.id_prefix,
                                     record_source_id=options.record_source_id)
    if new is None or problems:
        ledger.name_delta_exception(known.ordinal, "INVALID_CHANGE", "; ".join(
            f"{p.field}: {p.message}" if p.field else p.message for p in problems))
        return
    old = json.loads(known.record)
    changed = [f for f in PROFILE_FIELDS if _value(old, f) != _value(new, f)]
    fixed = [f for f in changed if f not in UPSERTABLE or (f not in new and f not in _CLEARABLE)]
    carried = [] if "email" in fixed else [f for f in changed if f not in fixed]
    if carried:
        record = dict(old)
        for field in carried:
            record[field] = new.get(field, DEFAULTS.get(field))
        ledger.record_profile_change(known.ordinal, dumps(record), upsert=True)
    if fixed:
        why = ("Auth0's import upsert matches users by email, so none of these changes can be carried"
               if "email" in fixed else "Auth0's import upsert does not change these fields")
        ledger.name_delta_exception(known.ordinal, "NOT_UPSERTABLE",
                                    f"{', '.join(fixed)} changed in the source since the last export; {why}: "
                                    "change them in the target (PATCH /users/{id})")
    if options.password_hashes:
        _compare_hash(migration, known, source_id, export)


def _compare_hash(migration: Migration, known: KnownUser, source_id: str, export: dict[str, Any]) -> None:
    ledger = migration.ledger
    found, credential, set_date = ledger.hash_for(source_id)
    if not found or credential is None:
        return
    if known.credential_digest is None:
        if not known.has_credential:
            ledger.name_delta_exception(known.ordinal, "PASSWORD_RESET_NEEDED", (
                "the newer hash file has a password hash for this user, who was imported without one; Auth0 "
                "never gives such a user a hash later: ask them to reset their password"))
        return  # imported by a ledger that kept no digest: whether the hash changed cannot be told
    digest = credential_digest(credential)
    if digest == known.credential_digest:
        return
    if REFUSED_DIGEST + digest == known.credential_digest:
        ledger.name_delta_exception(known.ordinal, "PASSWORD_RESET_NEEDED", (
            "the password changed in the source since the user was imported, and Auth0 refused the newer hash at an "
            "earlier refresh (a user who has logged in to the target keeps its hash): ask the user to reset their "
            "password"))
        return
    stale = stale_hash(export, set_date)
    if stale is not None:
        ledger.name_delta_exception(known.ordinal, "STALE_HASH", (
            f"the newer hash file's hash for this user is not sent: {stale}; give a hash file taken after the "
            "change, or ask the user to reset their password"))
        return
    if "custom_password_hash" in json.loads(credential):
        ledger.record_newer_hash(known.ordinal, credential)
        return
    ledger.name_delta_exception(known.ordinal, "PASSWORD_RESET_NEEDED", (
        "the password changed in the source since the user was imported, and the newer hash is a password_hash, "
        "which Auth0's upsert never replaces: ask the user to reset their password"))


def _upsert_record(row: UpsertRow, *, with_hash: bool) -> bytes:
    record = json.loads(row.record)
    body = {k: record[k] for k in ("email", *UPSERTABLE) if k in record}
    body.setdefault("email_verified", False)
    return combine(dumps(body), row.credential if with_hash else None)


async def upsert_changes(migration: Migration) -> None:
    """The profile upsert, then the newer hashes' upsert; each user refused is named, the rest settled."""
    ledger = migration.ledger
    if ledger.phase_done("refresh-upsert"):
        return
    for hashes in (False, True):
        rows = ledger.users_to_upsert(hashes=hashes)
        if not rows:
            continue
        migration.reporter.phase("upsert newer password hashes" if hashes else "upsert changed profiles",
                                 total=len(rows))
        by_key = {str(r.ordinal): r for r in rows}
        for packed in pack_encoded((str(r.ordinal), _upsert_record(r, with_hash=hashes)) for r in rows):
            users = [by_key[k] for k in packed.keys]
            if packed.oversize:
                for user in users:
                    ledger.name_delta_exception(user.ordinal, "USER_TOO_LARGE",
                                                "the user's upsert record alone exceeds Auth0's 500 KB file limit")
            else:
                await _upsert_file(migration, packed.body, users, hashes=hashes)
            ledger.upsert_settled([u.ordinal for u in users], hashes=hashes)
            migration.reporter.advance(len(users))
    ledger.mark_phase("refresh-upsert")


async def _upsert_file(migration: Migration, body: bytes, users: list[UpsertRow], *, hashes: bool) -> None:
    ledger = migration.ledger
    target = migration.target
    clock = target.governor.clock
    external_id = f"auth0-migrate-{ledger.get_meta('run_id', 'run')}-upsert-{users[0].ordinal}"
    refusals = 0
    for attempt in range(1, MAX_JOB_ATTEMPTS + 1):
        try:
            job_id = await jobs.submit_import(target, migration.target_connection.id, body, external_id, upsert=True)
        except (AnswerLost, ImportSlotsBusy, RateLimited) as exc:  # an upsert sent twice does what it does once
            refusals += 1
            if refusals >= target.governor.max_attempts:
                raise
            migration.reporter.warn(f"the upsert of {len(users)} users was not taken ({exc}); sending it again")
            await clock.sleep(SLOT_WAIT * refusals)
            continue
        state = await jobs.wait_for_job(target, job_id)
        if state.status != "completed":
            migration.reporter.warn(f"upsert job {job_id} ended {state.status} (attempt {attempt}); sending it again")
            continue
        errors = await jobs.import_errors(target, job_id) if (state.summary or {}).get("failed") else []
        if isinstance(errors, dict):
            continue
        by_email = {u.email: u.ordinal for u in users if u.email is not None}
        for item in errors:
            user = item.get("user") or {}
            email = user.get("email") if isinstance(user, dict) else None
            ordinal = by_email.get(email.lower()) if isinstance(email, str) else None
            if ordinal is None:
                continue
            first = (item.get("errors") or [{}])[0]
            reason = f"{first.get('code') or 'IMPORT_ERROR'}: {first.get('message') or ''}".strip()
            if hashes:
                ledger.hash_upsert_refused(ordinal, "PASSWORD_RESET_NEEDED", (
                    f"the password changed in the source since the user was imported, and Auth0 refused the newer "
                    f"hash ({reason}; a user who has logged in to the target keeps its hash): ask the user to reset "
                    "their password"))
            else:
                ledger.name_delta_exception(ordinal, "UPSERT_REFUSED", f"the profile upsert was refused: {reason}")
        return
    raise TransientError(f"the upsert job of {len(users)} users failed or expired {MAX_JOB_ATTEMPTS} times; run the "
                         "same command again to retry", operation="upsert")


async def deletions(migration: Migration) -> None:
    """Report the users gone from the source; with `--propagate-deletes`, delete this migration's copies."""
    ledger = migration.ledger
    if ledger.phase_done("refresh-deletes"):
        return
    source = migration.source_connection.name
    target = migration.target_connection
    propagate = migration.options.propagate_deletes
    todo = []
    for user in ledger.users_gone_from_source():
        who = f"{user.email or user.source_id} ({user.source_id})"
        if user.target_deleted:
            continue
        if not propagate or user.status != "imported" or not user.email or not user.target_id:
            why = ("--propagate-deletes deletes it" if not propagate else
                   "it was in the target before this migration, so --propagate-deletes leaves it")
            ledger.add_problem_once("deleted-in-source", user.source_id,
                                    f"{who} was deleted from {source} since the last export; its copy in "
                                    f"{target.name} ({user.target_id}) is kept: {why}")
            continue
        todo.append(user)
    if todo:
        migration.reporter.phase("delete from the target the users deleted from the source", total=len(todo))
    done: list[int] = []

    async def delete(user: Any) -> bool:
        client = migration.target
        await client.call(f"delete {user.email} from {target.name}", client.sdk.connections.users.delete_by_email,
                          target.id, email=user.email)
        try:
            await client.call(f"confirm {user.email} is gone from {target.name}", client.sdk.users.get,
                              user.target_id, fields="user_id", include_fields=True)
        except NotFoundError:
            return True
        return False

    def settled(user: Any, gone: bool) -> None:
        who = f"{user.email} ({user.source_id})"
        if gone:
            done.append(user.ordinal)
            ledger.add_problem_once("deleted-in-source", user.source_id,
                                    f"{who} was deleted from {source} since the last export; deleted from "
                                    f"{target.name} too ({user.target_id}, --propagate-deletes)")
        else:
            ledger.add_problem_once("delta-delete", user.source_id,
                                    f"{who} was deleted from {source}, but {user.target_id} is still in "
                                    f"{target.name} after its DELETE answered 204 (run again to retry)")

    try:
        await run_pool(todo, delete, on_result=settled)
    finally:
        ledger.record_target_deletions(done)
    if len(done) == len(todo):
        ledger.mark_phase("refresh-deletes")
