"""The orchestrator: `plan`, `run`, `verify` and `status`, each a library call the CLI is a thin twin of.

`run` walks the stages in order (DESIGN.md) and records each step in the ledger; running it again
with the same state resumes where it stopped. It refuses, before writing anything, what cannot
work: unknown connections, missing scopes (named, exactly those the command will call on each
tenant: `auth0/scopes.py`), a target connection enabled for no application, `keep` in one tenant
without cutover, a prefix that is missing, flags that would fail every user (`--id-prefix`,
`--record-source-id`, named), a `--users` list naming nobody, a `--from-file` that is not a list of
users, a `--state` that is not a ledger.

`run --refresh` (same ledger) carries what changed in the source since the ledger's last export
(`_refresh`, stages/delta.py); `plan --refresh` shows that delta, found on a copy of the ledger.

Exit codes (`summarize`): 4 when verification found differences; else 3 when any user is failed,
held back or pending, or kept in the source by cutover (`KEPT_IN_SOURCE`: it holds what was not carried), or
has its grants still to write and verify after cutover (`grants_after_cutover`: keep in one tenant), or
the input had a problem the run could not carry (a bad line, a listed
user not in the source...: every kind in `reports.problems` but `INFORMATIONAL_PROBLEMS`, including a refresh's
`delta-not-carried`: a change it could not carry, named per user); else 0.

Example::

    result = await run(options, source=TenantClient(creds), target=None)
    print(result.exit_code)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import Any, get_args

from . import timeline
from .auth0 import scopes
from .auth0.client import TenantClient
from .auth0.paging import checkpoint_items, every, first, offset_items
from .errors import InsufficientScopeError, UsageError
from .formats.failed_users import RetryUser
from .formats.failed_users import write_failed_users as write_users_to_retry
from .formats.import_record import _BAD_ID_CHAR as BAD_ID_CHAR
from .formats.import_record import MAX_USER_ID_CHARS
from .formats.users_file import check_users_file, read_selection
from .import_schema import _RESERVED_APP_METADATA as RESERVED_APP_METADATA
from .ledger import LOSS_GROUPS, MIGRATED, NOT_CARRIED, HoldingKind, Ledger, NotCarried
from .model import (
    EXIT_FAILED_USERS,
    EXIT_OK,
    EXIT_VERIFY,
    Command,
    Failure,
    MigrationOptions,
    PlanResult,
    QuietReporter,
    Reporter,
    RunResult,
)
from .pool import together
from .stages import (
    connection_delete,
    cutover,
    delta,
    export,
    grants,
    grants_delta,
    hashes,
    idmap,
    import_jobs,
    inventory,
    mfa,
    organizations,
    restore,
    transform,
)
from .stages import identities as linked_accounts
from .stages import rollback as undo
from .stages import verify as verify_stage
from .stages.context import Connection, Migration
from .stages.mfa import not_carried as mfa_not_carried

#: Problem kinds that are facts about the input, not something the tool failed to carry: the hashes of
#: users who are not selected (a `--users` subset, or users deleted since support made the file), and
#: hash rows of users who have no password (the user's own state says what became of them: held back,
#: or imported without one under `--missing-hash import`), and a user id repeated in the hash file whose
#: repeat was settled (the same hash used once, or the line the owner's `--duplicate-hash` rule picked; lines
#: that disagree under the default rule hold the user back, and that user's state says so). Every other kind
#: makes the exit code at least 3.
#: `stale-hash` names a user imported without its stale hash, as the owner chose (`--stale-hash import-without-hash`);
#: `deleted-in-source` is a refresh's report of users the source no longer has, kept in or deleted from the target.
#: `permissions-not-read-again` says a refresh compared DIRECT permissions only of the users it changed.
#: `organization-connection-enabled` names each organization `--enable-org-connections` enabled the target
#: connection on (`organization-connection-to-enable`: what `plan` says run will enable).
INFORMATIONAL_PROBLEMS = frozenset({"hash-without-user", "hash-without-password", "hash-repeat", "stale-hash",
                                    "deleted-in-source", "permissions-not-read-again",
                                    "organization-connection-enabled", "organization-connection-to-enable"})


#: The name a run gives its source when the users come from `--from-file` with no `--source-connection`.
FILE_SOURCE = "from-file"


def default_state_path(options: MigrationOptions, source: TenantClient, target: TenantClient) -> str:
    """`<tenant>_<connection>__<tenant>_<connection>.migration.sqlite` in the current folder."""
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9.-]+", "-", text.split("://")[-1]).strip("-")[:60]
    src = f"{slug(source.name)}_{slug(options.source_connection or FILE_SOURCE)}"
    dst = f"{slug(target.name)}_{slug(options.target_connection)}"
    return os.path.abspath(f"{src}__{dst}.migration.sqlite")


def check_options(options: MigrationOptions, same_tenant: bool) -> None:
    """Refuse, before anything is read or written, flags that cannot work or would fail every user.

    The one check of the options (the transform's per-user checks still run: a fine prefix can still
    make one long id too long). A wrong flag is one usage error naming the flag, not a million
    per-user failures. The `--users` file is read here too, so a list naming nobody stops the run
    before a ledger exists.
    """
    if not options.source_connection and not options.from_file:
        raise UsageError("--source-connection is required: it names the database connection users come from "
                         "(only --from-file users, from another system, come without one)")
    if not options.source_connection:
        for flag, given in (("--password-hashes", options.password_hashes),
                            ("--delete-source-users", options.delete_source_users)):
            if given:
                raise UsageError(f"{flag} needs --source-connection: " + (
                    "the hash file's lines name the connection they belong to (put the hashes in the --from-file "
                    "users instead, as the import shape allows)" if flag == "--password-hashes" else
                    "users from a file have no source copy to delete"))
    if options.user_ids not in ("regenerate", "keep", "prefix"):
        raise UsageError(f"--user-ids must be regenerate, keep or prefix, not {options.user_ids!r}")
    if options.user_ids == "prefix" and not options.id_prefix:
        raise UsageError("--user-ids prefix needs --id-prefix STR (the new ids become auth0|STR<old id>)")
    if options.id_prefix is not None and options.user_ids != "prefix":
        raise UsageError("--id-prefix only applies with --user-ids prefix")
    if options.id_prefix and (BAD_ID_CHAR.search(options.id_prefix) or len(options.id_prefix) >= MAX_USER_ID_CHARS):
        raise UsageError(f"--id-prefix {options.id_prefix!r}: a user id takes no whitespace, '|' or control "
                         f"characters, and the prefix must leave room for the old id within {MAX_USER_ID_CHARS} "
                         "characters")
    key = options.record_source_id
    if key is not None:
        if not key or "." in key or "$" in key:
            raise UsageError(f"--record-source-id {key!r}: an app_metadata key must be non-empty, without '.' or "
                             "'$' (Auth0 refuses such metadata field names)")
        if key in RESERVED_APP_METADATA:
            raise UsageError(f"--record-source-id {key!r} is a reserved app_metadata key that Auth0's import "
                             "refuses; choose another name, e.g. legacy_user_id")
    if options.delete_source_connection:
        if options.delete_source_users:
            raise UsageError("--delete-source-connection deletes every user of the source connection with it: give "
                             "it or --delete-source-users, not both")
        if options.users_file or options.from_file:
            flag = "--users" if options.users_file else "--from-file"
            raise UsageError(f"--delete-source-connection deletes the whole connection, and {flag} migrates"
                             " only part of it (or none): use --delete-source-users to delete the verified "
                             "users one by one")
    if options.user_ids == "keep" and same_tenant and options.source_connection and not (
            options.delete_source_users or options.delete_source_connection):
        raise UsageError(
            "--user-ids keep in one tenant needs --delete-source-users (or --delete-source-connection): until the "
            "source copy is deleted two users "
            "share each id, and Auth0's id-only endpoints (get, update, delete a user; Actions) would answer with "
            "the wrong one. Use --user-ids prefix or regenerate to keep both copies.")
    if same_tenant and options.create_missing_roles:
        raise UsageError("--create-missing-roles applies across tenants: in one tenant every role is already there")
    if same_tenant and options.source_connection == options.target_connection:
        raise UsageError("the source and target connections are the same connection")
    unknown = [name for name in options.allow_loss if name not in LOSS_GROUPS]
    if unknown:
        raise UsageError(f"--allow-loss {','.join(unknown)}: unknown; the names are {', '.join(LOSS_GROUPS)} "
                         "(comma-separated)")
    if options.missing_hash not in ("hold", "import"):
        raise UsageError("--missing-hash must be hold or import")
    if options.duplicate_hash not in ("first", "last", "hold"):
        raise UsageError("--duplicate-hash must be first, last or hold")
    if options.stale_hash not in ("hold", "import-without-hash"):
        raise UsageError("--stale-hash must be hold or import-without-hash")
    for flag, path in (("--password-hashes", options.password_hashes), ("--from-file", options.from_file),
                       ("--users", options.users_file), ("--mfa-secrets", options.mfa_secrets)):
        if path and not os.path.isfile(path):
            raise UsageError(f"{flag} {path}: no such file")
    if options.users_file:
        read_selection(options.users_file)  # raises when it lists nobody; its bad lines are counted by the export
    if options.from_file:
        check_users_file(options.from_file)  # a file that is not a list of users at all


async def resolve_connection(client: TenantClient, name: str) -> Connection:
    for item in await every(checkpoint_items(client, f"find connection {name!r}", client.sdk.connections.list,
                                             name=name, take=100)):
        if item.name == name:
            if item.strategy != "auth0":
                raise UsageError(f"connection {name!r} in {client.name} is a {item.strategy} connection; "
                                 "only database (auth0) connections can be migrated")
            return Connection(id=str(item.id), name=name)
    raise UsageError(f"there is no connection named {name!r} in {client.name}")


async def check_enabled_clients(client: TenantClient, connection: Connection) -> None:
    """Auth0 imports users only into a connection enabled for at least one application: check it up front."""
    if await first(checkpoint_items(client, f"list the applications enabled for {connection.name!r}",
                                    client.sdk.connections.clients.get, connection.id, take=1,
                                    include_totals=None)) is None:
        raise UsageError(
            f"the target connection {connection.name!r} in {client.name} is not enabled for any application, and "
            "Auth0 imports users only into a connection enabled for at least one. Enable it for an application "
            f"(Dashboard > Authentication > Database > {connection.name} > Applications), then run again.")


async def check_scopes(command: scopes.Command, options: MigrationOptions, source: TenantClient,
                       target: TenantClient) -> None:
    """Refuse, before anything is written, a token that lacks a scope this command will need (all named)."""
    same = source is target
    sides: list[tuple[str, TenantClient, list[str]]] = []
    kwargs = {"cross_tenant": not same, "delete_source_users": options.delete_source_users,
              "refresh": options.refresh, "propagate_deletes": options.refresh and options.propagate_deletes,
              "create_missing_roles": options.create_missing_roles,
              "enable_org_connections": options.enable_org_connections,
              "mfa_secrets": options.mfa_secrets is not None,
              "delete_source_connection": options.delete_source_connection}
    source_ops = scopes.needed_operations(command, "source", **kwargs)
    target_ops = scopes.needed_operations(command, "target", **kwargs)
    if same:
        sides.append(("source and target", source, list(dict.fromkeys(source_ops + target_ops))))
    else:
        sides += [("source", source, source_ops), ("target", target, target_ops)]
    problems, names = [], []
    for role, client, operations in sides:
        missing = scopes.missing_scopes(operations, await client.granted_scopes())
        if missing:
            lacks = "; ".join(f"{scopes.describe(op)} (to {op})" for op, _ in missing)
            problems.append(f"the {role} token ({client.name}) lacks: {lacks}")
            names += [s for _, needed in missing for s in needed]
    if problems:
        raise InsufficientScopeError(
            "; ".join(problems) + ". Grant them to the machine-to-machine application under Applications > APIs > "
            "Auth0 Management API (its client grant), then run again.", scopes=list(dict.fromkeys(names)),
            operation="scopes")


def fingerprint(options: MigrationOptions, source: TenantClient, target: TenantClient) -> dict[str, Any]:
    return {"source": source.name, "target": target.name, "source_connection": options.source_connection,
            "target_connection": options.target_connection, "user_ids": options.user_ids,
            "id_prefix": options.id_prefix, "record_source_id": options.record_source_id,
            "password_hashes": os.path.abspath(options.password_hashes) if options.password_hashes else None,
            "from_file": os.path.abspath(options.from_file) if options.from_file else None,
            "users_file": os.path.abspath(options.users_file) if options.users_file else None,
            "missing_hash": options.missing_hash,
            # Only when chosen: ledgers written before the flag existed keep resuming.
            **({"mfa_secrets": os.path.abspath(options.mfa_secrets)} if options.mfa_secrets else {}),
            **({"duplicate_hash": options.duplicate_hash} if options.duplicate_hash != "hold" else {}),
            **({"stale_hash": options.stale_hash} if options.stale_hash != "hold" else {})}


async def open_migration(options: MigrationOptions, source: TenantClient, target: TenantClient | None,
                         reporter: Reporter, *, command: scopes.Command = "run", state: str | None = None,
                         create: bool = True) -> Migration:
    target = target or source
    same = target is source
    check_options(options, same)
    await check_scopes(command, options, source, target)
    path = state or options.state or default_state_path(options, source, target)
    # Users from a file with no source connection: nothing is read from or deleted in a source connection.
    source_connection = (await _source_connection(options, source, path) if options.source_connection
                         else Connection(id="", name=FILE_SOURCE))
    target_connection = await resolve_connection(target, options.target_connection)
    if command in ("run", "plan"):
        await check_enabled_clients(target, target_connection)
    # A refresh may bring a newer hash file (the support file of a later day).
    ledger = Ledger.open(path, fingerprint(options, source, target), create=create,
                         may_change=("password_hashes",) if options.refresh else ())
    if ledger.get_meta("run_id") is None:
        ledger.set_meta("run_id", secrets.token_hex(4))
    if ledger.get_meta("rolled_back") is not None:
        ledger.close()
        raise UsageError(f"{path} belongs to a migration that was rolled back (auth0-migrate rollback); start again "
                         "with a new --state")
    migration = Migration(options, ledger, source, target, reporter, source_connection, target_connection)
    if command != "plan":  # a plan's ledger is thrown away: nothing to report from
        timeline.record(migration, "run --refresh" if options.refresh else command)
    return migration


async def _source_connection(options: MigrationOptions, source: TenantClient, path: str) -> Connection:
    """The source connection; once this migration's `--delete-source-connection` sent its DELETE and the connection
    is gone, the one its ledger noted (`connection_delete.SENT`), so a run stopped after that resumes."""
    name = options.source_connection or ""
    try:
        return await resolve_connection(source, name)
    except UsageError:
        deleted = _connection_deleted(path, name) if options.delete_source_connection else None
        if deleted is None:
            raise
        return deleted


def _connection_deleted(path: str, name: str) -> Connection | None:
    """The source connection named `name` whose DELETE the ledger at `path` noted, or None."""
    if not os.path.isfile(path):
        return None
    with Ledger.open_readonly(path) as ledger:
        sent = ledger.get_meta(connection_delete.SENT)
    return Connection(id=str(sent["id"]), name=name) if sent and sent.get("name") == name else None


async def ingest_source(migration: Migration) -> None:
    """Stages 1-2 and most of 4: hash file indexed, source read, joined, transformed and packed as it is read."""
    _note_input_files(migration)
    hashes.load_hashes(migration)
    await export.export_source(migration)
    hashes.join_hashes(migration)


async def run(options: MigrationOptions, *, source: TenantClient, target: TenantClient | None = None,
              reporter: Reporter | None = None) -> RunResult:
    """Migrate (or resume migrating) the users of one connection into another, and verify them."""
    reporter = reporter or QuietReporter()
    _check_refresh_options(options)
    migration = await open_migration(options, source, target, reporter, command="run",
                                     create=not options.refresh)
    if options.refresh:
        try:
            return await _refresh(migration)
        finally:
            timeline.finish(migration)
            migration.ledger.close()
    try:
        _show_stages_done(migration)
        await ingest_source(migration)
        linked_accounts.classify(migration)
        await mfa.read_factors(migration)
        await organizations.read(migration)
        await _read_grants_while_importing(migration)
        await idmap.map_ids(migration)
        if not migration.shared_ids:  # with shared ids: after cutover (`_cut_over`)
            await restore.restore_grants(migration)
        await organizations.restore(migration)
        if not migration.shared_ids:
            await verify_stage.verify_grants(migration)
        await organizations.verify(migration)
        await linked_accounts.relink(migration)
        await linked_accounts.verify_links(migration)
        await mfa.verify_factors(migration)
        await _cut_over(migration)
        return summarize(migration.ledger)
    finally:
        timeline.finish(migration)
        migration.ledger.close()


#: The ledger's phases of a run, in order, as its stages name themselves to the reporter.
STAGE_NAMES = {"hashes-loaded": "load password hashes", "export": "export source users",
               "hashes": "join password hashes", "grants": "read roles and permissions",
               "transform": "transform and validate", "pack": "pack import files", "import": "import files",
               "idmap": "map ids and check profiles in the target", "restore": "restore roles and permissions",
               "verify": "verify permissions in the target", "cutover": "delete verified users from the source"}


def _show_stages_done(migration: Migration) -> None:
    """A resumed run says which stages an earlier run finished (they are skipped), in run order."""
    done = set(migration.ledger.phases_done())
    names = [name for phase, name in STAGE_NAMES.items() if phase in done]
    if names:
        migration.reporter.info(f"resuming {migration.ledger.path}")
        for name in names:
            migration.reporter.info(f"✓ {name} (done in an earlier run)")


async def _read_grants_while_importing(migration: Migration) -> None:
    """Stages 3, 4 and 5 at once: the source's roles and permissions are read while Auth0 processes the import
    files (neither needs the other), so the run takes the longer of the two, not their sum (issue 9)."""
    transform.transform_users(migration)
    transform.pack_users(migration)
    await together(grants.read_grants(migration), import_jobs.import_users(migration))


async def _import_ready_users(migration: Migration) -> None:
    """Stages 4 and 5 for the users read so far and not yet imported: transform, pack, import."""
    transform.transform_users(migration)
    transform.pack_users(migration)
    await import_jobs.import_users(migration)


async def _cut_over(migration: Migration) -> None:
    """Stage 9, when asked for: delete the verified source copies, one by one or with their whole connection
    (and, with keep in one tenant, write and verify the grants of the deleted users, apply memberships and links
    again, and read the MFA factors back: until the deletion the shared id read the source copy). Across
    tenants deleting a source user leaves the target tenant as it was: nothing follows there."""
    options = migration.options
    if options.delete_source_connection:
        deleted = await connection_delete.delete_source_connection(migration)
    elif options.delete_source_users:
        await cutover.delete_source_copies(migration)
        deleted = True  # the steps below follow every pass, each doing what the users deleted so far need
    else:
        return
    if deleted and migration.shared_ids:
        await cutover.grants_after_cutover(migration)
        await organizations.reapply(migration)
        await linked_accounts.relink_after_cutover(migration)
        await linked_accounts.unpark_kept(migration)
        await mfa.verify_factors(migration)  # in one tenant the shared id now reads the target copy


def _check_refresh_options(options: MigrationOptions) -> None:
    if options.propagate_deletes and not options.refresh:
        raise UsageError("--propagate-deletes only applies with --refresh")
    if options.refresh_permissions and not options.refresh:
        raise UsageError("--refresh-permissions only applies with --refresh")
    if options.refresh and options.from_file:
        raise UsageError("--refresh exports the source connection again; it does not apply to --from-file")


async def _refresh(migration: Migration) -> RunResult:
    """`run --refresh`: carry what changed in the source since the ledger's last export (stages/delta.py)."""
    ledger = migration.ledger
    if not ledger.phase_done("export"):
        raise UsageError(f"{ledger.path} has no finished export to refresh from: run the same command without "
                         "--refresh first")
    generation = ledger.refresh_in_progress() or ledger.begin_refresh()
    await _find_delta(migration, generation)
    linked_accounts.classify(migration)
    await mfa.read_factors(migration)
    await grants.read_grants(migration)
    await _import_ready_users(migration)
    await delta.upsert_changes(migration)
    await delta.deletions(migration)
    if not ledger.phase_done("idmap"):
        ledger.open_refresh_verification()
    await idmap.map_ids(migration)
    if ledger.get_meta("refresh_grants") is None:
        ledger.set_meta("refresh_grants", await _refresh_grants_step(migration))
    if not migration.shared_ids:  # with shared ids: after cutover (`_cut_over`)
        await restore.restore_grants(migration)
        await verify_stage.verify_grants(migration, only=ledger.delta_ordinals())
    await linked_accounts.relink(migration)
    await linked_accounts.verify_links(migration)
    await mfa.verify_factors(migration)
    await _cut_over(migration)
    if ledger.phase_done("refresh-deletes") and (ledger.phase_done("cutover") or
                                                 not migration.options.delete_source_users):
        ledger.finish_refresh(generation)
    return summarize(ledger)


