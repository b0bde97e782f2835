"""Organizations on the local tenant: members paged past 1,000, member roles and their scope, enabled
connections, memberships dropped with the user, and all of it kept in a `--db` store across restarts."""

from __future__ import annotations

from auth0.management import Auth0

from auth0_migrate.tenant import TenantConfig, create_app
from auth0_migrate.tenant.organizations import add_members, create_organization

from .grants_support import make_users, sdk_error, weak_sdk


def test_members_page_past_1000_with_checkpoints_and_offset_paging_stops_there(mgmt: Auth0, tenant, http,
                                                                                auth_headers) -> None:  # noqa: ANN001
    org = mgmt.organizations.create(name="big")
    users = make_users(tenant, 1030)
    add_members(tenant.store, org.id, users)
    pager = mgmt.organizations.members.list(org.id, take=100, fields="user_id", include_fields=True)
    assert [m.user_id for m in pager] == users  # the SDK's pager follows `next` through 11 pages
    r = http.get(f"/api/v2/organizations/{org.id}/members", params={"page": 10, "per_page": 100},
                 headers=auth_headers)
    assert r.status_code == 400 and r.json()["errorCode"] == "invalid_paging"


def test_member_roles_need_their_own_scope_and_only_members_get_roles(mgmt: Auth0, tenant, http) -> None:  # noqa: ANN001
    org = mgmt.organizations.create(name="acme")
    role = mgmt.roles.create(name="admin")
    member, outsider = make_users(tenant, 2)
    mgmt.organizations.members.create(org.id, members=[member])
    err = sdk_error(mgmt.organizations.members.roles.assign, org.id, outsider, roles=[role.id])
    assert err.status_code == 400 and "not a member" in err.body["message"]
    mgmt.organizations.members.roles.assign(org.id, member, roles=[role.id])
    weak = weak_sdk(tenant, http, ("read:organization_members",))
    err = sdk_error(weak.organizations.members.list, org.id, take=10, fields="user_id,roles", include_fields=True)
    assert err.status_code == 403 and "read:organization_member_roles" in err.body["message"]
    assert [m.user_id for m in weak.organizations.members.list(org.id, take=10, fields="user_id")] == [member]
    err = sdk_error(mgmt.organizations.members.create, org.id, members=["auth0|nobody"])
    assert err.status_code == 400


def test_deleting_a_user_drops_its_memberships_and_roles(mgmt: Auth0, tenant) -> None:  # noqa: ANN001
    org = mgmt.organizations.create(name="acme")
    role = mgmt.roles.create(name="admin")
    gone, stays = make_users(tenant, 2)
    mgmt.organizations.members.create(org.id, members=[gone, stays])
    mgmt.organizations.members.roles.assign(org.id, gone, roles=[role.id])
    mgmt.users.delete(gone)
    assert [m.user_id for m in mgmt.organizations.members.list(org.id, take=10)] == [stays]
    assert tenant.store.query("SELECT * FROM organization_member_roles") == []


def test_organizations_survive_a_restart_of_a_db_backed_tenant(tmp_path) -> None:  # noqa: ANN001
    db = str(tmp_path / "tenant.sqlite")
    app = create_app(TenantConfig(db_path=db, client_id="c", client_secret="s"))
    store = app.state.tenant.store
    users = make_users(app.state.tenant, 2)
    org = create_organization(store, "acme", "Acme")
    add_members(store, org["id"], users)
    app.state.tenant.close()
    again = create_app(TenantConfig(db_path=db, client_id="c", client_secret="s")).state.tenant
    try:
        assert again.store.row("SELECT name FROM organizations")["name"] == "acme"
        assert [r["user_id"] for r in again.store.query("SELECT user_id FROM organization_members ORDER BY pk")] \
            == users
    finally:
        again.close()
