"""Each user-id strategy end to end, in one tenant and across two: users, hashes, roles, permissions."""

from __future__ import annotations

import json

import pytest

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options


def _check_migrated(source: World, target: World, seeded, result, *, before: dict[str, str],
                    ids: dict[str, str] | None = None) -> None:
    """`before`: each source user's id by email; `ids`: the target ids the strategy must give, if fixed."""
    assert result.exit_code == 0, dump(result)
    n = seeded.users
    assert result.users["selected"] == n
    assert result.users["imported"] == n
    assert result.users["verified"] == n
    assert result.users["failed"] == result.users["held_back"] == 0
    assert result.grants["permissions_restored"] == seeded.permissions
    assert result.grants["roles_restored"] == seeded.role_members
    moved = {u["email"]: u for u in target.users(TARGET)}
    assert len(moved) == n == len(target.users(TARGET))  # nobody twice
    for email, user in moved.items():
        profile = json.loads(user["profile"])
        assert profile["app_metadata"]["legacy_user_id"] == before[email]  # --record-source-id
        if ids is not None:
            assert user["user_id"] == ids[email]
    # A sample logs in on the target with the original password, and not with a wrong one.
    sample = sorted(seeded.passwords)[:3]
    for email in sample:
        blocked = '"blocked":true' in moved[email]["profile"]
        assert target.login(TARGET, email, seeded.passwords[email]) == (403 if blocked else 200)
        assert target.login(TARGET, email, seeded.passwords[email] + "!") == 403


@pytest.mark.parametrize("strategy", ["regenerate", "prefix"])
def test_same_tenant(world: World, tmp_path, strategy: str) -> None:
    seeded = world.seed(users=60)
    world.connection(TARGET)
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    opts = options(tmp_path, user_ids=strategy, id_prefix="m_" if strategy == "prefix" else None,
                   password_hashes=hashes, record_source_id="legacy_user_id")
    result = migrate(world, opts)
    expected = None
    if strategy == "prefix":
        expected = {e: "auth0|m_" + i.split("|", 1)[1] for e, i in before.items()}
    _check_migrated(world, world, seeded, result, before=before, ids=expected)
    if strategy == "regenerate":
        assert not set(before.values()) & {u["user_id"] for u in world.users(TARGET)}
    # Source users stay (no cutover asked for), with their grants.
    assert len(world.users(SOURCE)) == seeded.users
    # Roles came over as roles, not flattened: the role-derived permissions are not DIRECT on the target.
    target_user = next(u for u in world.users(TARGET))
    source_id = before[target_user["email"]]
    assert grants_of(world, target_user["user_id"]) == grants_of(world, source_id)


def test_keep_in_one_tenant_deletes_source_and_reapplies(world: World, tmp_path) -> None:
    seeded = world.seed(users=40)
    world.connection(TARGET)
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    grants_before = {e: grants_of(world, i) for e, i in list(before.items())[:10]}
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, user_ids="keep", password_hashes=hashes,
                                    record_source_id="legacy_user_id", delete_source_users=True))
    _check_migrated(world, world, seeded, result, before=before, ids=before)
    assert result.users["deleted_from_source"] == seeded.users
    assert world.users(SOURCE) == []
    # Deleting the source copies dropped the grants held under the shared ids (the local tenant's pessimistic
    # choice); the run re-applied them, so each kept id holds exactly what it held before.
    for email, grants in grants_before.items():
        assert grants_of(world, before[email]) == grants


def test_keep_in_one_tenant_without_cutover_is_refused(world: World, tmp_path) -> None:
    from auth0_migrate.errors import UsageError

    world.seed(users=3)
    world.connection(TARGET)
    with pytest.raises(UsageError, match="--delete-source-users"):
        migrate(world, options(tmp_path, user_ids="keep"))
    assert world.users(TARGET) == []


@pytest.mark.parametrize("strategy", ["regenerate", "keep"])
def test_across_tenants(world: World, other_world: World, tmp_path, strategy: str) -> None:
    seeded = world.seed(users=50)
    # The target tenant has the same API and roles (by name), with other ids.
    other_world.seed(connection="Elsewhere", users=2, seed=99)
    other_world.connection(TARGET)
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, user_ids=strategy, password_hashes=hashes,
                                    record_source_id="legacy_user_id"), target=other_world)
    _check_migrated(world, other_world, seeded, result, before=before, ids=before if strategy == "keep" else None)
    assert len(world.users(SOURCE)) == seeded.users  # nothing deleted unless asked
    target_ids = {u["email"]: u["user_id"] for u in other_world.users(TARGET)}
    for email in sorted(before)[:8]:
        assert grants_of(other_world, target_ids[email]) == grants_of(world, before[email])
