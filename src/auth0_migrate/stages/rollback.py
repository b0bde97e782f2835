"""Rollback: take out of the target what a run put there, and bring back the source copies cutover deleted.

Everything comes from the ledger, so a rollback touches only what that run did:

1. **Source copies first** (only when cutover deleted some): each is imported into the source connection
   again with its own id (the import's `user_id`, so tokens and downstream keys stay valid), the profile
   the run carried (less the `--record-source-id` key the run added), and its password hash read again
   from `--password-hashes` (the ledger keeps no hashes of imported users). Each is confirmed by a read
   (`users-by-email`, the identity of the source connection) before it counts. They come first so that
   nobody exists in neither connection if the rollback stops half way.
2. **The target copies this run imported** are deleted by connection and email (`DELETE
   /connections/{target}/users?email=`), each confirmed by a read, as cutover confirms its deletions.
   A user that was in the target before the run (`already_in_target`) is never deleted.
3. **Source grants** (roles and DIRECT permissions as the run read them) are written again for the
   source copies imported again, and, with kept ids in one tenant, for every migrated user (the shared
   id may lose its grants when the target copy is deleted), then read back.

Each step is recorded per user in the ledger's `rollback` table, so running the same command again
continues. What cannot come back is said before anything is done (`inventory`): a deleted user's
`last_login`, `logins_count`, sessions and refresh tokens; its password when no hash file is given;
and the grants the run wrote onto users that were already in the target (the ledger does not know
which of them those users held before, so they are left and counted).

Choices where Auth0 is silent:

- a re-imported source copy that the import answers `DUPLICATED_USER`/`CONFLICT` for is looked up:
  when the source connection holds that id it counts as restored (an earlier, interrupted rollback
  made it);
- the hash file is read again by user id and kept in memory only for the users being imported
  again (never written to the ledger).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..auth0.client import TenantClient
from ..auth0.jobs import import_errors, submit_import, wait_for_job
from ..formats.hash_file import HashRow, iter_hash_file
from ..formats.import_file import pack_files
from ..formats.import_record import import_user_id
from ..ledger import RollbackUser
from ..pool import run_pool
from .context import Migration
from .grants import direct_permissions, role_member_ids

NOT_REMOVED = "ROLLBACK_DELETE_NOT_CONFIRMED"
NOT_RESTORED = "ROLLBACK_NOT_RESTORED"
GRANTS_MISSING = "ROLLBACK_GRANTS_MISSING"
ALREADY = ("DUPLICATED_USER", "CONFLICT")
ROLE_BATCH = 100


async def holds(client: TenantClient, connection: str, email: str, user_id: str) -> bool:
    """True when `connection` holds a user with this email and id (one `users-by-email` read).

    By email, not id: with kept ids two connections of one tenant hold the same id, and only the
    identity's connection tells them apart.
    """
    users = await client.call(f"look up {email} in {connection}", client.sdk.users.list_users_by_email, email=email)
    for user in users or []:
        data = user.model_dump(mode="json")
        for identity in data.get("identities") or []:
            if identity.get("connection") != connection:
                continue
            if user_id in (f"{identity.get('provider')}|{identity.get('user_id')}", str(data.get("user_id"))):
                return True
    return False


def read_credentials(path: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The hash-file credential of each wanted source id (the first usable line of each)."""
    found: dict[str, dict[str, Any]] = {}
    for row in iter_hash_file(path):
        if isinstance(row, HashRow) and row.user_id in wanted and row.credential and row.user_id not in found:
            found[row.user_id] = row.credential
    return found


def source_record(user: RollbackUser, record_source_id: str | None,
                  credential: Mapping[str, Any] | None) -> dict[str, Any]:
    """The import record that brings a deleted source copy back as it was: its own id, no key the run added."""
    record: dict[str, Any] = json.loads(user.record or "{}")
    for key in ("password_hash", "custom_password_hash"):
        record.pop(key, None)
    record["email"] = record.get("email") or user.email
    record["user_id"] = import_user_id(user.source_id, "keep")
    metadata = record.get("app_metadata")
    if record_source_id and isinstance(metadata, dict) and metadata.get(record_source_id) == user.source_id:
        metadata = {k: v for k, v in metadata.items() if k != record_source_id}
        if metadata:
            record["app_metadata"] = metadata
        else:
            record.pop("app_metadata")
    if credential:
        record.update(credential)
    return record


