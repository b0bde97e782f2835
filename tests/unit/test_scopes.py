"""The tool's one table of needed scopes (`auth0/scopes.py`), checked against Auth0's OpenAPI spec."""

from __future__ import annotations

import pytest

from auth0_migrate.auth0.scopes import OPERATIONS, describe, missing_scopes, needed_operations


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_operation_accepts_exactly_the_scopes_the_spec_lists(oas_spec, name: str) -> None:  # noqa: ANN001
    op = OPERATIONS[name]
    spec = oas_spec.document["paths"][op.path][op.method.lower()]
    listed = {s for entry in spec["security"] for s in entry.get("oAuth2ClientCredentials", [])}
    assert op.scopes == listed, f"{op.method} {op.path}: table {sorted(op.scopes)}, spec {sorted(listed)}"


def test_all_of_alternatives_follow_the_spec_403_text(oas_spec) -> None:  # noqa: ANN001
    """Where the spec's 403 says 'expected all of', the table asks for those scopes together."""
    for op in OPERATIONS.values():
        text = oas_spec.document["paths"][op.path][op.method.lower()]["responses"]["403"]["description"]
        if "all of:" in text:
            together = frozenset(s.strip(" .") for s in text.split("all of:")[1].split(","))
            assert together in op.alternatives, f"{op.method} {op.path}: {text}"


def test_finer_grained_scopes_satisfy_and_the_closest_alternative_is_named() -> None:
    ops = ["assign role members", "list role members"]
    assert missing_scopes(ops, {"create:role_members", "read:role_members"}) == []
    assert missing_scopes(ops, {"update:roles", "read:users", "read:roles"}) == []
    assert missing_scopes(ops, {"read:users"}) == [("assign role members", ("update:roles",)),
                                                   ("list role members", ("read:roles",))]
    assert describe("assign role members") == "update:roles or create:role_members"


def test_what_each_side_needs_depends_on_the_options() -> None:
    assert "list APIs" not in needed_operations("plan", "source", cross_tenant=False)
    assert "list APIs" in needed_operations("plan", "source", cross_tenant=True)
    assert "delete a connection's user by email" not in needed_operations("run", "source", cross_tenant=False)
    assert "delete a connection's user by email" in needed_operations("run", "source", cross_tenant=False,
                                                                     delete_source_users=True)
    assert "start an import job" not in needed_operations("plan", "target", cross_tenant=True)


def test_the_members_list_with_roles_needs_the_member_roles_scope_too() -> None:
    """`fields=user_id,roles` on GET /organizations/{id}/members needs read:organization_member_roles beside the
    scope the OAS lists for the endpoint; `--enable-org-connections` adds the one write it makes."""
    assert missing_scopes(["list organization members"], {"read:organization_members"}) == [
        ("list organization members", ("read:organization_member_roles",))]
    assert missing_scopes(["list organization members"],
                          {"read:organization_members", "read:organization_member_roles"}) == []
    assert describe("list organization members") == "read:organization_member_roles + read:organization_members"
    flagged = needed_operations("run", "target", cross_tenant=True, enable_org_connections=True)
    assert "enable a connection for an organization" in flagged
    assert "enable a connection for an organization" not in needed_operations("run", "target", cross_tenant=True)
