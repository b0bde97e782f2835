"""A grants refresh: roles and DIRECT permissions changed in the source since they were last read, carried
to the target as a diff.

`refresh_grants` reads the source again the way stage 3 does (`stages/grants.py`: every role and its
members set-wise through checkpoint paging; one read of DIRECT permissions per migrated user still in
the source), compares that with what the ledger recorded, and writes only the difference:

* added in the source: roles in batches (`POST /roles/{id}/users`, `restore.assign_role`), permissions
  one write per user (`POST /users/{id}/permissions`), as restore writes them;
* removed in the source: only grants the ledger says this migration carried (a role membership it
  assigned, a DIRECT permission of a user it restored) are removed, so nothing granted in the target
  by someone else goes: `DELETE /users/{id}/roles` with every role the user lost, and
  `DELETE /users/{id}/permissions` with every permission, one call each per user.

Across tenants roles are matched by name and permissions by (API identifier, permission name), as
restore does; what the target lacks is recorded as a problem, never guessed. The ledger then holds
the new state, and every user whose grants changed is read back in the target and compared
(`verify.grant_differences`): a difference is recorded like any verification's.

With `--user-ids keep` in one tenant the users compared are those whose source copy is not deleted yet, and
their target copies share its id: nothing is written or read back for them (the ledger takes the source's
state; the grants are written and verified after cutover, stages/cutover.py).

Resumable: the re-read is kept in the ledger role by role and user by user, the writes are recorded
as they land (the diff is computed again from the ledger on a resume, so nothing is written twice),
and the phases `grants-refresh:read`, `grants-refresh:apply`, `grants-refresh:verify` are flags. A
refresh that finished forgets its re-read and its flags: the next call reads the source again.

Choices where Auth0 is silent:

* Auth0 has no call that removes members from a role (`/roles/{id}/users` has GET and POST only, in the
  OAS and in the SDK): removals go per user, `DELETE /users/{id}/roles`, one call with all the roles
  that user lost.
* A migrated user the source no longer has (its permission read answers 404) is left as it is: its
  grants are not removed from the target (deleting users is a decision of its own).
* A role deleted from the source: across tenants, the memberships this migration carried are removed
  from the target's role of the same name (the users no longer hold it in the source); in one tenant
  the role is the target's too, already gone with its memberships, so the ledger forgets them and
  nothing is counted.
* A grant the target already held by someone else's hand and then added in the source is written
  (Auth0's add is idempotent) and from then on counted as carried: a later removal in the source
  removes it.
* `added` and `removed` count grants written to the target (a role membership or a DIRECT permission
  each); a grant the target cannot take (its role or API is missing there) is a problem, not counted.

Example::

    delta = await refresh_grants(migration)
    delta.as_dict()   # {"added": 2, "removed": 1}
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

from ..auth0.paging import offset_items
from ..errors import NotFoundError
from ..ledger import MigratedUser
from ..pool import run_pool, together
from .context import Migration
from .grants import direct_permissions, list_roles, role_member_ids
from .restore import ROLE_BATCH, assign_role, map_roles, target_permissions
from .verify import grant_differences

FLUSH = 200
"""Users recorded in the ledger per transaction while reading or writing."""


@dataclass(frozen=True)
class GrantsDelta:
    """Grants (role memberships and DIRECT permissions) a refresh added to and removed from the target."""

    added: int
    removed: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def refresh_grants(migration: Migration, *, permissions_of: set[int] | None = None) -> GrantsDelta:
    """Carry the roles and DIRECT permissions changed in the source since the last read to the target.

    Roles are read set-wise, so every migrated user's are compared. DIRECT permissions cost one read a
    user (Auth0 has no bulk read): all migrated users' by default, or only those of `permissions_of`
    (ordinals: a refresh passes the users whose profile changed unless `--refresh-permissions`).
    """
    ledger = migration.ledger
    if migration.options.from_file:
        return GrantsDelta(0, 0)  # file users hold no grants in the source tenant
    if not ledger.phase_done("grants-refresh:read"):
        await reread_source(migration, permissions_of)
        ledger.mark_phase("grants-refresh:read")
    if not ledger.phase_done("grants-refresh:apply"):
        await apply_changes(migration)
        ledger.mark_phase("grants-refresh:apply")
    if not ledger.phase_done("grants-refresh:verify"):
        await verify_changed(migration)
        ledger.mark_phase("grants-refresh:verify")
    added, removed = ledger.finish_grants_refresh()
    return GrantsDelta(added, removed)


async def reread_source(migration: Migration, permissions_of: set[int] | None = None) -> None:
    """The source's roles with their members, and the DIRECT permissions of each migrated user (or of those in
    `permissions_of`), into the ledger."""
    ledger = migration.ledger
    migration.reporter.phase("read roles and permissions again")

    async def read_roles() -> None:
        by_source_id = ledger.ordinals_by_source_id()
        for role in await list_roles(migration.source):
            if ledger.reread_role_done(role["id"]):
                continue
            try:
                members = await role_member_ids(migration.source, role["id"])
            except NotFoundError:
                continue  # deleted since it was listed: read as deleted
            ledger.add_reread_role(role["id"], role["name"], [by_source_id[m] for m in members if m in by_source_id])

    if permissions_of is not None:
        ledger.add_roles_only_users(o for o, _ in ledger.users_to_reread() if o not in permissions_of)
    todo = ledger.users_to_reread(permissions_of)
    migration.reporter.phase("read direct permissions again", total=len(todo))
    pending: list[tuple[int, list[tuple[str, str]] | None]] = []

    def flush() -> None:
        ledger.add_reread_permissions(pending)
        migration.reporter.advance(len(pending))
        pending.clear()

    async def read(item: tuple[int, str]) -> list[tuple[str, str]] | None:
        try:
            return await direct_permissions(migration.source, item[1])
        except NotFoundError:
            return None  # no longer in the source

    def done(item: tuple[int, str], perms: list[tuple[str, str]] | None) -> None:
        pending.append((item[0], perms))
        if len(pending) >= FLUSH:
            flush()

    async def read_permissions() -> None:
        try:
            await run_pool(todo, read, on_result=done)
        finally:
            flush()

    await together(read_roles(), read_permissions())


async def apply_changes(migration: Migration) -> None:
    """Write the difference to the target, recording each write; then the ledger takes the source's state."""
    ledger = migration.ledger
    migration.reporter.phase("apply changed roles and permissions")
    ledger.add_reread_roles_to_map()
    if migration.shared_ids:
        # Every user compared still has its source copy, whose id the target copy shares: what the source holds
        # now, the target id holds. The ledger takes it; the grants are written and verified once the copy is
        # deleted (`cutover.grants_after_cutover`).
        for source_role, ordinal, _ in ledger.role_members_to_remove():
            ledger.record_roles_removed(ordinal, [source_role], counted=False)
        ledger.settle_reread_grants()
        return
    to_add, to_remove = ledger.role_members_to_add(), ledger.role_members_to_remove()
    changes = ledger.permission_changes()
    ledger.mark_reread_changed({o for _, o, _ in to_add} | {o for _, o, _ in to_remove} | {c[0] for c in changes})
    mapping = await map_roles(migration) if to_add or to_remove else {}
    await together(_add_roles(migration, to_add, mapping), _remove_roles(migration, to_remove, mapping),
                   _change_permissions(migration, changes))
    ledger.settle_reread_grants()


