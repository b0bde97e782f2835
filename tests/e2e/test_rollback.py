"""`rollback`: the target as before the run; the source as before, or imported again with working passwords."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from auth0_migrate.auth0 import client as client_module
from auth0_migrate.auth0.scopes import OPERATIONS, needed_operations
from auth0_migrate.errors import TransientError, UsageError
from auth0_migrate.formats.mfa_file import IMPORTABLE
from auth0_migrate.model import RunResult
from auth0_migrate.pipeline import rollback
from auth0_migrate.tenant import directory

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options
from .test_linked_accounts import Killed
from .test_linked_accounts import _identities as link_identities
from .test_linked_accounts import _setup as link_setup
from .test_mfa import enrol, factors, secrets_file
from .test_organizations import members, seed_orgs

ORGS = ("acme", "globex")


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


# -- what issue 8 added: organization memberships and roles, linked accounts, MFA factors ---------------------

def _rich_source(world: World, tmp_path) -> tuple[list[str], dict[str, list[str]], str, str]:
    """8 source users: two primaries with 3 linked secondaries (test_linked_accounts), three with MFA factors
    (totp+phone+email, push+totp, WebAuthn+recovery code: test_mfa), members of two organizations (the source and
    target connections enabled) with organization roles. Returns (source ids, secondaries by primary email, the
    hash file, the MFA secrets file)."""
    by_email, secondaries, hashes = link_setup(world, tmp_path)
    enrol(world)
    source_conn = directory.connection_by_name(world.tenant.store, SOURCE)["id"]
    seed_orgs(world, sorted(by_email.values()), connection_ids=(source_conn, world.connection(TARGET)),
              member_share=0.7, role_share=0.7)
    return sorted(by_email.values()), secondaries, hashes, secrets_file(world, str(tmp_path / "mfa.ndjson"))


def _source_state(world: World, ids: list[str]) -> dict[str, Any]:
    """The source as a person would check it: profiles, roles and permissions, organization members with their
    organization roles, each user's identities (linked accounts) and MFA factor types, all read back."""
    return {"profiles": _profiles(world, SOURCE), "grants": _grants(world, ids),
            "orgs": {name: members(world, name) for name in ORGS},
            "links": {i: link_identities(world, i) for i in ids},
            "factors": {i: sorted(factors(world, i)) for i in ids}}


