"""Stage 6: old id -> new id, and the target's copy of each profile, from one export of the target.

Import jobs return no ids. With `--user-ids regenerate` the new ids are found by email in the
target connection; with `keep` and `prefix` they were computed, and the export confirms them.
The same export gives the profile fields that verification compares, so it is one job, not one
look-up per user. Users the export does not show are looked up one by one with
`GET /users-by-email` (immediately consistent), filtered to the target connection.

Never adopt a stranger (issue 8): a user the import met in the target (`DUPLICATED_USER`, or found older
than a lost upload) is this migration's only when it can be proved (`why_not_ours`): its id is the computed
one (`keep`, `prefix`), or its `app_metadata` holds this user's source id (`--record-source-id`). Otherwise
it is someone else's, e.g. a person who signed up in the new connection while the migration ran: the user
fails `STRANGER_IN_TARGET` (named, with the target id), so no grants are applied to it, it is not verified,
and its source copy is never deleted.

Choices where Auth0 is silent:

- with `regenerate` and no `--record-source-id`, nothing a user carries says who made it, so a user the
  import met is never adopted, even one an earlier run of this tool made under another `--state`: the
  owner who may run again with a new ledger should record the source id;
- a computed id that matches is proof enough: Auth0 gives a sign-up a random id, and only an import or a
  POST /users that chose the id can make `auth0|<source id>` or `auth0|<prefix><source id>`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..auth0 import jobs
from ..pool import run_pool
from .context import Migration

PROFILE_FIELDS = ("email", "email_verified", "given_name", "family_name", "name", "nickname", "picture",
                  "blocked", "app_metadata", "user_metadata", "username", "phone_number", "phone_verified")
STRANGER = "STRANGER_IN_TARGET"
TARGET_FIELDS = ("user_id", *PROFILE_FIELDS, "identities")
DEFAULTS: dict[str, Any] = {"blocked": False, "email_verified": False, "app_metadata": {}, "user_metadata": {},
                            "phone_verified": False}


def profile_differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """The profile fields where the target differs from what was imported (names only, never values of hashes)."""
    diffs = []
    for field in PROFILE_FIELDS:
        if field not in expected and field not in DEFAULTS:
            continue
        want = expected.get(field, DEFAULTS.get(field))
        have = actual.get(field, DEFAULTS.get(field))
        if field == "email" and isinstance(want, str) and isinstance(have, str):
            want, have = want.lower(), have.lower()
        if field == "picture" and field not in expected:
            continue
        if want != have:
            diffs.append(field)
    return diffs


def _own_connection(user: dict[str, Any]) -> str | None:
    """The connection a user belongs to: its first identity's (the others are linked secondaries)."""
    identities = user.get("identities")
    first = identities[0] if isinstance(identities, list) and identities else None
    return first.get("connection") if isinstance(first, dict) else None


def _apply(migration: Migration, target_user: dict[str, Any], pending: dict[str, int]) -> bool:
    email = target_user.get("email")
    if not isinstance(email, str):
        return False
    if _own_connection(target_user) not in (None, migration.target_connection.name):
        # A primary of another connection that holds a user of the target connection as a linked secondary:
        # the target connection's export shows it too (stages/identities.py), but it is not that user.
        return False
    ordinal = pending.pop(email.lower(), None)
    if ordinal is None:
        return False
    ledger = migration.ledger
    row = ledger.user_to_map(ordinal)
    if row is None:
        return False
    found_id = str(target_user.get("user_id"))
    record = json.loads(row.record)
    met = row.status in ("conflict", "already_in_target")  # the import met a user with this email
    if met:
        doubt = why_not_ours(migration, row.target_id, record, target_user)
        if doubt is not None:
            connection = migration.target_connection.name
            ledger.fail_user(ordinal, "idmap", STRANGER, (
                f"{email} is already in {connection} as {found_id}, and nothing proves this migration made it "
                f"({doubt}): not adopted, no grants applied to it, and the source copy is kept. Find out who it "
                "is (someone may have signed up meanwhile); to carry this user, resolve it in the target and run "
                "again with a new --state"))
            return True
    if row.target_id and row.target_id != found_id:
        ledger.id_mismatch(ordinal, found_id, f"expected {row.target_id} in the target but {email} has {found_id}")
        return True
    diffs = profile_differences(record, target_user)
    ledger.mark_found(ordinal, found_id, "already_in_target" if met else "imported", diffs)
    return True