async def _add_roles(migration: Migration, to_add: list[tuple[str, int, str]], mapping: dict[str, str]) -> None:
    ledger = migration.ledger
    names = {r.source_role_id: r.name for r in ledger.roles()}
    by_role: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for source_role, ordinal, target_id in to_add:
        by_role[source_role].append((ordinal, target_id))
    for source_role, members in by_role.items():
        target_role = mapping.get(source_role)
        if target_role is None:
            name = names.get(source_role, source_role)
            ledger.add_problem_once("role-missing-in-target", name, f"role {name!r} does not exist in the target "
                                                                    "tenant; its members were not given it")
            continue
        for start in range(0, len(members), ROLE_BATCH * 10):
            chunk = members[start:start + ROLE_BATCH * 10]
            await assign_role(migration, target_role, [target_id for _, target_id in chunk])
            ledger.record_roles_added(source_role, [ordinal for ordinal, _ in chunk])


async def _remove_roles(migration: Migration, to_remove: list[tuple[str, int, str]],
                        mapping: dict[str, str]) -> None:
    ledger = migration.ledger
    still_in_source = ledger.reread_role_ids()
    by_user: dict[tuple[int, str], list[str]] = defaultdict(list)
    for source_role, ordinal, target_id in to_remove:
        by_user[(ordinal, target_id)].append(source_role)

    async def remove(item: tuple[tuple[int, str], list[str]]) -> None:
        (ordinal, target_id), source_roles = item
        gone_with_role = [r for r in source_roles if migration.same_tenant and r not in still_in_source]
        if gone_with_role:
            ledger.record_roles_removed(ordinal, gone_with_role, counted=False)
        lost = [r for r in source_roles if r not in gone_with_role and r in mapping]
        if lost:
            await migration.target.call(f"remove roles of {target_id}", migration.target.sdk.users.roles.delete,
                                        target_id, roles=[mapping[r] for r in lost])
            ledger.record_roles_removed(ordinal, lost, counted=True)

    await run_pool(list(by_user.items()), remove)


