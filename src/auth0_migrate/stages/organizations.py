"""Organization memberships and organization roles: read set-wise, restored in batches, verified set-wise.

Read (`read`, in `run` and `plan`): every organization of the source (`GET /organizations`, checkpoint
paging), then its members with their organization roles in the same pages (`GET /organizations/{id}/members`
with `fields=user_id,roles`, checkpoint paging, not capped at 1,000). Each membership of a selected user
is a holding `organization` (item: the source organization id), each of its roles a holding
`organization-role` (item: "<source org id> <source role id>"); the names go in the ledger's meta
(`organizations`) so the target can be matched by name.

Settle (`plan` and `run`, every time, before anything is written): across tenants organizations and
roles are matched by name, as roles are; in one tenant they are the same ones. A membership whose
organization is missing in the target, or whose organization does not have the target connection
enabled (and `--enable-org-connections` was not given), is `cannot` with a detail that names the
organization and what would let it through; its roles are `cannot` with it; a role missing in the
target is `cannot` on its own. These are also `problems` (`organization-missing-in-target`,
`organization-role-missing-in-target`, `organization-connection-not-enabled`), found afresh on each run,
so a run after the owner fixed the target carries them (their holdings go back to `found`).

Restore (`restore`): `POST /organizations/{id}/members` in batches of `MEMBER_BATCH` target ids (Auth0
documents no maximum; a 400 halves the batch), then one `POST /organizations/{id}/members/{user_id}/roles`
per member with roles. Holdings go `carried` as each call answers, so a resumed run writes only what is
left. Verify (`verify`): the members of each organization in the target, with their roles, listed once;
each carried holding found there is `verified`; one not found stays `carried`, with a detail saying so.

With `--user-ids keep` in one tenant the target user has the source user's id, and memberships are held
by user id: the source user's memberships already count for the target copy, and deleting the source
copy at cutover drops them (Auth0 deletes a user's memberships with it; whether it does so when another
connection still holds the id is UNCONFIRMED, and the local tenant drops them: the pessimistic reading).
So before cutover nothing is written or read for them: writing would be a no-op and a read-back would read
the source copy's, a check that cannot fail. `restore` marks them `carried` (held by the shared id, as the
source's read showed), which cutover accepts for these kinds (`Migration.carried_until_cutover`); `reapply`
writes them after the deletion and verifies them, as `cutover.grants_after_cutover` does for roles and
permissions. Each membership is written once and read back once, as in any other strategy.

Choices where Auth0 is silent:

- a membership of an organization that does not have the target connection enabled is not carried
  (`cannot`, the user stays in the source under cutover) rather than carried with a warning: a member
  who cannot log in through the organization has lost it, and the owner would not see it until users
  complain. `--enable-org-connections` enables the connection (`assign_membership_on_login` false, so
  nobody else joins the organization by logging in);
- users taken from `--from-file` come from another system and hold no memberships in the source tenant;
- a refresh (`run --refresh`) does not read memberships again (new users of a refresh are not given
  theirs; named in the README's limits by the lead).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Container
from typing import Any

from ..auth0.client import TenantClient
from ..auth0.paging import checkpoint_items, offset_items
from ..errors import BadRequest
from ..ledger import Holding, HoldingKind, Ledger
from ..pool import run_pool
from .context import Migration
from .grants import list_roles

PAGE = 100
"""`take` of both lists (1-100 in the OAS)."""
MEMBER_BATCH = 100
"""Target ids per `POST /organizations/{id}/members` (Auth0 states no limit; a 400 halves it)."""
PROBLEM_KINDS = ("organization-missing-in-target", "organization-role-missing-in-target",
                 "organization-connection-not-enabled", "organization-connection-to-enable")
"""Found afresh by each `settle` (a fixed target makes them go away). `organization-connection-enabled`, what a run
did, stays. The last two are informational (`pipeline.INFORMATIONAL_PROBLEMS`)."""
META = "organizations"
KINDS: tuple[HoldingKind, ...] = ("organization", "organization-role")


async def _members(client: TenantClient, org_id: str, org_name: str) -> list[Any]:
    return [m async for m in checkpoint_items(client, f"list members of organization {org_name!r}",
                                              client.sdk.organizations.members.list, org_id, take=PAGE,
                                              fields="user_id,roles", include_fields=True)]


async def _organizations(client: TenantClient) -> dict[str, str]:
    """id -> name of every organization of a tenant."""
    return {str(o.id): str(o.name) async for o in checkpoint_items(client, "list organizations",
                                                                   client.sdk.organizations.list, take=PAGE)}


async def read(migration: Migration) -> None:
    """Every membership and organization role of the selected users in the source, as `found` holdings."""
    ledger = migration.ledger
    if ledger.phase_done("organizations-read"):
        return
    if migration.options.from_file:
        ledger.mark_phase("organizations-read")
        return
    migration.reporter.phase("read organization members")
    by_source_id = ledger.ordinals_by_source_id()
    orgs = await _organizations(migration.source)
    role_names: dict[str, str] = {}
    memberships: list[tuple[int, str]] = []
    org_roles: list[tuple[int, str]] = []

    async def read_org(org: tuple[str, str]) -> list[Any]:
        return await _members(migration.source, *org)

    def got(org: tuple[str, str], found: list[Any]) -> None:
        for member in found:
            ordinal = by_source_id.get(str(member.user_id))
            if ordinal is None:
                continue
            memberships.append((ordinal, org[0]))
            for role in member.roles or []:
                role_names[str(role.id)] = str(role.name)
                org_roles.append((ordinal, f"{org[0]} {role.id}"))

    # Organizations side by side (each one's member pages follow one another: checkpoint paging).
    await run_pool(list(orgs.items()), read_org, on_result=got)
    with ledger.tx():
        ledger.set_meta(META, {"orgs": orgs, "roles": role_names})
        ledger.add_holdings("organization", memberships)
        ledger.add_holdings("organization-role", org_roles)
        ledger.mark_phase("organizations-read")


class Mapping:
    """Where the source's organizations and roles are in the target, and what cannot be carried there."""

    def __init__(self) -> None:
        self.orgs: dict[str, str] = {}
        """source org id -> target org id (matched, with the target connection enabled or to be enabled)."""
        self.roles: dict[str, str] = {}
        """source role id -> target role id."""
        self.names: dict[str, str] = {}
        self.role_names: dict[str, str] = {}