async def reimport_source_copies(migration: Migration, credentials: Mapping[str, dict[str, Any]]) -> None:
    """Step 1: every deleted source copy imported into the source connection again, and confirmed there."""
    ledger = migration.ledger
    users = ledger.users_to_reimport()
    if not users:
        return
    source, connection = migration.source, migration.source_connection
    migration.reporter.phase(f"import {len(users)} deleted users into {connection.name} again", total=len(users))
    by_key = {str(u.ordinal): u for u in users}
    records = ((str(u.ordinal), source_record(u, migration.options.record_source_id,
                                              credentials.get(u.source_id))) for u in users)
    refused: dict[int, str] = {}
    for number, packed in enumerate(pack_files(records)):
        external = f"auth0-migrate-rollback-{ledger.get_meta('run_id')}-{number}"
        job_id = await submit_import(source, connection.id, packed.body, external)
        job = await wait_for_job(source, job_id)
        errors = await import_errors(source, job_id) if job.status == "completed" else []
        emails = {by_key[k].email: by_key[k].ordinal for k in packed.keys}
        for item in errors if isinstance(errors, list) else []:
            detail = (item.get("errors") or [{}])[0]
            email = (item.get("user") or {}).get("email")
            if email in emails and detail.get("code") not in ALREADY:
                refused[emails[email]] = f"{detail.get('code')}: {detail.get('message')}"
        if job.status != "completed":
            for ordinal in emails.values():
                refused.setdefault(ordinal, f"the import job {job_id} ended {job.status}; run again to retry")

    restored: list[int] = []
    failed: list[tuple[int, str, str]] = []

    async def confirm(user: RollbackUser) -> bool:
        return await holds(source, connection.name, user.email or "", user.source_id)

    def confirmed(user: RollbackUser, there: bool) -> None:
        migration.reporter.advance()
        if there:
            restored.append(user.ordinal)
        else:
            why = refused.get(user.ordinal, "the import did not make it")
            failed.append((user.ordinal, NOT_RESTORED, f"{user.email} was not restored to {connection.name}: {why}"))

    try:
        await run_pool(users, confirm, on_result=confirmed)
    finally:
        ledger.mark_rolled_back("reimported", restored)
        ledger.fail_rollback(failed)


async def remove_target_copies(migration: Migration) -> None:
    """Step 2: every user this run imported, deleted from the target connection and confirmed gone."""
    ledger = migration.ledger
    users = ledger.users_to_remove_from_target()
    if not users:
        return
    target, connection = migration.target, migration.target_connection
    migration.reporter.phase(f"delete the {len(users)} users this run imported from {connection.name}",
                             total=len(users))
    removed: list[int] = []
    failed: list[tuple[int, str, str]] = []

    async def remove(user: RollbackUser) -> bool:
        email = user.email or ""
        await target.call(f"delete {email} from {connection.name}", target.sdk.connections.users.delete_by_email,
                          connection.id, email=email)
        return not await holds(target, connection.name, email, user.target_id or "")

    def done(user: RollbackUser, gone: bool) -> None:
        migration.reporter.advance()
        if gone:
            removed.append(user.ordinal)
        else:
            failed.append((user.ordinal, NOT_REMOVED, f"{user.email} is still in {connection.name} after its "
                                                      "DELETE answered; run again to retry"))

    try:
        await run_pool(users, remove, on_result=done)
    finally:
        ledger.mark_rolled_back("removed", removed)
        ledger.fail_rollback(failed)


