"""What users hold, and what becomes of it: the plan's inventory, and what the import cannot take (issue 8).

Two lists, so the owner decides with open eyes before a cutover deletes anything:

- `holding_inventory`: per holding kind (organization memberships and roles, linked secondaries, MFA factors
  by type) the users and items found, how many will be carried, those that cannot (grouped by reason), and
  what cutover will do with their users: kept in the source unless `--allow-loss` names their group.
- `ImportLeftovers`: what a user has that Auth0's bulk import cannot take at all (reference §3), counted by
  kind from the export records as they are read: the creation date, `last_login`, `logins_count`,
  `last_password_reset`, sessions and refresh tokens (issued to the source user), custom root attributes,
  group memberships. Nothing can carry these, so they never hold a user back; they are listed in `plan`
  and in the run summary (`reports.not_carried_by_import`).

Choices where Auth0 is silent:

- sessions and refresh tokens are counted as the users who ever logged in (`last_login` or `logins_count`
  in the export): Auth0 lists no user's sessions in an export. With a new id (regenerate, prefix) they
  are bound to the old id; with `keep` they belong to the source user, which cutover deletes (whether
  Auth0 revokes them with it, and whether a token of the old user then works for the new one, is
  UNCONFIRMED); either way the user should expect to sign in again;
- custom root attributes: the export asks for named fields, so a root attribute the tool does not name
  never arrives; what is counted is the users refused for root keys the tool does not know
  (`UNSUPPORTED_EXPORT_KEYS`, a `--from-file` user: refused rather than imported without them);
- group memberships are not read (Auth0's groups API, `GET /users/{id}/groups`, is one call per user and
  the local tenant does not model groups yet): the kind is listed with an unknown count (`null`);
- the counts are those of the first export; a refresh's new users are not added to them.
"""

from __future__ import annotations

from typing import Any

from ..ledger import LOSS_GROUPS, Ledger
from ..model import IdStrategy

META_KEY = "not_carried_by_import"
CUSTOM_ROOT_DETAIL = "none seen (the export returns only the fields the tool names)"


class ImportLeftovers:
    """Counts, by kind, the users whose export record holds something the import cannot take."""

    def __init__(self, user_ids: IdStrategy) -> None:
        self.user_ids = user_ids
        self.created_at = self.last_login = self.logins_count = self.last_password_reset = 0
        self.signed_in = 0

    def see(self, record: dict[str, Any]) -> None:
        """One exported user (cheap: a few key look-ups; the export of a million users calls it each time)."""
        get = record.get
        if get("created_at"):
            self.created_at += 1
        last_login, logins = get("last_login"), get("logins_count")
        if last_login or logins:
            self.signed_in += 1
            if last_login:
                self.last_login += 1
            if logins:
                self.logins_count += 1
        if get("last_password_reset"):
            self.last_password_reset += 1

    def counts(self) -> dict[str, int]:
        return {"created_at": self.created_at, "last_login": self.last_login, "logins_count": self.logins_count,
                "last_password_reset": self.last_password_reset, "signed_in": self.signed_in}

    def add(self, counts: dict[str, int]) -> None:
        """Add the `counts` of users another `ImportLeftovers` saw (a piece of the export read by a worker)."""
        for name, n in counts.items():
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        bound = ("issued to the source user's id; the target user has another id, so these users sign in again"
                 if self.user_ids != "keep" else
                 "issued to the source user, which cutover deletes; expect these users to sign in again "
                 "(UNCONFIRMED whether Auth0 revokes them with it)")
        return {
            "created_at": {"users": self.created_at, "detail": "the creation date: the target's is the import's"},
            "last_login": {"users": self.last_login, "detail": "the last login date starts empty in the target"},
            "logins_count": {"users": self.logins_count, "detail": "the login count starts at 0 in the target"},
            "last_password_reset": {"users": self.last_password_reset,
                                    "detail": "the date of the last password reset is not imported"},
            "sessions_and_refresh_tokens": {"users": self.signed_in,
                                            "detail": f"users who have signed in: sessions and refresh tokens "
                                                      f"{bound}"},
            "custom_root_attributes": {"users": 0, "detail": CUSTOM_ROOT_DETAIL},
            "group_memberships": {"users": None,
                                  "detail": "not read (Auth0's groups API); the import carries none: re-create "
                                            "them in the target if the source uses groups"},
        }

    def save(self, ledger: Ledger) -> None:
        ledger.set_meta(META_KEY, self.as_dict())


