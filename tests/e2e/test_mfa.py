"""MFA enrollments end to end: found in the source, imported from --mfa-secrets, verified in the target, and what
cannot be carried (push, WebAuthn, recovery codes, factors without a secret) named per user."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from auth0_migrate.ledger import Ledger
from auth0_migrate.model import MigrationOptions, PlanResult
from auth0_migrate.pipeline import plan
from auth0_migrate.tenant import mfa

from .conftest import SOURCE, TARGET, World, dump, migrate, options

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
BAD_SECRET = "NOT-BASE32-s3cr3t"


def enrol(world: World) -> dict[str, str]:
    """Give three source users factors: `full` totp + phone + email, `push` push + totp, `key` a WebAuthn key
    and a recovery code. Returns their source ids by role."""
    users = world.users(SOURCE)
    ids = {"full": users[0]["user_id"], "push": users[1]["user_id"], "key": users[2]["user_id"]}
    store, now = world.tenant.store, world.clock.now()
    mfa.enroll(store, ids["full"], "totp", SECRET, now)
    mfa.enroll(store, ids["full"], "phone", "+44207183875044", now)
    mfa.enroll(store, ids["full"], "email", "second@example.com", now)
    mfa.enroll(store, ids["push"], "push", now=now)
    mfa.enroll(store, ids["push"], "totp", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", now)
    mfa.enroll(store, ids["key"], "webauthn-roaming", now=now)
    mfa.enroll(store, ids["key"], "recovery-code", now=now)
    return ids


def secrets_file(world: World, path: str) -> str:
    with open(path, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        mfa.export_secrets(world.tenant.store, SOURCE, out)
    return path


def factors(world: World, user_id: str) -> list[str]:
    """The factor types a tenant lists for a user id, through the API (the tool's own paging helper)."""
    async def go() -> list[str]:
        from auth0_migrate.auth0.paging import every, offset_items

        client = world.client()
        try:
            return [str(m.type) for m in await every(offset_items(
                client, "read factors", client.sdk.users.authentication_methods.list, user_id))]
        finally:
            await client.aclose()
    return asyncio.run(go())


def holdings_of(ledger: Ledger) -> dict[str, dict[str, tuple[str, str | None]]]:
    """{source id: {item: (state, detail)}} of the ledger's MFA holdings."""
    out: dict[str, dict[str, tuple[str, str | None]]] = {}
    for h in ledger.holdings("mfa-factor"):
        out.setdefault(h.source_id, {})[h.item] = (h.state, h.detail)
    return out


def holdings(state: str) -> dict[str, dict[str, tuple[str, str | None]]]:
    with Ledger.open_readonly(state) as ledger:
        return holdings_of(ledger)


def target_id(world: World, email: str) -> str:
    return next(u["user_id"] for u in world.users(TARGET) if u["email"] == email)


def emails(world: World) -> dict[str, str]:
    return {u["user_id"]: u["email"] for u in world.users(SOURCE)}


@pytest.mark.parametrize("strategy", ["regenerate", "prefix"])
def test_totp_phone_and_email_factors_are_imported_and_verified_the_rest_named(world: World, tmp_path,
                                                                                strategy: str) -> None:
    world.seed(users=8)
    world.connection(TARGET)
    ids = enrol(world)
    mail = emails(world)
    opts = options(tmp_path, user_ids=strategy, id_prefix="m_" if strategy == "prefix" else None,
                   password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")),
                   mfa_secrets=secrets_file(world, str(tmp_path / "mfa.ndjson")))
    result = migrate(world, opts)
    assert result.users["imported"] == 8, dump(result)
    assert result.mfa == {"factors": 7, "factors_imported": 4, "factors_verified": 4, "cannot_carry": 3}
    assert sorted(factors(world, target_id(world, mail[ids["full"]]))) == ["email", "phone", "totp"]
    assert factors(world, target_id(world, mail[ids["push"]])) == ["totp"]
    assert factors(world, target_id(world, mail[ids["key"]])) == []
    held = holdings(opts.state or "")
    assert held[ids["full"]] == {"totp": ("verified", None), "phone": ("verified", None), "email": ("verified", None)}
    assert held[ids["push"]]["totp"] == ("verified", None)
    state, detail = held[ids["push"]]["push"]
    assert state == "cannot" and "push factor cannot be imported" in (detail or "") and "--allow-loss mfa" in detail
    assert {item: s for item, (s, _) in held[ids["key"]].items()} == {"webauthn-roaming": "cannot",
                                                                      "recovery-code": "cannot"}
    # Reported per user, in --json and in the human summary.
    named = {(r["user_id"], r["factor"]) for r in result.reports["mfa_not_carried"]}
    assert named == {(ids["push"], "push"), (ids["key"], "webauthn-roaming"), (ids["key"], "recovery-code")}
    from io import StringIO

    from rich.console import Console

    from auth0_migrate.report import render_result

    out = StringIO()
    render_result(result, Console(file=out, width=200))
    assert f"{ids['key']}: webauthn-roaming: a webauthn-roaming factor cannot be imported" in out.getvalue()
    assert "mfa factors verified" in out.getvalue()
    # Cutover would keep exactly the users with a factor that was not carried.
    with Ledger.open_readonly(opts.state or "") as ledger:
        kept = {rows[0].source_id for rows in ledger.unverified_holdings().values()}
        assert kept == {ids["push"], ids["key"]}
        assert ledger.users_with_mfa_secrets() == 0  # the secrets left the ledger with the import
    with open(opts.state or "", "rb") as raw:
        body = raw.read()
    assert SECRET.encode() not in body and b"+44207183875044" not in body
    assert SECRET not in json.dumps(result.as_dict(), default=str)


def test_without_the_secrets_file_enrolled_factors_cannot_be_carried_and_say_which_flag(world: World,
                                                                                         tmp_path) -> None:
    world.seed(users=4)
    world.connection(TARGET)
    ids = enrol(world)
    opts = options(tmp_path, password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")))
    result = migrate(world, opts)
    assert result.users["imported"] == 4, dump(result)
    assert result.mfa == {"factors": 7, "factors_imported": 0, "factors_verified": 0, "cannot_carry": 7}
    held = holdings(opts.state or "")
    state, detail = held[ids["full"]]["totp"]
    assert state == "cannot" and "--mfa-secrets FILE" in (detail or "") and "--allow-loss mfa" in detail
    # One read per enrolled source user (three), none of the target's: nothing was imported to verify.
    assert world.tenant.stats.get("GET /api/v2/users/{id}/authentication-methods", 0) == 3
    assert factors(world, target_id(world, emails(world)[ids["full"]])) == []


def test_across_tenants_with_prefix_and_cutover_the_imported_factors_are_verified(world: World, other_world: World,
                                                                                   tmp_path) -> None:
    world.seed(users=5)
    other_world.connection(TARGET)
    ids = enrol(world)
    opts = options(tmp_path, user_ids="prefix", id_prefix="x_", delete_source_users=True,
                   password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")),
                   mfa_secrets=secrets_file(world, str(tmp_path / "mfa.ndjson")))
    result = migrate(world, opts, target=other_world)
    assert result.users["imported"] == 5, dump(result)
    assert result.mfa["factors_verified"] == 4
    moved = "auth0|x_" + ids["full"].split("|", 1)[1]
    assert sorted(factors(other_world, moved)) == ["email", "phone", "totp"]
    assert holdings(opts.state or "")[ids["full"]]["phone"] == ("verified", None)


def test_under_keep_in_one_tenant_the_factors_are_imported_but_not_called_verified(world: World, tmp_path) -> None:
    world.seed(users=3)
    world.connection(TARGET)
    ids = enrol(world)
    opts = options(tmp_path, user_ids="keep", delete_source_users=True,
                   password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")),
                   mfa_secrets=secrets_file(world, str(tmp_path / "mfa.ndjson")))
    gate = {}

    async def hold_back_everyone(migration) -> None:  # noqa: ANN001
        # Stop before cutover, to see the state a cutover that waits for `verified` would see.
        gate["before"] = holdings_of(migration.ledger)
    from auth0_migrate.stages import cutover

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cutover, "delete_source_copies", hold_back_everyone)
        migrate(world, opts)
    state, detail = gate["before"][ids["full"]]["totp"]
    assert state == "carried" and "--user-ids keep in one tenant" in (detail or "")
    row = world.tenant.store.row("SELECT COUNT(*) AS n FROM mfa_factors f JOIN users u ON u.pk = f.user_pk "
                                 "JOIN connections c ON c.id = u.connection_id WHERE c.name = ? AND u.user_id = ?",
                                 (TARGET, ids["full"]))
    assert row["n"] == 3  # the target copy holds them
    # Once the source copies are deleted (here by a cutover that does not wait for MFA), the shared id reads
    # the target copy and the factors are verified.
    migrate(world, opts)
    assert holdings(opts.state or "")[ids["full"]]["totp"] == ("verified", None)


def test_a_bad_secret_refuses_that_user_naming_the_field_never_the_secret(world: World, tmp_path) -> None:
    world.seed(users=3)
    world.connection(TARGET)
    ids = enrol(world)
    path = str(tmp_path / "mfa.ndjson")
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"user_id": ids["full"], "mfa_factors": [{"totp": {"secret": BAD_SECRET}}]}) + "\n")
        out.write("{not json\n")
        out.write(json.dumps({"user_id": ids["push"], "authenticators": [
            {"type": "totp", "totp_secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}, {"type": "push"}]}) + "\n")
    opts = options(tmp_path, password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")), mfa_secrets=path)
    result = migrate(world, opts)
    refused = next(f for f in result.failures if f.user_id == ids["full"])
    assert refused.stage == "transform" and "mfa_factors[0].totp.secret" in refused.message
    assert BAD_SECRET not in json.dumps(result.as_dict(), default=str)
    assert result.users["imported"] == 2
    # The API-shaped line of the other user was carried (its push was reported as a problem of the file).
    assert holdings(opts.state or "")[ids["push"]]["totp"] == ("verified", None)
    lines = {p["ref"]: p["detail"] for p in result.reports["problems"]["mfa-secrets"]}
    assert "not valid JSON" in lines["2"] and "'push'" in lines["3"]
    with Ledger.open_readonly(opts.state or "") as ledger:
        assert ledger.users_with_mfa_secrets() == 0  # the refused user's secret is gone too


def test_plan_reads_the_enrolled_users_factors_and_nobody_elses(world: World, tmp_path) -> None:
    world.seed(users=6)
    world.connection(TARGET)
    enrol(world)
    before = world.tenant.stats.get("GET /api/v2/users/{id}/authentication-methods", 0)
    opts: MigrationOptions = options(tmp_path)

    async def go() -> PlanResult:
        client = world.client()
        try:
            return await plan(opts, source=client)
        finally:
            await client.aclose()
    asyncio.run(go())
    assert world.tenant.stats.get("GET /api/v2/users/{id}/authentication-methods", 0) - before == 3
    assert not os.path.exists(opts.state or "")


def test_a_token_without_read_authentication_methods_is_refused_before_the_export(world: World, tmp_path) -> None:
    """Without the scope no enrolled user's factors could be told: refused up front, the scope named."""
    from auth0_migrate.errors import InsufficientScopeError

    from .test_auth import granted_client, jobs_started, run_plan, without

    world.seed(users=2)
    world.connection(TARGET)
    weak = granted_client(world, without("read:authentication_methods"))
    before = jobs_started(world)
    with pytest.raises(InsufficientScopeError) as info:
        run_plan(world, None, options(tmp_path), **weak)
    assert info.value.scopes == ["read:authentication_methods"]
    assert "read a user's authentication methods" in str(info.value)
    assert jobs_started(world) == before


def test_a_from_file_users_own_mfa_factors_are_counted_imported_and_verified(world: World, tmp_path) -> None:
    world.connection(SOURCE)
    world.connection(TARGET)
    path = tmp_path / "users.ndjson"
    path.write_text(json.dumps({"email": "own@example.com", "mfa_factors": [
        {"totp": {"secret": SECRET}}, {"phone": {"value": "+15555550100"}}, {"phone": {"value": "+15555550101"}}]})
        + "\n" + json.dumps({"email": "none@example.com"}) + "\n")
    opts = options(tmp_path, from_file=str(path))
    result = migrate(world, opts)
    assert result.users["imported"] == 2, dump(result)
    assert result.mfa == {"factors": 3, "factors_imported": 3, "factors_verified": 3, "cannot_carry": 0}
    assert [set(items) for items in holdings(opts.state or "").values()] == [{"totp", "phone", "phone 2"}]
    assert sorted(factors(world, target_id(world, "own@example.com"))) == ["phone", "phone", "totp"]
    with Ledger.open_readonly(opts.state or "") as ledger:
        assert ledger.users_with_mfa_secrets() == 0


def test_seeded_enrolled_users_keep_every_factor_across_tenants(world: World, other_world: World, tmp_path) -> None:
    seeded = world.seed(users=30, mfa_share=0.4)
    other_world.connection(TARGET)
    expected = sum(len(types) for types in seeded.mfa_factors.values())
    assert len(seeded.mfa_factors) >= 5 and expected > len(seeded.mfa_factors)  # some have phone and email too
    opts = options(tmp_path, user_ids="prefix", id_prefix="s_",
                   password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")),
                   mfa_secrets=secrets_file(world, str(tmp_path / "mfa.ndjson")))
    result = migrate(world, opts, target=other_world)
    assert result.users["imported"] == 30, dump(result)
    assert result.mfa == {"factors": expected, "factors_imported": expected, "factors_verified": expected,
                          "cannot_carry": 0}
    email, types = sorted(seeded.mfa_factors.items())[0]
    assert sorted(factors(other_world, target_id(other_world, email))) == sorted(types)


def test_a_run_stopped_while_verifying_factors_resumes_and_verifies_them(world: World, tmp_path) -> None:
    from auth0_migrate.errors import TransientError

    world.seed(users=4)
    world.connection(TARGET)
    ids = enrol(world)
    opts = options(tmp_path, password_hashes=world.hash_file(str(tmp_path / "hashes.ndjson")),
                   mfa_secrets=secrets_file(world, str(tmp_path / "mfa.ndjson")))
    endpoint = "GET /api/v2/users/{id}/authentication-methods"
    # The three source reads pass; every read of the target's factors after them fails.
    world.tenant.faults.fail_call(endpoint, nth=4, action=503, times=1000)
    with pytest.raises(TransientError):
        migrate(world, opts)
    assert world.tenant.faults.injected[endpoint] > 0
    held = holdings(opts.state or "")
    assert held[ids["full"]]["totp"] == ("carried", None)  # imported, not yet read back
    with Ledger.open_readonly(opts.state or "") as ledger:
        assert ledger.users_with_mfa_secrets() == 0
    world.tenant.faults.calls.clear()
    result = migrate(world, opts)
    assert result.mfa == {"factors": 7, "factors_imported": 4, "factors_verified": 4, "cannot_carry": 3}
    assert result.users["imported"] == 4
