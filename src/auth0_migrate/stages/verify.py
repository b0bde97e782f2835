"""Stage 8: every migrated user re-read in the target and compared with the source, user by user.

Profiles were compared against the target's export by the id map (`profile_ok`, `diffs`): no
per-user read for them. Here: role memberships (set-wise, by listing the members of each mapped
role in the target) and DIRECT permissions, read back (one read per user) only where they can
differ from what was expected: users that had permissions written, and users that were in the
target before this run (`already_in_target`: someone else may have granted them something). A user
this run's import inserted holds exactly the grants this run gave it, so with none written there is
nothing to read (issue 9: the floor's `+ P`). A user passes when profile, roles and permissions
match; differences are stored per user and listed in the summary.

`read_all_permissions=True` (the `verify` command, run later, when anyone may have changed the
target) reads every migrated user's permissions; so does a refresh's verification (`only`), where a
permission taken away is a write that leaves nothing expected.

With `--user-ids keep` in one tenant a read-back before cutover reads the source copy's grants under the
shared id (a check that cannot fail), so the run verifies grants once, after each source copy is deleted
(`verify_after_cutover`); until then the user counts as `grants_after_cutover`, not `verified`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection

from ..ledger import MigratedUser
from ..pool import run_pool, together
from .context import Migration
from .grants import direct_permissions, role_member_ids
from .restore import map_roles


async def verify_grants(migration: Migration, *, phase: str = "verify", only: Collection[int] | None = None,
                        read_all_permissions: bool = False) -> None:
    """`only`: the ordinals to verify (a refresh's changed users); every migrated user when None.

    Permissions are read back for every user verified when `only` is given or `read_all_permissions`;
    else for users with permissions expected and users already in the target before the run."""
    ledger = migration.ledger
    if ledger.phase_done(phase):
        return
    users = [u for u in ledger.migrated_users() if only is None or u.ordinal in only]
    await _check(migration, users, read_all_permissions=only is not None or read_all_permissions)
    ledger.mark_phase(phase)


async def verify_after_cutover(migration: Migration) -> None:
    """With shared ids (keep in one tenant): the grants of each user whose source copy is deleted and whose grants
    were not read back since (`Ledger.users_with_grants_to_verify`), read in the target as the first verification
    reads them (role members set-wise, permissions of the users written to). Kept per user, not as a phase: a
    user deleted by a later run is verified by that run, and one already verified is not read again."""
    users = migration.ledger.users_with_grants_to_verify()
    if users:
        await _check(migration, users, read_all_permissions=False)


async def _check(migration: Migration, users: list[MigratedUser], *, read_all_permissions: bool) -> None:
    """Read these users' grants in the target, compare them with the source's, record each user's result."""
    ledger = migration.ledger
    migration.reporter.phase("verify users in the target")
    mapping = await map_roles(migration)
    names = {r.source_role_id: r.name for r in ledger.roles()}
    expected_roles: dict[int, set[str]] = defaultdict(set)
    for source_role_id, ordinal in ledger.role_memberships():
        expected_roles[ordinal].add(names[source_role_id])
    by_target = {u.target_id: u.ordinal for u in users}
    actual_roles: dict[int, set[str]] = defaultdict(set)

    async def read_roles() -> None:
        for source_role, target_role in mapping.items():
            for member in await role_member_ids(migration.target, target_role):
                if member in by_target:
                    actual_roles[by_target[member]].add(names[source_role])

    expected_perms: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for p in ledger.permissions():
        expected_perms[p.ordinal].add((p.api, p.name))
    actual_perms: dict[int, set[tuple[str, str]]] = {}

    async def read(user: MigratedUser) -> set[tuple[str, str]]:
        return set(await direct_permissions(migration.target, user.target_id))

    def got(user: MigratedUser, perms: set[tuple[str, str]]) -> None:
        actual_perms[user.ordinal] = perms

    if read_all_permissions:
        to_read = users
    else:
        preexisting = ledger.ordinals_already_in_target()
        to_read = [u for u in users if expected_perms.get(u.ordinal) or u.ordinal in preexisting]
    migration.reporter.phase("verify permissions in the target", total=len(to_read))
    # Role-member pages (one after another) run beside the permission reads: both fill the same rate limit.
    await together(read_roles(), run_pool(to_read, read, on_result=got))
    results = [(user.ordinal, *grant_differences(user.diffs, expected_roles[user.ordinal],
                                                 actual_roles[user.ordinal], expected_perms[user.ordinal],
                                                 actual_perms.get(user.ordinal, set())))
               for user in users]
    ledger.record_grants_check(results)


def grant_differences(recorded: str | None, expected_roles: set[str], actual_roles: set[str],
                      expected_perms: set[tuple[str, str]],
                      actual_perms: set[tuple[str, str]]) -> tuple[bool, list[str]]:
    """(grants all there, every difference) of one user: its recorded profile differences (ledger JSON) kept,
    its grant differences replaced. A role held in the target and not in the source is not one (someone else
    may have granted it); a DIRECT permission is, both ways."""
    diffs = [d for d in (json.loads(recorded) if recorded else []) if not d.startswith(("roles", "permissions"))]
    missing_roles = expected_roles - actual_roles
    missing_perms = expected_perms - actual_perms
    extra_perms = actual_perms - expected_perms
    if missing_roles:
        diffs.append("roles missing: " + ", ".join(sorted(missing_roles)))
    if missing_perms:
        diffs.append("permissions missing: " + ", ".join(f"{a} {n}" for a, n in sorted(missing_perms)))
    if extra_perms:
        diffs.append("permissions extra: " + ", ".join(f"{a} {n}" for a, n in sorted(extra_perms)))
    return not (missing_roles or missing_perms or extra_perms), diffs