async def _enabled_on(client: TenantClient, org_id: str, name: str) -> set[str]:
    return {str(c.connection_id) async for c in offset_items(
        client, f"list enabled connections of organization {name!r}",
        client.sdk.organizations.enabled_connections.list, org_id, per_page=PAGE)}


async def settle(migration: Migration, *, write: bool) -> Mapping:
    """Match organizations and roles in the target and mark what cannot be carried (see the module doc).

    `write`: enable the target connection where `--enable-org-connections` asks for it (False in `plan`,
    which then counts those memberships as carried, since run would enable the connection first).
    """
    ledger = migration.ledger
    mapping = Mapping()
    meta = ledger.get_meta(META) or {"orgs": {}, "roles": {}}
    mapping.names, mapping.role_names = meta["orgs"], meta["roles"]
    open_orgs = ledger.holdings("organization", ("found", "cannot"))
    open_roles = ledger.holdings("organization-role", ("found", "cannot"))
    if not open_orgs and not open_roles:
        return mapping
    target = migration.target
    needed = {h.item for h in open_orgs} | {h.item.split(" ", 1)[0] for h in open_roles}
    if migration.same_tenant:
        matched = {o: o for o in needed if o in mapping.names}  # an organization the read did not see is gone
        mapping.roles = {r: r for r in mapping.role_names}
    else:
        by_name = {name: org_id for org_id, name in (await _organizations(target)).items()}
        matched = {o: by_name[mapping.names[o]] for o in needed if mapping.names.get(o) in by_name}
        roles_by_name = {r["name"]: r["id"] for r in await list_roles(target)}
        mapping.roles = {r: roles_by_name[n] for r, n in mapping.role_names.items() if n in roles_by_name}
    connection = migration.target_connection
    lacking: set[str] = set()

    async def enabled(item: tuple[str, str]) -> set[str]:
        return await _enabled_on(target, item[1], mapping.names[item[0]])

    def check(item: tuple[str, str], connections: set[str]) -> None:
        if connection.id not in connections:
            lacking.add(item[0])

    await run_pool(sorted(matched.items()), enabled, on_result=check)
    enable = migration.options.enable_org_connections
    to_enable = sorted(lacking) if enable else []
    if enable and write:
        for source_org in to_enable:
            await target.call(f"enable {connection.name} on organization {mapping.names[source_org]!r}",
                              target.sdk.organizations.enabled_connections.add, matched[source_org],
                              connection_id=connection.id, assign_membership_on_login=False)
            ledger.add_problem_once("organization-connection-enabled", mapping.names[source_org],
                                    f"--enable-org-connections enabled {connection.name!r} on organization "
                                    f"{mapping.names[source_org]!r} (assign_membership_on_login false)")
    if enable:
        lacking = set()
    mapping.orgs = {o: t for o, t in matched.items() if o not in lacking}

    def org_problem(source_org: str) -> str | None:
        name = mapping.names.get(source_org, source_org)
        if source_org not in matched:
            return (f"organization {name!r} does not exist in the target tenant: create it there (same name) "
                    "and run again")
        if source_org in lacking:
            return (f"the target connection {connection.name!r} is not enabled on organization {name!r}, so its "
                    "members could not log in through it: run with --enable-org-connections (or enable it) and "
                    "run again")
        return None

    verdicts: dict[tuple[HoldingKind, str | None], list[tuple[int, str]]] = defaultdict(list)
    for h in open_orgs:
        verdicts[("organization", org_problem(h.item))].append((h.ordinal, h.item))
    for h in open_roles:
        source_org, role = h.item.split(" ", 1)
        detail = org_problem(source_org)
        if detail is None and role not in mapping.roles:
            detail = (f"role {mapping.role_names.get(role, role)!r} (of organization "
                      f"{mapping.names.get(source_org, source_org)!r}) does not exist in the target tenant: create "
                      "it there (same name) and run again")
        verdicts[("organization-role", detail)].append((h.ordinal, h.item))
    with ledger.tx():
        for (kind, detail), rows in verdicts.items():
            ledger.set_holdings(kind, "found" if detail is None else "cannot", rows, detail)
        ledger.forget_problems(PROBLEM_KINDS)
        for source_org in sorted(needed):
            name = mapping.names.get(source_org, source_org)
            if source_org not in matched:
                ledger.add_problem_once("organization-missing-in-target", name, org_problem(source_org) or "")
            elif source_org in lacking:
                ledger.add_problem_once("organization-connection-not-enabled", name, org_problem(source_org) or "")
            elif source_org in to_enable and not write:
                ledger.add_problem_once("organization-connection-to-enable", name,
                                        f"{connection.name!r} is not enabled on organization {name!r}; run "
                                        "enables it (--enable-org-connections)")
        for role in sorted({h.item.split(" ", 1)[1] for h in open_roles} - set(mapping.roles)):
            name = mapping.role_names.get(role, role)
            ledger.add_problem_once("organization-role-missing-in-target", name,
                                    f"role {name!r} does not exist in the target tenant; organization members "
                                    "holding it in the source were not given it")
    return mapping


