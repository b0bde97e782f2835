"""The Management API scopes a command needs, per tenant: ONE table, checked before anything is written.

`OPERATIONS` names every Management API operation the tool calls, with the scopes Auth0 accepts for
it. Each entry lists its alternatives: any one set of scopes suffices. They come from Auth0's OpenAPI
spec (each operation's `security` scopes; `tests/unit/test_scopes.py` checks that every entry
holds exactly the scopes the spec lists) and from the 403 text the spec quotes where a set must be
held together: `GET /roles/{id}/users` takes `read:role_members`, or `read:users` AND `read:roles`.
Finer-grained scopes are accepted wherever Auth0 takes them, e.g. `create:role_members` instead of
`update:roles` to add role members.

`USES` says which operations each command calls on the source and on the target tenant; an entry
marked `CROSS` is called only across tenants, `CUTOVER` only with `--delete-source-users` (for `rollback`:
only when source copies come back), `WHOLE` only with `--delete-source-connection`, `REFRESH`
only by a refresh (`stages/grants_delta.refresh_grants`: removals, and the changed users' roles read
back), `PROPAGATE` only with `--refresh --propagate-deletes`, `CREATE_ROLES` only with `--create-missing-roles`
across tenants, `ORG_CONNECTIONS` only with `--enable-org-connections`, `SAME` only in one tenant (linked
accounts move only there, and only when a migrated user has some), `MFA` only with `--mfa-secrets` (the
target's factors are read back only when some were imported). The source's factors of users the export shows
enrolled in MFA are read by every `run` and `plan` (`stages/mfa.py`), and only those users'. In one tenant the
two lists are checked together against the one token.

Example::

    missing = missing_scopes(needed_operations("run", "target", cross_tenant=True), granted)
    # [("start an import job", ("create:users",)), ...]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Command = Literal["run", "plan", "verify", "rollback"]
Side = Literal["source", "target"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    """The path as the OAS writes it (`/roles/{id}/users`)."""
    alternatives: tuple[frozenset[str], ...]
    """Any one of these sets of scopes is enough."""
    also: frozenset[str] = frozenset()
    """Needed beside any alternative for the query this tool sends, though the OAS lists it on another
    operation: `fields=roles` on the organization members list needs `read:organization_member_roles`."""

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset().union(*self.alternatives)


def _op(method: str, path: str, *alternatives: str | tuple[str, ...], also: tuple[str, ...] = ()) -> Operation:
    return Operation(method, path, tuple(frozenset((a,) if isinstance(a, str) else a) for a in alternatives),
                     frozenset(also))


OPERATIONS: dict[str, Operation] = {
    "find a connection": _op("GET", "/connections", "read:connections"),
    "list a connection's enabled clients": _op("GET", "/connections/{id}/clients", "read:connections"),
    "start an export job": _op("POST", "/jobs/users-exports", "read:users"),
    "read a job": _op("GET", "/jobs/{id}", "read:users", "create:users"),
    "start an import job": _op("POST", "/jobs/users-imports", "create:users"),
    "read a job's errors": _op("GET", "/jobs/{id}/errors", "create:users", "read:users"),
    "list roles": _op("GET", "/roles", "read:roles"),
    "list role members": _op("GET", "/roles/{id}/users", "read:role_members", ("read:users", "read:roles")),
    "assign role members": _op("POST", "/roles/{id}/users", "update:roles", "create:role_members"),
    "read a user's permissions": _op("GET", "/users/{id}/permissions", "read:users"),
    "give a user permissions": _op("POST", "/users/{id}/permissions", "update:users"),
    "read a user's roles": _op("GET", "/users/{id}/roles", "read:role_members", ("read:users", "read:roles")),
    "remove a user's roles": _op("DELETE", "/users/{id}/roles", "update:users", "delete:role_members"),
    "remove a user's permissions": _op("DELETE", "/users/{id}/permissions", "update:users"),
    "list APIs": _op("GET", "/resource-servers", "read:resource_servers"),
    "find users by email": _op("GET", "/users-by-email", "read:users"),
    "read a user": _op("GET", "/users/{id}", "read:users", "read:current_user", "read:user_idp_tokens"),
    "delete a connection's user by email": _op("DELETE", "/connections/{id}/users", "delete:users"),
    "read a role's permissions": _op("GET", "/roles/{id}/permissions", "read:roles"),
    "create a role": _op("POST", "/roles", "create:roles"),
    "give a role permissions": _op("POST", "/roles/{id}/permissions", "update:roles"),
    "add scopes to an API": _op("PATCH", "/resource-servers/{id}", "update:resource_servers"),
    "list organizations": _op("GET", "/organizations", "read:organizations", "read:organizations_summary"),
    # Each member's organization roles come in the same pages (`fields=user_id,roles`), which Auth0 answers only
    # to a token that also holds read:organization_member_roles (its documentation of this endpoint).
    "list organization members": _op("GET", "/organizations/{id}/members", "read:organization_members",
                                     also=("read:organization_member_roles",)),
    "list an organization's enabled connections": _op("GET", "/organizations/{id}/enabled_connections",
                                                      "read:organization_connections"),
    "enable a connection for an organization": _op("POST", "/organizations/{id}/enabled_connections",
                                                   "create:organization_connections"),
    "add organization members": _op("POST", "/organizations/{id}/members", "create:organization_members"),
    "assign organization member roles": _op("POST", "/organizations/{id}/members/{user_id}/roles",
                                            "create:organization_member_roles"),
    "unlink a secondary account": _op("DELETE", "/users/{id}/identities/{provider}/{user_id}", "update:users",
                                      "update:current_user_identities"),
    "link a secondary account": _op("POST", "/users/{id}/identities", "update:users",
                                    "update:current_user_identities"),
    "read a user's authentication methods": _op("GET", "/users/{id}/authentication-methods",
                                                "read:authentication_methods"),
    "search users": _op("GET", "/users", "read:users", "read:user_idp_tokens"),
    "delete a connection": _op("DELETE", "/connections/{id}", "delete:connections"),
    "read a connection": _op("GET", "/connections/{id}", "read:connections"),
}

CROSS = "cross:"
CUTOVER = "cutover:"
REFRESH = "refresh:"
PROPAGATE = "propagate:"
CREATE_ROLES = "create-roles:"
ORG_CONNECTIONS = "org-connections:"
SAME = "same:"
MFA = "mfa:"
WHOLE = "connection:"

# What each command calls (the stages in pipeline order); see the module docstring for the marks.
_READ_SOURCE = ("find a connection", "start an export job", "read a job")
_SOURCE_GRANTS = ("list roles", "list role members", "read a user's permissions")
_IMPORT = ("find a connection", "list a connection's enabled clients", "start an import job", "read a job",
           "read a job's errors")
_ID_MAP = ("start an export job", "read a job", "find users by email")
_RESTORE = (CROSS + "list roles", CROSS + "list APIs", "assign role members", "give a user permissions")
_VERIFY = (CROSS + "list roles", "list role members", "read a user's permissions")
# --create-missing-roles (across tenants only): the source role's permissions read, the role made in the target.
_CREATE_ROLES_SOURCE = (CREATE_ROLES + "read a role's permissions",)
_CREATE_ROLES_TARGET = (CREATE_ROLES + "add scopes to an API", CREATE_ROLES + "create a role",
                        CREATE_ROLES + "give a role permissions")
_SOURCE_ORGS = ("list organizations", "list organization members")
_ORGS = (CROSS + "list organizations", "list an organization's enabled connections",
         ORG_CONNECTIONS + "enable a connection for an organization", "add organization members",
         "assign organization member roles", "list organization members")
# Linked accounts move in one tenant only (stages/identities.py): the secondary read back as a user, and the
# new primary's identities read to verify.
_LINKS = (SAME + "unlink a secondary account", SAME + "link a secondary account", SAME + "read a user",
          SAME + "find a connection")
_READ_MFA = ("read a user's authentication methods",)
_VERIFY_MFA = (MFA + "read a user's authentication methods",)
_REFRESH_GRANTS = (REFRESH + "remove a user's roles", REFRESH + "remove a user's permissions",
                   REFRESH + "read a user's roles")

USES: dict[Command, dict[Side, tuple[str, ...]]] = {
    "run": {
        # Cutover confirms each deletion by reading the user back (by id, or by email under keep in one tenant).
        "source": (*_READ_SOURCE, *_READ_MFA, *_SOURCE_GRANTS, *_SOURCE_ORGS,
                   CUTOVER + "delete a connection's user by email", CUTOVER + "read a user",
                   CUTOVER + "find users by email", *_CREATE_ROLES_SOURCE,
                   # --delete-source-connection: its checks (users counted, applications), the DELETE, its read-back.
                   WHOLE + "search users", WHOLE + "list a connection's enabled clients", WHOLE + "delete a connection",
                   WHOLE + "read a connection"),
        # A refresh with --propagate-deletes deletes this migration's copies and confirms each by reading it back.
        "target": (*_IMPORT, *_ID_MAP, *_RESTORE, *_VERIFY, *_VERIFY_MFA, *_ORGS, *_LINKS, *_REFRESH_GRANTS,
                   PROPAGATE + "delete a connection's user by email", PROPAGATE + "read a user",
                   *_CREATE_ROLES_TARGET),
    },
    "plan": {
        "source": (*_READ_SOURCE, *_READ_MFA, "list roles", CROSS + "list APIs", *_SOURCE_ORGS,
                   CREATE_ROLES + "read a role's permissions"),
        "target": ("find a connection", "list a connection's enabled clients", CROSS + "list roles",
                   CROSS + "list APIs", CROSS + "list organizations", "list an organization's enabled connections"),
    },
    "verify": {
        "source": ("find a connection",),
        "target": ("find a connection", *_ID_MAP, *_VERIFY, *_VERIFY_MFA, CROSS + "list organizations",
                   "list organization members"),
    },
    # Rollback (stages/rollback.py): CUTOVER marks what only bringing back deleted source copies (or kept ids'
    # grants in one tenant) needs: importing them again, confirming each, their grants, organization memberships
    # and roles written and read back, their MFA factors read back. In one tenant, linked accounts moved back.
    "rollback": {
        "source": ("find a connection", *(CUTOVER + op for op in (
            "start an import job", "read a job", "read a job's errors", "find users by email", "assign role members",
            "give a user permissions", "list role members", "read a user's permissions", "add organization members",
            "assign organization member roles", "list organization members", "read a user's authentication methods")),
                   *_LINKS),
        "target": ("find a connection", "delete a connection's user by email", "find users by email"),
    },
}


def needed_operations(command: Command, side: Side, *, cross_tenant: bool,
                      delete_source_users: bool = False, refresh: bool = False,
                      propagate_deletes: bool = False, create_missing_roles: bool = False,
                      enable_org_connections: bool = False, mfa_secrets: bool = False,
                      delete_source_connection: bool = False) -> list[str]:
    """The operations `command` calls on one side, for these options (`refresh`: a refresh of a migration)."""
    when = {CROSS: cross_tenant, SAME: not cross_tenant, CUTOVER: delete_source_users, REFRESH: refresh,
            CREATE_ROLES: create_missing_roles and cross_tenant, WHOLE: delete_source_connection,
            PROPAGATE: propagate_deletes, ORG_CONNECTIONS: enable_org_connections, MFA: mfa_secrets}
    """Each mark, and whether the entries it marks are called with these options."""
    names = []
    for entry in USES[command][side]:
        mark = next((m for m in when if entry.startswith(m)), None)
        if mark is not None:
            if not when[mark]:
                continue
            entry = entry.removeprefix(mark)
        names.append(entry)
    return list(dict.fromkeys(names))


def missing_scopes(operations: Iterable[str], granted: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(operation, the scopes it still lacks) for each operation no alternative of which is granted.

    The scopes named are those of the alternative closest to what is granted: fewest missing, then most
    already held, then first in the table.
    """
    have = frozenset(granted)
    missing = []
    for name in operations:
        alternatives = tuple(alt | OPERATIONS[name].also for alt in OPERATIONS[name].alternatives)
        if any(alt <= have for alt in alternatives):
            continue
        closest = min(alternatives, key=lambda alt: (len(alt - have), -len(alt & have)))
        missing.append((name, tuple(sorted(closest - have))))
    return missing


def describe(name: str) -> str:
    """`update:roles or create:role_members` for one operation, as a person would read it."""
    op = OPERATIONS[name]
    return " or ".join(" + ".join(sorted(alt | op.also)) for alt in op.alternatives)