async def restore_source_grants(migration: Migration) -> None:
    """Step 3: the source roles and DIRECT permissions of the users that need them, written and read back."""
    ledger = migration.ledger
    every = migration.same_tenant and migration.options.user_ids == "keep"
    users = {u.ordinal: u for u in ledger.users_to_regrant(every_migrated=every)}
    if not users:
        return
    source = migration.source
    migration.reporter.phase(f"restore the source roles and permissions of {len(users)} users", total=len(users))
    members: dict[str, list[int]] = defaultdict(list)
    for role_id, ordinal in ledger.role_memberships():
        if ordinal in users:
            members[role_id].append(ordinal)
    perms: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for p in ledger.permissions():
        if p.ordinal in users:
            perms[p.ordinal].add((p.api, p.name))
    for role_id, ordinals in members.items():
        for start in range(0, len(ordinals), ROLE_BATCH):
            await source.call(f"assign role {role_id}", source.sdk.roles.users.assign, role_id,
                              users=[users[o].source_id for o in ordinals[start:start + ROLE_BATCH]])

    async def give(ordinal: int) -> None:
        await source.call(f"restore permissions of {users[ordinal].source_id}", source.sdk.users.permissions.create,
                          users[ordinal].source_id, permissions=[
                              {"resource_server_identifier": api, "permission_name": name}
                              for api, name in sorted(perms[ordinal])])

    await run_pool(list(perms), give)
    # Read back: role members set-wise, permissions of the users that have any.
    held_roles: dict[str, set[str]] = {role_id: set(await role_member_ids(source, role_id)) for role_id in members}
    held_perms: dict[int, set[tuple[str, str]]] = {}

    async def read(ordinal: int) -> set[tuple[str, str]]:
        return set(await direct_permissions(source, users[ordinal].source_id))

    def got(ordinal: int, found: set[tuple[str, str]]) -> None:
        held_perms[ordinal] = found

    await run_pool(list(perms), read, on_result=got)
    ok: list[int] = []
    failed: list[tuple[int, str, str]] = []
    for ordinal, user in users.items():
        missing = [f"role {r}" for r, who in members.items() if ordinal in who and user.source_id not in held_roles[r]]
        missing += [f"permission {a} {n}" for a, n in sorted(perms[ordinal] - held_perms.get(ordinal, set()))]
        if missing:
            failed.append((ordinal, GRANTS_MISSING, f"{user.email}: not held again in the source: "
                                                    + ", ".join(missing)))
        else:
            ok.append(ordinal)
        migration.reporter.advance()
    ledger.mark_rolled_back("grants_restored", ok)
    ledger.fail_rollback(failed)


def inventory(counts: Mapping[str, int], *, source: str, target: str, hashes: str | None,
              same_tenant: bool) -> tuple[list[str], list[str]]:
    """(what a rollback will restore, what it cannot), in words an owner reads before saying yes."""
    can, cannot = [], []
    imported = counts["imported_by_run"] - counts["removed_from_target"]
    if imported:
        can.append(f"delete from {target} the {imported} users this run imported (each confirmed by a read)")
    deleted = counts["deleted_from_source_by_run"] - counts["restored_to_source"]
    if deleted:
        how = (f"with their password hashes from {hashes}" if hashes else
               "WITHOUT passwords (no --password-hashes: they must reset their password)")
        can.append(f"import into {source} again the {deleted} users cutover deleted, with their own ids, profiles, "
                   f"roles and DIRECT permissions, {how}")
        cannot.append(f"the {deleted} deleted users' last_login, logins_count, sessions and refresh tokens (Auth0's "
                      "import cannot set them)")
    if counts["already_in_target"]:
        grants = counts["grants_written_to_existing_users"]
        cannot.append(f"{counts['already_in_target']} users were in the target before this run: they stay, with the "
                      f"{grants} role memberships and permissions the run wrote to them (the ledger cannot tell "
                      "which of them they held before)")
    if not can:
        can.append("nothing: the target holds no user this run imported" + (
            "" if same_tenant else f" and {source} lost no user to cutover"))
    return can, cannot