async def _find_delta(migration: Migration, generation: int) -> None:
    """The newer hash file indexed, the source exported again and diffed, the new users joined."""
    _note_input_files(migration)
    hashes.load_hashes(migration)
    await export.export_again(migration, generation, lambda known, record: delta.compare(migration, known, record))
    hashes.join_hashes(migration)


async def _refresh_grants_step(migration: Migration) -> dict[str, int]:
    """Roles and DIRECT permissions changed in the source since the last read, applied to the target as a diff."""
    ledger = migration.ledger
    permissions_of = None if migration.options.refresh_permissions else ledger.delta_ordinals(("updated",))
    changed = await grants_delta.refresh_grants(migration, permissions_of=permissions_of)
    if permissions_of is not None:
        ledger.add_problem("permissions-not-read-again", None, (
            "roles were compared for every migrated user, DIRECT permissions only for the users whose profile "
            "changed (Auth0 reads them one user at a time): run with --refresh-permissions to carry permission "
            "changes of the others too"))
    return {"grants_added": changed.added, "grants_removed": changed.removed}


async def verify(options: MigrationOptions, *, source: TenantClient, target: TenantClient | None = None,
                 reporter: Reporter | None = None, state: str | None = None) -> RunResult:
    """Re-read the target now and compare every migrated user again (the `verify` command; `result.command`
    is "verify")."""
    reporter = reporter or QuietReporter()
    migration = await open_migration(options, source, target, reporter, command="verify", state=state, create=False)
    try:
        ledger = migration.ledger
        for phase in ("reverify-idmap", "reverify-grants"):
            ledger.forget_meta(f"phase:{phase}", f"{phase}_export_job_id")
        await idmap.map_ids(migration, phase="reverify-idmap")
        await verify_stage.verify_grants(migration, phase="reverify-grants", read_all_permissions=True)
        await organizations.verify_again(migration)
        await mfa.verify_factors(migration)
        return summarize(ledger, command="verify")
    finally:
        timeline.finish(migration)
        migration.ledger.close()


