"""`rollback`: the target as before the run; the source as before, or imported again with working passwords."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from auth0_migrate.errors import TransientError, UsageError
from auth0_migrate.model import RunResult
from auth0_migrate.pipeline import rollback

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options


def undo(source: World, state: str, target: World | None = None, **kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        src = source.client()
        dst = target.client() if target is not None else None
        try:
            return await rollback(state=state, source=src, target=dst, **kwargs)
        finally:
            await src.aclose()
            if dst is not None:
                await dst.aclose()
    return asyncio.run(go())


def _profiles(world: World, connection: str) -> dict[str, dict[str, Any]]:
    """email -> (user id, profile as the tenant holds it, without its own timestamps)."""
    found = {}
    for u in world.users(connection):
        profile = json.loads(u["profile"])
        for key in ("created_at", "updated_at", "last_login", "logins_count", "last_password_reset"):
            profile.pop(key, None)
        found[u["email"]] = {"user_id": u["user_id"], "profile": profile}
    return found


def _grants(world: World, ids: list[str]) -> dict[str, Any]:
    return {i: grants_of(world, i) for i in ids}


def test_before_cutover_the_target_is_as_before_and_the_source_untouched(world: World, tmp_path) -> None:
    world.seed(users=30)
    world.seed(TARGET, users=2, seed=99)  # two users of the target connection that the run must never touch
    before_target = _profiles(world, TARGET)
    before_source = _profiles(world, SOURCE)
    sample = sorted(u["user_id"] for u in before_source.values())[:8]
    grants_before = _grants(world, sample)
    opts = options(tmp_path, password_hashes=world.hash_file(str(tmp_path / "h.ndjson")),
                   record_source_id="legacy_user_id")
    result = migrate(world, opts)
    assert result.exit_code == 0, dump(result)
    assert len(world.users(TARGET)) == 32

    planned = undo(world, opts.state or "", dry_run=True)
    assert planned.users["imported_by_run"] == 30 and planned.users["removed_from_target"] == 0
    assert any("30 users this run imported" in line for line in planned.reports["will_restore"])
    assert len(world.users(TARGET)) == 32  # a dry run does nothing

    done = undo(world, opts.state or "")
    assert done.exit_code == 0, dump(done)
    assert done.users["removed_from_target"] == 30 and done.failures == []
    assert _profiles(world, TARGET) == before_target
    assert _profiles(world, SOURCE) == before_source
    assert _grants(world, sample) == grants_before
    # The ledger of a rolled-back migration is not resumed by mistake.
    with pytest.raises(UsageError, match="rolled back"):
        migrate(world, opts)


@pytest.mark.parametrize("strategy", ["keep", "regenerate"])
def test_after_cutover_in_one_tenant_source_users_come_back_with_ids_passwords_and_grants(
        world: World, tmp_path, strategy: str) -> None:
    seeded = world.seed(users=24)
    world.connection(TARGET)
    before = _profiles(world, SOURCE)
    ids = sorted(u["user_id"] for u in before.values())
    grants_before = _grants(world, ids)
    hashes = world.hash_file(str(tmp_path / "h.ndjson"))
    opts = options(tmp_path, user_ids=strategy, password_hashes=hashes, record_source_id="legacy_user_id",
                   delete_source_users=True)
    result = migrate(world, opts)
    assert result.exit_code == 0, dump(result)
    assert world.users(SOURCE) == []

    # Without the hash file the passwords cannot come back: refused until the owner says so.
    with pytest.raises(UsageError, match="--password-hashes"):
        undo(world, opts.state or "")
    planned = undo(world, opts.state or "", dry_run=True)
    assert any("24 users cutover deleted" in line for line in planned.reports["will_restore"])
    assert any("last_login" in line for line in planned.reports["cannot_restore"])
    assert world.users(SOURCE) == []

    done = undo(world, opts.state or "", password_hashes=hashes)
    assert done.exit_code == 0, dump(done)
    assert done.users["restored_to_source"] == 24 and done.users["removed_from_target"] == 24
    assert world.users(TARGET) == []
    assert _profiles(world, SOURCE) == before  # same ids, same profiles (no legacy_user_id left behind)
    assert _grants(world, ids) == grants_before
    for email in sorted(seeded.passwords)[:4]:
        expected = 403 if email in seeded.blocked else 200
        assert world.login(SOURCE, email, seeded.passwords[email]) == expected
        assert world.login(SOURCE, email, seeded.passwords[email] + "x") == 403


def test_after_cutover_across_tenants(world: World, other_world: World, tmp_path) -> None:
    seeded = world.seed(users=20)
    other_world.seed(connection="Elsewhere", users=2, seed=99)  # the same API and roles by name, other ids
    other_world.connection(TARGET)
    before = _profiles(world, SOURCE)
    ids = sorted(u["user_id"] for u in before.values())
    grants_before = _grants(world, ids)
    hashes = world.hash_file(str(tmp_path / "h.ndjson"))
    opts = options(tmp_path, password_hashes=hashes, delete_source_users=True)
    result = migrate(world, opts, other_world)
    assert result.exit_code == 0, dump(result)
    assert world.users(SOURCE) == [] and len(other_world.users(TARGET)) == 20

    done = undo(world, opts.state or "", other_world, password_hashes=hashes)
    assert done.exit_code == 0, dump(done)
    assert other_world.users(TARGET) == []
    assert _profiles(world, SOURCE) == before
    assert _grants(world, ids) == grants_before
    email = sorted(seeded.passwords)[0]
    assert world.login(SOURCE, email, seeded.passwords[email]) == (403 if email in seeded.blocked else 200)


def test_interrupted_rollback_resumes(world: World, tmp_path) -> None:
    world.seed(users=20)
    world.connection(TARGET)
    opts = options(tmp_path)
    assert migrate(world, opts).exit_code == 0
    world.tenant.faults.fail_call("DELETE /api/v2/connections/{id}/users", nth=5, action=503, times=10_000)
    with pytest.raises(TransientError):
        undo(world, opts.state or "")
    assert world.tenant.faults.injected["DELETE /api/v2/connections/{id}/users"] >= 8  # a user's every attempt
    world.tenant.faults.calls.clear()  # the outage ends
    left = len(world.users(TARGET))
    assert 0 < left < 20
    done = undo(world, opts.state or "")
    assert done.exit_code == 0, dump(done)
    assert done.users["removed_from_target"] == 20
    assert world.users(TARGET) == []
    assert len(world.users(SOURCE)) == 20


def test_other_tenants_ledger_is_refused(world: World, other_world: World, tmp_path) -> None:
    world.seed(users=3)
    world.connection(TARGET)
    opts = options(tmp_path)
    assert migrate(world, opts).exit_code == 0
    with pytest.raises(UsageError, match="tenants given"):
        undo(other_world, opts.state or "")