NO_PROOF = ("with --user-ids regenerate and no --record-source-id the only proof would be this run's import "
            "job making it, and the job found it there already; --record-source-id lets a run prove its own users")
"""`why_not_ours` when the user carries nothing that could prove it ours (only the job's own word can)."""


def why_not_ours(migration: Migration, computed_id: str | None, record: dict[str, Any],
                 target_user: dict[str, Any]) -> str | None:
    """None when a target user with this user's email is provably this migration's user; else why not.

    Proof is the computed id (`keep`, `prefix`: a sign-up gets a random id), or the source id this migration
    records in `app_metadata` (`--record-source-id`); with neither (`NO_PROOF`), nothing a target user carries
    says who made it.
    """
    found_id = str(target_user.get("user_id"))
    if computed_id:
        return None if computed_id == found_id else f"its id is not the computed {computed_id}"
    key = migration.options.record_source_id
    if key:
        want = (record.get("app_metadata") or {}).get(key)
        have = (target_user.get("app_metadata") or {}).get(key)
        return None if want is not None and want == have else \
            f"its app_metadata.{key} is not this user's source id {want}"
    return NO_PROOF


async def map_ids(migration: Migration, *, phase: str = "idmap") -> None:
    """Read the target connection once and record every migrated user's target id and profile check."""
    ledger = migration.ledger
    if ledger.phase_done(phase):
        return
    migration.reporter.phase("map ids and check profiles in the target")
    pending = ledger.emails_to_map()
    job_id = ledger.get_meta(f"{phase}_export_job_id")
    if job_id is None:
        job_id = await jobs.start_export(migration.target, migration.target_connection.id, TARGET_FIELDS)
        ledger.set_meta(f"{phase}_export_job_id", job_id)
    job_id, path = await jobs.export_connection(migration.target, migration.target_connection.id, TARGET_FIELDS,
                                                job_id=job_id)
    try:
        with ledger.tx():
            for _, record, _problem in jobs.iter_export_file(path):
                if record is not None:
                    _apply(migration, record, pending)
    finally:
        os.unlink(path)
    if pending:
        await _look_up(migration, pending)
    ledger.mark_phase(phase)


async def find_in_target(migration: Migration, email: str) -> dict[str, Any] | None:
    """The target connection's user with this email, from `GET /users-by-email` (immediately consistent)."""
    connection = migration.target_connection.name
    users = await migration.target.call(f"look up {email} in the target",
                                        migration.target.sdk.users.list_users_by_email, email=email)
    for user in users or []:
        data: dict[str, Any] = user.model_dump(mode="json")
        if _own_connection(data) == connection:
            return data
    return None


async def _look_up(migration: Migration, pending: dict[str, int]) -> None:
    """Per-user fallback for users the export did not show (e.g. created after it started)."""
    connection = migration.target_connection.name
    found: list[dict[str, Any]] = []

    async def look(email: str) -> dict[str, Any] | None:
        return await find_in_target(migration, email)

    def done(email: str, user: dict[str, Any] | None) -> None:
        if user is not None:
            found.append(user)

    await run_pool(list(pending), look, on_result=done)
    ledger = migration.ledger
    with ledger.tx():
        for user in found:
            _apply(migration, user, pending)
        for email, ordinal in pending.items():
            row = ledger.user_state(ordinal)
            if row is not None and row.status == "conflict":
                ledger.fail_user(ordinal, "import", row.code or "CONFLICT", row.message or "conflict in the target")
            else:
                ledger.fail_user(ordinal, "idmap", "NOT_IN_TARGET",
                                 f"{email} was imported but is not in {connection}")
