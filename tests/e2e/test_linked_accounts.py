"""Linked accounts end to end: a primary's secondaries move to its new copy in one tenant (each strategy),
survive a run killed between unlink and link, cannot cross tenants (named), and a source user that is the
secondary of a primary elsewhere is reported, never imported as a duplicate."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from auth0_migrate.auth0 import client as client_module
from auth0_migrate.auth0.scopes import OPERATIONS, needed_operations
from auth0_migrate.ledger import Ledger
from auth0_migrate.pipeline import plan
from auth0_migrate.seed import ensure_connection, link_accounts
from auth0_migrate.tenant import directory
from auth0_migrate.tenant.identities import add_social_user

from .conftest import SOURCE, TARGET, World, dump, migrate, options

OTHER = "Old-Forum-DB"
SOCIAL_ID = "google-oauth2|109876543210"


class Killed(BaseException):
    pass


def _on(world: World, fn: Any) -> Any:
    async def go() -> Any:
        client = world.client()
        try:
            return await fn(client)
        finally:
            await client.aclose()
    return asyncio.run(go())


def _identities(world: World, user_id: str) -> list[str]:
    """`provider|user_id` of each identity of a user, read through the API (its own first)."""
    async def read(client: Any) -> list[str]:
        user = await client.sdk.users.get(user_id, fields="identities", include_fields=True)
        return [f"{i.provider}|{i.user_id}" for i in user.identities]
    return _on(world, read)


def _setup(world: World, tmp_path) -> tuple[dict[str, str], dict[str, list[str]], Any]:
    """Source users, two of them primaries: one with a database secondary of another connection and a social
    one, one with a database secondary. Returns (source id by email, secondaries by primary email, hashes)."""
    world.seed(users=8)
    world.connection(TARGET)
    other_id = _on(world, lambda c: ensure_connection(c, OTHER))
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    first, second = sorted(before)[:2]

    async def make(client: Any) -> list[str]:
        made = []
        for n in range(2):
            user = await client.sdk.users.create(connection=OTHER, email=f"forum.{n}@example.com",
                                                 password=f"Forum-pass-{n}!")
            made.append(str(user.user_id))
        return made
    forum = _on(world, make)
    add_social_user(world.tenant.store, "google-oauth2", SOCIAL_ID, first, world.clock.now())
    _on(world, lambda c: link_accounts(c, before[first], forum[0], other_id))
    _on(world, lambda c: link_accounts(c, before[first], SOCIAL_ID))
    _on(world, lambda c: link_accounts(c, before[second], forum[1], other_id))
    secondaries = {first: [forum[0], SOCIAL_ID], second: [forum[1]]}
    assert _identities(world, before[first])[1:] == secondaries[first]  # linked in the source
    return before, secondaries, world.hash_file(str(tmp_path / "hashes.ndjson"))


def _all_moved(world: World, result: Any, before: dict[str, str], secondaries: dict[str, list[str]]) -> None:
    assert result.exit_code == 0, dump(result)
    assert result.identities == {"secondaries": 3, "relinked": 3, "verified": 3, "cannot_carry": 0}, dump(result)
    moved = {u["email"]: u["user_id"] for u in world.users(TARGET)}
    assert set(moved) == set(before)  # nobody twice, the secondaries not imported as users of their own
    for email, held in secondaries.items():
        assert _identities(world, moved[email])[1:] == held
    # The old primaries are deleted and the secondaries were not deleted with them.
    assert world.users(SOURCE) == []
    assert len(world.users(OTHER)) == 0  # both forum accounts are identities, not users
    for held in secondaries.values():
        for item in held:
            assert world.tenant.store.one("SELECT 1 FROM users WHERE user_id = ?", (item,)) is None


@pytest.mark.parametrize("strategy", ["regenerate", "prefix", "keep"])
def test_one_tenant_secondaries_move_to_the_new_primary_before_cutover(world: World, tmp_path, strategy) -> None:
    before, secondaries, hashes = _setup(world, tmp_path)
    opts = options(tmp_path, user_ids=strategy, id_prefix="m_" if strategy == "prefix" else None,
                   password_hashes=hashes, delete_source_users=True)
    calls_before = dict(world.tenant.stats)
    result = migrate(world, opts)
    _all_moved(world, result, before, secondaries)
    assert result.users["deleted_from_source"] == len(before)
    # The scope table declares the link calls really made (the token is checked for them before a run).
    called = {tuple(name.split(" ", 1)) for name, n in world.tenant.stats.items() if n > calls_before.get(name, 0)}
    declared = {(OPERATIONS[op].method, "/api/v2" + OPERATIONS[op].path) for side in ("source", "target")
                for op in needed_operations("run", side, cross_tenant=False, delete_source_users=True)}
    assert {("POST", "/api/v2/users/{id}/identities"),
            ("DELETE", "/api/v2/users/{id}/identities/{provider}/{user_id}")} <= called
    assert {c for c in called if c[1].startswith("/api/v2/")} <= declared


def test_keep_parks_each_secondary_before_cutover_and_links_it_after(world: World, tmp_path, monkeypatch) -> None:
    """Keep in one tenant: the new primary shares the old one's id until cutover, so each secondary is unlinked
    (a user of its own) before cutover, lets the old primary go, and is linked to the new one after."""
    before, secondaries, hashes = _setup(world, tmp_path)
    opts = options(tmp_path, user_ids="keep", password_hashes=hashes, delete_source_users=True)
    original = client_module.TenantClient.call

    async def call(self, op, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        if op.startswith("delete "):
            raise Killed(op)  # killed as cutover begins
        return await original(self, op, fn, *args, **kwargs)

    monkeypatch.setattr(client_module.TenantClient, "call", call)
    with pytest.raises(Killed, match="^delete "):
        migrate(world, opts)
    items = {i for held in secondaries.values() for i in held}
    for item in items:  # each a user of its own again: deleting the old primary cannot take it along
        assert world.tenant.store.one("SELECT 1 FROM users WHERE user_id = ?", (item,))
    with Ledger.open(opts.state, lock=False) as ledger:
        assert {m.item for m in ledger.identity_moves(("parked",))} == items
        assert ledger.unverified_holdings() == {}  # parked secondaries hold no primary back from cutover
    monkeypatch.setattr(client_module.TenantClient, "call", original)
    _all_moved(world, migrate(world, opts), before, secondaries)


@pytest.mark.parametrize("operation", ["unlink ", "link "])
def test_killed_between_unlink_and_link_loses_no_secondary(world: World, tmp_path, monkeypatch, operation) -> None:
    before, secondaries, hashes = _setup(world, tmp_path)
    opts = options(tmp_path, password_hashes=hashes, delete_source_users=True)
    original = client_module.TenantClient.call

    async def call(self, op, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        result = await original(self, op, fn, *args, **kwargs)
        if op.startswith(operation):
            raise Killed(op)
        return result

    monkeypatch.setattr(client_module.TenantClient, "call", call)
    with pytest.raises(Killed, match=f"^{operation}") as killed:
        migrate(world, opts)
    item = str(killed.value).split()[1]
    assert item in {i for held in secondaries.values() for i in held}
    if operation == "unlink ":  # killed after the unlink answered: the secondary is a user of its own, not lost
        assert world.tenant.store.one("SELECT 1 FROM users WHERE user_id = ?", (item,))
    else:  # killed after the link answered, before the ledger knew: linked to a new primary already
        assert world.tenant.store.one("SELECT 1 FROM users WHERE user_id = ?", (item,)) is None
    assert len(world.users(SOURCE)) == len(before)  # nothing deleted yet
    monkeypatch.setattr(client_module.TenantClient, "call", original)
    _all_moved(world, migrate(world, opts), before, secondaries)


def test_across_tenants_each_secondary_is_named_and_not_carried(world: World, other_world: World,
                                                                 tmp_path) -> None:
    before, secondaries, hashes = _setup(world, tmp_path)
    other_world.connection(TARGET)
    result = migrate(world, options(tmp_path, password_hashes=hashes), target=other_world)
    assert result.users["imported"] == len(before), dump(result)  # (the target has no roles: exit 4 for those)
    assert result.identities == {"secondaries": 3, "relinked": 0, "verified": 0, "cannot_carry": 3}, dump(result)
    # Still linked in the source, untouched.
    first = sorted(secondaries)[0]
    assert _identities(world, before[first])[1:] == secondaries[first]
    with Ledger.open(str(tmp_path / "state.sqlite"), lock=False) as ledger:
        details = [h.detail or "" for h in ledger.holdings("identity", ("cannot",))]
    assert len(details) == 3 and all("cannot move to another tenant" in d and "--allow-loss identities" in d
                                     for d in details)
    assert any(SOCIAL_ID in d and "google-oauth2" in d for d in details)


def test_a_source_user_linked_to_a_primary_elsewhere_is_reported_not_duplicated(world: World, tmp_path) -> None:
    world.seed(users=5)
    world.connection(TARGET)
    elsewhere = _on(world, lambda c: ensure_connection(c, "Main-DB"))
    assert elsewhere
    owner = _on(world, lambda c: c.sdk.users.create(connection="Main-DB", email="owner@example.com",
                                                    password="Owner-pass-1!"))
    source = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    linked_email = sorted(source)[0]
    conn = directory.connection_by_name(world.tenant.store, SOURCE)
    _on(world, lambda c: link_accounts(c, str(owner.user_id), source[linked_email], conn["id"]))
    # plan reads the same export: it names the user too, and counts it out of the users to import.
    async def planned(client: Any) -> Any:
        return await plan(options(tmp_path, state=None), source=client)
    forecast = _on(world, planned)
    assert forecast.users["selected"] == len(source) - 1
    assert [p["ref"] for p in forecast.problems["linked-elsewhere"]] == [str(owner.user_id)]
    result = migrate(world, options(tmp_path))
    # A user of the source that was not carried: exit 3, and the output names it.
    assert (result.exit_code, result.failures) == (3, []), dump(result)
    moved = {u["email"] for u in world.users(TARGET)}
    assert moved == set(source) - {linked_email}  # the primary elsewhere was not imported as one of ours
    assert "owner@example.com" not in moved
    [problem] = result.reports["problems"]["linked-elsewhere"]
    assert problem["ref"] == str(owner.user_id)
    assert source[linked_email] in problem["detail"] and "Main-DB" in problem["detail"]


def test_a_secondary_in_the_target_connection_is_not_taken_for_the_migrated_user(world: World, tmp_path) -> None:
    """The target connection's export also shows the OLD primary (it holds a target-connection secondary): the
    id map must not take it for the new copy, and the secondary still moves to the new primary."""
    world.seed(users=4)
    target_id = _on(world, lambda c: ensure_connection(c, TARGET))
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    email = sorted(before)[0]
    made = _on(world, lambda c: c.sdk.users.create(connection=TARGET, email="already.new@example.com",
                                                   password="New-pass-1!"))
    _on(world, lambda c: link_accounts(c, before[email], str(made.user_id), target_id))
    result = migrate(world, options(tmp_path, password_hashes=world.hash_file(str(tmp_path / "h.ndjson"))))
    assert result.exit_code == 0, dump(result)
    moved = {u["email"]: u["user_id"] for u in world.users(TARGET)}
    assert set(moved) == set(before)
    assert moved[email] != before[email]  # a new copy, not the old primary
    assert _identities(world, moved[email])[1:] == [str(made.user_id)]
    assert _identities(world, before[email]) == [before[email]]  # the old primary holds it no more
