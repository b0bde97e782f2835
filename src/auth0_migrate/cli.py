"""The command line: parse -> call one library function -> render -> exit code; nothing else.

    auth0-migrate plan | run | verify | rollback | status | demo
    auth0-migrate tenant serve | tenant export-hashes | tenant export-mfa-secrets

stdout carries data (`--json`); stderr carries people's messages and progress.

`plan`, `run` and `verify` read `--config FILE.toml` (config.py: flags on the command line win, secrets
only from the environment). A `run` or `verify` that stops on an error or an interruption names the
stage it stopped in, its ledger and the exact command to resume (`Stopped`). `run` and `status` write
`--failed-users FILE`, the retry file (formats/failed_users.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from . import __version__, config
from .errors import InputError, MigrationError, TransientError, UsageError
from .model import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TRANSIENT, EXIT_USAGE, MigrationOptions

if TYPE_CHECKING:  # (imported where used: the SDK takes 0.5 s to import, and `status`, `report`, `--help` and
    # `tenant serve` never call Auth0)
    from .auth0.client import TenantClient, TenantCredentials

RESUME_HINT = "run the same command again to resume; the ledger keeps every finished step"


def _tenant_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tenants (default: the AUTH0_* and TARGET_AUTH0_* environment variables)")
    g.add_argument("--domain", help="source tenant domain, or http://host:port for a local tenant [AUTH0_DOMAIN]")
    g.add_argument("--client-id", help="source machine-to-machine client id [AUTH0_CLIENT_ID]")
    g.add_argument("--client-secret", help="source client secret [AUTH0_CLIENT_SECRET]; prefer the variable")
    g.add_argument("--target-domain", help="target tenant, when it is another tenant [TARGET_AUTH0_DOMAIN]")
    g.add_argument("--target-client-id", help="[TARGET_AUTH0_CLIENT_ID]")
    g.add_argument("--target-client-secret", help="[TARGET_AUTH0_CLIENT_SECRET]; prefer the variable")
    g.add_argument("--rate", type=float, help="the source tenant's sustained Management API limit in req/s "
                                              "(learned from the rate-limit headers when not given)")
    g.add_argument("--target-rate", type=float, help="the same for the target tenant")
    g.add_argument("--concurrency", type=int, default=16, help="requests in flight per tenant (default 16)")


def _migration_flags(p: argparse.ArgumentParser, *, state_required: bool = False, refresh: bool = False) -> None:
    _tenant_flags(p)
    m = p.add_argument_group("migration")
    m.add_argument("--source-connection", help="the database connection users come from (not needed with "
                                                "--from-file: users from another system have none)")
    m.add_argument("--target-connection", required=True, help="the database connection users go to")
    m.add_argument("--user-ids", choices=("regenerate", "keep", "prefix"), default="regenerate",
                   help="what the target users' ids are (default regenerate)")
    m.add_argument("--id-prefix", help="with --user-ids prefix: new id = auth0|PREFIX<old id without auth0|>")
    m.add_argument("--record-source-id", metavar="KEY", help="store the old user id in app_metadata.KEY")
    m.add_argument("--password-hashes", metavar="FILE", help="the NDJSON hash file from Auth0 support")
    m.add_argument("--missing-hash", choices=("hold", "import"), default="hold",
                   help="users with no hash in the file: hold them back (default) or import them without one")
    m.add_argument("--duplicate-hash", choices=("first", "last", "hold"), default="hold",
                   help="users with two different hashes in the file: hold them back (default) or use the "
                        "first or the last line")
    m.add_argument("--stale-hash", choices=("hold", "import-without-hash"), default="hold",
                   help="users who changed their password after the file's hash was taken: hold them back "
                        "(default) or import them without a hash (they must reset; a hash cannot be added later)")
    m.add_argument("--mfa-secrets", metavar="FILE",
                   help="the NDJSON file of users' MFA secrets (TOTP, phone, email factors) from Auth0 support; "
                        "without it enrolled users' factors cannot be carried")
    m.add_argument("--from-file", metavar="FILE", help="take users from an Auth0-import-shaped JSON/NDJSON file "
                                                       "instead of exporting the source connection")
    m.add_argument("--users", metavar="FILE", dest="users_file", help="migrate only these users (emails or ids)")
    m.add_argument("--delete-source-users", action="store_true",
                   help="cutover: delete each source copy once that user is verified in the target")
    m.add_argument("--allow-loss", metavar="GROUPS", type=_names, default=(),
                   help="with --delete-source-users: delete a verified user even though its organizations, "
                        "identities (linked accounts) or mfa factors, named comma-separated, were not carried "
                        "(they are lost with the source copy); by default such users stay in the source")
    m.add_argument("--enable-org-connections", action="store_true",
                   help="enable the target connection on each organization the migrated users belong to that "
                        "lacks it (without it, memberships of such organizations are not carried: named per user)")
    m.add_argument("--delete-source-connection", action="store_true",
                   help="cutover: delete the whole source connection (one call) once every user of it is verified "
                        "in the target and no application uses it; not with --users or --from-file")
    m.add_argument("--state", metavar="FILE", required=state_required,
                   help="the ledger (default: derived from tenants and connections, in this folder)")
    if refresh:  # plan and run
        m.add_argument("--create-missing-roles", action="store_true",
                       help="across tenants: create in the target the source roles it lacks, with the same "
                            "permissions (adding the API scopes they need), before restoring members; plan lists "
                            "them")
        m.add_argument("--refresh", action="store_true",
                       help="carry what changed in the source since this ledger's last export: new users (with a "
                            "newer --password-hashes), profile changes and newer custom hashes (import upsert), "
                            "users deleted from the source (reported); what cannot be carried is named per user")
        m.add_argument("--propagate-deletes", action="store_true",
                       help="with --refresh: delete from the target connection the users this migration made "
                            "that the source no longer has (each confirmed by a read)")
        m.add_argument("--refresh-permissions", action="store_true",
                       help="with --refresh: read every migrated user's DIRECT permissions again (one call each; "
                            "Auth0 has no bulk read) to carry permission changes of users whose profile did not "
                            "change; roles are always compared, set-wise")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.add_argument("--config", metavar="FILE.toml",
                   help="read flags from a TOML file (keys are the long flags without dashes; [plan], [run], "
                        "[verify] tables for one command); flags on the command line win; secrets are refused in "
                        "the file (environment only)")


def _retry_flags(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("retry")
    r.add_argument("--failed-users", metavar="FILE",
                   help="write the users not carried (failed, held back, unfinished), each with its reason, to FILE "
                        "(mode 0600) in a shape run takes back: a --users list, or for --from-file users the "
                        "import shape")
    r.add_argument("--include-hashes", action="store_true",
                   help="with --failed-users, for --from-file users: keep their password hashes in FILE")


def _report_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", metavar="FILE.html",
                   help="also write the report to share: one self-contained HTML page from the ledger (summary, "
                        "timeline, rate-limit headroom, import files, users not carried and why, the command to "
                        "resume), created 0600; written even when the command stops")


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (checked against the known ones by `pipeline.check_options`)."""
    return tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auth0-migrate", description="Move the users of one Auth0 database "
                                     "connection into another: profiles, password hashes, roles, permissions, ids.")
    parser.add_argument("--version", action="version", version=f"auth0-migrate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("plan", help="what a run would do, writing nothing")
    _migration_flags(p, refresh=True)
    p = sub.add_parser("run", help="migrate (or resume), then verify")
    _migration_flags(p, refresh=True)
    _retry_flags(p)
    _report_flag(p)
    p = sub.add_parser("verify", help="re-read the target and compare every migrated user again")
    _migration_flags(p)
    _report_flag(p)
    p = sub.add_parser("rollback", help="take out of the target what a run put there; bring back what it deleted",
                       description="Undo the migration of a ledger: delete from the target the users that run "
                                   "imported (never one that was there before), and, when cutover deleted source "
                                   "users, import them into the source again with their ids, profiles, roles and "
                                   "permissions (and passwords, from --password-hashes). It says first what it can "
                                   "and cannot restore. Resumable; exit codes as run's.")
    _tenant_flags(p)
    p.add_argument("--state", required=True, metavar="FILE", help="the ledger of the run to undo")
    p.add_argument("--password-hashes", metavar="FILE",
                   help="the support hash file again: the passwords of the source users cutover deleted")
    p.add_argument("--without-passwords", action="store_true",
                   help="bring deleted source users back without passwords when no hash file is given")
    p.add_argument("--mfa-secrets", metavar="FILE",
                   help="the MFA secrets file again: the totp, phone and email factors of the source users cutover "
                        "deleted")
    p.add_argument("--dry-run", action="store_true", help="say what would be undone and what cannot, doing nothing")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    _report_flag(p)
    p = sub.add_parser("status", help="where a run stands, from its ledger",
                       description="Where a run stands, from its ledger alone (no network). The exit code is the "
                                   "run's as it stands: 0 done and verified, 3 users not migrated (failed, held "
                                   "back or not yet finished) or input problems, 4 verification found differences.")
    p.add_argument("--state", required=True, metavar="FILE", help="the ledger of the run")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    _retry_flags(p)
    _report_flag(p)
    p = sub.add_parser("demo", help="a full migration on a local tenant started for the purpose")
    p.add_argument("--users", type=int, default=300, help="how many users to seed (default 300)")
    p.add_argument("--user-ids", choices=("regenerate", "keep", "prefix"), default="regenerate",
                   help="the user-id strategy to demonstrate (default regenerate)")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    tenant = sub.add_parser("tenant", help="the local tenant").add_subparsers(dest="tenant_command", required=True,
                                                                              metavar="TENANT_COMMAND")
    s = tenant.add_parser("serve", help="serve a local Auth0 tenant over HTTP")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8400, help="port to listen on (default 8400)")
    s.add_argument("--db", help="SQLite file that keeps state across restarts (default: temporary)")
    s.add_argument("--plan", choices=("free", "essentials", "enterprise", "unlimited"), default="unlimited",
                   help="whose Management API rate limits to apply (default unlimited: none)")
    s.add_argument("--client-id", help="the machine-to-machine client to create (generated when not given)")
    s.add_argument("--client-secret", help="its secret (generated and printed on stderr when not given)")
    s.add_argument("--client-scopes", metavar="'SCOPE ...'",
                   help="the Management API scopes that client's grant holds, space-separated (default: every "
                        "scope the tenant checks)")
    s.add_argument("--name", default="local-tenant", help="the tenant's name")
    s.add_argument("--rate", type=float, help="one global bucket of this many req/s instead of the plan's")
    s.add_argument("--burst", type=int, help="that bucket's size")
    s.add_argument("--latency", type=float, default=0.0, help="seconds added to every Management API call")
    s.add_argument("--job-seconds", type=float, default=0.0, help="how long each job takes to process")
    s.add_argument("--fault", action="append", default=[],
                   metavar="'METHOD /path@N=STATUS|drop|garbled|truncated[xTIMES]'",  # (faults.SPEC)
                   help="answer the Nth call of an endpoint with 429/5xx, drop it, answer 200 with a body no SDK"
                        " model reads, or send its answer with half its body (repeatable); any served path, e.g."
                        " 'POST /oauth/token' or the export download"
                        " 'GET /exports/{id}/{file}'; '*' is any /api/v2 endpoint")
    s.add_argument("--fail-job", type=int, action="append", default=[], metavar="N", help="the Nth job fails")
    s.add_argument("--expire-job", type=int, action="append", default=[], metavar="N", help="the Nth job expires")
    s.add_argument("--job-pending-polls", type=int, default=0, metavar="K", help="jobs stay pending for K polls")
    s.add_argument("--expire-links", type=int, default=0, metavar="N",
                   help="the first N export download links are born expired (0: none)")
    s.add_argument("--search-lag", type=float, default=0.0, metavar="S", help="new users unsearchable for S s")
    s.add_argument("--lose-import-answer", action="append", default=[], metavar="drop|5xx",
                   choices=("drop", "500", "502", "503", "504"),
                   help="the next import job is made, then its answer is dropped or a 5xx (repeatable)")
    s.add_argument("--download-content-encoding", action="store_true",
                   help="export downloads also say Content-Encoding: gzip")
    e = tenant.add_parser("export-hashes", help="write a connection's support-ticket password-hash file")
    e.add_argument("--db", required=True, help="the tenant's SQLite file (tenant serve --db)")
    e.add_argument("--connection", required=True, help="connection name")
    e.add_argument("--tenant-name", default="local-tenant", help="the tenant name written on each line")
    e.add_argument("--out", metavar="FILE", help="write to FILE, created with mode 0600 (default: stdout)")
    e = tenant.add_parser("export-mfa-secrets", help="write a connection's MFA-secrets file (TOTP, phone, email)")
    e.add_argument("--db", required=True, help="the tenant's SQLite file (tenant serve --db)")
    e.add_argument("--connection", required=True, help="connection name")
    e.add_argument("--out", metavar="FILE", help="write to FILE, created with mode 0600 (default: stdout)")
    return parser


