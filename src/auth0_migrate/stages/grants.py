"""Stage 3: each source user's DIRECT permissions and role memberships.

Roles are read set-wise: every role, then its members through checkpoint paging (`from`/`take`),
which is not capped at 1,000. Every page is asked with `include_totals=true`, as every recorded call
of real Auth0 does (go-auth0 TestRoleManager_UsersCheckpointPagination): the answer is then
`{users, next}`. With `false` the OAS promises a bare array, which carries no `next` and which the
SDK's page model cannot read. Permissions have no bulk endpoint: one read per user (more only for
a user with over 100), keeping only permissions with a DIRECT source, because
`GET /users/{id}/permissions` also lists what roles grant, and roles are restored as roles.
"""

from __future__ import annotations

from typing import Any

from ..auth0.client import TenantClient
from ..pool import run_pool, together
from .context import Migration

PAGE = 100
ROLE_PAGE = 100  # `take` is 1-100 in the OAS; a server that sends fewer per page is still followed by `next`


async def list_roles(client: TenantClient) -> list[dict[str, Any]]:
    roles: list[dict[str, Any]] = []
    page = 0
    while True:
        pager = await client.call("list roles", client.sdk.roles.list, page=page, per_page=PAGE, include_totals=True)
        items = [r.model_dump() for r in (pager.items or [])]
        roles.extend(items)
        total = getattr(pager.response, "total", None)
        if not items or total is None or len(roles) >= total:
            return roles
        page += 1


async def role_member_ids(client: TenantClient, role_id: str) -> list[str]:
    """Every direct member of a role, through checkpoint paging (`include_totals=true`: `{users, next}`)."""
    members: list[str] = []
    checkpoint: str | None = None
    while True:
        kwargs: dict[str, Any] = {"take": ROLE_PAGE, "include_totals": True}
        if checkpoint:
            kwargs["from_"] = checkpoint
        pager = await client.call(f"list members of role {role_id}", client.sdk.roles.users.list, role_id, **kwargs)
        members.extend(str(u.user_id) for u in (pager.items or []) if u.user_id)
        checkpoint = getattr(pager.response, "next", None)
        if not checkpoint or not pager.items:
            return members


async def direct_permissions(client: TenantClient, user_id: str) -> list[tuple[str, str]]:
    """(API identifier, permission name) of the user's DIRECT permissions."""
    found: list[tuple[str, str]] = []
    page = 0
    seen = 0
    while True:
        pager = await client.call(f"read permissions of {user_id}", client.sdk.users.permissions.list, user_id,
                                  page=page, per_page=PAGE, include_totals=True)
        items = pager.items or []
        seen += len(items)
        for item in items:
            data = item.model_dump()
            sources = data.get("sources") or [{"source_type": "DIRECT"}]
            if any(s.get("source_type") == "DIRECT" for s in sources if isinstance(s, dict)):
                found.append((str(data["resource_server_identifier"]), str(data["permission_name"])))
        total = getattr(pager.response, "total", None)
        if not items or total is None or seen >= total:
            return found
        page += 1


async def read_grants(migration: Migration) -> None:
    ledger = migration.ledger
    if ledger.phase_done("grants"):
        return
    if migration.options.from_file:
        # File users come from another system: they are not users of the source tenant and hold no grants there.
        ledger.mark_phase("grants")
        return
    migration.reporter.phase("read roles and permissions")

    async def read_roles() -> None:
        if ledger.phase_done("roles"):
            return
        roles = await list_roles(migration.source)
        by_source_id = ledger.ordinals_by_source_id()
        for role in roles:
            if ledger.role_members_read(role["id"]):
                continue
            members = await role_member_ids(migration.source, role["id"])
            ledger.add_role(role["id"], role["name"], [by_source_id[m] for m in members if m in by_source_id])
        ledger.mark_phase("roles")

    todo = ledger.users_to_read_permissions()
    migration.reporter.phase("read direct permissions", total=len(todo))
    pending: list[tuple[int, list[tuple[str, str]]]] = []

    def flush() -> None:
        ledger.add_permissions(pending)
        migration.reporter.advance(len(pending))
        pending.clear()

    def done(item: tuple[int, str], perms: list[tuple[str, str]]) -> None:
        pending.append((item[0], perms))
        if len(pending) >= 200:
            flush()

    async def read_permissions() -> None:
        try:
            await run_pool(todo, lambda item: direct_permissions(migration.source, item[1]), on_result=done)
        finally:
            flush()

    # Role-member pages follow one another (checkpoint paging): run them beside the permission reads, so the
    # governor fills the rate limit with both instead of waiting out each page's latency.
    await together(read_roles(), read_permissions())
    ledger.mark_phase("grants")
