"""MFA enrollments: found in the source, imported with their users, verified in the target (issue 8, item 3).

A user's MFA factors are deleted with its source copy, so each is a holding (`mfa-factor`, item: its
type, `"<type> <n>"` for the n-th of a type) that cutover waits for (ledger `unverified_holdings`):

1. **Found** (`read_factors`, in `run` and in `plan`). The export's `multifactor` says who is enrolled
   (a list of provider names such as `["guardian"]`, never the factor types): the export marks those
   users (`note_enrolled`, item `enrolled`), and this stage reads each one's
   `GET /users/{id}/authentication-methods` on the source (one call per enrolled user, only those) to
   learn the types. The `--mfa-secrets` file's factors were joined to their users by the export
   (`with_secrets`: into the import record's `mfa_factors`, validated by the transform like any field)
   and recorded as holdings there too.
2. **Cannot**, right away: a push, WebAuthn, passkey or recovery-code factor (Auth0's import takes only
   totp, phone and email: the user enrols again); a totp/phone/email factor the secrets file does not
   give (detail: needs `--mfa-secrets`, or the file lacks it); an enrolled user for whom Auth0 lists no
   method. Each detail names `--allow-loss mfa`, the flag that lets cutover delete the source copy anyway.
3. **Carried** (`verify_factors`): the user was imported by this run, its factors in the import file.
   The secrets leave the ledger then (`Ledger.forget_mfa_secrets`), as hashes do.
4. **Verified** (`verify_factors`): the target's `GET /users/{id}/authentication-methods` (one call per
   user with factors to check, only those) lists as many factors of the type (values are masked there,
   so the type and count are what can be compared).

Choices where Auth0 is silent
-----------------------------
- The join of the secrets file is by user id; the email is used only for a line that names no id. A
  user id is the one key the export and the support files share for certain; an email can change.
- When the file gives a user factors, they replace any `mfa_factors` the user's record had (only a
  `--from-file` user can have some): the support file is the owner's latest word on secrets.
- An authentication method of type `password` is the user's password, carried by the hash file, not an
  MFA factor; it is not a holding. Every other type is one (`email-verification` included: we cannot
  tell it is harmless to lose, so the owner is told).
- A user found in the target before this run imported it (`already_in_target`) had no factors written by
  this run: those the target does not list are `cannot` (the import creates factors only with a new user).
- Under `--user-ids keep` in one tenant, `GET /users/{id}/authentication-methods` answers with the first
  user holding the id, the source copy (Auth0's id-only endpoints "tend to show the original user"), so a
  read before cutover cannot tell the copies apart: the factors stay `carried` with that reason until the
  source copy is deleted, and are read (and verified) after cutover (`pipeline._cut_over` calls
  `verify_factors` again). A cutover that waits for `verified` keeps those users unless `--allow-loss mfa`.
  (UNCONFIRMED how real Auth0 orders the two copies.)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..auth0.paging import every, offset_items
from ..errors import NotFoundError
from ..formats.mfa_file import IMPORTABLE, MfaSecrets, factor_types, read_mfa_file
from ..ledger import Holding, Ledger, dumps
from ..pool import run_pool
from .context import Migration

ENROLLED = "enrolled"
"""The provisional item of a user the export shows enrolled, until its methods are read."""
NOT_FACTORS = frozenset({"password"})
ALLOW = "--allow-loss mfa lets cutover delete the source copy anyway"


def numbered(types: list[str]) -> list[str]:
    """Holding items for a user's factor types: `["phone", "phone", "totp"]` -> `["phone", "phone 2", "totp"]`."""
    seen: Counter[str] = Counter()
    items = []
    for kind in types:
        seen[kind] += 1
        items.append(kind if seen[kind] == 1 else f"{kind} {seen[kind]}")
    return items


def _type_of(item: str) -> tuple[str, int]:
    kind, _, n = item.partition(" ")
    return kind, int(n) if n else 1


def secrets(migration: Migration) -> MfaSecrets | None:
    """The `--mfa-secrets` file, read once per run (None without the flag)."""
    path = migration.options.mfa_secrets
    if path is None:
        return None
    if migration.mfa_secrets is None:
        migration.mfa_secrets = read_mfa_file(path, connection=migration.source_connection.name)
    return migration.mfa_secrets


def with_secrets(found: MfaSecrets | None, source_id: str, email: str | None, record: dict[str, Any],
                 text: str) -> tuple[dict[str, Any], str, list[str]]:
    """The export record with the user's factors from the secrets file as `mfa_factors` (and its text), and
    the holding items of the factors the record will import (a `--from-file` user may bring its own)."""
    factors = found.factors_for(source_id, email) if found is not None else None
    if factors:
        record = {**record, "mfa_factors": factors}
        text = dumps(record)
    carried = record.get("mfa_factors")
    return record, text, numbered(factor_types(carried)) if isinstance(carried, list) else []


def note_problems(migration: Migration) -> None:
    """The secrets file's bad lines, once per ledger (never a value: `MfaLineProblem`)."""
    found = secrets(migration)
    ledger = migration.ledger
    if found is None or ledger.phase_done("mfa-secrets-read"):
        return
    ledger.add_problems(("mfa-secrets", str(p.line_no), f"{migration.options.mfa_secrets}, {p}")
                        for p in found.problems)
    ledger.mark_phase("mfa-secrets-read")


