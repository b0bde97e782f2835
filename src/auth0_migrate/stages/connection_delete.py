"""Stage 9, whole-connection form (`--delete-source-connection`): one call instead of one delete a user.

Once every user of the source connection is verified in the target, deleting the connection deletes
them all (`DELETE /connections/{id}`: "the connection and all its users"). It is allowed only when
what the ledger knows and what the tenant says agree that nothing would be lost:

1. every user the ledger read from the connection is migrated and verified (profile, roles and
   permissions; with `keep` in one tenant the profile, as the grants are written and verified after the
   deletion: `users.grants_after_cutover`), none failed, held back or pending;
2. nothing a user holds beside that is unverified (`ledger.unverified_holdings`, asked as cutover asks it:
   organization memberships, linked accounts, MFA factors);
3. the connection holds no user the ledger does not know: the user search's total for
   `identities.connection:"<name>"` is the ledger's count (a user created since the export, or left
   out, would be deleted without a copy);
4. no application still uses it: the connection is enabled for no client
   (`GET /connections/{id}/clients`); an application enabled for it still logs users in through it,
   so its owner switches it to the target connection first.

Refused, the connection stays, nothing is deleted, and the run says why (problem
`source-connection-kept`, exit 3); running the same command again after the cause is gone deletes
it. Done, the deletion is confirmed by reading the connection back (404), and every migrated user
is recorded as deleted from the source; with `keep` in one tenant the grants are then written and
verified, as after per-user deletes (`cutover.grants_after_cutover`).

The DELETE is noted in the ledger before it is sent (`SENT`): a run stopped after it, once the connection is
gone, resumes without it (the same command; `pipeline.open_migration` takes the connection from the ledger)
and records the deletions, then does what follows them (with `keep` in one tenant, the grants).

Subsets (`--users`) and `--from-file` runs cannot use it: the per-user `--delete-source-users` stays
for them (`pipeline.check_options`).

Choices where Auth0 is silent:

- the search total is the only count of a connection's users the Management API gives, and search
  is eventually consistent: a user created seconds before the check may not be counted yet. A fresh
  export of the connection would be exact but costs a bulk job; the check is one call, and the
  ledger's export already saw every user created before the run began;
- enabled clients are what "nothing else uses it" can be checked by through the API; organizations
  that enable the connection, and linked secondary identities from it, are covered by the holdings
  (2) when the run carried them;
- Auth0 answers 202 "being deleted" or 204: the connection is confirmed gone by `GET
  /connections/{id}` answering 404, read up to `CONFIRM_READS` times with growing pauses (2 s, 4 s,
  8 s...); still there, the run exits 3 without recording deletions, and the next run deletes (an
  id already gone answers 204) and confirms again. Whether a 404 also means all its users are gone
  when Auth0 deletes in the background is UNCONFIRMED (a real tenant can settle it).
"""

from __future__ import annotations

from ..auth0.paging import checkpoint_items, first
from ..errors import NotFoundError
from .context import Migration

PROBLEM = "source-connection-kept"
SENT = "source_connection_delete_sent"
"""Ledger meta: the connection (`{"id", "name"}`) this migration sent its DELETE for, written before the call, so a
run stopped once it is gone resumes without it (`pipeline.open_migration`) and records what is left to do."""
CONFIRM_READS = 6
"""Reads of the deleted connection (pauses 2, 4, 8, 16, 32 s between them) before the run gives up for now."""


async def _users_in_connection(migration: Migration) -> int | None:
    """The user search's total for the source connection (None when the answer carries no total)."""
    source, name = migration.source, migration.source_connection.name
    pager = await source.call(f"count the users of {name}", source.sdk.users.list, q=f'identities.connection:"{name}"',
                              search_engine="v3", per_page=1, page=0, include_totals=True, fields="user_id",
                              include_fields=True)
    total = pager.response.total if pager.response is not None else None
    return int(total) if total is not None else None


async def reasons_to_keep(migration: Migration) -> list[str]:
    """Why the source connection may not be deleted now (empty: it may)."""
    ledger = migration.ledger
    name = migration.source_connection.name
    reasons = []
    counts = ledger.user_counts()
    unverified = counts["selected"] - counts["verified"] - counts["grants_after_cutover"]
    if unverified:
        reasons.append(f"{unverified} of its {counts['selected']} users are not verified in the target (failed, "
                       "held back, pending or different: see the failures and differences)")
    holdings = ledger.unverified_holdings(migration.options.allow_loss,
                                          verified_after_cutover=migration.carried_until_cutover)
    if holdings:
        kinds = sorted({h.kind for held in holdings.values() for h in held})
        reasons.append(f"{len(holdings)} users hold what was not verified in the target ({', '.join(kinds)})")
    total = await _users_in_connection(migration)
    if total is None or total != counts["selected"]:
        reasons.append(f"the connection holds {'an unknown number of' if total is None else total} users and this "
                       f"run read {counts['selected']}: a user it did not migrate would be deleted with it")
    client = await first(checkpoint_items(migration.source, f"list the applications enabled for {name!r}",
                                          migration.source.sdk.connections.clients.get, migration.source_connection.id,
                                          take=1, include_totals=None))
    if client is not None:
        reasons.append(f"it is still enabled for application {client.client_id}, which logs users in through it: "
                       "switch the applications to the target connection (and disable this one for them) first")
    return reasons


async def _gone(migration: Migration) -> bool:
    """True when reading the source connection answers 404 (one read)."""
    source, connection = migration.source, migration.source_connection
    try:
        await source.call(f"confirm {connection.name} is gone", source.sdk.connections.get, connection.id,
                          fields="id", include_fields=True)
    except NotFoundError:
        return True
    return False


async def delete_source_connection(migration: Migration) -> bool:
    """Delete the source connection when nothing would be lost; True once it is confirmed gone."""
    ledger = migration.ledger
    if ledger.phase_done("cutover"):
        return True
    connection = migration.source_connection
    migration.reporter.phase(f"delete the source connection {connection.name}")
    ledger.forget_problems((PROBLEM,))
    # A run stopped after the DELETE was sent: once the connection is gone, only the recording is left.
    if not (ledger.get_meta(SENT) and await _gone(migration)):
        reasons = await reasons_to_keep(migration)
        if reasons:
            detail = f"{connection.name} was not deleted: " + "; ".join(reasons) + ". Run the same command again " \
                     "once this is settled (or use --delete-source-users to delete the verified users one by one)."
            ledger.add_problem(PROBLEM, connection.name, detail)
            migration.reporter.warn(detail)
            return False
        source = migration.source
        ledger.set_meta(SENT, {"id": connection.id, "name": connection.name})
        await source.call(f"delete the connection {connection.name}", source.sdk.connections.delete, connection.id)
        clock = source.governor.clock
        for attempt in range(CONFIRM_READS):
            if await _gone(migration):
                break
            if attempt + 1 < CONFIRM_READS:
                await clock.sleep(2.0 ** (attempt + 1))
        else:
            detail = (f"{connection.name} was deleted (Auth0 answered) but still reads back after {CONFIRM_READS} "
                      "tries; no user is counted as deleted: run the same command again to confirm")
            ledger.add_problem(PROBLEM, connection.name, detail)
            migration.reporter.warn(detail)
            return False
    ledger.record_deletions([u.ordinal for u in ledger.migrated_users()], [], "")
    ledger.mark_phase("cutover")
    migration.reporter.info(f"deleted the source connection {connection.name} and its users")
    return True
