"""Linked accounts: the secondaries of each migrated primary move to its new copy, or are named.

Auth0 deletes a user's linked secondaries with it (reference §2, "impact of deleting connections and
linked accounts"), so before cutover deletes an old primary its secondaries must be elsewhere.

* **read** (`note_record`, from the export as it is ingested, in `run` and `plan`): a user whose
  `identities` has more than one entry is a primary; each entry after the first is a secondary, an
  `identity` holding (item `<provider>|<user_id>`, the secondary's own user id) with its connection.
  A record whose first identity is of another connection is a primary ELSEWHERE that holds a user of
  the source connection as its secondary: it is reported (problem `linked-elsewhere`) and never
  ingested, so no duplicate of it is imported.
* **classify** (`classify`, `run` and `plan`): across tenants no secondary can be carried (the
  secondary's account lives in the source tenant; Auth0 links only accounts of one tenant): each is
  `cannot`, named with its connection, and `--allow-loss identities` is the flag that lets cutover
  delete the primary (and with it the secondary) anyway.
* **relink** (`relink`, one tenant, after the new primary is verified): per secondary, unlink it from
  the old primary (`DELETE /users/{old}/identities/{provider}/{user_id}`: it is a user again), then
  link it to the new one (`POST /users/{new}/identities {provider, user_id, connection_id?}`). Each
  step is written to the ledger before its call and after its answer (`IdentityStep`); a run
  killed between the two finds the secondary by id as a user of its own (`GET /users/{secondary}`)
  and links it; it is never left to be deleted with the old primary.
* **verify** (`verify_links`): one `GET /users/{new}` per new primary with carried secondaries; each
  found among its identities is `verified`, which is what lets cutover delete the old primary.

Primaries are handled concurrently (`run_pool`, up to the rate limit); the secondaries of one primary one
after the other, so two links never race on the same user.

With `--user-ids keep` in one tenant the new primary has the old one's id until cutover deletes the
old (id-only endpoints then act on the old: `directory.get_user`, reference §6), so a link by id would
go to the old primary. There the secondary is unlinked before cutover and `parked` (a user of its
own, safe from the old primary's deletion: the ledger's gate lets the old primary go), and
`relink_after_cutover` links and verifies it once the old copy is confirmed deleted. A secondary whose old
primary cutover did not delete (kept in the source for what it holds) is linked back to it (`unpark_kept`),
never left a user of its own.

Choices where Auth0 is silent:

* The link sends `user_id` as the identity shows it (no `provider|` prefix), as Auth0's own
  account-linking rule sample does (`identities[0].user_id`) and as the unlink path takes it; the
  go-auth0 recording TestUserManager_Link shows the prefixed form accepted too (for `auth0`), and
  the local tenant takes both. `connection_id` goes along for `auth0` secondaries (their connection
  resolved by name), so a database id held by two connections is not ambiguous.
* A link answered 409 ("Specified identity already exists") is taken as done and left to verify.
* Keep in one tenant, a primary cutover kept in the source: its parked secondary is linked back by the shared id,
  which reaches the old copy while it exists (the same UNCONFIRMED reading of Auth0's id-only endpoints the
  unlink that parked it relies on). Rather that than leave the secondary a user of its own: its owner would log
  in to an empty account. Each later run that keeps the primary parks and links it back again (two calls).
* How Auth0's bulk export presents a secondary of the exported connection whose primary is in another
  connection is UNCONFIRMED: the tool assumes the export shows the primary (its own connection first
  in `identities`), as the issue states, and the local tenant models that. If a real export showed no
  such record, nothing would be reported and nothing duplicated either; if it showed the secondary as
  a user of its own, it would be migrated as one (its link is then not carried).
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..auth0.paging import checkpoint_items, every
from ..errors import Conflict, NotFoundError
from ..ledger import IdentityMove, IdentityStep
from ..pool import run_pool
from .context import Migration

CROSS_TENANT = ("a linked account cannot move to another tenant: the secondary {item} of connection {connection} "
                "stays in the source and is deleted with its primary; --allow-loss identities lets cutover "
                "delete it anyway")
PARKED = ("unlinked from the old primary, a user of its own; linked to the new primary once cutover deletes the "
          "old one (keep in one tenant: until then both hold the same id)")


class LinkedAccounts:
    """What the export's records say about linked accounts, collected as they are read (`stages/ingest.py`):
    the secondaries of our users in `rows`, for the export stage to write."""

    def __init__(self, source_connection: str) -> None:
        self.source_connection = source_connection
        self.rows: list[tuple[int, str, str]] = []  # (ordinal, `<provider>|<user id>`, connection)

    def note_record(self, ordinal: int, source_id: str, record: dict[str, Any]) -> str | None:
        """Note the secondaries of this exported user; when it is a primary of another connection (not ours to
        migrate), the problem to report instead."""
        identities = record.get("identities")
        if not isinstance(identities, list) or not identities:
            return None
        own = identities[0].get("connection") if isinstance(identities[0], dict) else None
        if own is not None and own != self.source_connection:
            held = [f"{i.get('provider')}|{i.get('user_id')}" for i in identities[1:]
                    if isinstance(i, dict) and i.get("connection") == self.source_connection]
            return (f"{', '.join(held) or 'a user'} of {self.source_connection} is a linked secondary of {source_id} "
                    f"(connection {own}): not migrated as a user of its own; unlink it in the source to migrate it")
        for entry in identities[1:]:
            if isinstance(entry, dict) and entry.get("provider") and entry.get("user_id") is not None:
                self.rows.append((ordinal, f"{entry['provider']}|{entry['user_id']}", str(entry.get("connection"))))
        return None


def classify(migration: Migration) -> None:
    """Mark `cannot` what these options cannot carry (across tenants: every secondary), in run and plan alike."""
    if migration.same_tenant:
        return
    ledger = migration.ledger
    moves = ledger.identity_moves(("found",), migrated=False)
    with ledger.tx():
        for move in moves:
            ledger.set_holdings("identity", "cannot", [(move.ordinal, move.item)],
                                CROSS_TENANT.format(item=move.item, connection=move.connection))


def _split(item: str) -> tuple[str, str]:
    provider, _, user_id = item.partition("|")
    return provider, user_id


class _Relinker:
    def __init__(self, migration: Migration) -> None:
        self.migration = migration
        self.ledger = migration.ledger
        self.client = migration.target  # one tenant: source and target are the same client
        self.connection_ids: dict[str, str | None] = {}

    async def connection_id(self, name: str) -> str | None:
        if name not in self.connection_ids:
            found = await every(checkpoint_items(self.client, f"find connection {name!r}",
                                                 self.client.sdk.connections.list, name=name, take=50))
            self.connection_ids[name] = next((str(c.id) for c in found if c.name == name), None)
        return self.connection_ids[name]

    async def is_a_user(self, item: str) -> bool:
        """True when the secondary is a user of its own (unlinked), read by its id."""
        try:
            await self.client.call(f"read the secondary {item}", self.client.sdk.users.get, item, fields="user_id",
                                   include_fields=True)
        except NotFoundError:
            return False
        return True

    async def unlink(self, move: IdentityMove, *, parked: bool) -> IdentityMove:
        provider, user_id = _split(move.item)
        if move.step == "found" or not await self.is_a_user(move.item):
            self.ledger.set_identity_step(move.ordinal, move.item, "unlinking")
            await self.client.call(f"unlink {move.item} from {move.source_id}", self.client.sdk.users.identities.delete,
                                   move.source_id, provider, user_id)
        step: IdentityStep = "parked" if parked else "unlinked"
        self.ledger.set_identity_step(move.ordinal, move.item, step)
        if parked:
            self.ledger.set_holdings("identity", "found", [(move.ordinal, move.item)], PARKED)
        return move._replace(step=step)

    async def link_back(self, move: IdentityMove) -> None:
        """Link a parked secondary to its old primary again (`unpark_kept`); resumable: a secondary that is no
        longer a user of its own was linked back by the run that stopped."""
        if await self.is_a_user(move.item):
            provider, user_id = _split(move.item)
            body: dict[str, Any] = {"provider": provider, "user_id": user_id}
            if provider == "auth0" and (cid := await self.connection_id(move.connection)):
                body["connection_id"] = cid
            with contextlib.suppress(Conflict):
                await self.client.call(f"link {move.item} back to {move.source_id}",
                                       self.client.sdk.users.identities.link, move.source_id, **body)
        with self.ledger.tx():
            self.ledger.set_identity_step(move.ordinal, move.item, "found")
            self.ledger.set_holdings("identity", "found", [(move.ordinal, move.item)])

    async def link(self, move: IdentityMove) -> None:
        provider, user_id = _split(move.item)
        target_id = move.target_id or ""
        if move.step == "linking" and not await self.is_a_user(move.item):
            pass  # the link went through before the run stopped: no longer a user of its own
        else:
            self.ledger.set_identity_step(move.ordinal, move.item, "linking")
            body: dict[str, Any] = {"provider": provider, "user_id": user_id}
            if provider == "auth0" and (cid := await self.connection_id(move.connection)):
                body["connection_id"] = cid
            with contextlib.suppress(Conflict):  # "Specified identity already exists": verify reads it back
                await self.client.call(f"link {move.item} to {target_id}", self.client.sdk.users.identities.link,
                                       target_id, **body)
        with self.ledger.tx():
            self.ledger.set_identity_step(move.ordinal, move.item, "linked")
            self.ledger.set_holdings("identity", "carried", [(move.ordinal, move.item)])


async def relink(migration: Migration) -> None:
    """Move each secondary of a verified, migrated primary from the old primary to the new (one tenant).

    No phase flag: the ledger's steps say what is left, so a later run (more users verified) does the rest."""
    if not migration.same_tenant:
        return
    keep = migration.options.user_ids == "keep"
    moves = migration.ledger.identity_moves(("found", "unlinking", "unlinked", "linking"))
    if not moves:
        return
    migration.reporter.phase("move linked accounts to the new primaries", total=len(moves))
    relinker = _Relinker(migration)

    async def move_all(held: list[IdentityMove]) -> int:
        # One primary's secondaries one after the other (each step written before its call); primaries at once.
        for move in held:
            if move.step in ("found", "unlinking"):
                move = await relinker.unlink(move, parked=keep)
            if not keep:
                await relinker.link(move)
        return len(held)

    await run_pool(list(_by_primary(moves).values()), move_all,
                   on_result=lambda _, n: migration.reporter.advance(n))


