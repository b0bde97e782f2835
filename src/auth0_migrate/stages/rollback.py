"""Rollback: take out of the target what a run put there, and bring back the source copies cutover deleted.

Everything comes from the ledger, so a rollback touches only what that run did:

0. **Linked accounts the run moved** (one tenant, ledger `identity_moves` past `found`): each secondary
   linked to a new primary is unlinked from it first (`DELETE /users/{new}/identities/...`), so deleting
   the new primary cannot take it along, and, under kept ids after cutover, before the source copy is
   back (the id is then held by one user only). Parked or unlinked ones are users of their own already.
1. **Source copies** (only when cutover deleted some): each is imported into the source connection
   again with its own id (the import's `user_id`, so tokens and downstream keys stay valid), the profile
   the run carried (less the `--record-source-id` key the run added), and its password hash read again
   from `--password-hashes` (the ledger keeps no hashes of imported users), with its totp/phone/email MFA
   factors read again from `--mfa-secrets` (`formats/mfa_file.py`; the ledger keeps none either). Each is
   confirmed by a read (`users-by-email`, the identity of the source connection) before it counts. They come
   first so that nobody exists in neither connection if the rollback stops half way.
2. **The target copies this run imported** are deleted by connection and email (`DELETE
   /connections/{target}/users?email=`), each confirmed by a read, as cutover confirms its deletions.
   A user that was in the target before the run (`already_in_target`) is never deleted.
   The target deletes a user's organization memberships (and its organization roles) with the user.
3. **Source grants** (roles, DIRECT permissions, organization memberships and organization roles as the
   run read them: the ledger's `organization` and `organization-role` holdings) are written again for the
   source copies imported again, and, with kept ids in one tenant, for every migrated user (the shared
   id may lose them when the target copy is deleted), then read back; the MFA factors of the source
   copies imported again are read back too (`GET /users/{id}/authentication-methods`).
4. **Linked accounts back**: each secondary is linked to its old primary again (after cutover, only once
   that primary is back), each step recorded before and after its call (ledger `rollback_links`), then
   read back among the old primary's identities.

Each step is recorded per user in the ledger's `rollback` table, so running the same command again
continues. What cannot come back is said before anything is done (`inventory`): a deleted user's
`last_login`, `logins_count`, sessions and refresh tokens; its password when no hash file is given;
its totp/phone/email factors when no `--mfa-secrets` file is given, and its push and WebAuthn enrolments
always (Auth0's import takes neither: the user enrols again); and the grants the run wrote onto users that
were already in the target (the ledger does not know which of them those users held before, so they are
left and counted).

Choices where Auth0 is silent:

- a re-imported source copy that the import answers `DUPLICATED_USER`/`CONFLICT` for is looked up:
  when the source connection holds that id it counts as restored (an earlier, interrupted rollback
  made it);
- a source organization that no longer exists when a membership is written back is not recreated: the
  membership is named as not restored;
- a link back answered 409 (already linked) is taken as done and left to the read back;
- the hash file is read again by user id and kept in memory only for the users being imported
  again (never written to the ledger).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from ..auth0.jobs import import_errors, submit_import, wait_for_job
from ..auth0.paging import every, offset_items
from ..errors import Conflict, NotFoundError
from ..formats.hash_file import HashRow, iter_hash_file
from ..formats.import_file import pack_files
from ..formats.import_record import import_user_id
from ..formats.mfa_file import factor_types
from ..ledger import LinkBack, RollbackUser
from ..pool import run_pool
from . import mfa
from .context import Migration
from .cutover import holds
from .grants import direct_permissions, role_member_ids
from .identities import _Relinker
from .organizations import META as ORG_META
from .organizations import _members

NOT_REMOVED = "ROLLBACK_DELETE_NOT_CONFIRMED"
NOT_RESTORED = "ROLLBACK_NOT_RESTORED"
GRANTS_MISSING = "ROLLBACK_GRANTS_MISSING"
LINK_NOT_RESTORED = "ROLLBACK_LINK_NOT_RESTORED"
ALREADY = ("DUPLICATED_USER", "CONFLICT")
ROLE_BATCH = 100


def read_credentials(path: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The hash-file credential of each wanted source id (the first usable line of each)."""
    found: dict[str, dict[str, Any]] = {}
    for row in iter_hash_file(path):
        if isinstance(row, HashRow) and row.user_id in wanted and row.credential and row.user_id not in found:
            found[row.user_id] = row.credential
    return found