def _note_input_files(migration: Migration) -> None:
    """Say so when an input file changed since this ledger read it: a resumed run does not read it again.

    An owner who fixes a bad line and runs the same command would otherwise wait for a user that
    never comes. The files are told apart by size and modification time (reading a big file to
    hash it on every resume would cost more than it tells).
    """
    options = migration.options
    files = {flag: path for flag, path in (("--from-file", options.from_file), ("--users", options.users_file),
                                           ("--password-hashes", options.password_hashes)) if path}
    stamps = {flag: [os.stat(path).st_size, os.stat(path).st_mtime_ns] for flag, path in files.items()}
    stored = migration.ledger.get_meta("input_files")
    if stored is None:
        migration.ledger.set_meta("input_files", stamps)
        return
    for flag in sorted(f for f in stamps if stored.get(f) not in (None, stamps[f])):
        migration.reporter.warn(f"{flag} {files[flag]} changed since this ledger read it, and a resumed run does not "
                                "read it again: to carry the changes, run with a new --state (users already in the "
                                "target are not imported twice, and are recognised as this migration's where their id "
                                "or --record-source-id proves it)")


def _unfinished_reason(row: NotCarried) -> str:
    """Why a user that is neither migrated nor refused is not in the target (the summary's guard)."""
    status = row.status
    if status == "exported":
        return "read from the source but not yet transformed; run the same command again to continue"
    if status == "ready":
        where = f" (import file {row.file_id})" if row.file_id else ""
        return f"ready but not yet imported{where}; run the same command again to continue"
    if status == "conflict":
        said = f"{row.code}: {row.message}" if row.message else row.code or "a conflict"
        return f"the import answered {said}, and the user was not yet found in the target"
    return f"left in the state {status!r}, which this version of auth0-migrate does not know"