def not_carried_by_import(ledger: Ledger, failures_by_code: dict[str, int]) -> dict[str, Any]:
    """The counts `ImportLeftovers` saved with the export ({} for a ledger older than them); custom root
    attributes are the users the transform refused for them (`UNSUPPORTED_EXPORT_KEYS`, each named)."""
    saved = ledger.get_meta(META_KEY)
    if not isinstance(saved, dict):
        return {}
    refused = failures_by_code.get("UNSUPPORTED_EXPORT_KEYS", 0)
    saved["custom_root_attributes"] = {"users": refused, "detail": CUSTOM_ROOT_DETAIL if not refused else
                                       "root attributes the import schema does not take: those users are refused "
                                       "(UNSUPPORTED_EXPORT_KEYS, named in the failures), not imported without them"}
    return saved


def holding_inventory(ledger: Ledger, allow_loss: tuple[str, ...], delete_source_users: bool) -> dict[str, Any]:
    """Per holding kind: users, items, `will_carry`, `cannot` (by reason), and what cutover does with the users.

    In a plan every holding is `found` (a carrier will try it) or `cannot`; `users_kept_in_source` counts the
    users cutover would keep for a holding that cannot be carried, unless `--allow-loss` names its group.
    """
    counts = ledger.holding_counts()
    cannot = ledger.cannot_groups()
    kinds: dict[str, Any] = {}
    for group, group_kinds in LOSS_GROUPS.items():
        for kind in group_kinds:
            held = counts[kind]
            items = sum(held[state] for state in ("found", "carried", "verified", "cannot"))
            kinds[kind] = {
                "users": held["users"], "items": items, "will_carry": items - held["cannot"],
                "cannot": [{"detail": c.detail, "items": c.items, "users": c.users} for c in cannot if c.kind == kind],
                "loss_group": group, "loss_allowed": group in allow_loss,
            }
    held_back = {group: ledger.users_holding_cannot(group_kinds) for group, group_kinds in LOSS_GROUPS.items()}
    kept = ledger.users_holding_cannot([k for g, ks in LOSS_GROUPS.items() if g not in allow_loss for k in ks])
    mfa_types: dict[str, int] = {}
    for holding in ledger.holdings("mfa-factor"):
        factor = holding.item.split(" ", 1)[0]
        mfa_types[factor] = mfa_types.get(factor, 0) + 1
    return {
        "kinds": kinds,
        "mfa_factor_types": dict(sorted(mfa_types.items())),
        "cutover": {
            "delete_source_users": delete_source_users,
            "users_kept_in_source": kept if delete_source_users else 0,
            "allow_loss_would_let_go": {g: n for g, n in held_back.items() if n and g not in allow_loss},
            "loss_allowed": list(allow_loss),
        },
    }


def inventory_lines(inventory: dict[str, Any], leftovers: dict[str, Any]) -> list[str]:
    """The inventory and the import's leftovers as lines for people (plan output)."""
    lines = []
    for kind, row in inventory.get("kinds", {}).items():
        if not row["items"]:
            continue
        lines.append(f"{kind}: {row['items']} held by {row['users']} users; {row['will_carry']} will be carried")
        for c in row["cannot"]:
            lines.append(f"  cannot be carried ({c['items']} held by {c['users']} users): {c['detail']}")
    if inventory.get("mfa_factor_types"):
        lines.append("mfa factors by type: " + ", ".join(f"{t} {n}" for t, n in inventory["mfa_factor_types"].items()))
    cut = inventory.get("cutover") or {}
    if cut.get("delete_source_users") and cut.get("users_kept_in_source"):
        flags = ", ".join(f"--allow-loss {g} ({n} users)" for g, n in cut["allow_loss_would_let_go"].items())
        lines.append(f"cutover keeps {cut['users_kept_in_source']} users in the source (what they hold cannot be "
                     f"carried); to delete them anyway: {flags}")
    for kind, row in leftovers.items():
        users = "unknown" if row["users"] is None else row["users"]
        if row["users"] == 0:
            continue
        lines.append(f"not carried by any import: {kind.replace('_', ' ')}: {users} users ({row['detail']})")
    return lines