def source_record(user: RollbackUser, record_source_id: str | None,
                  credential: Mapping[str, Any] | None, factors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The import record that brings a deleted source copy back as it was: its own id, no key the run added, and
    its MFA factors from the `--mfa-secrets` file (`factors`; the ledger keeps none once the run imported it)."""
    record: dict[str, Any] = json.loads(user.record or "{}")
    record.pop("mfa_factors", None)
    if factors:
        record["mfa_factors"] = factors
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
    found = mfa.secrets(migration)
    records = ((str(u.ordinal), source_record(u, migration.options.record_source_id, credentials.get(u.source_id),
                                              found.factors_for(u.source_id, u.email) if found else None))
               for u in users)
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
    """Step 3: the source roles, DIRECT permissions, organization memberships and organization roles of the users
    that need them written, and (for source copies imported again) their MFA factors, all read back."""
    ledger = migration.ledger
    every_migrated = migration.same_tenant and migration.options.user_ids == "keep"
    users = {u.ordinal: u for u in ledger.users_to_regrant(every_migrated=every_migrated)}
    if not users:
        return
    source = migration.source
    migration.reporter.phase(f"restore the source roles, permissions and organizations of {len(users)} users",
                             total=len(users))
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
    missing_orgs = await _restore_organizations(migration, users)
    # Read back: role members set-wise, permissions of the users that have any.
    held_roles: dict[str, set[str]] = {role_id: set(await role_member_ids(source, role_id)) for role_id in members}
    held_perms: dict[int, set[tuple[str, str]]] = {}

    async def read(ordinal: int) -> set[tuple[str, str]]:
        return set(await direct_permissions(source, users[ordinal].source_id))

    def got(ordinal: int, found: set[tuple[str, str]]) -> None:
        held_perms[ordinal] = found

    await run_pool(list(perms), read, on_result=got)
    missing_factors = await _verify_factors(migration, users)
    ok: list[int] = []
    failed: list[tuple[int, str, str]] = []
    for ordinal, user in users.items():
        missing = [f"role {r}" for r, who in members.items() if ordinal in who and user.source_id not in held_roles[r]]
        missing += [f"permission {a} {n}" for a, n in sorted(perms[ordinal] - held_perms.get(ordinal, set()))]
        missing += missing_orgs.get(ordinal, []) + missing_factors.get(ordinal, [])
        if missing:
            failed.append((ordinal, GRANTS_MISSING, f"{user.email}: not held again in the source: "
                                                    + ", ".join(missing)))
        else:
            ok.append(ordinal)
        migration.reporter.advance()
    ledger.mark_rolled_back("grants_restored", ok)
    ledger.fail_rollback(failed)


async def _restore_organizations(migration: Migration, users: Mapping[int, RollbackUser]) -> dict[int, list[str]]:
    """The users' source organization memberships and organization roles (the ledger's `organization` and
    `organization-role` holdings, whatever became of them in the target) written in the source, then read back;
    what is not held afterwards, per user, in words."""
    ledger = migration.ledger
    source = migration.source
    names: dict[str, str] = (ledger.get_meta(ORG_META) or {}).get("orgs", {})
    member_of: dict[str, list[int]] = defaultdict(list)
    for h in ledger.holdings("organization"):
        if h.ordinal in users:
            member_of[h.item].append(h.ordinal)
    org_roles: dict[tuple[str, int], list[str]] = defaultdict(list)
    for h in ledger.holdings("organization-role"):
        org, role = h.item.split(" ", 1)
        if h.ordinal in users:
            org_roles[(org, h.ordinal)].append(role)
    if not member_of:
        return {}
    gone: set[str] = set()

    async def add(item: tuple[str, list[int]]) -> None:
        org, ordinals = item
        try:
            for start in range(0, len(ordinals), ROLE_BATCH):
                await source.call(f"add members to organization {names.get(org, org)!r}",
                                  source.sdk.organizations.members.create, org,
                                  members=[users[o].source_id for o in ordinals[start:start + ROLE_BATCH]])
        except NotFoundError:
            gone.add(org)

    await run_pool(list(member_of.items()), add)

    async def assign(item: tuple[tuple[str, int], list[str]]) -> None:
        (org, ordinal), roles = item
        if org in gone or ordinal not in member_of.get(org, []):
            return
        await source.call(f"assign organization roles to {users[ordinal].source_id} in {names.get(org, org)!r}",
                          source.sdk.organizations.members.roles.assign, org, users[ordinal].source_id, roles=roles)

    await run_pool(list(org_roles.items()), assign)
    held: dict[str, dict[str, set[str]]] = {}

    async def read(org: str) -> list[Any]:
        return await _members(source, org, names.get(org, org))

    def got(org: str, found: list[Any]) -> None:
        held[org] = {str(m.user_id): {str(r.id) for r in m.roles or []} for m in found}

    await run_pool(sorted(set(member_of) - gone), read, on_result=got)
    missing: dict[int, list[str]] = defaultdict(list)
    for org, ordinals in member_of.items():
        for ordinal in ordinals:
            there = held.get(org, {})
            if users[ordinal].source_id not in there:
                why = " (no longer in the source)" if org in gone else ""
                missing[ordinal].append(f"organization {names.get(org, org)!r}{why}")
    for (org, ordinal), roles in org_roles.items():
        has = held.get(org, {}).get(users[ordinal].source_id, set())
        missing[ordinal] += [f"organization role {role} in {names.get(org, org)!r}"
                             for role in roles if role not in has]
    return {o: m for o, m in missing.items() if m}


async def _verify_factors(migration: Migration, users: Mapping[int, RollbackUser]) -> dict[int, list[str]]:
    """For source copies imported again with factors from `--mfa-secrets`: each factor type read back in the source
    (`GET /users/{id}/authentication-methods`, after the target copies are gone, so a kept id is the source's)."""
    found = mfa.secrets(migration)
    if found is None:
        return {}
    ledger = migration.ledger
    deleted = ledger.deleted_from_source(users)
    wanted: dict[int, Counter[str]] = {}
    for ordinal in deleted:
        factors = found.factors_for(users[ordinal].source_id, users[ordinal].email)
        if factors:
            wanted[ordinal] = Counter(factor_types(factors))
    if not wanted:
        return {}
    source = migration.source
    listed: dict[int, Counter[str]] = {}

    async def read(ordinal: int) -> Counter[str]:
        user_id = users[ordinal].source_id
        try:
            methods = await every(offset_items(source, f"read the MFA factors of {user_id}",
                                               source.sdk.users.authentication_methods.list, user_id))
        except NotFoundError:
            return Counter()
        return Counter(str(m.type) for m in methods)

    def got(ordinal: int, counted: Counter[str]) -> None:
        listed[ordinal] = counted

    await run_pool(list(wanted), read, on_result=got)
    return {o: [f"MFA factor {kind}" for kind, n in sorted(want.items()) if listed.get(o, Counter())[kind] < n]
            for o, want in wanted.items() if any(listed.get(o, Counter())[k] < n for k, n in want.items())}


def _primary_groups(backs: list[LinkBack]) -> list[list[LinkBack]]:
    grouped: dict[int, list[LinkBack]] = {}
    for back in backs:
        grouped.setdefault(back.move.ordinal, []).append(back)
    return list(grouped.values())


async def unlink_moved_secondaries(migration: Migration) -> None:
    """Step 0 (one tenant): every secondary the run linked to a new primary is unlinked from it (a user of its own
    again), before anything else, so deleting the new primary cannot take it along and a kept id is never
    ambiguous (the source copy is not back yet). Parked or unlinked ones are users of their own already."""
    if not migration.same_tenant:
        return
    ledger = migration.ledger
    backs = [b for b in ledger.links_to_move_back() if b.back in (None, "unlinking")]
    if not backs:
        return
    migration.reporter.phase(f"unlink {len(backs)} linked accounts from the new primaries", total=len(backs))
    relinker = _Relinker(migration)
    client = migration.target

    async def unlink(held: list[LinkBack]) -> int:
        for back in held:
            move = back.move
            if await relinker.is_a_user(move.item):
                ledger.set_link_back(move.ordinal, move.item, "unlinked")
            elif move.step in ("linking", "linked"):  # linked to the new primary
                provider, _, user_id = move.item.partition("|")
                ledger.set_link_back(move.ordinal, move.item, "unlinking")
                await client.call(f"unlink {move.item} from {move.target_id}", client.sdk.users.identities.delete,
                                  move.target_id or "", provider, user_id)
                ledger.set_link_back(move.ordinal, move.item, "unlinked")
            else:  # the run stopped before its unlink went through: still on the old primary, read back later
                ledger.set_link_back(move.ordinal, move.item, "linked")
        return len(held)

    await run_pool(_primary_groups(backs), unlink, on_result=lambda _, n: migration.reporter.advance(n))


async def link_back_secondaries(migration: Migration) -> None:
    """Last step (one tenant): each secondary linked to its old primary again (after cutover, once that primary is
    imported again), then read back among the old primary's identities."""
    if not migration.same_tenant:
        return
    ledger = migration.ledger
    backs = [b for b in ledger.links_to_move_back() if b.back in ("unlinked", "linking", "linked")]
    if not backs:
        return
    migration.reporter.phase(f"link {len(backs)} accounts back to their old primaries", total=len(backs))
    relinker = _Relinker(migration)
    client = migration.source
    waiting = [b for b in backs if b.move.deleted and not b.reimported]  # its old primary is not back (its failure)
    ready = [b for b in backs if b not in waiting]

    async def link(held: list[LinkBack]) -> int:
        for back in held:
            move = back.move
            again = back.back == "unlinked" or (back.back == "linking" and await relinker.is_a_user(move.item))
            if again:
                provider, _, user_id = move.item.partition("|")
                body: dict[str, Any] = {"provider": provider, "user_id": user_id}
                if provider == "auth0" and (cid := await relinker.connection_id(move.connection)):
                    body["connection_id"] = cid
                ledger.set_link_back(move.ordinal, move.item, "linking")
                with contextlib.suppress(Conflict):  # already linked: the read below says
                    await client.call(f"link {move.item} to {move.source_id}", client.sdk.users.identities.link,
                                      move.source_id, **body)
            ledger.set_link_back(move.ordinal, move.item, "linked")
        return len(held)

    await run_pool(_primary_groups(ready), link, on_result=lambda _, n: migration.reporter.advance(n))
    held: dict[str, set[str]] = {}

    async def read(source_id: str) -> set[str]:
        user = await client.call(f"read the identities of {source_id}", client.sdk.users.get, source_id,
                                 fields="identities", include_fields=True)
        return {f"{i.provider}|{i.user_id}" for i in user.identities or []}

    def got(source_id: str, found: set[str]) -> None:
        held[source_id] = found

    await run_pool(sorted({b.move.source_id for b in ready}), read, on_result=got)
    failed: list[tuple[int, str, str]] = []
    for back in ready:
        move = back.move
        if move.item in held.get(move.source_id, set()):
            ledger.set_link_back(move.ordinal, move.item, "verified")
        else:
            ledger.set_link_back(move.ordinal, move.item, "unlinked")
            failed.append((move.ordinal, LINK_NOT_RESTORED, f"the linked account {move.item} is not among the "
                                                            f"identities of {move.source_id} when read back; run "
                                                            "again to link it"))
    ledger.fail_rollback(failed)


def inventory(counts: Mapping[str, int], *, source: str, target: str, hashes: str | None,
              same_tenant: bool, mfa_secrets: str | None = None) -> tuple[list[str], list[str]]:
    """(what a rollback will restore, what it cannot), in words an owner reads before saying yes."""
    can, cannot = [], []
    links = counts["links_moved_by_run"] - counts["links_moved_back"]
    if links:
        can.append(f"move the {links} linked accounts this run moved back to their old primaries (each read back)")
    imported = counts["imported_by_run"] - counts["removed_from_target"]
    if imported:
        can.append(f"delete from {target} the {imported} users this run imported (each confirmed by a read; their "
                   "organization memberships and roles there go with them)")
    deleted = counts["deleted_from_source_by_run"] - counts["restored_to_source"]
    if deleted:
        how = (f"with their password hashes from {hashes}" if hashes else
               "WITHOUT passwords (no --password-hashes: they must reset their password)")
        can.append(f"import into {source} again the {deleted} users cutover deleted, with their own ids, profiles, "
                   f"roles, DIRECT permissions, organization memberships and organization roles, {how}")
        cannot.append(f"the {deleted} deleted users' last_login, logins_count, sessions and refresh tokens (Auth0's "
                      "import cannot set them)")
        factors = counts["mfa_factors_of_deleted"]
        if factors and mfa_secrets:
            can.append(f"their {factors} totp/phone/email MFA factors, from {mfa_secrets} (each read back)")
        elif factors:
            cannot.append(f"the {factors} totp/phone/email MFA factors of deleted users: without --mfa-secrets FILE "
                          "they come back unenrolled and enrol again")
        if counts["links_lost_with_deleted"]:
            cannot.append(f"the {counts['links_lost_with_deleted']} linked accounts Auth0 deleted with their primaries "
                          "(cutover under --allow-loss identities): the primaries come back without them")
        if counts["mfa_enrolments_lost"]:
            cannot.append(f"the {counts['mfa_enrolments_lost']} push, WebAuthn and other MFA enrolments of deleted "
                          "users that Auth0's import cannot take (only totp, phone and email): those users enrol "
                          "again")
    if counts["already_in_target"]:
        grants = counts["grants_written_to_existing_users"]
        cannot.append(f"{counts['already_in_target']} users were in the target before this run: they stay, with the "
                      f"{grants} role memberships and permissions the run wrote to them (the ledger cannot tell "
                      "which of them they held before)")
    if not can:
        can.append("nothing: the target holds no user this run imported" + (
            "" if same_tenant else f" and {source} lost no user to cutover"))
    return can, cannot
