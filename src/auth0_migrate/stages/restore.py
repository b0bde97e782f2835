"""Stage 7: DIRECT permissions and roles onto the target ids.

Roles go set-wise: `POST /roles/{id}/users` in batches of `ROLE_BATCH` target ids (Auth0 documents no
maximum; a 400 halves the batch). Permissions have no bulk endpoint: one write per user that has
any, none for the others. Across tenants, roles are matched by name and permissions by
(API identifier, permission name); what the target lacks is reported, never guessed.

With `--user-ids keep` in one tenant (shared ids) the grants of a user are due only once its source copy
is deleted (`Ledger.grants_after_cutover`): these same functions write them then, once, from
`cutover.grants_after_cutover`; before cutover the shared id holds the source's grants already.

`--create-missing-roles` (across tenants): a role of the source that the target lacks is created there
before its members are restored, with the source role's description and permissions; the scopes those
permissions need are added to the target's API of the same identifier first (`PATCH /resource-servers/{id}`
with the API's scopes plus the new ones, each with the source permission's description). `plan` lists
what would be created (`plan_missing_roles`). Resumable: the roles being created are recorded in the
ledger before the first write, so a run stopped between creating a role and giving it its permissions
gives them on the next run (adding a permission a role holds already is a no-op in Auth0).

Choices where Auth0 is silent:
- An API the target lacks altogether is not created (an API is more than its scopes: its identifier is
  the audience applications ask tokens for, its signing and token settings are the owner's decisions). The
  role is created with the permissions of the APIs the target has, and each missing API is a problem
  `api-missing-in-target` naming the role and the API, as a missing permission is today.
- A role that exists in the target under the same name is the same role, whatever its permissions (as
  without the flag): it is never changed, only given members.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from ..auth0.client import TenantClient
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
        if migration.options.create_missing_roles:
            pending = ledger.get_meta("roles_being_created") or []
            todo = sorted({r.name for r in rows if r.target_role_id is None and r.name not in by_name} | set(pending))
            if todo:
                by_name.update(await create_roles(migration, await plan_missing_roles(migration, todo), by_name))
        ledger.map_roles([(r.source_role_id, by_name.get(r.name)) for r in rows])
        rows = ledger.roles()
    return {r.source_role_id: r.target_role_id for r in rows if r.target_role_id}


class RoleToCreate(NamedTuple):
    """A source role the target lacks, as `--create-missing-roles` would create it."""

    name: str
    description: str | None
    permissions: list[tuple[str, str]]
    """(API identifier, permission name) the role will hold in the target."""
    scopes_to_add: dict[str, list[tuple[str, str | None]]]
    """API identifier -> (scope, description) the target's API lacks, added before the role is created."""
    apis_missing: list[str]
    """APIs of the role's permissions that the target does not have: those permissions are left out."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "permissions": [f"{api} {name}" for api, name in self.permissions],
                "scopes_to_add": {api: [s for s, _ in scopes] for api, scopes in self.scopes_to_add.items()},
                "apis_missing": self.apis_missing}


async def target_apis(client: TenantClient) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """API identifier -> (API id, its scopes as `{value, description}`) in a tenant."""
    found: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    async for api in offset_items(client, "list APIs", client.sdk.resource_servers.list, per_page=PAGE):
        found[str(api.identifier)] = (str(api.id), [{"value": s.value, **({"description": s.description}
                                                                          if s.description else {})}
                                                    for s in api.scopes or []])
    return found


async def plan_missing_roles(migration: Migration, names: list[str]) -> list[RoleToCreate]:
    """What creating these source roles in the target takes: their permissions, the scopes and APIs it lacks."""
    source = migration.source
    by_name = {r["name"]: r for r in await list_roles(source)}
    apis = await target_apis(migration.target)
    planned = []
    for name in names:
        role = by_name.get(name)
        if role is None:
            continue  # deleted from the source since it was read: nothing to copy
        perms = [p.model_dump() async for p in offset_items(source, f"read permissions of role {name}",
                                                            source.sdk.roles.permissions.list, role["id"],
                                                            per_page=PAGE)]
        keep: list[tuple[str, str]] = []
        scopes: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        missing: list[str] = []
        for p in perms:
            api, scope = str(p["resource_server_identifier"]), str(p["permission_name"])
            if api not in apis:
                if api not in missing:
                    missing.append(api)
                continue
            keep.append((api, scope))
            if scope not in {s["value"] for s in apis[api][1]}:
                scopes[api].append((scope, p.get("description")))
        planned.append(RoleToCreate(name, role.get("description"), keep, dict(scopes), missing))
    return planned


async def create_roles(migration: Migration, planned: list[RoleToCreate],
                       existing: dict[str, str]) -> dict[str, str]:
    """Create the planned roles in the target (API scopes first); role name -> target role id."""
    ledger, target = migration.ledger, migration.target
    ledger.set_meta("roles_being_created", [r.name for r in planned])
    needed: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for role in planned:
        for api, scopes in role.scopes_to_add.items():
            needed[api] += [s for s in scopes if s[0] not in {n for n, _ in needed[api]}]
        for api in role.apis_missing:
            ledger.add_problem_once("api-missing-in-target", f"{role.name} {api}",
                                    f"role {role.name!r} was created in the target without its permissions of API "
                                    f"{api!r}, which the target does not have (create the API, then run again)")
    if needed:
        apis = await target_apis(target)  # read again just before the write: the PATCH replaces the whole list
        for api, scopes in needed.items():
            api_id, current = apis[api]
            have = {s["value"] for s in current}
            added = [{"value": s, **({"description": d} if d else {})} for s, d in scopes if s not in have]
            if added:
                await target.call(f"add scopes to API {api}", target.sdk.resource_servers.update, api_id,
                                  scopes=[*current, *added])
    made: dict[str, str] = {}
    for role in planned:
        role_id = existing.get(role.name)
        if role_id is None:
            created = await target.call(f"create role {role.name}", target.sdk.roles.create, name=role.name,
                                        **({"description": role.description} if role.description else {}))
            role_id = str(created.id)
        if role.permissions:
            await target.call(f"give role {role.name} its permissions", target.sdk.roles.permissions.add, role_id,
                              permissions=[{"resource_server_identifier": api, "permission_name": name}
                                           for api, name in role.permissions])
        made[role.name] = role_id
        ledger.set_meta("roles_created", sorted({*(ledger.get_meta("roles_created") or []), role.name}))
    ledger.set_meta("roles_being_created", [])
    return made


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


async def restore_roles(migration: Migration) -> int:
    """Assign every migrated member to its role in the target; returns the memberships written."""
    ledger = migration.ledger
    mapping = await map_roles(migration)
    for name in [r.name for r in ledger.roles() if r.target_role_id is None]:
        ledger.add_problem_once("role-missing-in-target", name, f"role {name!r} does not exist in the target "
                                                                "tenant; its members were not given it")
    written = 0
    for source_role, target_role in mapping.items():
        members = ledger.members_to_assign(source_role)
        for start in range(0, len(members), ROLE_BATCH * 10):
            chunk = members[start:start + ROLE_BATCH * 10]
            await assign_role(migration, target_role, [m.target_id for m in chunk])
            ledger.mark_assigned(source_role, [m.ordinal for m in chunk])
            written += len(chunk)
    return written


async def restore_permissions(migration: Migration) -> int:
    """One `POST /users/{id}/permissions` per migrated user that has DIRECT permissions."""
    ledger = migration.ledger
    known = await target_permissions(migration)
    grants: dict[tuple[int, str], list[dict[str, str]]] = defaultdict(list)
    for r in ledger.permissions_to_restore():
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
            _mark(migration, done)

    try:
        await run_pool(list(grants.items()), write, on_result=finished)
    finally:
        _mark(migration, done)
    # Users with no DIRECT permissions need no write: mark them too.
    ledger.mark_without_permissions_restored()
    return count


def _mark(migration: Migration, ordinals: list[int]) -> None:
    migration.ledger.mark_permissions_restored(ordinals)
    ordinals.clear()


async def restore_grants(migration: Migration) -> None:
    """Roles and permissions of every migrated user, before cutover (with shared ids: `cutover.grants_after_cutover`
    writes them, after it)."""
    ledger = migration.ledger
    if ledger.phase_done("restore"):
        return
    migration.reporter.phase("restore roles and permissions")
    # Role batches go one after another; the permission writes fill the rest of the rate limit meanwhile.
    await together(restore_roles(migration), restore_permissions(migration))
    ledger.mark_phase("restore")
