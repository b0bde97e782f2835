"""The Management API scopes a command needs, per tenant: ONE table, checked before anything is written.

`OPERATIONS` names every Management API operation the tool calls, with the scopes Auth0 accepts for
it. Each entry lists its alternatives: any one set of scopes suffices. They come from Auth0's OpenAPI
spec (each operation's `security` scopes; `tests/unit/test_scopes.py` checks that every entry
holds exactly the scopes the spec lists) and from the 403 text the spec quotes where a set must be
held together: `GET /roles/{id}/users` takes `read:role_members`, or `read:users` AND `read:roles`.
Finer-grained scopes are accepted wherever Auth0 takes them, e.g. `create:role_members` instead of
`update:roles` to add role members.

`USES` says which operations each command calls on the source and on the target tenant; an entry
marked `CROSS` is called only across tenants, `CUTOVER` only with `--delete-source-users`, `WHOLE` only
with `--delete-source-connection`, `REFRESH`
only by a refresh (`stages/grants_delta.refresh_grants`: removals, and the changed users' roles read
back), `PROPAGATE` only with `--refresh --propagate-deletes`. In one tenant the two lists are checked
together against the one token.

Example::

    missing = missing_scopes(needed_operations("run", "target", cross_tenant=True), granted)
    # [("start an import job", ("create:users",)), ...]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Command = Literal["run", "plan", "verify"]
Side = Literal["source", "target"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    """The path as the OAS writes it (`/roles/{id}/users`)."""
    alternatives: tuple[frozenset[str], ...]
    """Any one of these sets of scopes is enough."""

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset().union(*self.alternatives)


def _op(method: str, path: str, *alternatives: str | tuple[str, ...]) -> Operation:
    return Operation(method, path, tuple(frozenset((a,) if isinstance(a, str) else a) for a in alternatives))


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
    "search users": _op("GET", "/users", "read:users", "read:user_idp_tokens"),
    "delete a connection": _op("DELETE", "/connections/{id}", "delete:connections"),
    "read a connection": _op("GET", "/connections/{id}", "read:connections"),
}

CROSS = "cross:"
CUTOVER = "cutover:"
REFRESH = "refresh:"
PROPAGATE = "propagate:"
WHOLE = "connection:"

# What each command calls (the stages in pipeline order); see the module docstring for the marks.
_READ_SOURCE = ("find a connection", "start an export job", "read a job")
_SOURCE_GRANTS = ("list roles", "list role members", "read a user's permissions")
_IMPORT = ("find a connection", "list a connection's enabled clients", "start an import job", "read a job",
           "read a job's errors")
_ID_MAP = ("start an export job", "read a job", "find users by email")
_RESTORE = (CROSS + "list roles", CROSS + "list APIs", "assign role members", "give a user permissions")
_VERIFY = (CROSS + "list roles", "list role members", "read a user's permissions")
_REFRESH_GRANTS = (REFRESH + "remove a user's roles", REFRESH + "remove a user's permissions",
                   REFRESH + "read a user's roles")

USES: dict[Command, dict[Side, tuple[str, ...]]] = {
    "run": {
        # Cutover confirms each deletion by reading the user back (by id, or by email under keep in one tenant).
        "source": (*_READ_SOURCE, *_SOURCE_GRANTS, CUTOVER + "delete a connection's user by email",
                   CUTOVER + "read a user", CUTOVER + "find users by email",
                   # --delete-source-connection: its checks (users counted, applications), the DELETE, its read-back.
                   WHOLE + "search users", WHOLE + "list a connection's enabled clients", WHOLE + "delete a connection",
                   WHOLE + "read a connection"),
        # A refresh with --propagate-deletes deletes this migration's copies and confirms each by reading it back.
        "target": (*_IMPORT, *_ID_MAP, *_RESTORE, *_VERIFY, *_REFRESH_GRANTS,
                   PROPAGATE + "delete a connection's user by email", PROPAGATE + "read a user"),
    },
    "plan": {
        "source": (*_READ_SOURCE, "list roles", CROSS + "list APIs"),
        "target": ("find a connection", "list a connection's enabled clients", CROSS + "list roles",
                   CROSS + "list APIs"),
    },
    "verify": {
        "source": ("find a connection",),
        "target": ("find a connection", *_ID_MAP, *_VERIFY),
    },
}


def needed_operations(command: Command, side: Side, *, cross_tenant: bool,
                      delete_source_users: bool = False, refresh: bool = False,
                      propagate_deletes: bool = False, delete_source_connection: bool = False) -> list[str]:
    """The operations `command` calls on one side, for these options (`refresh`: a refresh of a migration)."""
    names = []
    for entry in USES[command][side]:
        if entry.startswith(CROSS):
            if not cross_tenant:
                continue
            entry = entry.removeprefix(CROSS)
        elif entry.startswith(CUTOVER):
            if not delete_source_users:
                continue
            entry = entry.removeprefix(CUTOVER)
        elif entry.startswith(REFRESH):
            if not refresh:
                continue
            entry = entry.removeprefix(REFRESH)
        elif entry.startswith(WHOLE):
            if not delete_source_connection:
                continue
            entry = entry.removeprefix(WHOLE)
        elif entry.startswith(PROPAGATE):
            if not propagate_deletes:
                continue
            entry = entry.removeprefix(PROPAGATE)
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
        alternatives = OPERATIONS[name].alternatives
        if any(alt <= have for alt in alternatives):
            continue
        closest = min(alternatives, key=lambda alt: (len(alt - have), -len(alt & have)))
        missing.append((name, tuple(sorted(closest - have))))
    return missing


def describe(name: str) -> str:
    """`update:roles or create:role_members` for one operation, as a person would read it."""
    return " or ".join(" + ".join(sorted(alt)) for alt in OPERATIONS[name].alternatives)
