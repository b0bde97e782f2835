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
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .model import RunResult


class ConsoleReporter:
    """The CLI's reporter: a progress bar per phase on a terminal, plain lines elsewhere."""

    def __init__(self, stream: IO[str] | None = None, quiet: bool = False) -> None:
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.task: Any = None

    def phase(self, name: str, total: int | None = None) -> None:
        self._stop()
        if self.quiet:
            return
        if self.live:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(name, total=total)
        else:
            self.console.print(f"· {name}" + (f" ({total})" if total is not None else ""), markup=False)

    def advance(self, amount: int = 1) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, amount)

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

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
    lost = result.reports.get("mfa_not_carried") or []
    if lost:
        console.print(f"[yellow]{len(lost)} MFA factors not carried[/]" + (f" (first {limit}):" if len(lost) > limit
                                                                           else ":"))
        for item in lost[:limit]:
            console.print(f"  {item['user_id']}: {item['factor']}: {item['detail']}", markup=False)
    if result.state:
        console.print(f"state: {result.state}", markup=False)


def print_json(value: Any, stream: IO[str] | None = None) -> None:
    (stream or sys.stdout).write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
