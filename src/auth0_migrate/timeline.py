"""The run's timeline, written to the ledger as the run goes: what `--report` draws.

Each command that opens a migration's ledger (`run`, a resumed `run`, `run --refresh`, `verify`) is a
*session* of it (`Ledger.begin_session`). Within a session each stage is the span between two calls of
`Reporter.phase` (every stage announces itself there: no stage is edited for this); for each the ledger
keeps its start and end on the migration's clock and the Management API calls both tenants answered in
it (with the 429s and retries among them). The governors hand the lowest rate-limit headroom they saw
every few seconds (`Governor.on_sample`), kept per tenant. A resumed run adds a session; stages it skips
as done do not announce themselves, so they are not in its timeline (they are in the session that did
them).

The command line of each session is kept as its options (`MigrationOptions`, the tenants' domains and
client ids), never a secret: the report rebuilds the exact command to resume from them.

Example::

    migration = timeline.record(migration, "run")
    try:
        ...  # the stages
    finally:
        timeline.finish(migration)

Choices where Auth0 is silent
-----------------------------
- The headroom sample is the lowest `x-ratelimit-remaining` / `x-ratelimit-limit` of any bucket of the
  tenant in the interval (Auth0 has a global bucket and per-endpoint ones; the tightest is what limits the
  run), taken every 5 s of the run's clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import sys
from contextlib import suppress
from typing import Any

from .auth0.client import TenantClient
from .errors import MigrationError
from .ledger import Ledger, dumps
from .model import Reporter
from .stages.context import Migration


class TimelineReporter:
    """A `Reporter` that passes everything on to the one it wraps, and records each phase as a stage."""

    def __init__(self, inner: Reporter, ledger: Ledger, session: int, clients: dict[str, TenantClient]) -> None:
        self.inner = inner
        self.ledger = ledger
        self.session = session
        self.clients = clients
        self.clock = next(iter(clients.values())).governor.clock
        self.seq = 0
        self._open: tuple[int, int, int, int] | None = None
        """The stage being recorded: its seq and the calls, 429s and retries counted when it began."""

    def _counts(self) -> tuple[int, int, int]:
        calls = http_429 = retries = 0
        for client in self.clients.values():
            stats = client.governor.stats
            calls += sum(n for label, n in stats.calls.items() if " /api/v2/" in label)
            http_429 += stats.http_429
            retries += stats.retries
        return calls, http_429, retries

    def end_stage(self) -> None:
        if self._open is None:
            return
        seq, calls, http_429, retries = self._open
        now_calls, now_429, now_retries = self._counts()
        self.ledger.end_stage(self.session, seq, self.clock.now(), now_calls - calls, now_429 - http_429,
                              now_retries - retries)
        self._open = None

    def phase(self, name: str, total: int | None = None, **kwargs: Any) -> None:
        self.end_stage()
        self.seq += 1
        self.ledger.begin_stage(self.session, self.seq, name, self.clock.now())
        self._open = (self.seq, *self._counts())
        self.inner.phase(name, total, **kwargs)

    def advance(self, amount: int = 1) -> None:
        self.inner.advance(amount)

    def info(self, message: str) -> None:
        self.inner.info(message)

    def warn(self, message: str) -> None:
        self.inner.warn(message)

    def __getattr__(self, name: str) -> Any:  # whatever else the wrapped reporter offers (close, messages...)
        return getattr(self.inner, name)


def _clients(migration: Migration) -> dict[str, TenantClient]:
    if migration.same_tenant:
        return {"source and target": migration.source}
    return {"source": migration.source, "target": migration.target}


def session_options(migration: Migration) -> dict[str, Any]:
    """What the session ran with, enough to write its command again: the options, the tenants and client ids."""
    source, target = migration.source.credentials, migration.target.credentials
    tenants: dict[str, Any] = {"domain": source.domain, "client_id": source.client_id}
    if not migration.same_tenant:
        tenants |= {"target_domain": target.domain, "target_client_id": target.client_id}
    options = dataclasses.asdict(migration.options)
    options["state"] = migration.ledger.path
    return {"options": options, "tenants": tenants}


def record(migration: Migration, command: str) -> Migration:
    """Start a session of `command` in the migration's ledger: its stages and headroom are recorded from now on."""
    ledger = migration.ledger
    clients = _clients(migration)
    clock = next(iter(clients.values())).governor.clock
    session = ledger.begin_session(command, dumps(session_options(migration)), clock.now())
    for tenant, client in clients.items():
        def sample(at: float, remaining: int, size: int, tenant: str = tenant) -> None:
            # An answer that comes after a caller closed the ledger without `finish` (a library caller, the
            # bench) has no session left to go in: the headroom is an observation, never a reason to fail.
            with suppress(sqlite3.ProgrammingError):
                ledger.add_rate_sample(session, at, tenant, remaining, size)
        client.governor.on_sample = sample
    migration.reporter = TimelineReporter(migration.reporter, ledger, session, clients)
    return migration


def finish(migration: Migration) -> None:
    """End the session: its last stage, and how it ended (called in a `finally`: an exception on its way out is
    named by its kind; a `MigrationError`'s message, written for people, goes with it)."""
    reporter = migration.reporter
    if not isinstance(reporter, TimelineReporter):
        return
    for client in reporter.clients.values():
        client.governor.on_sample = None
    reporter.end_stage()
    exc = sys.exc_info()[1]
    if exc is None:
        outcome = "finished"
    elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        outcome = "interrupted"
    elif isinstance(exc, MigrationError):
        outcome = f"stopped: {type(exc).__name__}: {str(exc)[:500]}"
    else:
        outcome = f"stopped: {type(exc).__name__}"
    migration.ledger.end_session(reporter.session, reporter.clock.now(), outcome)
    migration.reporter = reporter.inner