def _credentials(args: argparse.Namespace) -> tuple[TenantCredentials, TenantCredentials | None]:
    """The source and (another tenant's) target credentials: flags override the environment."""
    from .auth0.client import TenantCredentials

    source = TenantCredentials.from_env(domain=args.domain, client_id=args.client_id,
                                        client_secret=args.client_secret)
    if source is None:
        raise UsageError("the source tenant needs a domain, client id and client secret: set AUTH0_DOMAIN, "
                         "AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (or --domain, --client-id, --client-secret)")
    return source, TenantCredentials.from_env("TARGET_", domain=args.target_domain, client_id=args.target_client_id,
                                              client_secret=args.target_client_secret)


def _options(args: argparse.Namespace) -> MigrationOptions:
    return MigrationOptions(source_connection=args.source_connection, target_connection=args.target_connection,
                            user_ids=args.user_ids, id_prefix=args.id_prefix, record_source_id=args.record_source_id,
                            password_hashes=args.password_hashes, missing_hash=args.missing_hash,
                            duplicate_hash=args.duplicate_hash, stale_hash=args.stale_hash,
                            from_file=args.from_file, users_file=args.users_file,
                            mfa_secrets=getattr(args, "mfa_secrets", None),
                            delete_source_users=args.delete_source_users, allow_loss=args.allow_loss,
                            delete_source_connection=args.delete_source_connection, state=args.state,
                            refresh=getattr(args, "refresh", False),
                            propagate_deletes=getattr(args, "propagate_deletes", False),
                            refresh_permissions=getattr(args, "refresh_permissions", False),
                            create_missing_roles=getattr(args, "create_missing_roles", False),
                            enable_org_connections=getattr(args, "enable_org_connections", False))