def _own(ledger: Ledger) -> Mapping:
    """The mapping in one tenant once `settle` has run: every organization and role is its own."""
    mapping = Mapping()
    meta = ledger.get_meta(META) or {"orgs": {}, "roles": {}}
    mapping.names, mapping.role_names = meta["orgs"], meta["roles"]
    mapping.orgs = {o: o for o in mapping.names}
    mapping.roles = {r: r for r in mapping.role_names}
    return mapping


async def _add_members(migration: Migration, org_id: str, name: str, user_ids: list[str]) -> None:
    batch, start = MEMBER_BATCH, 0
    while start < len(user_ids):
        chunk = user_ids[start:start + batch]
        try:
            await migration.target.call(f"add members to organization {name!r}",
                                        migration.target.sdk.organizations.members.create, org_id, members=chunk)
        except BadRequest:
            if batch > 1:
                batch //= 2
                continue
            raise
        start += len(chunk)


SHARED = "held by the shared user id (--user-ids keep in one tenant): written again and verified after the " \
         "source copy is deleted"
"""The detail of a holding `restore` marks carried without a call, under shared ids before cutover."""


async def restore(migration: Migration, *, after_cutover: bool = False) -> None:
    """Carry every `found` membership and organization role of the migrated users to the target (under shared ids
    before cutover, mark them carried with no call: the shared id holds them, see the module doc)."""
    ledger = migration.ledger
    counts = ledger.holding_counts()
    if migration.options.from_file or not any(counts[k]["found"] + counts[k]["cannot"] for k in KINDS):
        return
    migration.reporter.phase("restore organization memberships and roles")
    # After cutover (shared ids, one tenant) what is written again passed `settle` before the deletion, and the
    # organizations and roles are the source's own: no need to read the enabled connections again.
    mapping = _own(ledger) if after_cutover else await settle(migration, write=True)
    migrated = {u.ordinal: u.target_id for u in ledger.migrated_users()}
    members: dict[str, list[Holding]] = defaultdict(list)
    for h in ledger.holdings("organization", ("found",)):
        if h.ordinal in migrated and h.item in mapping.orgs:
            members[h.item].append(h)
    if migration.shared_ids and not after_cutover:
        with ledger.tx():
            ledger.set_holdings("organization", "carried", [(h.ordinal, h.item) for held in members.values()
                                                            for h in held], SHARED)
            ledger.set_holdings("organization-role", "carried", [
                (h.ordinal, h.item) for held in _roles_due(ledger, migrated, mapping).values() for h in held], SHARED)
        return
    batches = [(source_org, held[start:start + MEMBER_BATCH]) for source_org, held in members.items()
               for start in range(0, len(held), MEMBER_BATCH)]

    async def add(batch: tuple[str, list[Holding]]) -> None:
        source_org, held = batch
        await _add_members(migration, mapping.orgs[source_org], mapping.names.get(source_org, source_org),
                           [migrated[h.ordinal] for h in held])

    # Batches (and members' role assignments) run side by side through the governor; each is recorded as it
    # answers, so a run stopped midway resumes with only the rest (every write here is idempotent anyway).
    await _pool(migration, "organization", batches, add)

    async def assign(item: tuple[tuple[str, int], list[Holding]]) -> None:
        (source_org, ordinal), held = item
        target_id = migrated[ordinal]
        await migration.target.call(
            f"assign organization roles to {target_id} in {mapping.names.get(source_org, source_org)!r}",
            migration.target.sdk.organizations.members.roles.assign, mapping.orgs[source_org], target_id,
            roles=[mapping.roles[h.item.split(" ", 1)[1]] for h in held])

    await _pool(migration, "organization-role", list(_roles_due(ledger, migrated, mapping).items()), assign)