def _by_primary(moves: list[IdentityMove]) -> dict[int, list[IdentityMove]]:
    grouped: dict[int, list[IdentityMove]] = {}
    for move in moves:
        grouped.setdefault(move.ordinal, []).append(move)
    return grouped


async def relink_after_cutover(migration: Migration) -> None:
    """Keep in one tenant: link each parked secondary to the new primary once its old primary is deleted."""
    relinker = _Relinker(migration)
    due = [move for move in migration.ledger.identity_moves(("parked", "linking")) if move.deleted]

    async def link_all(held: list[IdentityMove]) -> None:
        for move in held:
            await relinker.link(move)

    await run_pool(list(_by_primary(due).values()), link_all)
    await verify_links(migration)


async def unpark_kept(migration: Migration) -> None:
    """Keep in one tenant, after cutover: a parked secondary whose old primary was not deleted (cutover kept it in
    the source for what it holds, or could not confirm the delete) is linked back to it, by the shared id that
    id-only endpoints read as the old copy while it exists (as the unlink that parked it did). Left parked it
    would be a user of its own, linked to nobody, while its primary stays. The run that lets the primary go
    parks it again and links it to the new copy (`relink`, `relink_after_cutover`)."""
    due = [move for move in migration.ledger.identity_moves(("parked",)) if not move.deleted]
    if not due:
        return
    relinker = _Relinker(migration)

    async def link_all(held: list[IdentityMove]) -> None:
        for move in held:
            await relinker.link_back(move)

    await run_pool(list(_by_primary(due).values()), link_all)