async def _migration_command(args: argparse.Namespace, console: Console) -> int:
    """`plan`, `run`, `verify` or `rollback`; SIGTERM stops it as Ctrl-C does (see `_stop_on_sigterm`)."""
    with _stop_on_sigterm():
        if args.command == "rollback":
            return await _rollback(args, console)
        return await _migration(args, console)


async def _rollback(args: argparse.Namespace, console: Console) -> int:
    from . import pipeline
    from .auth0.client import TenantClient
    from .report import ConsoleReporter, print_json, render_result

    source_creds, target_creds = _credentials(args)
    source = TenantClient(source_creds, rate=args.rate, concurrency=args.concurrency)
    target = TenantClient(target_creds, rate=args.target_rate, concurrency=args.concurrency) if target_creds else None
    reporter = ConsoleReporter(console.file, quiet=False, tenant_rate=lambda: _sustained_rate(source, target))
    args.stopped = Stopped(reporter, args.state, _resume_command(args.argv, args.state))
    if args.report:
        _check_report_path(args.report)
    try:
        outcome = await pipeline.rollback(state=args.state, source=source, target=target, reporter=reporter,
                                          password_hashes=args.password_hashes,
                                          without_passwords=args.without_passwords, dry_run=args.dry_run,
                                          mfa_secrets=args.mfa_secrets)
        reporter.finish()
        render_result(outcome, console, title="Rollback (dry run)" if args.dry_run else "Rollback")
        if args.json:
            print_json(outcome.as_dict())
        return outcome.exit_code
    finally:
        reporter.close()
        if args.report and not args.dry_run:
            _write_report(args.report, args.state, console)
        await source.aclose()
        if target is not None:
            await target.aclose()


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (a service manager, `kill`, a CI timeout) into the same clean stop as Ctrl-C.

    The running task is cancelled, so every `finally` runs (the ledger is checkpointed and closed,
    the clients are closed) and `main` reports the interruption and exits 130. Without this the
    default action ends the process at once, silently, with -15.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated: list[bool] = []

    def stop() -> None:
        terminated.append(True)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        yield
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _interrupt)  # until the process ends: a late SIGTERM still stops cleanly


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