def _roles_due(ledger: Ledger, migrated: Container[int], mapping: Mapping) -> dict[tuple[str, int], list[Holding]]:
    """The `found` organization roles to carry, by (source organization, member): those of migrated users whose
    membership is carried (or verified) and whose role the target has."""
    member_of = {(h.ordinal, h.item) for h in ledger.holdings("organization", ("carried", "verified"))}
    roles: dict[tuple[str, int], list[Holding]] = defaultdict(list)
    for h in ledger.holdings("organization-role", ("found",)):
        source_org, role = h.item.split(" ", 1)
        if h.ordinal in migrated and (h.ordinal, source_org) in member_of and role in mapping.roles:
            roles[(source_org, h.ordinal)].append(h)
    return roles


async def _pool(migration: Migration, kind: HoldingKind, items: list[tuple[Any, list[Holding]]],
                write: Callable[[Any], Awaitable[None]]) -> None:
    """`write` each item (its holdings last) concurrently; the holdings of each item that answered become `carried`."""
    done: list[tuple[int, str]] = []

    def flush() -> None:
        with migration.ledger.tx():
            migration.ledger.set_holdings(kind, "carried", done)
        done.clear()

    def finished(item: tuple[Any, list[Holding]], _: None) -> None:
        done.extend((h.ordinal, h.item) for h in item[1])
        if len(done) >= 200:
            flush()

    try:
        await run_pool(items, write, on_result=finished)
    finally:
        flush()


