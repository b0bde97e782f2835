"""Grants bigger than one page: a user with more DIRECT permissions than a permissions page (100), a role with
more members than a checkpoint page (50). Every one is read, restored and verified; role-derived
permissions stay role-derived on the target (never flattened into DIRECT ones)."""

from __future__ import annotations

import asyncio
from typing import Any

from auth0_migrate.auth0.paging import offset_items
from auth0_migrate.stages.grants import direct_permissions, role_member_ids

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options

BIG_API = "https://big.example.com/"
SCOPES = [f"do:thing{n:03d}" for n in range(150)]
DIRECT = 130
MEMBERS = 130
ROLE_SCOPES = SCOPES[140:145]


def _setup_grants(world: World, user_ids: list[str]) -> str:
    """An API with 150 scopes, 130 of them granted DIRECT to user_ids[0]; a role with 130 members."""
    async def go() -> str:
        client = world.client()
        try:
            sdk = client.sdk
            await sdk.resource_servers.create(name="Big API", identifier=BIG_API,
                                              scopes=[{"value": s, "description": s} for s in SCOPES])
            perms = [{"resource_server_identifier": BIG_API, "permission_name": s} for s in SCOPES[:DIRECT]]
            await sdk.users.permissions.create(user_ids[0], permissions=perms)
            role = await sdk.roles.create(name="crowd", description="a role with many members")
            await sdk.roles.permissions.add(str(role.id), permissions=[
                {"resource_server_identifier": BIG_API, "permission_name": s} for s in ROLE_SCOPES])
            members = user_ids[:MEMBERS]
            for start in range(0, len(members), 50):
                await sdk.roles.users.assign(str(role.id), users=members[start:start + 50])
            return str(role.id)
        finally:
            await client.aclose()
    return asyncio.run(go())


def _read(world: World, fn: Any, *args: Any) -> Any:
    async def go() -> Any:
        client = world.client()
        try:
            return await fn(client, *args)
        finally:
            await client.aclose()
    return asyncio.run(go())


async def _sources(client: Any, user_id: str) -> dict[str, set[str]]:
    """permission name -> its source types, for the big API, across every page."""
    found: dict[str, set[str]] = {}
    async for item in offset_items(client, f"read permissions of {user_id}", client.sdk.users.permissions.list,
                                   user_id):
        data = item.model_dump()
        if data["resource_server_identifier"] == BIG_API:
            found[data["permission_name"]] = {s["source_type"] for s in data.get("sources") or []}
    return found


def test_many_direct_permissions_and_role_members(world: World, tmp_path) -> None:
    seeded = world.seed(users=MEMBERS + 10, role_share=0.2, permission_share=0.2)
    world.connection(TARGET)
    source = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    ordered = [source[e] for e in sorted(source)]
    role_id = _setup_grants(world, ordered)
    heavy = ordered[0]
    assert len(_read(world, direct_permissions, heavy)) >= DIRECT  # more than one page in the source
    assert len(_read(world, role_member_ids, role_id)) == MEMBERS  # more than two checkpoint pages

    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, password_hashes=hashes))
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == result.users["verified"] == seeded.users
    assert result.grants["permissions_in_source"] == seeded.permissions + DIRECT
    assert result.grants["permissions_restored"] == seeded.permissions + DIRECT
    assert result.grants["role_memberships_in_source"] == seeded.role_members + MEMBERS
    assert result.grants["roles_restored"] == seeded.role_members + MEMBERS

    target = {u["email"]: u["user_id"] for u in world.users(TARGET)}
    new_id = {source[e]: target[e] for e in source}
    # Every member of the big role is a member in the target too (same tenant: the role now has both copies).
    members = set(_read(world, role_member_ids, role_id))
    assert {new_id[i] for i in ordered[:MEMBERS]} <= members
    assert len(members) == 2 * MEMBERS
    # The heavy user: all DIRECT permissions, past the first page, and nothing else made DIRECT.
    assert grants_of(world, new_id[heavy]) == grants_of(world, heavy)
    heavy_sources = _read(world, _sources, new_id[heavy])
    assert {p for p, kinds in heavy_sources.items() if "DIRECT" in kinds} == set(SCOPES[:DIRECT])
    assert {p for p, kinds in heavy_sources.items() if "ROLE" in kinds} == set(ROLE_SCOPES)
    # A plain member: the role's permissions reach it through the role only.
    plain = ordered[MEMBERS - 1]
    plain_sources = _read(world, _sources, new_id[plain])
    assert plain_sources == {p: {"ROLE"} for p in ROLE_SCOPES}
    assert grants_of(world, new_id[plain]) == grants_of(world, plain)
    # Users outside the role did not get it.
    outside = ordered[MEMBERS]
    assert "crowd" not in grants_of(world, new_id[outside])[0]
