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
from .authz import PAGE, list_roles
from .context import Job
from .pool import run_pool, together

ROLE_BATCH = 100
MIGRATED = "('imported', 'already_in_target')"


async def map_roles(job: Job) -> dict[str, str]:
    """source role id -> target role id; missing roles are recorded as problems."""
    ledger = job.ledger
    rows = ledger.q("SELECT source_role_id, name, target_role_id FROM roles")
    if job.same_tenant:
        with ledger.tx() as db:
            db.execute("UPDATE roles SET target_role_id = source_role_id")
        return {r["source_role_id"]: r["source_role_id"] for r in rows}
    if any(r["target_role_id"] is None for r in rows):
        by_name = {r["name"]: r["id"] for r in await list_roles(job.target)}
        with ledger.tx() as db:
            for r in rows:
                target = by_name.get(r["name"])
                db.execute("UPDATE roles SET target_role_id = ? WHERE source_role_id = ?",
                           (target, r["source_role_id"]))
        rows = ledger.q("SELECT source_role_id, name, target_role_id FROM roles")
    return {r["source_role_id"]: r["target_role_id"] for r in rows if r["target_role_id"]}


async def target_permissions(job: Job) -> set[tuple[str, str]] | None:
    """Every (API identifier, scope) the target tenant defines; None in one tenant (no check needed)."""
    if job.same_tenant:
        return None
    known: set[tuple[str, str]] = set()
    async for api in offset_items(job.target, "list APIs in the target", job.target.sdk.resource_servers.list,
                                  per_page=PAGE):
        for scope in api.scopes or []:
            known.add((str(api.identifier), str(scope.value)))
    return known


async def assign_role(job: Job, role_id: str, user_ids: list[str]) -> None:
    batch = ROLE_BATCH
    start = 0
    while start < len(user_ids):
        chunk = user_ids[start:start + batch]
        try:
            await job.target.call(f"assign role {role_id}", job.target.sdk.roles.users.assign, role_id, users=chunk)
        except BadRequest:
            if batch > 1:
                batch //= 2
                continue
            raise
        start += len(chunk)


async def restore_roles(job: Job, *, again: bool = False) -> int:
    """Assign every migrated member to its role in the target; returns the memberships written."""
    ledger = job.ledger
    mapping = await map_roles(job)
    missing = [r["name"] for r in ledger.q("SELECT name FROM roles WHERE target_role_id IS NULL")]
    for name in missing:
        if not ledger.one("SELECT 1 FROM problems WHERE kind = 'role-missing-in-target' AND ref = ?", (name,)):
            ledger.add_problem("role-missing-in-target", name, f"role {name!r} does not exist in the target tenant; "
                                                              "its members were not given it")
    flag = "0" if not again else "1"
    written = 0
    for source_role, target_role in mapping.items():
        members = ledger.q(f"SELECT m.ordinal, u.target_id FROM role_members m JOIN users u USING (ordinal) "
                           f"WHERE m.source_role_id = ? AND m.assigned = {flag} AND u.status IN {MIGRATED} "
                           "AND u.target_id IS NOT NULL ORDER BY m.ordinal", (source_role,))
        for start in range(0, len(members), ROLE_BATCH * 10):
            chunk = members[start:start + ROLE_BATCH * 10]
            await assign_role(job, target_role, [m["target_id"] for m in chunk])
            with ledger.tx() as db:
                db.executemany("UPDATE role_members SET assigned = ? WHERE source_role_id = ? AND ordinal = ?",
                               [(2 if again else 1, source_role, m["ordinal"]) for m in chunk])
            written += len(chunk)
    return written


async def restore_permissions(job: Job, *, again: bool = False) -> int:
    """One `POST /users/{id}/permissions` per migrated user that has DIRECT permissions."""
    ledger = job.ledger
    known = await target_permissions(job)
    flag_column = "reapplied" if again else "perms_restored"
    rows = ledger.q(f"SELECT u.ordinal, u.target_id, p.api, p.name FROM users u JOIN permissions p USING (ordinal) "
                    f"WHERE u.status IN {MIGRATED} AND u.target_id IS NOT NULL AND u.{flag_column} = 0 "
                    "ORDER BY u.ordinal")
    grants: dict[tuple[int, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if known is not None and (r["api"], r["name"]) not in known:
            ref = f"{r['api']} {r['name']}"
            if not ledger.one("SELECT 1 FROM problems WHERE kind = 'permission-missing-in-target' AND ref = ?", (ref,)):
                ledger.add_problem("permission-missing-in-target", ref,
                                   f"permission {r['name']!r} of API {r['api']!r} does not exist in the target")
            continue
        grants[(r["ordinal"], r["target_id"])].append({"resource_server_identifier": r["api"],
                                                         "permission_name": r["name"]})
    done: list[int] = []

    async def write(item: tuple[tuple[int, str], list[dict[str, str]]]) -> int:
        (ordinal, target_id), perms = item
        await job.target.call(f"restore permissions of {target_id}", job.target.sdk.users.permissions.create,
                              target_id, permissions=perms)
        return len(perms)

    count = 0

    def finished(item: tuple[tuple[int, str], list[Any]], n: int) -> None:
        nonlocal count
        done.append(item[0][0])
        count += n
        if len(done) >= 200:
            _mark(job, done, flag_column)

    try:
        await run_pool(list(grants.items()), write, on_result=finished)
    finally:
        _mark(job, done, flag_column)
    if not again:
        # Users with no DIRECT permissions need no write: mark them too.
        ledger.db.execute(f"UPDATE users SET {flag_column} = 1 WHERE status IN {MIGRATED} AND ordinal NOT IN "
                          "(SELECT ordinal FROM permissions)")
    return count


def _mark(job: Job, ordinals: list[int], column: str) -> None:
    with job.ledger.tx() as db:
        db.executemany(f"UPDATE users SET {column} = 1 WHERE ordinal = ?", [(o,) for o in ordinals])
    ordinals.clear()


async def restore_grants(job: Job) -> None:
    ledger = job.ledger
    if ledger.phase_done("restore"):
        return
    job.reporter.phase("restore roles and permissions")
    # Role batches go one after another; the permission writes fill the rest of the rate limit meanwhile.
    await together(restore_roles(job), restore_permissions(job))
    ledger.mark_phase("restore")