async def verify(migration: Migration, *, after_cutover: bool = False) -> None:
    """Read each organization's members (with roles) in the target once; carried holdings found there are verified.
    Under shared ids only after cutover (before it the read would show the source copy's)."""
    ledger = migration.ledger
    if migration.shared_ids and not after_cutover:
        return
    carried_orgs = ledger.holdings("organization", ("carried",))
    carried_roles = ledger.holdings("organization-role", ("carried",))
    if not carried_orgs and not carried_roles:
        return
    migration.reporter.phase("verify organization memberships in the target")
    meta = ledger.get_meta(META) or {"orgs": {}, "roles": {}}
    names, role_names = meta["orgs"], meta["roles"]
    if migration.same_tenant:
        target_orgs = {o: o for o in names}
        role_ids = {r: r for r in role_names}
    else:
        orgs_by_name = {n: i for i, n in (await _organizations(migration.target)).items()}
        target_orgs = {o: orgs_by_name[n] for o, n in names.items() if n in orgs_by_name}
        roles_by_name = {x["name"]: x["id"] for x in await list_roles(migration.target)}
        role_ids = {r: roles_by_name[n] for r, n in role_names.items() if n in roles_by_name}
    wanted = {h.item for h in carried_orgs} | {h.item.split(" ", 1)[0] for h in carried_roles}
    held: dict[str, dict[str, set[str]]] = {}

    async def read_org(source_org: str) -> list[Any]:
        return await _members(migration.target, target_orgs[source_org], names[source_org])

    def got(source_org: str, found: list[Any]) -> None:
        held[source_org] = {str(m.user_id): {str(r.id) for r in m.roles or []} for m in found}

    await run_pool(sorted(o for o in wanted if o in target_orgs), read_org, on_result=got)
    ok_orgs: list[tuple[int, str]] = []
    missing_orgs: list[tuple[int, str]] = []
    ok_roles: list[tuple[int, str]] = []
    missing_roles: list[tuple[int, str]] = []
    for h in carried_orgs:
        (ok_orgs if h.target_id in held.get(h.item, {}) else missing_orgs).append((h.ordinal, h.item))
    for h in carried_roles:
        source_org, role = h.item.split(" ", 1)
        there = held.get(source_org, {}).get(h.target_id or "", set())
        (ok_roles if role_ids.get(role) in there else missing_roles).append((h.ordinal, h.item))
    with ledger.tx():
        ledger.set_holdings("organization", "verified", ok_orgs)
        ledger.set_holdings("organization", "carried", missing_orgs,
                            "written, but not a member of the organization in the target when verified")
        ledger.set_holdings("organization-role", "verified", ok_roles)
        ledger.set_holdings("organization-role", "carried", missing_roles,
                            "written, but not held by the member in the target when verified")


async def reapply(migration: Migration) -> None:
    """With kept ids in one tenant: the memberships the source copies' deletion dropped, written and verified again.

    Marked done only once cutover is complete, so users deleted by a later run get theirs back too.
    """
    ledger = migration.ledger
    if not (migration.same_tenant and migration.options.user_ids == "keep") or ledger.phase_done(
            "organizations-reapply"):
        return
    complete = ledger.phase_done("cutover")
    with ledger.tx():
        for kind in KINDS:
            done = ledger.holdings(kind, ("carried", "verified"))
            ledger.set_holdings(kind, "found", [(h.ordinal, h.item) for h in done])
    await restore(migration, after_cutover=True)
    await verify(migration, after_cutover=True)
    if complete:
        ledger.mark_phase("organizations-reapply")


def estimate_calls(migration: Migration) -> int:
    """Management API calls `run` makes for organizations, from what `read` and `settle` found (for `plan`):
    the source's organization pages and member pages (already made), then in the target its organization list
    (across tenants), the enabled-connection reads, the enabling (with the flag, at most one per organization),
    the member batches, one role assignment per member with roles, and the verification's member pages. Exact
    when every list fits one page (a large organization costs a page per 100 members more on each side). Under
    shared ids the writes and the verification come after cutover (`reapply`), once each as well."""
    ledger = migration.ledger
    orgs = len((ledger.get_meta(META) or {}).get("orgs", {}))
    if not orgs:
        return 1
    found = ledger.holdings("organization", ("found",))
    by_org: dict[str, int] = defaultdict(int)
    for h in found:
        by_org[h.item] += 1
    batches = sum(-(-n // MEMBER_BATCH) for n in by_org.values())
    pages = sum(-(-n // PAGE) for n in by_org.values())
    with_roles = len({(h.ordinal, h.item.split(" ", 1)[0]) for h in ledger.holdings("organization-role", ("found",))})
    enable = len(by_org) if migration.options.enable_org_connections else 0  # at most one per organization
    target_list = 0 if migration.same_tenant else 1
    return 1 + 2 * orgs + target_list + enable + batches + with_roles + pages


async def verify_again(migration: Migration) -> None:
    """The `verify` command: every membership and organization role verified before is read in the target again
    (a verified one no longer there goes back to `carried`, with the detail saying so). Under shared ids only once
    cutover is complete: until then the shared id reads the source copy's."""
    ledger = migration.ledger
    complete = ledger.phase_done("cutover")
    if migration.shared_ids and not complete:
        return
    with ledger.tx():
        for kind in KINDS:
            ledger.set_holdings(kind, "carried", [(h.ordinal, h.item) for h in ledger.holdings(kind, ("verified",))])
    await verify(migration, after_cutover=complete)