async def read_factors(migration: Migration) -> None:
    """Read the factor types of every user the export showed enrolled, and mark at once what cannot be carried.

    Resumable user by user: a user's `enrolled` row is replaced by its factors in one transaction, so a
    later run (or a refresh that exported new enrolled users) reads only the users still marked."""
    ledger = migration.ledger
    note_problems(migration)
    held: dict[int, list[Holding]] = {}
    for h in ledger.holdings("mfa-factor"):
        held.setdefault(h.ordinal, []).append(h)
    enrolled = [rows for rows in held.values() if any(h.item == ENROLLED and h.state == "found" for h in rows)]
    source = migration.source
    if enrolled:
        migration.reporter.phase("read MFA enrollments", total=len(enrolled))

    async def read(rows: list[Holding]) -> list[str] | None:
        user_id = rows[0].source_id
        try:
            methods = await every(offset_items(source, f"read the MFA factors of {user_id}",
                                               source.sdk.users.authentication_methods.list, user_id))
        except NotFoundError:
            return None
        return [str(m.type) for m in methods if str(m.type) not in NOT_FACTORS]

    def settle(rows: list[Holding], types: list[str] | None) -> None:
        ordinal = rows[0].ordinal
        with ledger.tx():
            if not types:
                why = "no longer in the source" if types is None else "listed with no authentication method"
                ledger.set_holdings("mfa-factor", "cannot", [(ordinal, ENROLLED)], (
                    f"the export shows the user enrolled in MFA, but it is {why}: nothing can carry an "
                    f"enrollment without its factors; the user enrols again ({ALLOW})"))
                return
            ledger.forget_holdings("mfa-factor", [(ordinal, ENROLLED)])
            from_file = {h.item for h in rows if h.item != ENROLLED}
            items = numbered(types)
            ledger.add_holdings("mfa-factor", [(ordinal, item) for item in items])
            for item in items:
                if item in from_file:
                    continue
                ledger.set_holdings("mfa-factor", "cannot", [(ordinal, item)], _why_not(migration, item))
        migration.reporter.advance(1)

    await run_pool(enrolled, read, on_result=settle)


def _why_not(migration: Migration, item: str) -> str:
    kind, _ = _type_of(item)
    if kind not in IMPORTABLE:
        return (f"a {kind} factor cannot be imported (Auth0's import takes totp, phone and email factors): the "
                f"user enrols it again after the migration ({ALLOW})")
    if migration.options.mfa_secrets is None:
        return (f"the {kind} factor's secret comes only from Auth0 support: run with --mfa-secrets FILE to carry it "
                f"({ALLOW})")
    return f"the {kind} factor is not in the --mfa-secrets file {migration.options.mfa_secrets} ({ALLOW})"


async def verify_factors(migration: Migration) -> None:
    """Mark the factors of imported users carried, then read each such user's methods in the target."""
    ledger = migration.ledger
    ledger.forget_mfa_secrets()
    pending: dict[int, list[Holding]] = {}
    for h in ledger.holdings("mfa-factor", ("found", "carried")):
        state = ledger.user_state(h.ordinal)
        if h.target_id is None or state is None or state.status not in ("imported", "already_in_target"):
            continue
        if h.state == "found" and state.status == "imported":
            ledger.set_holdings("mfa-factor", "carried", [(h.ordinal, h.item)])
            h = h._replace(state="carried")
        pending.setdefault(h.ordinal, []).append(h)
    if not pending:
        return
    if migration.same_tenant and migration.options.user_ids == "keep":
        gone = ledger.deleted_from_source(pending)
        for ordinal in [o for o in pending if o not in gone]:
            rows = pending.pop(ordinal)
            ledger.set_holdings("mfa-factor", "carried", [(h.ordinal, h.item) for h in rows], (
                "imported; under --user-ids keep in one tenant Auth0 reads a shared id as the source copy, so the "
                f"factor cannot be verified before that copy is deleted ({ALLOW})"))
        if not pending:
            return
    target = migration.target
    migration.reporter.phase("verify MFA factors", total=len(pending))

    async def read(rows: list[Holding]) -> Counter[str] | None:
        user_id = str(rows[0].target_id)
        try:
            methods = await every(offset_items(target, f"read the MFA factors of {user_id}",
                                               target.sdk.users.authentication_methods.list, user_id))
        except NotFoundError:
            return None
        return Counter(str(m.type) for m in methods)

    def settle(rows: list[Holding], listed: Counter[str] | None) -> None:
        with ledger.tx():
            for h in rows:
                kind, n = _type_of(h.item)
                if listed is not None and listed[kind] >= n:
                    ledger.set_holdings("mfa-factor", "verified", [(h.ordinal, h.item)])
                elif h.state == "carried":
                    ledger.set_holdings("mfa-factor", "carried", [(h.ordinal, h.item)], (
                        f"imported, but the target does not list the {kind} factor; run again to read it once more "
                        f"({ALLOW})"))
                else:
                    ledger.set_holdings("mfa-factor", "cannot", [(h.ordinal, h.item)], (
                        f"the user was already in the target, and an import writes factors only with a new user: "
                        f"the target has no {kind} factor for it; the user enrols again ({ALLOW})"))
        migration.reporter.advance(1)

    await run_pool(list(pending.values()), read, on_result=settle)


def not_carried(ledger: Ledger) -> list[dict[str, str | None]]:
    """Each MFA factor that cannot be carried, or was imported but not verified, per user with the reason:
    the summary's `reports.mfa_not_carried` (ids and factor types only; never a value)."""
    return [{"user_id": h.source_id, "target_id": h.target_id, "factor": h.item, "state": h.state,
             "detail": h.detail} for h in ledger.holdings("mfa-factor", ("cannot", "carried"))
            if h.state == "cannot" or h.detail]