async def _migration(args: argparse.Namespace, console: Console) -> int:
    from . import pipeline
    from .auth0.client import TenantClient
    from .report import ConsoleReporter, print_json, render_inventory, render_result

    _check_retry_flags(args)
    report = getattr(args, "report", None)
    if report:
        _check_report_path(report)  # before the run: a typo must not surface only after hours of work
    source_creds, target_creds = _credentials(args)
    options = _options(args)
    source = TenantClient(source_creds, rate=args.rate, concurrency=args.concurrency)
    target = TenantClient(target_creds, rate=args.target_rate, concurrency=args.concurrency) if target_creds else None
    reporter = ConsoleReporter(console.file, quiet=False, tenant_rate=lambda: _sustained_rate(source, target))
    if args.command in ("run", "verify"):
        state = options.state or pipeline.default_state_path(options, source, target or source)
        args.stopped = Stopped(reporter, state, _resume_command(args.argv, state))
    try:
        if args.command == "plan":
            planned = await pipeline.plan(options, source=source, target=target, reporter=reporter, rate=args.rate)
            reporter.finish()
            print_json(planned.as_dict(), None if args.json else console.file)
            if not args.json:
                render_inventory(planned, console)
            return planned.exit_code
        if args.command == "run":
            outcome = await pipeline.run(options, source=source, target=target, reporter=reporter)
        else:
            outcome = await pipeline.verify(options, source=source, target=target, reporter=reporter)
        reporter.finish()
        render_result(outcome, console, title="Verification" if args.command == "verify" else "Migration")
        _write_failed_users(args, outcome.state, console)
        if args.json:
            print_json(outcome.as_dict())
        return outcome.exit_code
    finally:
        reporter.close()
        if report:  # from the ledger, whatever happened: a stopped run's report says where it stopped
            from .pipeline import default_state_path

            _write_report(report, options.state or default_state_path(options, source, target or source), console)
        await source.aclose()
        if target is not None:
            await target.aclose()


