"""Summaries for people (stderr, with rich) and machines (`--json` on stdout).

Progress bars show only when stderr is a terminal; otherwise a line per phase. Nothing here ever
prints a password hash or a secret: it only sees counts, ids, emails, codes and messages the
stages already scrubbed. Those ids, emails and messages quote input (file names, user ids, field
values), so they are printed as text, never read as rich markup (`a[b]@example.com` stays whole, a
stray `[/]` cannot break the summary), and a message is one line however long (a log or a grep gets
it whole).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .model import PlanResult, RunResult
from .stages.inventory import inventory_lines


def duration(seconds: float) -> str:
    """`42s`, `7m05s`, `2h03m`: a span as people read it."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ConsoleReporter:
    """The CLI's reporter: a progress bar per phase on a terminal, plain lines elsewhere.

    Each stage shows its count, its rate and an ETA. The ETA is the remaining items at the rate seen so
    far; before a rate is seen (the first `PACE_AFTER` seconds) it is the remaining items at the tenant's
    rate limit as the governor knows it (`tenant_rate`, req/s: one call per item, the per-user stages'
    cost), so a long stage says how long it will take from its start. Off a terminal, a line every
    `EVERY` seconds says the same, and a stage that ends says its count, time and rate.
    """

    EVERY = 30.0
    PACE_AFTER = 5.0

    def __init__(self, stream: IO[str] | None = None, quiet: bool = False, *,
                 tenant_rate: Callable[[], float | None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.task: Any = None
        self.current: str | None = None
        """The stage under way (the last `phase`): named when the command stops on an error."""
        self.tenant_rate = tenant_rate or (lambda: None)
        self.clock = clock
        self.total: int | None = None
        self.count = 0
        self.started = self.said = 0.0

    def phase(self, name: str, total: int | None = None) -> None:
        self._stop()
        self._stage_done()
        self.current, self.total, self.count = name, total, 0
        self.started = self.said = self.clock()
        if self.quiet:
            return
        if self.live:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[pace]}"), TimeElapsedColumn(), console=self.console,
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task(name, total=total, pace=self.pace())
        else:
            self.console.print(f"· {name}" + (f" ({total})" if total is not None else ""), markup=False)

    def advance(self, amount: int = 1) -> None:
        self.count += amount
        if self.progress is not None:
            self.progress.update(self.task, advance=amount, pace=self.pace())
        elif not self.quiet and self.current is not None and self.clock() - self.said >= self.EVERY:
            self.said = self.clock()
            done = f"{self.count}/{self.total}" if self.total is not None else str(self.count)
            self.console.print(f"  {self.current}: {done}, {self.pace()}", markup=False)

    def pace(self) -> str:
        """`12.5/s, ETA 3m20s`: the rate seen so far and the time left (see the class notes)."""
        elapsed = self.clock() - self.started
        seen = self.count / elapsed if elapsed >= self.PACE_AFTER and self.count else None
        limit = self.tenant_rate()
        rate = seen or limit
        parts = [f"{seen:.1f}/s" if seen else (f"tenant limit {limit:g} req/s" if limit else "")]
        if rate and self.total is not None:
            parts.append(f"ETA {duration(max(0, self.total - self.count) / rate)}")
        return ", ".join(p for p in parts if p)

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _stage_done(self) -> None:
        """The stage under way ended (the next began, or the command finished): its count, time and rate."""
        if self.current is not None and not self.quiet and self.count:
            elapsed = self.clock() - self.started
            rate = f" ({self.count / elapsed:.1f}/s)" if elapsed >= 1 else ""
            self.console.print(f"✓ {self.current}: {self.count} in {duration(elapsed)}{rate}", markup=False)
        self.count = 0

    def finish(self) -> None:
        """The command finished its stages (not on an error: then `current` names the stage that failed)."""
        self._stop()
        self._stage_done()

    def close(self) -> None:
        self._stop()


def render_result(result: RunResult, console: Console, *, title: str = "Migration", limit: int = 20) -> None:
    table = Table(title=title, show_header=False, box=None)
    for key, value in result.users.items():
        table.add_row(f"users {key.replace('_', ' ')}", str(value))
    for key, value in result.grants.items():
        table.add_row(key.replace("_", " "), str(value))
    for key, value in (result.delta or {}).items():
        table.add_row(f"delta {key.replace('_', ' ')}", str(value))
    for key, value in (result.mfa if result.mfa.get("factors") else {}).items():
        table.add_row(f"mfa {key.replace('_', ' ')}", str(value))
    console.print(table)
    waiting = result.users.get("grants_after_cutover", 0)
    if waiting:
        console.print(f"[yellow]{waiting} users: profile verified; their roles and permissions are written and "
                      "verified once their source copy is deleted[/] (--user-ids keep in one tenant: until then the "
                      "shared id holds the source copy's)")
    if result.failures:
        console.print(f"[red]{len(result.failures)} users not migrated[/] (first {min(limit, len(result.failures))}):")
        for f in result.failures[:limit]:
            console.print(f"  {f.user_id} <{f.email}> {f.stage}/{f.code}: {f.message}", markup=False)
    if result.differences:
        console.print(f"[red]{len(result.differences)} users differ in the target[/]:")
        for d in result.differences[:limit]:
            console.print(f"  {d['user_id']} -> {d['target_id']} <{d['email']}>: {'; '.join(d['differences'])}",
                          markup=False)
    for kind, items in (result.reports.get("problems") or {}).items():
        console.print(f"[yellow]{len(items)} × {kind}[/]" + (f" (first {limit}):" if len(items) > limit else ":"))
        for item in items[:limit]:
            console.print(f"  {item['detail']}", markup=False)
    cannot = result.reports.get("holdings_not_carried") or []
    if cannot:
        console.print(f"[yellow]{len(cannot)} organization memberships and roles, linked accounts or MFA factors "
                      f"cannot be carried[/]" + (f" (first {limit}):" if len(cannot) > limit else ":"))
        for h in cannot[:limit]:
            console.print(f"  {h['user_id']}: {h['kind']} {h['item']}: {h['detail']}", markup=False)
    for line in inventory_lines({}, result.reports.get("not_carried_by_import") or {}):
        console.print(line, markup=False)
    lost = result.reports.get("mfa_not_carried") or []
    if lost:
        console.print(f"[yellow]{len(lost)} MFA factors not carried[/]" + (f" (first {limit}):" if len(lost) > limit
                                                                           else ":"))
        for item in lost[:limit]:
            console.print(f"  {item['user_id']}: {item['factor']}: {item['detail']}", markup=False)
    if result.state:
        console.print(f"state: {result.state}", markup=False)


def render_inventory(plan: PlanResult, console: Console) -> None:
    """The plan's inventory for people: what users hold, what will be carried or cannot, what cutover keeps,
    and what no import carries."""
    lines = inventory_lines(plan.inventory, plan.not_carried_by_import)
    if lines:
        console.print("What users hold beside profile, password and grants:", markup=False)
    for line in lines:
        console.print(f"  {line}", markup=False)


def print_json(value: Any, stream: IO[str] | None = None) -> None:
    (stream or sys.stdout).write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
