"""Linked accounts on the local tenant, driven with the official SDK: link, unlink, the primary's views,
the delete that takes the secondaries along, the export that shows a primary of another connection, and
persistence in the store (`--db`). Shapes as go-auth0's recordings TestUserManager_Link / _Unlink."""

from __future__ import annotations

import gzip
import json

import pytest
from auth0.management.errors import BadRequestError

from auth0_migrate.tenant import TenantConfig, create_app, identities

DB = "Username-Password-Authentication"
OTHER = "Legacy-DB"


@pytest.fixture
def two(mgmt):  # noqa: ANN001, ANN201
    main = mgmt.connections.create(name=DB, strategy="auth0")
    other = mgmt.connections.create(name=OTHER, strategy="auth0")
    primary = mgmt.users.create(connection=DB, email="ann@example.com", password="Ann-pass-1!", given_name="Ann")
    secondary = mgmt.users.create(connection=OTHER, email="ann.old@example.com", password="Old-pass-1!",
                                  nickname="annie", user_metadata={"keep": "me"})
    return main, other, primary, secondary


def test_link_makes_the_secondary_an_identity_of_the_primary(mgmt, two) -> None:  # noqa: ANN001
    _, other, primary, secondary = two
    answer = mgmt.users.identities.link(primary.user_id, provider="auth0", user_id=secondary.user_id,
                                        connection_id=other.id)
    assert [(i.connection, i.user_id, i.provider) for i in answer] == [
        (DB, primary.user_id.removeprefix("auth0|"), "auth0"), (OTHER, secondary.user_id.removeprefix("auth0|"),
                                                                "auth0")]
    # As recorded: in the link's answer every identity carries profileData, the primary's too.
    assert answer[0].profile_data.email == "ann@example.com"
    assert answer[1].profile_data.email == "ann.old@example.com" and answer[1].profile_data.nickname == "annie"
    # The secondary is no user any more: not by id, not by email, not in search.
    with pytest.raises(Exception, match="404|does not exist"):
        mgmt.users.get(secondary.user_id)
    assert mgmt.users.list_users_by_email(email="ann.old@example.com") == []
    assert [u.user_id for u in mgmt.users.list(q='email:"ann.old@example.com"', search_engine="v3")] == []
    assert [u.user_id for u in mgmt.users.list(search_engine="v1")] == [primary.user_id]
    shown = mgmt.users.get(primary.user_id)
    assert [i.connection for i in shown.identities] == [DB, OTHER]
    assert shown.identities[0].profile_data is None and shown.identities[1].profile_data.email == "ann.old@example.com"
    assert shown.email == "ann@example.com"  # the root profile stays the primary's


def test_unlink_makes_the_secondary_a_user_again_with_its_profile_and_password(mgmt, two, http) -> None:  # noqa: ANN001
    _, other, primary, secondary = two
    mgmt.users.identities.link(primary.user_id, provider="auth0", user_id=secondary.user_id, connection_id=other.id)
    answer = mgmt.users.identities.delete(primary.user_id, "auth0", secondary.user_id.removeprefix("auth0|"))
    assert [i.connection for i in answer] == [DB]
    back = mgmt.users.get(secondary.user_id)
    # Its metadata was discarded when it was linked, as Auth0 documents; its profile and password stay.
    assert back.email == "ann.old@example.com" and back.nickname == "annie" and back.user_metadata == {}
    assert [i.connection for i in back.identities] == [OTHER]
    assert [i.connection for i in mgmt.users.get(primary.user_id).identities] == [DB]
    r = http.post("/oauth/token", data={"grant_type": "http://auth0.com/oauth/grant-type/password-realm",
                                         "username": "ann.old@example.com", "password": "Old-pass-1!",
                                         "realm": OTHER, "client_id": "test-client",
                                         "client_secret": "test-client-secret"})
    assert r.status_code == 200, r.text
    # Unlinking again changes nothing (choice: answered as done).
    again = mgmt.users.identities.delete(primary.user_id, "auth0", secondary.user_id.removeprefix("auth0|"))
    assert [i.connection for i in again] == [DB]


def test_deleting_the_primary_deletes_its_secondaries(mgmt, two) -> None:  # noqa: ANN001
    _, other, primary, secondary = two
    mgmt.users.identities.link(primary.user_id, provider="auth0", user_id=secondary.user_id, connection_id=other.id)
    mgmt.users.delete(primary.user_id)
    with pytest.raises(Exception, match="404|does not exist"):
        mgmt.users.get(primary.user_id)
    with pytest.raises(Exception, match="404|does not exist"):
        mgmt.users.get(secondary.user_id)


def test_link_refusals(mgmt, two) -> None:  # noqa: ANN001
    _, other, primary, secondary = two
    with pytest.raises(BadRequestError, match="same"):
        mgmt.users.identities.link(primary.user_id, provider="auth0", user_id=primary.user_id)
    with pytest.raises(BadRequestError, match="not found"):
        mgmt.users.identities.link(primary.user_id, provider="auth0", user_id="auth0|nobody")
    with pytest.raises(BadRequestError, match="Main identity"):
        mgmt.users.identities.delete(primary.user_id, "auth0", primary.user_id.removeprefix("auth0|"))


def test_export_of_a_connection_shows_the_primary_holding_its_secondary(mgmt, http, two) -> None:  # noqa: ANN001
    main, other, primary, secondary = two
    mgmt.users.identities.link(primary.user_id, provider="auth0", user_id=secondary.user_id, connection_id=other.id)
    job = mgmt.jobs.users_exports.create(connection_id=other.id, format="json",
                                         fields=[{"name": "user_id"}, {"name": "identities"}])
    lines = gzip.decompress(http.get(mgmt.jobs.get(job.id).location).content).decode().splitlines()
    [record] = [json.loads(line) for line in lines]
    assert record["user_id"] == primary.user_id
    assert [i["connection"] for i in record["identities"]] == [DB, OTHER]


def test_social_secondary_and_links_survive_a_restart(tmp_path, clock) -> None:  # noqa: ANN001
    path = str(tmp_path / "tenant.sqlite")
    app = create_app(TenantConfig(db_path=path, clock=clock))
    store = app.state.tenant.store
    from auth0_migrate.tenant import directory
    conn = directory.create_connection(store, DB, now=clock.now())
    with store.tx() as db:
        primary = directory.insert_user(db, conn, {"email": "bo@example.com"}, None, clock.now())
    social = identities.add_social_user(store, "google-oauth2", "google-oauth2|1234567890", "bo@gmail.com",
                                        clock.now())
    identities.link(store, primary, social, clock.now())
    app.state.tenant.close()
    again = create_app(TenantConfig(db_path=path, clock=clock))
    try:
        row = directory.get_user(again.state.tenant.store, primary["user_id"])
        shown = directory.user_json(row, DB)["identities"]
        assert [(i["provider"], i["user_id"], i["isSocial"]) for i in shown] == [
            ("auth0", primary["user_id"].removeprefix("auth0|"), False), ("google-oauth2", "1234567890", True)]
        assert shown[1]["profileData"]["email"] == "bo@gmail.com"
    finally:
        again.state.tenant.close()
