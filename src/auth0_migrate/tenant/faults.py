"""Fault switches: make the local tenant misbehave on purpose, the way a real tenant sometimes does.

Set them on a running app (`app.state.tenant.faults`) or with `tenant serve` flags.

Example::

    faults.fail_call("POST /api/v2/jobs/users-imports", nth=1, action=503)
    faults.job_pending_polls = 3      # every job stays pending for its first 3 polls
    faults.search_lag = 5.0           # new users are invisible to GET /users?q= for 5 s
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Action = int | Literal["drop"]


class DroppedConnection(ConnectionResetError):
    """Raised inside the app to stand for a connection cut before the answer was sent."""


@dataclass
class CallFault:
    endpoint: str
    """'METHOD /path/template' as routes are declared, e.g. 'GET /api/v2/jobs/{id}'; '*' for any."""
    nth: int
    action: Action
    times: int = 1


@dataclass
class Faults:
    calls: list[CallFault] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    fail_jobs: set[int] = field(default_factory=set)
    """1-based ordinals of jobs created (imports and exports alike) that end `failed`."""
    expire_jobs: set[int] = field(default_factory=set)
    """Ordinals of jobs that end `expired`."""
    job_pending_polls: int = 0
    """Every job answers `pending` to its first K polls before it may progress."""
    expire_links_now: bool = False
    """Download links are born expired."""
    search_lag: float = 0.0
    """Seconds after creation before a user is visible to `GET /users?q=`."""
    jobs_created: int = 0
    lose_import_answers: list[Action] = field(default_factory=list)
    """One action per import job to come: the job is made and runs on the clock, then its answer is lost:
    'drop' cuts the connection, a 5xx status answers instead (the next import job takes the next action)."""

    def fail_call(self, endpoint: str, nth: int = 1, action: Action = 500, times: int = 1) -> None:
        """Answer the `nth` call (1-based, counted from now) of `endpoint` and the `times - 1` after it."""
        if not (action == "drop" or (isinstance(action, int) and action in (429, 500, 502, 503, 504))):
            raise ValueError(f"unsupported fault action {action!r}")
        self.calls.append(CallFault(endpoint, self.counts[endpoint] + nth if endpoint != "*" else
                                    self.counts["*"] + nth, action, times))

    def on_call(self, endpoint: str) -> Action | None:
        """Count a call and return the fault to answer it with, if any."""
        self.counts[endpoint] += 1
        self.counts["*"] += 1
        for fault in self.calls:
            seen = self.counts["*"] if fault.endpoint == "*" else self.counts[endpoint]
            if fault.endpoint in ("*", endpoint) and fault.nth <= seen < fault.nth + fault.times:
                return fault.action
        return None

    def next_job_outcome(self) -> Literal["ok", "failed", "expired"]:
        self.jobs_created += 1
        if self.jobs_created in self.fail_jobs:
            return "failed"
        if self.jobs_created in self.expire_jobs:
            return "expired"
        return "ok"

    @staticmethod
    def parse(spec: str) -> CallFault:
        """Parse a `--fault` flag: 'METHOD /path@N=ACTION[xTIMES]', e.g. 'GET /api/v2/jobs/{id}@2=503x3'."""
        try:
            endpoint, rest = spec.rsplit("@", 1)
            nth, action = rest.split("=", 1)
            times = 1
            if "x" in action:
                action, times_s = action.split("x", 1)
                times = int(times_s)
            act: Action = "drop" if action == "drop" else int(action)
            return CallFault(endpoint.strip(), int(nth), act, times)
        except ValueError:
            raise ValueError(f"bad fault {spec!r}; expected 'METHOD /path@N=STATUS|drop[xTIMES]'") from None