def _sustained_rate(*clients: TenantClient | None) -> float | None:
    """The slowest Management API bucket the governors know (given by --rate or learned), in req/s: the ETA's pace."""
    rates = [rate for client in clients if client is not None
             for rate in [*(p.rate for p in client.governor.pacers.values()), client.governor.given_rate] if rate]
    return min(rates) if rates else None


def _check_report_path(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or os.path.isdir(path):
        raise UsageError(f"--report {path}: cannot write the report there ("
                         + (f"{path} is a folder" if os.path.isdir(path) else f"{folder} is not a folder") + ")")


def _write_report(path: str, state: str, console: Console) -> None:
    """Write the HTML report of the ledger `state`. When the command is already failing, a report that cannot be
    written (no ledger yet, a file problem) is said, not raised: the command's own error is the one that matters."""
    from .html_report import write_report

    failing = sys.exc_info()[1] is not None
    if not os.path.isfile(state):
        console.print(f"no report written: there is no ledger at {state} yet", markup=False)
        return
    try:
        write_report(path, state)
    except (OSError, MigrationError) as exc:
        if not failing:
            raise
        console.print(f"no report written: {exc}", markup=False)
        return
    console.print(f"report: {path}", markup=False)


def _status(args: argparse.Namespace, console: Console) -> int:
    from .pipeline import status
    from .report import print_json, render_result

    _check_retry_flags(args)
    if args.report:
        _check_report_path(args.report)
    result = status(args.state)
    render_result(result, console, title="Status")
    _write_failed_users(args, args.state, console)
    console.print("phases done: " + (", ".join(result.reports.get("phases_done") or []) or "none"), markup=False)
    if args.json:
        print_json(result.as_dict())
    if args.report:
        _write_report(args.report, args.state, console)
    return result.exit_code


def _check_retry_flags(args: argparse.Namespace) -> None:
    if getattr(args, "include_hashes", False) and not getattr(args, "failed_users", None):
        raise UsageError("--include-hashes only applies with --failed-users FILE")


def _write_failed_users(args: argparse.Namespace, state: str | None, console: Console) -> None:
    """`--failed-users FILE` (run, status): the retry file, written from the ledger once the command is done."""
    path = getattr(args, "failed_users", None)
    if not path or state is None:
        return
    from .pipeline import write_failed_users

    count = write_failed_users(state, path, include_hashes=args.include_hashes)
    console.print(f"{count} users to retry written to {path}", markup=False)


def _export_hashes(args: argparse.Namespace) -> int:
    """`tenant export-hashes` and `tenant export-mfa-secrets`: a support file written from a tenant's store."""
    from .tenant import mfa
    from .tenant.store import Store
    from .tenant.support_export import export_hashes

    if not os.path.isfile(args.db):
        raise UsageError(f"--db {args.db}: no such file")
    secrets = args.tenant_command == "export-mfa-secrets"
    store = Store(args.db, (mfa.SCHEMA,) if secrets else ())

    def write(out: Any) -> None:
        if secrets:
            mfa.export_secrets(store, args.connection, out)
        else:
            export_hashes(store, args.connection, args.tenant_name, out)
    try:
        if not args.out:
            write(sys.stdout)
            return EXIT_OK
        # The file holds password hashes or MFA secrets: private from its first byte, whatever the umask.
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "w", encoding="utf-8") as out:
            write(out)
        return EXIT_OK
    finally:
        store.close()