def summarize(ledger: Ledger, *, unfinished_are_failures: bool = True, command: Command = "run") -> RunResult:
    """The run's numbers, failures and differences, read from the ledger (so `status` shows the same).

    Every user is counted once: migrated (`imported`, `already_in_target`), `held_back`, `failed`, or
    `pending` (anything else). Every user not migrated is in `failures` with a reason: a pending user
    as `NOT_FINISHED` (unless `unfinished_are_failures` is False, as for `plan`, where all are pending).
    A migrated user whose source copy cutover could not confirm deleted, or kept in the source because it
    holds what was not carried (`KEPT_IN_SOURCE`, `users.kept_in_source`), is listed too, with its code.
    With keep in one tenant a user's grants are checked only after its source copy is deleted: until then it
    counts in `users.grants_after_cutover` (profile verified, grants not yet checked), neither `verified` nor
    failed.
    `reports.not_carried_by_import` lists by kind what no import carries (stages/inventory.py).
    """
    users = ledger.user_counts()
    grants = ledger.grant_counts()
    failures = [Failure(r.source_id, r.email, r.stage or "", r.code or "", r.message or "")
                if r.status in NOT_CARRIED or r.status in MIGRATED else
                Failure(r.source_id, r.email, r.stage or r.status, "NOT_FINISHED", _unfinished_reason(r))
                for r in ledger.users_not_carried()
                if unfinished_are_failures or r.status in NOT_CARRIED or r.status in MIGRATED]
    differences = [{"user_id": r.source_id, "target_id": r.target_id, "email": r.email,
                    "differences": json.loads(r.diffs)} for r in ledger.differences()]
    problems: dict[str, list[dict[str, Any]]] = {}
    for p in ledger.problems():
        problems.setdefault(p.kind, []).append({"ref": p.ref, "detail": p.detail})
    delta_counts = None
    if ledger.has_refresh_columns() and (ledger.generation() > 1 or ledger.refresh_in_progress()):
        for source_id, email, kind, message in ledger.delta_exceptions():
            problems.setdefault("delta-not-carried", []).append(
                {"ref": source_id, "detail": f"{email or source_id}: {kind}: {message}"})
        grants_counts = ledger.get_meta("refresh_grants") or {"grants_added": 0, "grants_removed": 0}
        delta_counts = {**ledger.delta_counts(), **grants_counts}
    files = [{"file_id": f.file_id, "bytes": f.bytes, "users": f.users, "job_id": f.job_id, "status": f.status}
             for f in ledger.files()]
    phases = ledger.phases_done()
    problem_counts = {kind: len(items) for kind, items in problems.items()}
    by_code = dict(sorted(Counter(f.code for f in failures).items()))
    reports = {"problems": problems, "problem_counts": problem_counts, "import_files": files,
               "phases_done": phases, "hash_file": ledger.get_meta("hashes"),
               "not_carried_by_import": inventory.not_carried_by_import(ledger, by_code),
               "holdings_not_carried": [{"user_id": h.source_id, "kind": h.kind, "item": h.item, "detail": h.detail}
                                        for kind in get_args(HoldingKind) for h in ledger.holdings(kind, ("cannot",))],
               "failures_by_code": by_code, "mfa_not_carried": mfa_not_carried(ledger),
               **({"roles_created": created} if (created := ledger.get_meta("roles_created")) else {})}
    dropped = any(kind not in INFORMATIONAL_PROBLEMS for kind in problem_counts)
    if differences:
        code = EXIT_VERIFY
    elif users["failed"] or users["held_back"] or users["pending"] or users["deletion_not_confirmed"] or dropped \
            or users["kept_in_source"] or users["grants_after_cutover"]:
        code = EXIT_FAILED_USERS
    else:
        code = EXIT_OK
    organizations, identities, mfa = holding_summary(ledger)
    return RunResult(command=command, users=users, grants=grants, failures=failures, differences=differences,
                     reports=reports, exit_code=code, state=ledger.path, delta=delta_counts,
                     organizations=organizations, identities=identities, mfa=mfa)


