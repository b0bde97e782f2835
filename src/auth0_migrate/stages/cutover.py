"""Stage 9: delete the source copy of each user, only once that user is verified in the target.

Deletion is by connection and email (`DELETE /connections/{source}/users?email=`), never by id:
with `--user-ids keep` two users share an id until this is done, and id-only endpoints would be
ambiguous.

With `keep` in one tenant the target copy shares the source copy's id, and Auth0 keys roles and DIRECT
permissions by the id: before the deletion the shared id holds the source's grants (writing them is a
no-op, reading them back reads the source copy), and the deletion may drop them (Auth0 does not say:
reference §9.3, §10; the local tenant drops them). So there the cutover gate asks the profile verified
and the holdings (not the grants), and the grants are written once and verified once after each deletion
(`grants_after_cutover`), which holds whether Auth0 drops them or not. Across tenants, deleting a source
user cannot touch the target tenant's grants: nothing is written again there.

That DELETE answers 204 "The user no longer exists." whether or not a user matched (OAS), so a 204
proves nothing. Each deletion is confirmed before the ledger says `deleted`, by a read Auth0
documents as immediately consistent: `GET /users/{source id}` must answer 404 where that id is the
source connection's alone (every strategy but `keep` in one tenant); with `keep` in one tenant the
target's copy holds the same id, so `GET /users-by-email` must show no user holding the source
identity (source connection name and source id; the target copy is told apart by its connection).
A user still there is a per-user failure, `DELETE_NOT_CONFIRMED`, not counted as deleted; the
cutover phase stays open, so running the same command again retries exactly those users.

Nothing is deleted that was not carried: a user that holds something beside profile, hash and grants
(organization memberships and roles, linked secondaries, MFA factors: ledger `holdings`) is deleted only when
each of those was verified in the target, or its group is named in `--allow-loss` (Auth0 deletes them with
the user). The others stay in the source, noted `KEPT_IN_SOURCE` with what was not carried and the flag that
would let them go; the cutover phase stays open, so a later run deletes them once their holdings are verified.

Choices where Auth0 is silent:

- the email sent is the ledger's, exactly as the source export gave it (the form Auth0 stored),
  never re-cased: whether the DELETE matches emails case-insensitively is UNCONFIRMED (reference
  open question 5), and the confirmation read catches a miss either way. `users-by-email` is
  case-sensitive (OAS), which the stored form satisfies;
- a user already gone before its DELETE (removed by hand between runs) is confirmed gone and counted
  as deleted: what the ledger promises is that the source no longer holds it;
- a user kept in the source is not a failure of the migration (it is in the target, verified) but it is
  not finished either: it is listed in `failures` with its reasons and the run exits 3 until it is deleted
  or the owner allows the loss; its holdings are named kind and item, at most `KEPT_DETAIL_ITEMS` of them;
- with `keep` in one tenant, the grants of each user are due once its deletion is confirmed
  (`Ledger.record_deletions`), so a user deleted by a later run is given its grants then, and a run
  killed between the deletions and the writes writes them on the next run.
"""

from __future__ import annotations

from ..auth0.client import TenantClient
from ..errors import NotFoundError
from ..ledger import LOSS_GROUPS, Holding, UserRef
from ..pool import run_pool, together
from .context import Migration
from .restore import restore_permissions, restore_roles
from .verify import verify_after_cutover

NOT_CONFIRMED = "DELETE_NOT_CONFIRMED"
KEPT = "KEPT_IN_SOURCE"
KEPT_DETAIL_ITEMS = 10
"""How many unverified holdings a kept user's message names one by one (the rest are counted)."""


def loss_group(kind: str) -> str:
    """The `--allow-loss` name that lets cutover delete a user holding an unverified `kind`."""
    return next(group for group, kinds in LOSS_GROUPS.items() if kind in kinds)


def kept_message(connection: str, held: list[Holding], shared_id: bool = False) -> str:
    """Why a verified user stays in the source: each unverified holding (kind, item, state or reason) and the
    `--allow-loss` names that would let it go (`shared_id`: keep in one tenant, both copies hold the id)."""
    def one(h: Holding) -> str:
        why = f"cannot be carried: {h.detail}" if h.state == "cannot" else \
            (f"{h.state}, not verified in the target" + (f" ({h.detail})" if h.detail else ""))
        return f"{h.kind} {h.item} ({why})"
    named = "; ".join(one(h) for h in held[:KEPT_DETAIL_ITEMS])
    more = f"; and {len(held) - KEPT_DETAIL_ITEMS} more" if len(held) > KEPT_DETAIL_ITEMS else ""
    groups = ",".join(dict.fromkeys(loss_group(h.kind) for h in held))
    return (f"kept in {connection}: deleting it would delete what was not carried to the target: {named}{more}. "
            f"Run again once these are verified in the target, or give --allow-loss {groups} to delete it anyway"
            + ("; until then both copies share its id (--user-ids keep), so Auth0's id-only endpoints are ambiguous "
               "for it" if shared_id else ""))


