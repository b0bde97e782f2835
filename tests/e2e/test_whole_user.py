"""The whole user comes along (issue 8, "Done when"): one story, each user-id strategy, one tenant and two.

Source users belong to two organizations with organization roles; two are primaries with linked secondaries (a
database account of another connection, a social one); one has TOTP, phone and email factors, one push beside
TOTP, one a WebAuthn key; and someone signed up in the target connection with one user's email (a stranger),
that user holding a membership, a factor and a linked secondary of its own. `run --delete-source-users` with
`--mfa-secrets` and `--enable-org-connections`, then the TARGET tenant is read back and compared with what was
seeded: not one membership, organization role, secondary or importable factor is lost (each is in the target,
or its user's source copy is kept holding it), and each thing not carried is named in the output.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from rich.console import Console

from auth0_migrate.ledger import Ledger
from auth0_migrate.report import render_result
from auth0_migrate.seed import SeededOrganizations, link_accounts
from auth0_migrate.tenant import mfa
from auth0_migrate.tenant.identities import add_social_user, linked_ids

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options
from .test_linked_accounts import _identities
from .test_mfa import secrets_file
from .test_organizations import members, seed_orgs
from .test_stranger import _sign_up

FORUM = "Old-Forum-DB"
ORGS = ("acme", "globex")
TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PUSH_TOTP = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
VICTIM_TOTP = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"
FULL_SOCIAL, VICTIM_SOCIAL = "google-oauth2|100000000000000001", "google-oauth2|100000000000000002"


@dataclass
class Story:
    email: dict[str, str]
    """role -> email: full, push, key, linked, victim (the stranger's email), and the plain users."""
    source_id: dict[str, str]
    orgs: SeededOrganizations
    secondaries: dict[str, list[str]]
    """role -> the ids of its linked secondaries, in link order."""
    factors: dict[str, list[tuple[str, str | None]]]
    """role -> (factor type, value) as enrolled in the source."""
    stranger_id: str
    hashes: str
    secrets: str


def _store_user(world: World, connection: str, email: str) -> Any:
    return world.tenant.store.one("SELECT u.* FROM users u JOIN connections c ON c.id = u.connection_id "
                                  "WHERE c.name = ? AND u.email = ?", (connection, email))


def _factors(world: World, connection: str, email: str) -> list[tuple[str, str | None]]:
    """(type, value) of the factors the tenant holds for the user of `connection` with this email."""
    user = _store_user(world, connection, email)
    rows = world.tenant.store.query("SELECT type, value FROM mfa_factors WHERE user_pk = ? ORDER BY pk", (user["pk"],))
    return sorted((r["type"], r["value"]) for r in rows)


def _story(world: World, target: World, tmp_path: Any) -> Story:
    seeded = world.seed(users=8)
    forum_connection = world.connection(FORUM)
    rows = world.users(SOURCE)
    roles = ("full", "push", "key", "linked", "victim", "plain1", "plain2", "plain3")
    source_id = {role: row["user_id"] for role, row in zip(roles, rows, strict=True)}
    email = {role: row["email"] for role, row in zip(roles, rows, strict=True)}
    # Every user in both organizations (the source connection enabled there), about half with organization roles.
    orgs = seed_orgs(world, list(source_id.values()), names=ORGS, connection_ids=(seeded.connection_id,),
                     member_share=1.0, role_share=0.6)
    assert sum(len(r) for r in orgs.roles.values()) >= 4 and any((o, source_id["victim"]) in orgs.roles for o in ORGS)
    if target is not world:  # across tenants: the same organizations by name, the target connection not enabled
        seed_orgs(target, [], names=ORGS)
    # Linked accounts.
    store, now = world.tenant.store, world.clock.now()
    forum = []
    for n in range(2):
        forum.append(_create(world, FORUM, f"forum.{n}@example.com"))
    add_social_user(store, "google-oauth2", FULL_SOCIAL, email["full"], now)
    add_social_user(store, "google-oauth2", VICTIM_SOCIAL, email["victim"], now)
    _link(world, source_id["full"], forum[0], forum_connection)
    _link(world, source_id["full"], FULL_SOCIAL)
    _link(world, source_id["linked"], forum[1], forum_connection)
    _link(world, source_id["victim"], VICTIM_SOCIAL)
    secondaries = {"full": [forum[0], FULL_SOCIAL], "linked": [forum[1]], "victim": [VICTIM_SOCIAL]}
    # MFA.
    factors: dict[str, list[tuple[str, str | None]]] = {
        "full": [("totp", TOTP), ("phone", "+44207183875044"), ("email", "second@example.com")],
        "push": [("push", None), ("totp", PUSH_TOTP)], "key": [("webauthn-roaming", None)],
        "victim": [("totp", VICTIM_TOTP)]}
    for role, held in factors.items():
        for kind, value in held:
            mfa.enroll(store, source_id[role], kind, value, now, connection=SOURCE)
    for role, held in factors.items():
        assert _factors(world, SOURCE, email[role]) == sorted(held)
    # The stranger: signed up in the target connection with the victim's email (before the run, as during one).
    target.connection(TARGET)
    stranger_id = _sign_up(target, email["victim"])
    return Story(email, source_id, orgs, secondaries, factors, stranger_id,
                 world.hash_file(str(tmp_path / "hashes.ndjson")), secrets_file(world, str(tmp_path / "mfa.ndjson")))


def _create(world: World, connection: str, email: str) -> str:
    import asyncio

    async def go() -> str:
        client = world.client()
        try:
            user = await client.sdk.users.create(connection=connection, email=email, password="Forum-pass-1!")
            return str(user.user_id)
        finally:
            await client.aclose()
    return asyncio.run(go())


def _link(world: World, primary: str, secondary: str, connection_id: str | None = None) -> None:
    import asyncio

    async def go() -> None:
        client = world.client()
        try:
            await link_accounts(client, primary, secondary, connection_id)
        finally:
            await client.aclose()
    asyncio.run(go())


def _target_ids(target: World, story: Story) -> dict[str, str]:
    """role -> the migrated user's id in the target (the victim has none: the one there is the stranger)."""
    by_email = {u["email"]: u["user_id"] for u in target.users(TARGET)}
    assert len(by_email) == len(target.users(TARGET))  # nobody twice
    assert by_email[story.email["victim"]] == story.stranger_id
    return {role: by_email[mail] for role, mail in story.email.items() if role != "victim"}


def _check_nothing_lost(world: World, target: World, story: Story, kept: set[str], strategy: str) -> None:
    """Each membership, organization role, secondary and importable factor of a migrated user is in the target;
    a user kept in the source still holds all of it there; the stranger was given nothing."""
    moved = _target_ids(target, story)
    if strategy == "keep":
        assert moved == {r: i for r, i in story.source_id.items() if r != "victim"}
    elif strategy == "prefix":
        assert moved == {r: "auth0|w-" + i.split("|", 1)[1] for r, i in story.source_id.items() if r != "victim"}
    # Organizations and organization roles, read through the API.
    for org in ORGS:
        want = {moved[role]: set(story.orgs.roles.get((org, story.source_id[role]), [])) for role in moved}
        got = members(target, org)
        assert {u: r for u, r in got.items() if u in want} == want, org
        assert story.stranger_id not in got  # nothing given to the stranger
        if target is not world or strategy != "keep":
            source_members = members(world, org)
            for role in kept:  # a kept source copy keeps its memberships
                assert source_members[story.source_id[role]] == set(
                    story.orgs.roles.get((org, story.source_id[role]), [])), (org, role)
    # Linked secondaries: with the new primary in one tenant; across tenants with the old (kept) one.
    for role, held in story.secondaries.items():
        if role in kept:
            assert linked_ids(_store_user(world, SOURCE, story.email[role])) == held, role
        else:
            assert _identities(target, moved[role])[1:] == held, role
    assert _identities(target, story.stranger_id) == [story.stranger_id]
    # Importable factors (type and value) in the target; what the target cannot take stays in a kept source copy.
    for role, held in story.factors.items():
        importable = sorted(f for f in held if f[0] in mfa.IMPORTABLE)
        if role != "victim":
            assert _factors(target, TARGET, story.email[role]) == importable, role
        if role in kept:
            assert _factors(world, SOURCE, story.email[role]) == sorted(held), role
    assert _factors(target, TARGET, story.email["victim"]) == []
    assert grants_of(target, story.stranger_id) == (set(), set())
    # Exactly the kept users are left in the source.
    assert sorted(u["email"] for u in world.users(SOURCE)) == sorted(story.email[r] for r in kept)


def _check_named(result: Any, story: Story, kept: set[str], cannot_link: tuple[str, ...],
                 unverified: set[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """Every user kept back and every thing not carried is named: failures (with reasons), holdings_not_carried,
    mfa_not_carried, in --json and in the human summary. Returns the --json document."""
    doc = json.loads(json.dumps(result.as_dict(), default=str))
    failures = {f["user_id"]: f for f in doc["failures"]}
    assert set(failures) == {story.source_id[r] for r in kept}, dump(result)
    victim = failures[story.source_id["victim"]]
    assert victim["code"] == "STRANGER_IN_TARGET" and story.stranger_id in victim["message"]
    for role in kept - {"victim"}:
        failure = failures[story.source_id[role]]
        assert (failure["code"], failure["email"]) == ("KEPT_IN_SOURCE", story.email[role])
    for role, factor in (("push", "push"), ("key", "webauthn-roaming")):
        if role in kept:
            message = failures[story.source_id[role]]["message"]
            assert f"mfa-factor {factor} (cannot be carried" in message and "--allow-loss mfa" in message
    for role in kept & {"full", "linked"}:
        assert "--allow-loss identities" in failures[story.source_id[role]]["message"]
        for item in story.secondaries[role]:
            assert item in failures[story.source_id[role]]["message"]
    not_carried = {(h["user_id"], h["kind"], h["item"]) for h in doc["reports"]["holdings_not_carried"]}
    assert not_carried == {(story.source_id["push"], "mfa-factor", "push"),
                           (story.source_id["key"], "mfa-factor", "webauthn-roaming"),
                           *((story.source_id[r], "identity", i) for r in cannot_link
                             for i in story.secondaries[r])}, dump(result)
    assert {(m["user_id"], m["factor"]) for m in doc["reports"]["mfa_not_carried"]} == {
        (story.source_id["push"], "push"), (story.source_id["key"], "webauthn-roaming"),
        *((story.source_id[r], f) for r, f in unverified)}, json.dumps(doc["reports"]["mfa_not_carried"])
    out = io.StringIO()
    render_result(result, Console(file=out, width=300))
    text = out.getvalue()
    for user_id in failures:
        assert user_id in text
    for user_id, _, item in not_carried:
        assert f"{user_id}: " in text and item in text
    return doc


def _check_no_secret_kept(tmp_path: Any, doc: dict[str, Any]) -> None:
    """No MFA secret stays in the ledger or reaches the output, the stranger's victim's (never imported) included."""
    state = str(tmp_path / "state.sqlite")
    with Ledger.open_readonly(state) as ledger:
        assert ledger.users_with_mfa_secrets() == 0
    with open(state, "rb") as raw:
        body = raw.read()
    text = json.dumps(doc)
    for secret in (TOTP, PUSH_TOTP, VICTIM_TOTP, "+44207183875044"):
        assert secret.encode() not in body and secret not in text, secret


def _options(tmp_path: Any, story: Story, strategy: str, **extra: Any) -> Any:
    return options(tmp_path, user_ids=strategy, id_prefix="w-" if strategy == "prefix" else None,
                   password_hashes=story.hashes, mfa_secrets=story.secrets, delete_source_users=True,
                   enable_org_connections=True, **extra)


def _memberships(story: Story, roles: set[str]) -> tuple[int, int]:
    ids = {story.source_id[r] for r in roles}
    return (sum(len(set(m) & ids) for m in story.orgs.members.values()),
            sum(len(r) for (_, u), r in story.orgs.roles.items() if u in ids))


@pytest.mark.parametrize("strategy", ["regenerate", "prefix", "keep"])
def test_one_tenant_the_whole_user_comes_along(world: World, tmp_path, strategy: str) -> None:
    story = _story(world, world, tmp_path)
    result = migrate(world, _options(tmp_path, story, strategy))
    assert result.exit_code == 3, dump(result)  # users kept back: not a clean run
    kept = {"push", "key", "victim"}
    _check_nothing_lost(world, world, story, kept, strategy)
    # Under keep in one tenant the kept push user's TOTP is imported, but its shared id reads the source copy, so it
    # is named as imported and not verified (the store read above shows the target copy holds it).
    doc = _check_named(result, story, kept, (), {("push", "totp")} if strategy == "keep" else set())
    memberships, org_roles = _memberships(story, set(story.source_id) - {"victim"})
    assert doc["organizations"]["memberships_restored"] == memberships == 2 * 7
    assert doc["organizations"]["roles_restored"] == org_roles > 0
    assert doc["identities"]["relinked"] == 3  # full's two and linked's one; never the victim's to the stranger
    assert doc["mfa"]["factors_imported"] == 4  # full's three, push's TOTP
    assert doc["users"]["kept_in_source"] == 2  # push and key; the victim is a failure of its own (stranger)
    assert doc["users"]["deleted_from_source"] == 5
    _check_no_secret_kept(tmp_path, doc)

    # The same command again changes nothing and says the same.
    again = migrate(world, _options(tmp_path, story, strategy))
    assert again.exit_code == 3, dump(again)
    _check_nothing_lost(world, world, story, kept, strategy)
    _check_named(again, story, kept, (), {("push", "totp")} if strategy == "keep" else set())

    # The owner accepts losing push and WebAuthn (by kind): those two go; all they held that the target can take is
    # there (under keep, their memberships and TOTP too, though the deleted source copies shared their ids).
    last = migrate(world, _options(tmp_path, story, strategy, allow_loss=("mfa",)))
    assert last.exit_code == 3, dump(last)  # the stranger's victim is still kept back
    kept = {"victim"}
    _check_nothing_lost(world, world, story, kept, strategy)
    doc = _check_named(last, story, kept, ())
    assert doc["users"]["kept_in_source"] == 0 and doc["users"]["deleted_from_source"] == 7
    assert doc["mfa"]["factors_verified"] == 4


@pytest.mark.parametrize("strategy", ["regenerate", "prefix", "keep"])
def test_across_tenants_the_whole_user_comes_along_and_secondaries_are_named(world: World, other_world: World,
                                                                              tmp_path, strategy: str) -> None:
    story = _story(world, other_world, tmp_path)
    opts = _options(tmp_path, story, strategy)
    result = migrate(world, opts, target=other_world)
    assert result.exit_code == 3, dump(result)
    kept = {"push", "key", "victim", "full", "linked"}  # secondaries cannot cross tenants: their primaries stay
    _check_nothing_lost(world, other_world, story, kept, strategy)
    # Every secondary is named as not carried, the victim's too (its user is not carried at all: the stranger).
    doc = _check_named(result, story, kept, ("full", "linked", "victim"))
    memberships, org_roles = _memberships(story, set(story.source_id) - {"victim"})
    assert doc["organizations"]["memberships_restored"] == memberships
    assert doc["organizations"]["roles_restored"] == org_roles
    assert doc["identities"]["relinked"] == 0 and doc["identities"]["cannot_carry"] == 4
    assert doc["mfa"]["factors_imported"] == 4
    assert doc["users"]["kept_in_source"] == 4
    assert doc["users"]["deleted_from_source"] == 3
    _check_no_secret_kept(tmp_path, doc)

    # The owner accepts losing the secondaries (by kind): their primaries go; what went with them stays named.
    again = migrate(world, _options(tmp_path, story, strategy, allow_loss=("identities",)), target=other_world)
    assert again.exit_code == 3, dump(again)
    kept = {"push", "key", "victim"}
    assert sorted(u["email"] for u in world.users(SOURCE)) == sorted(story.email[r] for r in kept)
    doc = _check_named(again, story, kept, ("full", "linked", "victim"))
    assert doc["users"]["kept_in_source"] == 2 and doc["users"]["deleted_from_source"] == 5
    moved = _target_ids(other_world, story)
    assert _factors(other_world, TARGET, story.email["full"]) == sorted(story.factors["full"])
    for org in ORGS:
        got = members(other_world, org)
        for role in ("full", "linked"):
            assert got[moved[role]] == set(story.orgs.roles.get((org, story.source_id[role]), []))



PUSH_SOCIAL = "google-oauth2|100000000000000003"


def _linked_in(world: World, connection: str, email: str) -> list[str] | None:
    user = _store_user(world, connection, email)
    return None if user is None else linked_ids(user)


def test_keep_in_one_tenant_a_primary_kept_in_the_source_keeps_its_secondary(world: World, tmp_path) -> None:
    """Under keep in one tenant a secondary is unlinked (parked) before cutover; when cutover then keeps its primary
    in the source (here for a push factor), the secondary must not be left a user of its own, linked to nobody:
    it is linked back to the kept primary, and moves to the new one the run that lets the primary go."""
    story = _story(world, world, tmp_path)
    add_social_user(world.tenant.store, "google-oauth2", PUSH_SOCIAL, story.email["push"], world.clock.now())
    forum = _create(world, FORUM, "forum.push@example.com")
    forum_connection = world.connection(FORUM)
    _link(world, story.source_id["push"], PUSH_SOCIAL)
    _link(world, story.source_id["push"], forum, forum_connection)
    held = sorted([PUSH_SOCIAL, forum])  # (in the order the tool links them back: the ledger's)
    unlinks = "DELETE /api/v2/users/{id}/identities/{provider}/{user_id}"
    result = migrate(world, _options(tmp_path, story, "keep"))
    assert result.users["kept_in_source"] == 2, dump(result)
    assert world.tenant.stats[unlinks] == 3 + 2  # full's two and linked's one, and push's two were parked
    assert sorted(_linked_in(world, SOURCE, story.email["push"]) or []) == held
    assert _linked_in(world, TARGET, story.email["push"]) == []
    for item in held:  # neither left a user of its own
        assert world.tenant.store.one("SELECT 1 FROM users WHERE user_id = ?", (item,)) is None
    _check_nothing_lost(world, world, story, {"push", "key", "victim"}, "keep")
    # The same command again: still linked to the kept primary.
    migrate(world, _options(tmp_path, story, "keep"))
    assert sorted(_linked_in(world, SOURCE, story.email["push"]) or []) == held
    # The owner lets the push factor go: the primary is deleted and its secondaries are with the new copy.
    last = migrate(world, _options(tmp_path, story, "keep", allow_loss=("mfa",)))
    assert last.users["kept_in_source"] == 0, dump(last)
    assert _linked_in(world, SOURCE, story.email["push"]) is None
    assert sorted(_linked_in(world, TARGET, story.email["push"]) or []) == held
    assert last.identities["verified"] == 5



def test_keep_a_run_killed_after_linking_back_resumes(world: World, tmp_path, monkeypatch) -> None:
    """Killed after the link back answered, before the ledger knew: the next run finds the secondary no longer a
    user of its own, records it, and the primary kept in the source still holds it (once)."""
    from auth0_migrate.auth0 import client as client_module

    from .test_linked_accounts import Killed

    story = _story(world, world, tmp_path)
    add_social_user(world.tenant.store, "google-oauth2", PUSH_SOCIAL, story.email["push"], world.clock.now())
    _link(world, story.source_id["push"], PUSH_SOCIAL)
    original = client_module.TenantClient.call

    async def call(self, op, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        result = await original(self, op, fn, *args, **kwargs)
        if op.startswith("link ") and " back to " in op:
            raise Killed(op)
        return result

    monkeypatch.setattr(client_module.TenantClient, "call", call)
    with pytest.raises(Killed, match=f"^link {PUSH_SOCIAL} back to {story.source_id['push']}$"):
        migrate(world, _options(tmp_path, story, "keep"))
    assert _linked_in(world, SOURCE, story.email["push"]) == [PUSH_SOCIAL]
    monkeypatch.setattr(client_module.TenantClient, "call", original)
    result = migrate(world, _options(tmp_path, story, "keep"))
    assert result.users["kept_in_source"] == 2, dump(result)
    assert _linked_in(world, SOURCE, story.email["push"]) == [PUSH_SOCIAL]
    _check_nothing_lost(world, world, story, {"push", "key", "victim"}, "keep")