async def _change_permissions(migration: Migration,
                              changes: list[tuple[int, str, list[tuple[str, str]], list[tuple[str, str]]]]) -> None:
    ledger = migration.ledger
    if not changes:
        return
    known = await target_permissions(migration)

    def usable(perms: list[tuple[str, str]], *, report: bool) -> list[dict[str, str]]:
        kept = []
        for api, name in perms:
            if known is not None and (api, name) not in known:
                if report:
                    ledger.add_problem_once("permission-missing-in-target", f"{api} {name}",
                                            f"permission {name!r} of API {api!r} does not exist in the target")
                continue
            kept.append({"resource_server_identifier": api, "permission_name": name})
        return kept

    done: list[tuple[int, int, int]] = []

    async def write(item: tuple[int, str, list[tuple[str, str]], list[tuple[str, str]]]) -> tuple[int, int]:
        _, target_id, add, remove = item
        adding = usable(add, report=True)
        removing = usable(remove, report=False)  # one the target lacks was never carried there
        if adding:
            await migration.target.call(f"add permissions of {target_id}",
                                        migration.target.sdk.users.permissions.create, target_id, permissions=adding)
        if removing:
            await migration.target.call(f"remove permissions of {target_id}",
                                        migration.target.sdk.users.permissions.delete, target_id, permissions=removing)
        return len(adding), len(removing)

    def finished(item: tuple[int, str, list[tuple[str, str]], list[tuple[str, str]]], n: tuple[int, int]) -> None:
        done.append((item[0], *n))
        if len(done) >= FLUSH:
            flush()

    def flush() -> None:
        ledger.record_permissions_changed(done)
        done.clear()

    try:
        await run_pool(changes, write, on_result=finished)
    finally:
        flush()


async def verify_changed(migration: Migration) -> None:
    """Each user whose grants changed, read back in the target (roles and DIRECT permissions) and compared."""
    ledger = migration.ledger
    users = ledger.changed_users()
    if not users:
        return
    migration.reporter.phase("verify changed users in the target", total=len(users))
    names = {r.source_role_id: r.name for r in ledger.roles()}
    wanted = {u.ordinal for u in users}
    expected_roles: dict[int, set[str]] = defaultdict(set)
    for source_role_id, ordinal in ledger.role_memberships():
        if ordinal in wanted:
            expected_roles[ordinal].add(names[source_role_id])
    expected_perms: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for p in ledger.permissions():
        if p.ordinal in wanted:
            expected_perms[p.ordinal].add((p.api, p.name))

    async def read(user: MigratedUser) -> tuple[set[str], set[tuple[str, str]]]:
        target = migration.target
        roles = {str(r.name) async for r in offset_items(target, f"read roles of {user.target_id}",
                                                         target.sdk.users.roles.list, user.target_id)}
        return roles, set(await direct_permissions(target, user.target_id))

    results: list[tuple[int, bool, list[str]]] = []

    def got(user: MigratedUser, actual: tuple[set[str], set[tuple[str, str]]]) -> None:
        ok, diffs = grant_differences(user.diffs, expected_roles[user.ordinal], actual[0],
                                      expected_perms[user.ordinal], actual[1])
        results.append((user.ordinal, ok, diffs))
        migration.reporter.advance(1)

    await run_pool(users, read, on_result=got)
    ledger.record_grants_check(results)