def write_failed_users(state: str, path: str, *, include_hashes: bool = False) -> int:
    """The retry file of a run (`--failed-users`): its users not carried, with reasons (formats/failed_users.py).

    Read from the ledger alone, so `status` writes it as `run` does; the users of a `--from-file` run are
    taken again from that file. Returns how many users the file holds.
    """
    with Ledger.open_readonly(state) as ledger:
        from_file = (ledger.get_meta("fingerprint") or {}).get("from_file")
        users = [RetryUser(r.source_id, r.email, r.status, r.stage, r.code, r.message)
                 for r in ledger.users_not_carried() if r.status not in MIGRATED]
    if from_file and not os.path.isfile(from_file):
        raise UsageError(f"--failed-users: the run's --from-file {from_file} is gone; its users cannot be written")
    return write_users_to_retry(path, users, from_file=from_file, include_hashes=include_hashes)


def holding_summary(ledger: Ledger) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The `organizations`, `identities` and `mfa` counts of a summary, from the ledger's holdings.

    A holding written to the target counts as restored (imported, relinked) whether or not it was verified
    yet; `*_verified` counts those read back there.
    """
    held = ledger.holding_counts()

    def found(kind: HoldingKind) -> int:
        return sum(held[kind][state] for state in ("found", "carried", "verified", "cannot"))

    def written(kind: HoldingKind) -> int:
        return held[kind]["carried"] + held[kind]["verified"]

    organizations = {"memberships": found("organization"), "memberships_restored": written("organization"),
                     "memberships_verified": held["organization"]["verified"],
                     "roles": found("organization-role"), "roles_restored": written("organization-role"),
                     "roles_verified": held["organization-role"]["verified"],
                     "cannot_carry": held["organization"]["cannot"] + held["organization-role"]["cannot"]}
    identities = {"secondaries": found("identity"), "relinked": written("identity"),
                  "verified": held["identity"]["verified"], "cannot_carry": held["identity"]["cannot"]}
    mfa = {"factors": found("mfa-factor"), "factors_imported": written("mfa-factor"),
           "factors_verified": held["mfa-factor"]["verified"], "cannot_carry": held["mfa-factor"]["cannot"]}
    return organizations, identities, mfa


async def rollback(*, state: str, source: TenantClient, target: TenantClient | None = None,
                   reporter: Reporter | None = None, password_hashes: str | None = None,
                   without_passwords: bool = False, dry_run: bool = False,
                   mfa_secrets: str | None = None) -> RunResult:
    """Take out of the target what the run of ledger `state` put there; bring back what its cutover deleted.

    Says first, through the reporter and in `reports` (`will_restore`, `cannot_restore`), what it will and
    cannot restore; `dry_run` stops there, reading nothing from the tenants. Resumable like `run` (the
    same command continues), with `run`'s exit codes: 0 all undone, 3 a user it could not (in `failures`).
    Source copies deleted by cutover come back with their password hashes only from `password_hashes` (the
    ledger keeps none); without it, `without_passwords` must say that they may come back without one. Their
    totp/phone/email MFA factors come back only from `mfa_secrets` (the `--mfa-secrets` file again).
    """
    reporter = reporter or QuietReporter()
    target = target or source
    same = target is source
    with Ledger.open_readonly(state) as reader:
        print_ = reader.get_meta("fingerprint")
        counts = reader.rollback_counts()
    if not print_:
        raise UsageError(f"{state} holds no migration to roll back")
    if (print_["source"], print_["target"]) != (source.name, target.name):
        raise UsageError(f"{state} is the migration from {print_['source']} to {print_['target']}; the tenants given "
                         f"are {source.name} and {target.name}")
    options = MigrationOptions(source_connection=print_["source_connection"],
                               target_connection=print_["target_connection"], user_ids=print_["user_ids"],
                               id_prefix=print_.get("id_prefix"), record_source_id=print_.get("record_source_id"),
                               password_hashes=password_hashes, mfa_secrets=mfa_secrets, state=state)
    to_reimport = counts["deleted_from_source_by_run"] - counts["restored_to_source"]
    _check_files(("--password-hashes", password_hashes), ("--mfa-secrets", mfa_secrets))
    can, cannot = undo.inventory(counts, source=f"{options.source_connection} ({source.name})",
                                 target=f"{options.target_connection} ({target.name})", hashes=password_hashes,
                                 same_tenant=same, mfa_secrets=mfa_secrets)
    for line in can:
        reporter.info(("would " if dry_run else "will ") + line)
    for line in cannot:
        reporter.warn("cannot restore: " + line)
    reports: dict[str, Any] = {"will_restore": can, "cannot_restore": cannot}
    if dry_run:
        return RunResult(command="rollback", users=counts, reports=reports, state=state)
    if to_reimport and not password_hashes and not without_passwords:
        raise UsageError(f"cutover deleted {to_reimport} source users; a rollback imports them again, and only "
                         "--password-hashes FILE (the support hash file) brings their passwords back. Give it, or "
                         "--without-passwords to bring them back without (they must reset their password)")
    options.delete_source_users = bool(to_reimport) or (same and options.user_ids == "keep")
    await check_scopes("rollback", options, source, target)
    ledger = Ledger.open(state, print_)
    migration: Migration | None = None
    try:
        source_connection = await resolve_connection(source, options.source_connection) \
            if options.source_connection else Connection(id="", name="(users from a file)")
        migration = timeline.record(Migration(options, ledger, source, target, reporter, source_connection,
                                              await resolve_connection(target, options.target_connection)),
                                    "rollback")
        ledger.set_meta("rolled_back", "started")
        ledger.clear_rollback_failures()
        credentials = undo.read_credentials(password_hashes, {u.source_id for u in ledger.users_to_reimport()}) \
            if password_hashes and to_reimport else {}
        await undo.unlink_moved_secondaries(migration)
        await undo.reimport_source_copies(migration, credentials)
        await undo.remove_target_copies(migration)
        await undo.restore_source_grants(migration)
        await undo.link_back_secondaries(migration)
        failures = [Failure(r.source_id, r.email, "rollback", r.code or "", r.message or "")
                    for r in ledger.rollback_failures()]
        if not failures:
            ledger.set_meta("rolled_back", "done")
        return RunResult(command="rollback", users=ledger.rollback_counts(), failures=failures, reports=reports,
                         state=state, exit_code=EXIT_FAILED_USERS if failures else EXIT_OK)
    finally:
        if migration is not None:
            timeline.finish(migration)
        ledger.close()


def _check_files(*flags: tuple[str, str | None]) -> None:
    for flag, path in flags:
        if path and not os.path.isfile(path):
            raise UsageError(f"{flag} {path}: no such file")


def status(state: str) -> RunResult:
    """Where a run stands, from its ledger alone (no network)."""
    with Ledger.open_readonly(state) as ledger:
        return summarize(ledger, command="status")


async def plan(options: MigrationOptions, *, source: TenantClient, target: TenantClient | None = None,
               reporter: Reporter | None = None, rate: float | None = None) -> PlanResult:
    """What `run` would do, writing nothing: counts, users that would fail, missing roles and APIs, calls, time.

    It exports the source (a read) into a throw-away ledger, joins and validates locally, and reads the
    role and API lists of both tenants; it never writes to a tenant or leaves a state file.
    """
    reporter = reporter or QuietReporter()
    _check_refresh_options(options)
    if options.refresh:
        return await _plan_refresh(options, source, target, reporter, rate)
    with _scratch_ledger() as path:
        migration = await open_migration(options, source, target, reporter, command="plan", state=path)
        try:
            await ingest_source(migration)
            linked_accounts.classify(migration)
            await mfa.read_factors(migration)
            transform.transform_users(migration)
            transform.pack_users(migration)
            await organizations.read(migration)
            await organizations.settle(migration, write=False)
            ledger = migration.ledger
            source_roles = await grants.list_roles(migration.source)
            missing_roles: list[str] = []
            missing_apis: list[str] = []
            roles_to_create: list[dict[str, Any]] | None = [] if options.create_missing_roles else None
            if not migration.same_tenant:
                target_roles = {r["name"] for r in await grants.list_roles(migration.target)}
                missing_roles = sorted(r["name"] for r in source_roles if r["name"] not in target_roles)
                target_apis = {a for a, _ in (await restore.target_permissions(migration) or set())}
                source_apis = await _api_identifiers(migration.source)
                missing_apis = sorted(a for a in source_apis if a not in target_apis)
                if options.create_missing_roles:
                    roles_to_create = [r.as_dict() for r in await restore.plan_missing_roles(migration, missing_roles)]
            summary = summarize(ledger, unfinished_are_failures=False)
            n = summary.users["selected"] - summary.users["held_back"] - summary.users["failed"]
            files = len(summary.reports["import_files"])
            calls = _estimate_calls(n, files, len(source_roles), options)
            calls["organizations"] = organizations.estimate_calls(migration)
            calls["total"] += calls["organizations"]
            return PlanResult(
                users={"selected": summary.users["selected"], "will_import": n,
                       "held_back": summary.users["held_back"], "will_fail": summary.users["failed"],
                       "with_password_hash": summary.users["with_password_hash"],
                       "stale_hash": summary.users["stale_hash"]},
                failures=summary.failures,
                problems=summary.reports["problems"],
                import_files=[f["bytes"] for f in summary.reports["import_files"]],
                roles_missing_in_target=missing_roles, apis_missing_in_target=missing_apis,
                calls=calls,
                minutes_at=_minutes_at(calls["total"], rate), roles_to_create=roles_to_create,
                inventory=inventory.holding_inventory(ledger, options.allow_loss, options.delete_source_users),
                not_carried_by_import=summary.reports["not_carried_by_import"],
            )
        finally:
            migration.ledger.close()


@contextlib.contextmanager
def _scratch_ledger() -> Iterator[str]:
    """A path for a throw-away ledger (`plan`), removed with its side files afterwards."""
    fd, path = tempfile.mkstemp(prefix="auth0-migrate-plan-", suffix=".sqlite")
    os.close(fd)
    os.unlink(path)
    try:
        yield path
    finally:
        Ledger.remove(path)


def _minutes_at(calls: int, rate: float | None) -> dict[str, float]:
    """How long `calls` take at the given sustained rate, or at Free's 2 and Enterprise's 16 req/s."""
    return {f"{r:g} req/s": round(calls / r / 60, 1) for r in ([rate] if rate else [2.0, 16.0])}


async def _plan_refresh(options: MigrationOptions, source: TenantClient, target: TenantClient | None,
                        reporter: Reporter, rate: float | None) -> PlanResult:
    """`plan --refresh`: the delta a refresh would carry, found on a copy of the ledger (the ledger, and both
    tenants, are left as they are: the source is read by an export job, the target not at all)."""
    state = options.state or default_state_path(options, source, target or source)
    with _scratch_ledger() as path:
        Ledger.snapshot(state, path)
        migration = await open_migration(options, source, target, reporter, command="plan", state=path,
                                         create=False)
        try:
            ledger = migration.ledger
            if not ledger.phase_done("export"):
                raise UsageError(f"{state} has no finished export to refresh from: run without --refresh first")
            await _find_delta(migration, ledger.refresh_in_progress() or ledger.begin_refresh())
            transform.transform_users(migration)
            transform.pack_users(migration)
            counts = ledger.delta_counts()
            profiles, newer_hashes = ledger.upserts_due()
            exceptions = [{"user_id": source_id, "email": email, "code": code, "message": message}
                          for source_id, email, code, message in ledger.delta_exceptions()]
            summary = summarize(ledger, unfinished_are_failures=False)
            files = [f for f in ledger.files() if f.status != "done"]
            ready = ledger.count_users("ready")
            calls = _estimate_refresh_calls(ready, len(files), counts, (profiles, newer_hashes), len(ledger.roles()),
                                            options)
            return PlanResult(
                users={"selected": summary.users["selected"], "will_import": ready,
                       "held_back": summary.users["held_back"], "will_fail": summary.users["failed"],
                       "with_password_hash": summary.users["with_password_hash"],
                       "stale_hash": summary.users["stale_hash"]},
                failures=summary.failures, problems=summary.reports["problems"],
                import_files=[f.bytes or 0 for f in files], roles_missing_in_target=[], apis_missing_in_target=[],
                calls=calls, minutes_at=_minutes_at(calls["total"], rate),
                delta={**counts, "password": newer_hashes + sum(e["code"] == "PASSWORD_RESET_NEEDED"
                                                                for e in exceptions),
                       "exceptions": exceptions})
        finally:
            migration.ledger.close()


def _estimate_refresh_calls(new: int, files: int, counts: dict[str, int], upserts: tuple[int, int], roles: int,
                            options: MigrationOptions) -> dict[str, int]:
    """Management API calls a refresh needs: the delta's, plus one export on each side (upper estimate)."""
    changed = new + counts["updated"]
    calls = {
        "connections": 2, "export_jobs": 3, "read_permissions": new, "import_jobs": files * 3,
        "upsert_jobs": 3 * sum(1 for n in upserts if n), "idmap_export": 3, "write_permissions": new,
        "verify_permissions": changed, "verify_roles": roles,
        "delete_in_target": 2 * counts["deleted_in_source"] if options.propagate_deletes else 0,
        "delete_source": 2 * changed if options.delete_source_users else 0,
    }
    calls["total"] = sum(calls.values())
    return calls


async def _api_identifiers(client: TenantClient) -> set[str]:
    return {str(r.identifier) async for r in offset_items(client, "list APIs", client.sdk.resource_servers.list)}


def _estimate_calls(users: int, files: int, roles: int, options: MigrationOptions) -> dict[str, int]:
    """Management API calls a run needs (upper estimate: role pages and grants are unknown before reading)."""
    calls = {
        "connections": 2, "export_jobs": 3, "roles": 1 + roles, "read_permissions": users,
        "import_jobs": files * 3, "idmap_export": 3, "write_permissions": users, "role_assignments":
        roles + math.ceil(users / restore.ROLE_BATCH), "verify_permissions": users, "verify_roles": roles,
        "delete_source": 2 * users if options.delete_source_users else 0,  # each DELETE, then its confirmation
        # The two checks (users in the connection, applications using it), the DELETE and the read confirming it.
        "delete_source_connection": 4 if options.delete_source_connection else 0,
    }
    calls["total"] = sum(calls.values())
    return calls