async def verify_links(migration: Migration) -> None:
    """`verified` for each carried secondary found among the identities of its new primary (one read per primary);
    one not found goes back a step, so the next run links it again."""
    if not migration.same_tenant:
        return
    ledger = migration.ledger
    by_primary: dict[str, list[IdentityMove]] = {}
    for move in ledger.identity_moves(("linked",)):
        if move.state == "carried" and move.target_id:
            by_primary.setdefault(move.target_id, []).append(move)
    if not by_primary:
        return
    migration.reporter.phase("verify linked accounts", total=len(by_primary))
    client = migration.target

    async def read(target_id: str) -> set[str]:
        user = await client.call(f"read the identities of {target_id}", client.sdk.users.get, target_id,
                                 fields="identities", include_fields=True)
        return {f"{i.provider}|{i.user_id}" for i in user.identities or []}

    def check(target_id: str, held: set[str]) -> None:
        moves = by_primary[target_id]
        with ledger.tx():
            for move in moves:
                if move.item in held:
                    ledger.set_holdings("identity", "verified", [(move.ordinal, move.item)])
                else:
                    ledger.set_holdings("identity", "carried", [(move.ordinal, move.item)],
                                        f"not among the identities of {target_id} when read back; linked again "
                                        "by the next run")
                    ledger.set_identity_step(move.ordinal, move.item, "unlinked")
        migration.reporter.advance()

    await run_pool(list(by_primary), read, on_result=check)
