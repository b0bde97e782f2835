"""The plan's inventory and what no import carries (issue 8, item 4 and "Nothing deleted that was not carried").

`plan` lists per holding kind the users and items, what will be carried, what cannot (by reason) and what
cutover would keep in the source; `plan` and the run summary list by kind what the import cannot take
(login history, sessions, the creation date, groups), which never holds a user back.
"""

from __future__ import annotations

import asyncio
import io
import json

from rich.console import Console

from auth0_migrate import pipeline
from auth0_migrate.model import PlanResult
from auth0_migrate.report import render_inventory, render_result

from .conftest import SOURCE, TARGET, World, dump, migrate, options


def _log_in(world: World, seeded, emails: list[str]) -> None:
    for email in emails:
        assert world.login(SOURCE, email, seeded.passwords[email]) == 200


def _plan(world: World, opts) -> PlanResult:
    async def go() -> PlanResult:
        client = world.client()
        try:
            return await pipeline.plan(opts, source=client)
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_the_run_lists_what_no_import_carries_and_still_deletes(world: World, tmp_path) -> None:
    seeded = world.seed(users=6)
    world.connection(TARGET)
    emails = sorted(seeded.passwords)[:2]
    _log_in(world, seeded, emails)
    _log_in(world, seeded, emails[:1])
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, password_hashes=hashes, delete_source_users=True))
    # Never a reason to keep a user: everyone verified is deleted from the source.
    assert result.exit_code == 0, dump(result)
    assert result.users["deleted_from_source"] == seeded.users and world.users(SOURCE) == []
    left = result.as_dict()["reports"]["not_carried_by_import"]
    assert {k: v["users"] for k, v in left.items()} == {
        "created_at": seeded.users, "last_login": 2, "logins_count": 2, "last_password_reset": 0,
        "sessions_and_refresh_tokens": 2, "custom_root_attributes": 0, "group_memberships": None}
    assert "sign in again" in left["sessions_and_refresh_tokens"]["detail"]
    out = io.StringIO()
    render_result(result, Console(file=out, width=300))
    text = out.getvalue()
    assert "not carried by any import: last login: 2 users" in text
    assert "not carried by any import: group memberships: unknown users" in text
    assert "custom root attributes" not in text  # none seen, not listed
    # The target really starts the login history afresh: the import did not carry it.
    assert all(not u.get("logins_count") for u in world.users(TARGET))


def test_plan_shows_the_inventory_and_what_cutover_would_keep(world: World, tmp_path, monkeypatch) -> None:
    seeded = world.seed(users=6)
    world.connection(TARGET)
    _log_in(world, seeded, sorted(seeded.passwords)[:1])
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    source = world.users(SOURCE)
    a_id, b_id, _ = (u["user_id"] for u in source[:3])
    target_connection = world.connection(TARGET)

    async def organizations() -> None:
        """acme (the target connection enabled on it) holds a and b, b with a role there; globex holds b and
        lacks the target connection, so b's membership there cannot be carried without --enable-org-connections."""
        from auth0_migrate.seed import ensure_api_and_roles

        client = world.client()
        try:
            roles = await ensure_api_and_roles(client)
            for name, members, enabled in (("acme", [a_id, b_id], True), ("globex", [b_id], False)):
                org = await client.sdk.organizations.create(name=name)
                if enabled:
                    await client.sdk.organizations.enabled_connections.add(org.id, connection_id=target_connection)
                await client.sdk.organizations.members.create(org.id, members=members)
                if name == "acme":
                    await client.sdk.organizations.members.roles.assign(org.id, b_id, roles=[roles["admin"]])
        finally:
            await client.aclose()
    asyncio.run(organizations())
    ingest = pipeline.ingest_source

    async def ingest_and_hold(migration) -> None:
        """The export, then what the MFA read records in plan, via the ledger API."""
        await ingest(migration)
        ordinals = migration.ledger.ordinals_by_source_id()
        a, c = ordinals[source[0]["user_id"]], ordinals[source[2]["user_id"]]
        ledger = migration.ledger
        ledger.add_holdings("mfa-factor", [(a, "totp"), (c, "push"), (c, "phone")])
        ledger.set_holdings("mfa-factor", "cannot", [(c, "push")], "push factors cannot be imported: the user "
                            "enrols again")

    monkeypatch.setattr(pipeline, "ingest_source", ingest_and_hold)
    planned = _plan(world, options(tmp_path, password_hashes=hashes, delete_source_users=True))
    kinds = planned.inventory["kinds"]
    assert {k: (v["users"], v["items"], v["will_carry"]) for k, v in kinds.items()} == {
        "organization": (2, 3, 2), "organization-role": (1, 1, 1), "identity": (0, 0, 0), "mfa-factor": (2, 3, 2)}
    assert [(c["items"], c["users"]) for c in kinds["organization"]["cannot"]] == [(1, 1)]
    assert "not enabled on organization 'globex'" in kinds["organization"]["cannot"][0]["detail"]
    assert planned.inventory["mfa_factor_types"] == {"phone": 1, "push": 1, "totp": 1}
    assert planned.inventory["cutover"] == {"delete_source_users": True, "users_kept_in_source": 2,
                                            "allow_loss_would_let_go": {"organizations": 1, "mfa": 1},
                                            "loss_allowed": []}
    assert planned.not_carried_by_import["last_login"]["users"] == 1
    assert planned.as_dict()["inventory"] == planned.inventory
    out = io.StringIO()
    render_inventory(planned, Console(file=out, width=300))
    text = out.getvalue()
    assert "organization: 3 held by 2 users; 2 will be carried" in text
    assert "cannot be carried (1 held by 1 users): push factors cannot be imported: the user enrols again" in text
    assert "cutover keeps 2 users in the source (what they hold cannot be carried); to delete them anyway: " \
           "--allow-loss organizations (1 users), --allow-loss mfa (1 users)" in text
    assert "not carried by any import: sessions and refresh tokens: 1 users" in text

    # With the loss of MFA allowed, only the organization keeps a user.
    planned = _plan(world, options(tmp_path, password_hashes=hashes, delete_source_users=True, allow_loss=("mfa",)))
    assert planned.inventory["cutover"]["users_kept_in_source"] == 1
    assert planned.inventory["cutover"]["allow_loss_would_let_go"] == {"organizations": 1}
    assert planned.inventory["kinds"]["mfa-factor"]["loss_allowed"] is True
    assert world.users(TARGET) == []  # plan wrote nothing


def test_custom_root_attributes_are_counted_and_their_users_named(world: World, tmp_path) -> None:
    from auth0_migrate.passwords import make_credential

    world.connection(SOURCE)
    world.connection(TARGET)
    users = [{"user_id": f"u{i}", "email": f"u{i}@example.com",
              **make_credential(f"pw-{i}", "sha256", salt=f"s{i}-0123456789")} for i in range(3)]
    users[1]["favourite_colour"] = "teal"
    path = tmp_path / "users.ndjson"
    path.write_text("".join(json.dumps(u) + "\n" for u in users), encoding="utf-8")
    result = migrate(world, options(tmp_path, from_file=str(path)))
    assert result.exit_code == 3, dump(result)
    assert [(f.user_id, f.code) for f in result.failures] == [("auth0|u1", "UNSUPPORTED_EXPORT_KEYS")]
    assert "favourite_colour" in result.failures[0].message
    left = result.reports["not_carried_by_import"]
    assert left["custom_root_attributes"]["users"] == 1
    assert "UNSUPPORTED_EXPORT_KEYS" in left["custom_root_attributes"]["detail"]
    assert left["created_at"]["users"] == 0  # a --from-file user without one