async def holds(client: TenantClient, connection: str, email: str, user_id: str, *,
                operation: str | None = None) -> bool:
    """True when `connection` holds a user with this email and id (one `users-by-email` read).

    By email, not id: with kept ids two connections of one tenant hold the same id, and only the
    identity's connection tells them apart.
    """
    users = await client.call(operation or f"look up {email} in {connection}", client.sdk.users.list_users_by_email,
                              email=email)
    for user in users or []:
        data = user.model_dump(mode="json")
        for identity in data.get("identities") or []:
            if identity.get("connection") != connection:
                continue
            if user_id in (f"{identity.get('provider')}|{identity.get('user_id')}", str(data.get("user_id"))):
                return True
    return False


async def still_in_source(migration: Migration, email: str, source_id: str) -> bool:
    """True when the source connection still holds this user (read after its DELETE answered)."""
    connection = migration.source_connection.name
    operation = f"confirm {email} is gone from {connection}"
    if not (migration.same_tenant and migration.options.user_ids == "keep"):
        try:
            await migration.source.call(operation, migration.source.sdk.users.get, source_id, fields="user_id",
                                        include_fields=True)
        except NotFoundError:
            return False
        return True
    return await holds(migration.source, connection, email, source_id, operation=operation)


async def delete_source_copies(migration: Migration) -> None:
    ledger = migration.ledger
    if ledger.phase_done("cutover"):
        return
    connection = migration.source_connection
    # Under keep in one tenant an id-only read of the shared id shows the source copy: the imported MFA factors
    # and the memberships the shared id holds (carried) are read back, and verified, only after the copy is
    # deleted (`mfa.verify_factors` runs again, `organizations.reapply` writes the memberships again).
    shared = migration.shared_ids
    unverified = ledger.unverified_holdings(migration.options.allow_loss,
                                            verified_after_cutover=migration.carried_until_cutover)
    users = []
    kept: list[tuple[int, str]] = []
    for user in ledger.users_to_delete():
        held = unverified.get(user.ordinal)
        if held:
            kept.append((user.ordinal, kept_message(connection.name, held, shared)))
        else:
            users.append(user)
    ledger.record_kept_in_source(kept, KEPT)
    if kept:
        migration.reporter.warn(f"{len(kept)} verified users stay in {connection.name}: they hold what was not "
                                "carried to the target (see the failures, code KEPT_IN_SOURCE)")
    migration.reporter.phase("delete verified users from the source", total=len(users))
    done: list[int] = []
    refused: list[tuple[str, int]] = []

    async def delete(user: UserRef) -> bool:
        email = user.email or ""  # users_to_delete gives only users with an email
        await migration.source.call(f"delete {email} from {connection.name}",
                                    migration.source.sdk.connections.users.delete_by_email, connection.id, email=email)
        return not await still_in_source(migration, email, user.source_id)

    def deleted(user: UserRef, gone: bool) -> None:
        if gone:
            done.append(user.ordinal)
        else:
            refused.append((f"{user.email} is still in {connection.name} after its DELETE answered 204; not "
                            "counted as deleted (run again to retry)", user.ordinal))
        if len(done) + len(refused) >= 200:
            flush()

    def flush() -> None:
        ledger.record_deletions(done, refused, NOT_CONFIRMED)
        migration.reporter.advance(len(done) + len(refused))
        done.clear()
        refused.clear()

    try:
        await run_pool(users, delete, on_result=deleted)
    finally:
        flush()
    if not kept and not ledger.deletions_not_confirmed(NOT_CONFIRMED):
        ledger.mark_phase("cutover")


async def grants_after_cutover(migration: Migration) -> None:
    """With shared ids (keep in one tenant): the roles and permissions of the users whose source copy is deleted,
    written once, then read back once (each user's own flags say what is due, so a resumed run and a later pass
    do exactly what is left)."""
    migration.reporter.phase("write roles and permissions after cutover")
    await together(restore_roles(migration), restore_permissions(migration))
    await verify_after_cutover(migration)
