"""Stage 7: DIRECT permissions and roles onto the target ids.

Roles go set-wise: `POST /roles/{id}/users` in batches of `ROLE_BATCH` target ids (Auth0 documents no
maximum; a 400 halves the batch). Permissions have no bulk endpoint: one write per user that has
any, none for the others. Across tenants, roles are matched by name and permissions by
(API identifier, permission name); what the target lacks is reported, never guessed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..auth0.paging import offset_items
from ..errors import BadRequest
from ..pool import run_pool, together
from .context import Migration
from .grants import PAGE, list_roles

ROLE_BATCH = 100


async def map_roles(migration: Migration) -> dict[str, str]:
    """source role id -> target role id; missing roles are recorded as problems."""
    ledger = migration.ledger
    rows = ledger.roles()
    if migration.same_tenant:
        ledger.map_roles(None)
        return {r.source_role_id: r.source_role_id for r in rows}
    if any(r.target_role_id is None for r in rows):
        by_name = {r["name"]: r["id"] for r in await list_roles(migration.target)}
        ledger.map_roles([(r.source_role_id, by_name.get(r.name)) for r in rows])
        rows = ledger.roles()
    return {r.source_role_id: r.target_role_id for r in rows if r.target_role_id}


async def target_permissions(migration: Migration) -> set[tuple[str, str]] | None:
    """Every (API identifier, scope) the target tenant defines; None in one tenant (no check needed)."""
    if migration.same_tenant:
        return None
    known: set[tuple[str, str]] = set()
    async for api in offset_items(migration.target, "list APIs in the target",
                                  migration.target.sdk.resource_servers.list, per_page=PAGE):
        for scope in api.scopes or []:
            known.add((str(api.identifier), str(scope.value)))
    return known


async def assign_role(migration: Migration, role_id: str, user_ids: list[str]) -> None:
    batch = ROLE_BATCH
    start = 0
    while start < len(user_ids):
        chunk = user_ids[start:start + batch]
        try:
            await migration.target.call(f"assign role {role_id}", migration.target.sdk.roles.users.assign, role_id,
                                        users=chunk)
        except BadRequest:
            if batch > 1:
                batch //= 2
                continue
            raise
        start += len(chunk)


async def restore_roles(migration: Migration, *, again: bool = False) -> int:
    """Assign every migrated member to its role in the target; returns the memberships written."""
    ledger = migration.ledger
    mapping = await map_roles(migration)
    for name in [r.name for r in ledger.roles() if r.target_role_id is None]:
        ledger.add_problem_once("role-missing-in-target", name, f"role {name!r} does not exist in the target "
                                                                "tenant; its members were not given it")
    written = 0
    for source_role, target_role in mapping.items():
        members = ledger.members_to_assign(source_role, again=again)
        for start in range(0, len(members), ROLE_BATCH * 10):
            chunk = members[start:start + ROLE_BATCH * 10]
            await assign_role(migration, target_role, [m.target_id for m in chunk])
            ledger.mark_assigned(source_role, [m.ordinal for m in chunk], again=again)
            written += len(chunk)
    return written


async def restore_permissions(migration: Migration, *, again: bool = False) -> int:
    """One `POST /users/{id}/permissions` per migrated user that has DIRECT permissions."""
    ledger = migration.ledger
    known = await target_permissions(migration)
    grants: dict[tuple[int, str], list[dict[str, str]]] = defaultdict(list)
    for r in ledger.permissions_to_restore(again=again):
        if known is not None and (r.api, r.name) not in known:
            ledger.add_problem_once("permission-missing-in-target", f"{r.api} {r.name}",
                                    f"permission {r.name!r} of API {r.api!r} does not exist in the target")
            continue
        grants[(r.ordinal, r.target_id)].append({"resource_server_identifier": r.api, "permission_name": r.name})
    done: list[int] = []

    async def write(item: tuple[tuple[int, str], list[dict[str, str]]]) -> int:
        (ordinal, target_id), perms = item
        await migration.target.call(f"restore permissions of {target_id}",
                                    migration.target.sdk.users.permissions.create, target_id, permissions=perms)
        return len(perms)

    count = 0

    def finished(item: tuple[tuple[int, str], list[Any]], n: int) -> None:
        nonlocal count
        done.append(item[0][0])
        count += n
        if len(done) >= 200:
            _mark(migration, done, again)

    try:
        await run_pool(list(grants.items()), write, on_result=finished)
    finally:
        _mark(migration, done, again)
    if not again:
        # Users with no DIRECT permissions need no write: mark them too.
        ledger.mark_without_permissions_restored()
    return count


def _mark(migration: Migration, ordinals: list[int], again: bool) -> None:
    migration.ledger.mark_permissions_restored(ordinals, again=again)
    ordinals.clear()


async def restore_grants(migration: Migration) -> None:
    ledger = migration.ledger
    if ledger.phase_done("restore"):
        return
    migration.reporter.phase("restore roles and permissions")
    # Role batches go one after another; the permission writes fill the rest of the rate limit meanwhile.
    await together(restore_roles(migration), restore_permissions(migration))
    ledger.mark_phase("restore")
