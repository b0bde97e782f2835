"""A hash file taken before some users changed their passwords: those hashes are stale.

The hash file is exported from the source, then (the tenant clock later) three users change their
passwords through the SDK, which records `last_password_reset`. A run holds those three back as
`STALE_HASH`, naming both dates, and migrates the rest with their passwords; with
`--stale-hash import-without-hash` it imports them without a hash (no old password logs in) and names
each one; `plan` counts them first.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from auth0_migrate.pipeline import plan
from auth0_migrate.tenant.directory import iso

from .conftest import SOURCE, TARGET, World, dump, migrate, options

CHANGED = 3


def _stale_setup(world: World, tmp_path: Any) -> tuple[Any, str, dict[str, tuple[str, str, str]]]:
    """Seed, export the hash file, then change three users' passwords an hour later.

    Returns (seeded, hash file, {email: (source id, hash's password_set_date, last_password_reset)}).
    """
    seeded = world.seed(users=12)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    set_dates = {}
    with open(hashes, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            set_dates[row["email"]] = row["password_set_date"]["$date"]
    source = {u["email"]: u for u in world.users(SOURCE)}
    unblocked = sorted(e for e in seeded.passwords if e not in seeded.blocked)
    chosen = unblocked[:CHANGED]
    world.clock.advance(3600)
    changed_at = iso(world.clock.now())

    async def change() -> None:
        client = world.client()
        try:
            for email in chosen:
                await client.sdk.users.update(source[email]["user_id"], password="Changed-" + seeded.passwords[email])
        finally:
            await client.aclose()
    asyncio.run(change())
    for email in chosen:  # the new password works in the source, the old one no longer does
        assert world.login(SOURCE, email, "Changed-" + seeded.passwords[email]) == 200
        assert world.login(SOURCE, email, seeded.passwords[email]) == 403
        assert set_dates[email] < changed_at
    return seeded, hashes, {e: (source[e]["user_id"], set_dates[e], changed_at) for e in chosen}


def test_stale_hashes_are_held_back_by_name_and_the_rest_migrate(world: World, tmp_path) -> None:
    seeded, hashes, stale = _stale_setup(world, tmp_path)
    result = migrate(world, options(tmp_path, password_hashes=hashes))

    assert result.exit_code == 3, dump(result)
    assert result.users["held_back"] == result.users["stale_hash"] == CHANGED
    assert result.users["imported"] == seeded.users - CHANGED
    assert result.users["failed"] == 0
    held = {f.user_id: f for f in result.failures}
    assert set(held) == {source_id for source_id, _, _ in stale.values()}
    for source_id, set_date, changed_at in stale.values():
        failure = held[source_id]
        assert (failure.stage, failure.code) == ("hashes", "STALE_HASH")
        assert source_id in failure.message and set_date in failure.message and changed_at in failure.message
        assert "$2" not in failure.message  # never the hash
    moved = {u["email"]: u for u in world.users(TARGET)}
    assert not set(stale) & set(moved)  # never imported with the old hash
    for email in sorted(seeded.passwords):
        if email in stale:
            continue
        expected = 403 if email in seeded.blocked else 200
        assert world.login(TARGET, email, seeded.passwords[email]) == expected


def test_import_without_hash_names_each_user_and_no_old_password_logs_in(world: World, tmp_path) -> None:
    seeded, hashes, stale = _stale_setup(world, tmp_path)
    result = migrate(world, options(tmp_path, password_hashes=hashes, stale_hash="import-without-hash"))

    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == seeded.users
    assert result.users["held_back"] == 0
    assert result.users["stale_hash"] == CHANGED
    assert result.users["with_password_hash"] == seeded.users - CHANGED
    named = {p["ref"]: p["detail"] for p in result.reports["problems"]["stale-hash"]}
    assert set(named) == {source_id for source_id, _, _ in stale.values()}
    for source_id, set_date, changed_at in stale.values():
        detail = named[source_id]
        assert set_date in detail and changed_at in detail and "must reset" in detail
    moved = {u["email"]: u for u in world.users(TARGET)}
    for email in stale:
        assert moved[email]["credential"] is None
        assert world.login(TARGET, email, seeded.passwords[email]) == 403
        assert world.login(TARGET, email, "Changed-" + seeded.passwords[email]) == 403
    kept = next(e for e in sorted(seeded.passwords) if e not in stale and e not in seeded.blocked)
    assert world.login(TARGET, kept, seeded.passwords[kept]) == 200


def test_plan_counts_stale_hashes(world: World, tmp_path) -> None:
    seeded, hashes, stale = _stale_setup(world, tmp_path)

    async def go(**kw: Any) -> Any:
        client = world.client()
        try:
            return await plan(options(tmp_path, password_hashes=hashes, **kw), source=client)
        finally:
            await client.aclose()
    found = asyncio.run(go())
    assert found.users["stale_hash"] == found.users["held_back"] == CHANGED
    assert found.users["will_import"] == seeded.users - CHANGED
    assert sorted(f.user_id for f in found.failures if f.code == "STALE_HASH") == sorted(
        source_id for source_id, _, _ in stale.values())
    chosen = asyncio.run(go(stale_hash="import-without-hash"))
    assert chosen.users["stale_hash"] == CHANGED
    assert chosen.users["held_back"] == 0 and chosen.users["will_import"] == seeded.users
    assert world.users(TARGET) == []
