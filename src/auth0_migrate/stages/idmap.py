"""Stage 6: old id -> new id, and the target's copy of each profile, from one export of the target.

Import jobs return no ids. With `--user-ids regenerate` the new ids are found by email in the
target connection; with `keep` and `prefix` they were computed, and the export confirms them.
The same export gives the profile fields that verification compares, so it is one job, not one
look-up per user. Users the export does not show are looked up one by one with
`GET /users-by-email` (immediately consistent), filtered to the target connection.
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
    if row.target_id and row.target_id != found_id:
        ledger.id_mismatch(ordinal, found_id, f"expected {row.target_id} in the target but {email} has {found_id}")
        return True
    diffs = profile_differences(json.loads(row.record), target_user)
    ledger.mark_found(ordinal, found_id, "already_in_target" if row.status in ("conflict", "already_in_target")
                      else "imported", diffs)
    return True


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