def _importable_only(state: dict[str, Any], kept: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The source state once deleted users (all but `kept`) are imported again: their push/WebAuthn/recovery-code
    enrolments gone, and a user left with no factor no longer shows `multifactor`."""
    factors = {i: held if i in kept else [f for f in held if f in IMPORTABLE] for i, held in state["factors"].items()}
    profiles = {}
    for email, found in state["profiles"].items():
        if not factors[found["user_id"]]:
            found = {**found, "profile": {k: v for k, v in found["profile"].items() if k != "multifactor"}}
        profiles[email] = found
    return {**state, "factors": factors, "profiles": profiles}


@pytest.mark.parametrize("cutover", [False, True], ids=["before-cutover", "after-cutover"])
@pytest.mark.parametrize("strategy", ["keep", "regenerate"])
def test_one_tenant_memberships_links_and_factors_come_back(world: World, tmp_path, monkeypatch, strategy: str,
                                                            cutover: bool) -> None:
    ids, secondaries, hashes, secrets = _rich_source(world, tmp_path)
    before = _source_state(world, ids)
    assert sum(len(m) for m in before["orgs"].values()) >= 4  # memberships to lose and bring back
    assert any(before["orgs"][name][i] for name in ORGS for i in before["orgs"][name])  # and org roles
    assert sum(len(held) - 1 for held in before["links"].values()) == 3
    # Keep in one tenant always deletes the source copies: "before cutover" is a run stopped as cutover begins.
    opts = options(tmp_path, user_ids=strategy, password_hashes=hashes, mfa_secrets=secrets,
                   delete_source_users=cutover or strategy == "keep", allow_loss=("mfa",))
    original = client_module.TenantClient.call
    if strategy == "keep" and not cutover:
        async def call(self, op, fn, *args, **kwargs):  # noqa: ANN001, ANN202
            if op.startswith("delete "):
                raise Killed(op)
            return await original(self, op, fn, *args, **kwargs)

        monkeypatch.setattr(client_module.TenantClient, "call", call)
        with pytest.raises(Killed, match="^delete "):
            migrate(world, opts)
        monkeypatch.setattr(client_module.TenantClient, "call", original)
    else:
        result = migrate(world, opts)
        assert result.identities["relinked"] == 3, dump(result)
        assert result.users["deleted_from_source"] == (8 if cutover else 0), dump(result)
    if cutover:
        assert world.users(SOURCE) == []
    else:  # the run moved the links (keep: parked them) off the source primaries
        assert len(world.users(SOURCE)) == 8
        assert sum(len(link_identities(world, i)) - 1 for i in ids) == 0

    planned = undo(world, opts.state or "", dry_run=True, mfa_secrets=secrets if cutover else None)
    assert any("move the 3 linked accounts" in line for line in planned.reports["will_restore"]), planned.reports
    if cutover:
        assert any("totp/phone/email MFA factors, from" in line for line in planned.reports["will_restore"])
        assert any("push, WebAuthn" in line and "enrol again" in line for line in planned.reports["cannot_restore"])

    calls_before = dict(world.tenant.stats)
    done = undo(world, opts.state or "", password_hashes=hashes if cutover else None,
                mfa_secrets=secrets if cutover else None)
    assert done.exit_code == 0, dump(done)
    assert done.failures == [] and done.users["links_moved_back"] == 3
    assert world.users(TARGET) == []  # the target as before
    # Every call the rollback made is in the scope table (its token is checked for them before it starts).
    called = {tuple(name.split(" ", 1)) for name, n in world.tenant.stats.items() if n > calls_before.get(name, 0)}
    declared = {(OPERATIONS[op].method, "/api/v2" + OPERATIONS[op].path) for side in ("source", "target")
                for op in needed_operations("rollback", side, cross_tenant=False,
                                            delete_source_users=cutover or strategy == "keep")}
    assert ("POST", "/api/v2/users/{id}/identities") in called
    assert {c for c in called if c[1].startswith("/api/v2/")} <= declared
    after = _source_state(world, ids)
    assert after == (_importable_only(before) if cutover else before)


@pytest.mark.parametrize("cutover", [False, True], ids=["before-cutover", "after-cutover"])
def test_across_tenants_memberships_and_factors_come_back(world: World, other_world: World, tmp_path,
                                                          cutover: bool) -> None:
    ids, _, hashes, secrets = _rich_source(world, tmp_path)
    seed_orgs(other_world, [], connection_ids=(other_world.connection(TARGET),), member_share=0)
    before = _source_state(world, ids)
    target_before = {name: members(other_world, name) for name in ORGS}
    opts = options(tmp_path, password_hashes=hashes, mfa_secrets=secrets, delete_source_users=cutover,
                   allow_loss=("mfa",) if cutover else ())
    source_calls, target_calls = dict(world.tenant.stats), dict(other_world.tenant.stats)
    result = migrate(world, opts, other_world)
    assert result.organizations["memberships_restored"] > 0, dump(result)
    # Across tenants the two primaries with linked secondaries stay in the source (their links cannot move).
    assert result.users["deleted_from_source"] == (6 if cutover else 0), dump(result)

    done = undo(world, opts.state or "", other_world, password_hashes=hashes if cutover else None,
                mfa_secrets=secrets if cutover else None)
    assert done.exit_code == 0, dump(done)
    assert done.users["restored_to_source"] == (6 if cutover else 0) and done.failures == []
    for side, tenant, before_calls in (("source", world, source_calls), ("target", other_world, target_calls)):
        called = {tuple(name.split(" ", 1)) for name, n in tenant.tenant.stats.items()
                  if n > before_calls.get(name, 0) and " /api/v2/" in name}
        declared = {(OPERATIONS[op].method, "/api/v2" + OPERATIONS[op].path) for c in ("run", "rollback")
                    for op in needed_operations(c, side, cross_tenant=True, delete_source_users=cutover,
                                                mfa_secrets=True)}
        assert called <= declared, side
    assert other_world.users(TARGET) == []
    assert {name: members(other_world, name) for name in ORGS} == target_before  # the target as before
    # After cutover the two primaries kept in the source were never deleted: their factors stay whole.
    kept = frozenset(i for i, held in before["links"].items() if len(held) > 1)
    assert _source_state(world, ids) == (_importable_only(before, kept) if cutover else before)


@pytest.mark.parametrize("operation", ["unlink ", "link "])
def test_rollback_killed_between_unlink_and_link_back_loses_no_secondary(world: World, tmp_path, monkeypatch,
                                                                        operation: str) -> None:
    ids, secondaries, hashes, _ = _rich_source(world, tmp_path)
    before = _source_state(world, ids)
    opts = options(tmp_path, password_hashes=hashes)
    assert migrate(world, opts).identities["relinked"] == 3
    original = client_module.TenantClient.call

    async def call(self, op, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        result = await original(self, op, fn, *args, **kwargs)
        if op.startswith(operation):
            raise Killed(op)
        return result

    monkeypatch.setattr(client_module.TenantClient, "call", call)
    with pytest.raises(Killed, match=f"^{operation}") as killed:
        undo(world, opts.state or "")
    item = str(killed.value).split()[1]
    assert item in {i for held in secondaries.values() for i in held}
    if operation == "unlink ":  # unlinked from the new primary, not yet linked back: a user of its own, not lost
        assert world.tenant.store.one("SELECT 1 FROM users WHERE user_id = ?", (item,))
    else:  # linked back before the ledger knew
        assert world.tenant.store.one("SELECT 1 FROM users WHERE user_id = ?", (item,)) is None
    monkeypatch.setattr(client_module.TenantClient, "call", original)
    done = undo(world, opts.state or "")
    assert done.exit_code == 0 and done.users["links_moved_back"] == 3, dump(done)
    assert world.users(TARGET) == []
    assert _source_state(world, ids) == before


def test_across_tenants_links_deleted_under_allow_loss_are_named_as_lost(world: World, other_world: World,
                                                                         tmp_path) -> None:
    ids, _, hashes, secrets = _rich_source(world, tmp_path)
    seed_orgs(other_world, [], connection_ids=(other_world.connection(TARGET),), member_share=0)
    opts = options(tmp_path, password_hashes=hashes, mfa_secrets=secrets, delete_source_users=True,
                   allow_loss=("mfa", "identities"))
    assert migrate(world, opts, other_world).users["deleted_from_source"] == 8
    planned = undo(world, opts.state or "", other_world, dry_run=True, password_hashes=hashes)
    assert any(line.startswith("the 3 linked accounts Auth0 deleted with their primaries")
               for line in planned.reports["cannot_restore"]), planned.reports
    assert any("MFA factors of deleted users: without --mfa-secrets" in line
               for line in planned.reports["cannot_restore"]), planned.reports
