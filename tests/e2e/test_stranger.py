"""Never adopt a stranger (issue 8): a target user with a migrated user's email is this migration's only when
that can be proved (the computed id with keep/prefix, or the source id in app_metadata by --record-source-id).
Otherwise it is a conflict `STRANGER_IN_TARGET`: named, no grants applied to it, its source copy never deleted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from auth0_migrate.auth0 import client as client_module
from auth0_migrate.tenant.jobs import LOST_ANSWER

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options

STRANGER_PASSWORD = "Signed-Up-Myself-1!"


def _sign_up(world: World, email: str, **fields: Any) -> str:
    """Someone signs up in the target connection with this email (the tenant gives a random id)."""
    async def go() -> str:
        client = world.client()
        try:
            user = await client.sdk.users.create(connection=TARGET, email=email, password=STRANGER_PASSWORD,
                                                 **fields)
            return str(user.user_id)
        finally:
            await client.aclose()
    return asyncio.run(go())


def _granted_user(world: World) -> dict[str, Any]:
    """A source user with roles or permissions (so 'no grants applied' means something)."""
    return next(u for u in world.users(SOURCE) if any(grants_of(world, u["user_id"])))


def _check_stranger(world: World, result, user: dict[str, Any], stranger_id: str, seeded, why: str) -> None:
    assert result.exit_code == 3, dump(result)
    (failure,) = result.failures
    assert (failure.user_id, failure.email, failure.stage, failure.code) == \
        (user["user_id"], user["email"], "idmap", "STRANGER_IN_TARGET")
    assert f"{user['email']} is already in {TARGET} as {stranger_id}" in failure.message
    assert why in failure.message
    assert result.users["already_in_target"] == 0
    assert result.users["failed"] == 1 and result.users["imported"] == seeded.users - 1
    # No grants applied to the stranger; it keeps its own password; the source copy is kept.
    assert grants_of(world, stranger_id) == (set(), set())
    assert world.login(TARGET, user["email"], STRANGER_PASSWORD) == 200
    assert [u["email"] for u in world.users(SOURCE)] == [user["email"]]
    assert result.users["deleted_from_source"] == seeded.users - 1
    assert sum(u["email"] == user["email"] for u in world.users(TARGET)) == 1


@pytest.mark.parametrize("strategy", ["regenerate", "record-source-id", "prefix"])
def test_a_stranger_with_the_same_email_is_not_adopted(world: World, tmp_path, strategy: str) -> None:
    seeded = world.seed(users=8)
    world.connection(TARGET)
    user = _granted_user(world)
    stranger_id = _sign_up(world, user["email"])
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    extra: dict[str, Any] = {"regenerate": {}, "record-source-id": {"record_source_id": "legacy_id"},
                             "prefix": {"user_ids": "prefix", "id_prefix": "m1-"}}[strategy]
    result = migrate(world, options(tmp_path, password_hashes=hashes, delete_source_users=True, **extra))
    why = {"regenerate": "with --user-ids regenerate and no --record-source-id",
           "record-source-id": f"its app_metadata.legacy_id is not this user's source id {user['user_id']}",
           "prefix": f"its id is not the computed auth0|m1-{user['user_id'].split('|', 1)[1]}"}[strategy]
    _check_stranger(world, result, user, stranger_id, seeded, why)


def test_a_stranger_across_tenants_with_kept_ids(world: World, other_world: World, tmp_path) -> None:
    seeded = world.seed(users=6)
    other_world.seed(connection="Elsewhere", users=2, seed=99)  # the same API and roles, by name
    other_world.connection(TARGET)
    user = _granted_user(world)
    stranger_id = _sign_up(other_world, user["email"])
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, password_hashes=hashes, user_ids="keep", delete_source_users=True),
                     target=other_world)
    assert result.exit_code == 3, dump(result)
    (failure,) = result.failures
    assert failure.code == "STRANGER_IN_TARGET" and failure.email == user["email"], dump(result)
    assert f"its id is not the computed {user['user_id']}" in failure.message
    assert grants_of(other_world, stranger_id) == (set(), set())
    assert [u["email"] for u in world.users(SOURCE)] == [user["email"]]
    assert result.users["deleted_from_source"] == seeded.users - 1


def test_a_proved_user_is_adopted_and_a_stranger_beside_it_is_not(world: World, tmp_path) -> None:
    """Two same-email target users made before the run: one carries the source id (adopted), one does not."""
    seeded = world.seed(users=8)
    world.connection(TARGET)
    source = [u for u in world.users(SOURCE) if not u["phone_number"]]  # POST /users takes no phone here
    ours, theirs = source[1], source[-1]
    profile = json.loads(ours["profile"])
    same = {k: profile.get(k) for k in ("given_name", "family_name", "name", "nickname", "user_metadata")}
    ours_id = _sign_up(world, ours["email"], app_metadata={**(profile.get("app_metadata") or {}),
                                                           "legacy_id": ours["user_id"]},
                       email_verified=bool(profile.get("email_verified")), blocked=bool(profile.get("blocked")),
                       **same)
    theirs_id = _sign_up(world, theirs["email"])
    ours_grants = grants_of(world, ours["user_id"])
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, password_hashes=hashes, record_source_id="legacy_id",
                                    delete_source_users=True))
    assert result.users["already_in_target"] == 1, dump(result)
    assert result.users["imported"] == seeded.users - 2
    assert result.differences == [], dump(result)
    assert [(f.email, f.code) for f in result.failures] == [(theirs["email"], "STRANGER_IN_TARGET")]
    assert theirs_id in result.failures[0].message
    assert [u["email"] for u in world.users(SOURCE)] == [theirs["email"]]  # the adopted one's copy went
    assert grants_of(world, ours_id) == ours_grants  # the adopted user was given the source user's grants


def test_a_sign_up_during_a_lost_upload_is_not_taken_for_the_lost_job(world: World, tmp_path,
                                                                        monkeypatch) -> None:
    """The stranger signs up after the file was sent, before its job reached the user; the upload's answer is
    lost. Creation time alone would call it ours; the recorded source id says it is not."""
    seeded = world.seed(users=8)
    world.connection(TARGET)
    user = _granted_user(world)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    world.tenant.config.job_seconds = 30
    world.tenant.faults.lose_import_answers.append("drop")
    original = client_module.TenantClient.call
    made: list[str] = []

    async def call(self, op, fn, *args, **kwargs):
        try:
            return await original(self, op, fn, *args, **kwargs)
        finally:
            if op == "start a users import" and not made:
                user_made = await self.sdk.users.create(connection=TARGET, email=user["email"],
                                                        password=STRANGER_PASSWORD)
                made.append(str(user_made.user_id))

    monkeypatch.setattr(client_module.TenantClient, "call", call)
    result = migrate(world, options(tmp_path, password_hashes=hashes, record_source_id="legacy_id",
                                    delete_source_users=True))
    assert world.tenant.faults.injected[LOST_ANSWER] == 1  # the fault fired
    assert made, "the stranger was not made"
    _check_stranger(world, result, user, made[0], seeded, "its app_metadata.legacy_id is not this user's source id")
