"""Organization memberships and organization roles: read in the source, carried, verified, kept through cutover.

Each test drives the real tool against local tenants and reads the outcome back through the API.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from auth0_migrate.auth0.paging import checkpoint_items, offset_items
from auth0_migrate.auth0.scopes import OPERATIONS, needed_operations
from auth0_migrate.errors import TransientError
from auth0_migrate.ledger import Ledger
from auth0_migrate.model import PlanResult
from auth0_migrate.pipeline import plan, verify
from auth0_migrate.seed import SeededOrganizations, seed_organizations
from auth0_migrate.stages import organizations

from .conftest import SOURCE, TARGET, World, dump, ingest_only, migrate, options


def _go(world: World, work: Any) -> Any:
    async def go() -> Any:
        client = world.client()
        try:
            return await work(client)
        finally:
            await client.aclose()
    return asyncio.run(go())


def seed_orgs(world: World, user_ids: list[str], **kwargs: Any) -> SeededOrganizations:
    return _go(world, lambda client: seed_organizations(client, user_ids, **kwargs))


def members(world: World, org_name: str) -> dict[str, set[str]]:
    """user id -> organization role names, of one organization of a tenant, read through the API."""
    async def work(client: Any) -> dict[str, set[str]]:
        org = await client.call("get org", client.sdk.organizations.get_by_name, org_name)
        return {str(m.user_id): {str(r.name) for r in m.roles or []} async for m in checkpoint_items(
            client, "members", client.sdk.organizations.members.list, org.id, take=7, fields="user_id,roles",
            include_fields=True)}
    return _go(world, work)


def enabled_connections(world: World, org_name: str) -> set[str]:
    async def work(client: Any) -> set[str]:
        org = await client.call("get org", client.sdk.organizations.get_by_name, org_name)
        return {str(c.connection.name) async for c in offset_items(
            client, "enabled", client.sdk.organizations.enabled_connections.list, org.id)}
    return _go(world, work)


def give_org_role(world: World, org_name: str, user_ids: list[str], role_name: str) -> None:
    """A new tenant role `role_name`, given to these members of the organization as their organization role."""
    async def work(client: Any) -> None:
        role = await client.call("create role", client.sdk.roles.create, name=role_name)
        org = await client.call("get org", client.sdk.organizations.get_by_name, org_name)
        for user_id in user_ids:
            await client.call("assign", client.sdk.organizations.members.roles.assign, org.id, user_id,
                              roles=[role.id])
    _go(world, work)


def expected(email_of: dict[str, str], seeded: SeededOrganizations, target: World,
             target_connection: str = TARGET) -> dict[str, dict[str, set[str]]]:
    """Per organization, the target ids of the source members (matched by email) with their role names."""
    target_id = {u["email"]: u["user_id"] for u in target.users(target_connection)}
    return {org: {target_id[email_of[u]]: set(seeded.roles.get((org, u), [])) for u in ids}
            for org, ids in seeded.members.items()}


def org_holdings(state: str) -> dict[str, dict[str, int]]:
    with Ledger.open_readonly(state) as ledger:
        return {kind: ledger.holding_counts()[kind] for kind in ("organization", "organization-role")}


def run_plan(source: World, target: World | None, opts: Any) -> PlanResult:
    async def go() -> PlanResult:
        src = source.client()
        dst = target.client() if target is not None else None
        try:
            return await plan(opts, source=src, target=dst)
        finally:
            await src.aclose()
            if dst is not None:
                await dst.aclose()
    return asyncio.run(go())


@pytest.mark.parametrize("strategy", ["regenerate", "prefix", "keep"])
def test_one_tenant_memberships_and_roles_survive_cutover(world: World, tmp_path, strategy: str) -> None:
    seeded_users = world.seed(users=16)
    world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    email_of = {u["user_id"]: u["email"] for u in world.users(SOURCE)}
    seeded = seed_orgs(world, source_ids, connection_ids=(seeded_users.connection_id,))
    memberships = sum(len(m) for m in seeded.members.values())
    org_roles = sum(len(r) for r in seeded.roles.values())
    assert memberships >= 4 and org_roles >= 2  # the seed made something to carry
    opts = options(tmp_path, user_ids=strategy, id_prefix="m-" if strategy == "prefix" else None,
                   delete_source_users=True, enable_org_connections=True)
    planned = run_plan(world, None, dataclasses.replace(opts, state=str(tmp_path / "plan.sqlite")))
    before = dict(world.tenant.stats)
    result = migrate(world, opts)
    called = {tuple(name.split(" ", 1)) for name, n in world.tenant.stats.items() if n > before.get(name, 0)}
    org_calls_made = sum(n - before.get(name, 0) for name, n in world.tenant.stats.items() if "/organizations" in name)
    assert planned.calls["organizations"] == org_calls_made  # keep: written and verified once, after cutover
    assert result.exit_code == 0, dump(result)
    assert world.users(SOURCE) == []  # cutover deleted every source copy
    want = expected(email_of, seeded, world) if strategy != "keep" else {
        org: {u: set(seeded.roles.get((org, u), [])) for u in ids} for org, ids in seeded.members.items()}
    for org in seeded.members:
        assert members(world, org) == want[org], org
        assert TARGET in enabled_connections(world, org)
    assert result.organizations["memberships_restored"] == memberships
    assert result.organizations["memberships_verified"] == memberships
    assert result.organizations["roles_restored"] == org_roles
    assert result.organizations["roles_verified"] == org_roles
    held = org_holdings(opts.state or "")
    assert held["organization"]["verified"] == memberships and held["organization-role"]["verified"] == org_roles
    # Every organization call the run made is in the scope table (so its scopes are checked up front).
    declared = {(OPERATIONS[n].method, OPERATIONS[n].path) for side in ("source", "target") for n in
                needed_operations("run", side, cross_tenant=False, delete_source_users=True,
                                  enable_org_connections=True)}
    org_calls = {(m, p.removeprefix("/api/v2")) for m, p in called if "/organizations" in p}
    assert ("POST", "/organizations/{id}/members") in org_calls
    assert org_calls <= declared


def test_keep_in_one_tenant_reapplies_memberships_the_cutover_dropped(world: World, tmp_path) -> None:
    """Deleting the source copy drops the memberships held under its id, which the kept target id shares:
    the run puts them back after cutover and verifies them again."""
    seeded_users = world.seed(users=10)
    world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    seeded = seed_orgs(world, source_ids, names=("acme",), connection_ids=(seeded_users.connection_id,),
                       member_share=1.0, role_share=1.0)
    before = dict(world.tenant.stats)
    result = migrate(world, options(tmp_path, user_ids="keep", delete_source_users=True,
                                    enable_org_connections=True))
    assert result.exit_code == 0, dump(result)
    made = {name: n - before.get(name, 0) for name, n in world.tenant.stats.items() if n > before.get(name, 0)}
    # Written once and read back once, after cutover: before it the shared id holds them (a write would be a
    # no-op, a read-back would read the source copy's). The members list: the source's read, the verification.
    assert made["POST /api/v2/organizations/{id}/members"] == 1
    assert made["POST /api/v2/organizations/{id}/members/{user_id}/roles"] == len(source_ids)
    assert made["GET /api/v2/organizations/{id}/members"] == 2
    assert members(world, "acme") == {u: set(seeded.roles[("acme", u)]) for u in source_ids}
    assert result.organizations["memberships_verified"] == len(source_ids)
    assert result.organizations["roles_verified"] == sum(len(seeded.roles[("acme", u)]) for u in source_ids)


def test_keep_in_one_tenant_a_member_kept_in_the_source_for_something_else(world: World, tmp_path) -> None:
    """Under shared ids the id holds the memberships until cutover, so they hold nobody back: a member kept in the
    source for another reason keeps its own (its id still holds them), the others get theirs written after their
    deletion, and once the kept one goes too (the owner allows the other loss) its own are written and verified."""
    seeded_users = world.seed(users=6)
    world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    seeded = seed_orgs(world, source_ids, names=("acme",), connection_ids=(seeded_users.connection_id,),
                       member_share=1.0, role_share=1.0)
    want = {u: set(seeded.roles[("acme", u)]) for u in source_ids}
    opts = options(tmp_path, user_ids="keep", delete_source_users=True, enable_org_connections=True)
    state = opts.state or ""
    ingest_only(world, opts)
    kept = source_ids[2]
    with Ledger.open(state, lock=False, create=False) as ledger:
        ordinal = ledger.ordinals_by_source_id()[kept]
        ledger.add_holdings("mfa-factor", [(ordinal, "webauthn-roaming")])
        ledger.set_holdings("mfa-factor", "cannot", [(ordinal, "webauthn-roaming")], "WebAuthn keys cannot be imported")

    result = migrate(world, opts)
    assert result.exit_code == 3, dump(result)
    assert (result.users["kept_in_source"], result.users["deleted_from_source"]) == (1, len(source_ids) - 1)
    (failure,) = result.failures
    assert failure.user_id == kept and "mfa-factor webauthn-roaming" in failure.message
    assert "organization" not in failure.message  # the shared id holds its memberships: they hold nothing back
    assert members(world, "acme") == want
    assert org_holdings(state)["organization"]["verified"] == len(source_ids)

    result = migrate(world, dataclasses.replace(opts, allow_loss=("mfa",)))
    assert result.exit_code == 0, dump(result)
    assert world.users(SOURCE) == []
    assert members(world, "acme") == want  # the last deletion dropped the kept one's; written again
    held = org_holdings(state)
    assert held["organization"]["verified"] == len(source_ids)
    assert held["organization-role"]["verified"] == sum(len(r) for r in want.values())


def test_across_tenants_orgs_and_roles_match_by_name_and_what_is_missing_is_named(
        world: World, other_world: World, tmp_path) -> None:
    seeded_users = world.seed(users=16)
    target_connection = other_world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    email_of = {u["user_id"]: u["email"] for u in world.users(SOURCE)}
    seeded = seed_orgs(world, source_ids, names=("acme", "globex"), connection_ids=(seeded_users.connection_id,),
                       member_share=0.6, role_share=1.0)
    # An organization role the target does not have; the target has acme with the target connection and
    # globex without it.
    auditors = seeded.members["acme"][:2]
    give_org_role(world, "acme", auditors, "auditor")
    for user_id in auditors:
        seeded.roles[("acme", user_id)] = [*seeded.roles.get(("acme", user_id), []), "auditor"]
    seed_orgs(other_world, [], names=("acme",), connection_ids=(target_connection,))
    seed_orgs(other_world, [], names=("globex",))
    assert len(auditors) == 2 and seeded.members["globex"]  # the seed holds what this test is about

    opts = options(tmp_path, delete_source_users=True)
    planned = run_plan(world, other_world, options(tmp_path, state=str(tmp_path / "plan.sqlite")))
    assert [p["ref"] for p in planned.problems["organization-connection-not-enabled"]] == ["globex"]
    assert "--enable-org-connections" in planned.problems["organization-connection-not-enabled"][0]["detail"]
    assert [p["ref"] for p in planned.problems["organization-role-missing-in-target"]] == ["auditor"]
    assert members(other_world, "globex") == {} and enabled_connections(other_world, "globex") == set()
    flagged = run_plan(world, other_world, options(tmp_path, state=str(tmp_path / "plan2.sqlite"),
                                                   enable_org_connections=True))
    assert [p["ref"] for p in flagged.problems["organization-connection-to-enable"]] == ["globex"]
    assert "organization-connection-not-enabled" not in flagged.problems
    assert enabled_connections(other_world, "globex") == set()  # plan writes nothing

    result = migrate(world, opts, target=other_world)
    assert result.exit_code == 3, dump(result)  # named problems: not everything was carried
    assert TARGET not in enabled_connections(other_world, "globex")  # not without the flag
    assert members(other_world, "globex") == {}
    want = expected(email_of, seeded, other_world)
    assert members(other_world, "acme") == {u: roles - {"auditor"} for u, roles in want["acme"].items()}
    with Ledger.open_readonly(opts.state or "") as ledger:
        cannot = ledger.holdings("organization", ("cannot",))
        assert {h.item for h in cannot} == {seeded.ids["globex"]}
        assert all("'globex'" in (h.detail or "") and "--enable-org-connections" in (h.detail or "") for h in cannot)
        roles_cannot = ledger.holdings("organization-role", ("cannot",))
        in_globex = [h for h in roles_cannot if h.item.startswith(seeded.ids["globex"])]
        assert len(in_globex) == sum(len(r) for (org, _), r in seeded.roles.items() if org == "globex")
        assert all("'globex'" in (h.detail or "") for h in in_globex)
        auditor = [h for h in roles_cannot if h not in in_globex]
        assert len(auditor) == 2 and all("role 'auditor'" in (h.detail or "") for h in auditor)

    # The owner gives the flag and runs the same command again: globex is enabled and its members carried.
    again = migrate(world, options(tmp_path, delete_source_users=True, enable_org_connections=True),
                    target=other_world)
    assert TARGET in enabled_connections(other_world, "globex")
    assert members(other_world, "globex") == want["globex"]
    assert again.organizations["memberships_verified"] == sum(len(m) for m in seeded.members.values())
    assert [p["ref"] for p in again.reports["problems"]["organization-role-missing-in-target"]] == ["auditor"]
    assert "organization-connection-not-enabled" not in again.reports["problems"]
    assert [p["ref"] for p in again.reports["problems"]["organization-connection-enabled"]] == ["globex"]


def test_a_run_stopped_mid_restore_resumes_with_only_what_is_left(world: World, tmp_path) -> None:
    seeded_users = world.seed(users=8)
    target_connection = world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    seeded = seed_orgs(world, source_ids, names=("acme",),
                       connection_ids=(seeded_users.connection_id, target_connection), member_share=1.0, role_share=1.0)
    assign = "POST /api/v2/organizations/{id}/members/{user_id}/roles"
    before = world.tenant.stats[assign]
    world.tenant.faults.fail_call(assign, nth=3, action=503, times=50)  # past every retry: the run stops
    with pytest.raises(TransientError):
        migrate(world, options(tmp_path))
    assert world.tenant.faults.injected[assign] >= 1
    state = str(tmp_path / "state.sqlite")
    with Ledger.open_readonly(state) as ledger:  # the two members whose roles were given are recorded so
        assert len({h.ordinal for h in ledger.holdings("organization-role", ("carried",))}) == 2
    world.tenant.faults.calls.clear()
    first = world.tenant.stats[assign] - before
    result = migrate(world, options(tmp_path))
    assert result.exit_code == 0, dump(result)
    assert world.tenant.stats[assign] - before - first == 8 - 2  # only the members not yet given their roles
    held = org_holdings(state)
    assert held["organization"]["verified"] == 8
    assert held["organization-role"]["verified"] == sum(len(r) for r in seeded.roles.values())


def test_verify_reads_memberships_again_and_names_one_removed_since(world: World, other_world: World,
                                                                    tmp_path) -> None:
    seeded_users = world.seed(users=6)
    target_connection = other_world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    seed_orgs(world, source_ids, names=("acme",), connection_ids=(seeded_users.connection_id,), member_share=1.0,
              role_share=0.0)
    seed_orgs(other_world, [], names=("acme",), connection_ids=(target_connection,))
    opts = options(tmp_path)
    assert migrate(world, opts, target=other_world).organizations["memberships_verified"] == 6
    removed = sorted(members(other_world, "acme"))[0]

    async def remove(client: Any) -> None:
        org = await client.call("get org", client.sdk.organizations.get_by_name, "acme")
        await client.call("remove", client.sdk.organizations.members.delete, org.id, members=[removed])
    _go(other_world, remove)

    async def go() -> Any:
        src, dst = world.client(), other_world.client()
        try:
            return await verify(opts, source=src, target=dst)
        finally:
            await src.aclose()
            await dst.aclose()
    again = asyncio.run(go())
    assert again.organizations["memberships_verified"] == 5
    with Ledger.open_readonly(opts.state or "") as ledger:
        (gone,) = ledger.holdings("organization", ("carried",))
        assert gone.target_id == removed and "not a member" in (gone.detail or "")


def test_a_large_organization_pages_and_batches_and_a_refused_batch_is_halved(world: World, tmp_path,
                                                                              monkeypatch) -> None:
    """150 members: read and verified over checkpoint pages of 100; a batch over the tenant's 100 is refused
    (400) and the tool halves it."""
    seeded_users = world.seed(users=150)
    target_connection = world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    seed_orgs(world, source_ids, names=("big",), connection_ids=(seeded_users.connection_id, target_connection),
              member_share=1.0, role_share=0.0)
    monkeypatch.setattr(organizations, "MEMBER_BATCH", 150)
    add = "POST /api/v2/organizations/{id}/members"
    pages = "GET /api/v2/organizations/{id}/members"
    before = (world.tenant.stats.get(add, 0), world.tenant.stats.get(pages, 0))
    result = migrate(world, options(tmp_path))
    assert result.exit_code == 0, dump(result)
    assert world.tenant.stats[add] - before[0] == 1 + 2  # refused at 150, then two of 75
    # Read: 150 members in two pages of 100; verified: the same organization (one tenant), 300 members by then.
    assert world.tenant.stats[pages] - before[1] == 2 + 3
    assert result.organizations["memberships_verified"] == 150
    assert len(members(world, "big")) == 300  # the source users and their target copies


@pytest.mark.parametrize("strategy", ["regenerate", "prefix", "keep"])
def test_across_tenants_each_strategy_carries_every_membership_before_cutover(world: World, other_world: World,
                                                                              tmp_path, strategy: str) -> None:
    seeded_users = world.seed(users=12)
    target_connection = other_world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    email_of = {u["user_id"]: u["email"] for u in world.users(SOURCE)}
    seeded = seed_orgs(world, source_ids, connection_ids=(seeded_users.connection_id,), member_share=0.6)
    seed_orgs(other_world, [], connection_ids=(target_connection,))
    result = migrate(world, options(tmp_path, user_ids=strategy, id_prefix="x-" if strategy == "prefix" else None,
                                    delete_source_users=True), target=other_world)
    assert result.exit_code == 0, dump(result)
    assert world.users(SOURCE) == []
    want = expected(email_of, seeded, other_world)
    for org in seeded.members:
        assert members(other_world, org) == want[org], org
    if strategy == "keep":
        assert set(want["acme"]) <= set(source_ids)
    memberships = sum(len(m) for m in seeded.members.values())
    assert result.organizations["memberships_verified"] == memberships > 0
    assert result.organizations["roles_verified"] == sum(len(r) for r in seeded.roles.values()) > 0


def test_an_organization_missing_in_the_target_is_named_and_its_memberships_are_not_carried(
        world: World, other_world: World, tmp_path) -> None:
    seeded_users = world.seed(users=8)
    target_connection = other_world.connection(TARGET)
    source_ids = [u["user_id"] for u in world.users(SOURCE)]
    seeded = seed_orgs(world, source_ids, names=("acme", "initech"), connection_ids=(seeded_users.connection_id,),
                       member_share=1.0, role_share=0.0)
    seed_orgs(other_world, [], names=("acme",), connection_ids=(target_connection,))  # no initech there
    opts = options(tmp_path, enable_org_connections=True)
    result = migrate(world, opts, target=other_world)
    assert result.exit_code == 3, dump(result)
    (problem,) = result.reports["problems"]["organization-missing-in-target"]
    assert problem["ref"] == "initech" and "create it there (same name)" in problem["detail"]
    assert result.organizations["memberships_verified"] == 8 and result.organizations["cannot_carry"] == 8
    with Ledger.open_readonly(opts.state or "") as ledger:
        cannot = ledger.holdings("organization", ("cannot",))
        assert {h.item for h in cannot} == {seeded.ids["initech"]}
        assert all("organization 'initech' does not exist in the target" in (h.detail or "") for h in cannot)