@dataclass
class Stopped:
    """What a failed or interrupted `run`/`verify` tells the owner: the stage, the ledger, the command to resume."""

    reporter: Any
    state: str
    command: str

    def lines(self) -> list[str]:
        stage = self.reporter.current or "setting up (before the first stage)"
        if not os.path.exists(self.state):
            return [f"stopped while {stage}; nothing was written yet (no ledger at {self.state})",
                    f"to start again: {self.command}"]
        return [f"stopped in stage: {stage}", f"ledger: {self.state}", f"to resume: {self.command}"]


def _resume_command(argv: Sequence[str], state: str) -> str:
    """The command as typed, with its ledger named (`--state`), and without any secret (named by variable)."""
    words: list[str] = []
    secrets: list[str] = []
    skip = False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        flag = word.split("=", 1)[0]
        if flag in config.SECRET_FLAGS:
            secrets.append(config.SECRET_FLAGS[flag])
            skip = "=" not in word and i + 1 < len(argv)
            continue
        words.append(word)
    if not any(w == "--state" or w.startswith("--state=") for w in words):
        words += ["--state", state]
    env = "".join(f"{name}=... " for name in secrets)
    return env + shlex.join(["auth0-migrate", *words])


def _where_it_stopped(args: argparse.Namespace, console: Console) -> None:
    stopped = getattr(args, "stopped", None)
    if stopped is not None:
        for line in stopped.lines():
            console.print(line, markup=False)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    # soft_wrap: a message is one line however long, so a log or a grep gets it whole (paths are long).
    console = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    parser = build_parser()
    typed = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = config.expand(typed, parser)
    except UsageError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return exc.exit_code
    args = parser.parse_args(argv)
    args.argv, args.stopped = typed, None
    try:
        if args.command in ("plan", "run", "verify", "rollback"):
            signal.signal(signal.SIGTERM, _interrupt)  # before the event loop takes it over
            return asyncio.run(_migration_command(args, console))
        if args.command == "status":
            return _status(args, console)
        if args.command == "demo":
            from .demo import main as demo_main

            return demo_main(users=args.users, user_ids=args.user_ids, as_json=args.json, console=console)
        if args.command == "tenant" and args.tenant_command == "serve":
            from .tenant.serve import serve

            # uvicorn shuts down gracefully on SIGTERM and then re-raises it, which would kill the process before
            # the tenant's store is closed (exit -15). Turn that re-raise (or a SIGTERM before uvicorn listens)
            # into a normal exit: the store is closed and the status is 0.
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
            return serve(args)
        if args.command == "tenant" and args.tenant_command in ("export-hashes", "export-mfa-secrets"):
            return _export_hashes(args)
    except KeyboardInterrupt:
        console.print(f"interrupted; {RESUME_HINT}")
        _where_it_stopped(args, console)
        return EXIT_INTERRUPTED
    except TransientError as exc:
        console.print(f"[yellow]stopped on a transient problem:[/] {escape(str(exc))}\n{RESUME_HINT}")
        _where_it_stopped(args, console)
        return EXIT_TRANSIENT
    except MigrationError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")  # messages quote paths and input: text, not markup
        if not isinstance(exc, UsageError | InputError):  # a wrong flag or file: the command itself changes
            _where_it_stopped(args, console)
        return exc.exit_code
    except OSError as exc:  # a file the command was pointed at (a folder, no permission...): named, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(f"[red]error:[/] {escape(where + str(exc.strerror or exc))}")
        return EXIT_ERROR
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
