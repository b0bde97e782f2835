"""Stage 3: each source user's DIRECT permissions and role memberships.

Roles are read set-wise: every role, then its members through checkpoint paging (`from`/`take`,
`auth0.paging.checkpoint_items`), which is not capped at 1,000. Permissions have no bulk endpoint:
one read per user (more only for a user with over 100), keeping only permissions with a DIRECT source, because
`GET /users/{id}/permissions` also lists what roles grant, and roles are restored as roles.
"""

from __future__ import annotations

from typing import Any

from ..auth0.client import TenantClient
from ..auth0.paging import checkpoint_items, offset_items
from ..pool import run_pool, together
from .context import Migration

PAGE = 100
ROLE_PAGE = 100  # `take` is 1-100 in the OAS; a server that sends fewer per page is still followed by `next`


async def list_roles(client: TenantClient) -> list[dict[str, Any]]:
    return [r.model_dump() async for r in offset_items(client, "list roles", client.sdk.roles.list, per_page=PAGE)]


async def role_member_ids(client: TenantClient, role_id: str) -> list[str]:
    """Every direct member of a role, through checkpoint paging (`include_totals=true`: `{users, next}`)."""
    return [str(u.user_id) async for u in checkpoint_items(client, f"list members of role {role_id}",
                                                           client.sdk.roles.users.list, role_id, take=ROLE_PAGE)
            if u.user_id]


async def direct_permissions(client: TenantClient, user_id: str) -> list[tuple[str, str]]:
    """(API identifier, permission name) of the user's DIRECT permissions."""
    found: list[tuple[str, str]] = []
    async for item in offset_items(client, f"read permissions of {user_id}", client.sdk.users.permissions.list,
                                   user_id, per_page=PAGE):
        data = item.model_dump()
        sources = data.get("sources") or [{"source_type": "DIRECT"}]
        if any(s.get("source_type") == "DIRECT" for s in sources if isinstance(s, dict)):
            found.append((str(data["resource_server_identifier"]), str(data["permission_name"])))
    return found


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
