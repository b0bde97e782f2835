"""Fault switches: make the local tenant misbehave on purpose, the way a real tenant sometimes does.

Set them on a running app (`app.state.tenant.faults`) or with `tenant serve` flags.

Example::

    faults.fail_call("POST /api/v2/jobs/users-imports", nth=1, action=503)
    faults.fail_call("GET /exports/{id}/{file}", nth=1, action="drop")   # the export download
    faults.fail_call("GET /exports/{id}/{file}", nth=1, action="truncated")  # half its gzip, answered 200
    faults.job_pending_polls = 3      # every job stays pending for its first 3 polls
    faults.expire_links = 2           # the next 2 download links are born expired
    faults.search_lag = 5.0           # new users are invisible to GET /users?q= for 5 s

Every fault that fires is counted in `faults.injected`, so a test can check that its fault happened
before it checks the outcome: by endpoint name for a call fault ('GET /api/v2/jobs/{id}'), else by
switch: 'fail_jobs' and 'expire_jobs' (jobs that ended so), 'job_pending_polls' (polls answered
`pending` by the switch), 'expire_links' (links born expired), 'search_lag' (users a search left out).

Every served path can be faulted by name, the token endpoint and the export download included;
'*' stands for any Management API endpoint only (a storm of 429s on `/api/v2`, not on the token or
the CDN, which have limits of their own).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final, Literal

Action = int | Literal["drop", "garbled", "truncated"]
"""A status to answer with, `drop` (cut the connection), `garbled` (200 with JSON no SDK model reads) or
`truncated` (the route's own answer with the first half of its body only, as a whole message: a body that
was damaged before it was sent, which the HTTP layer cannot notice)."""
WORDS: Final = ("drop", "garbled", "truncated")
"""The actions that are not a status."""
SPEC: Final = "METHOD /path@N=STATUS|drop|garbled|truncated[xTIMES]"
"""How a `--fault` flag is written (`Faults.parse`)."""


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
    """1-based ordinals of jobs created (imports and exports alike, counted from the tenant's start: a
    test that seeded through jobs adds `jobs_created + 1` for the next one) that end `failed`."""
    expire_jobs: set[int] = field(default_factory=set)
    """Ordinals of jobs that end `expired`."""
    job_pending_polls: int = 0
    """Every job answers `pending` to its first K polls before it may progress."""
    expire_links: int = 0
    """The next N download links signed are born expired (counts down to 0 as they are)."""
    search_lag: float = 0.0
    """Seconds after creation before a user is visible to `GET /users?q=`."""
    jobs_created: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    """Faults that fired, by endpoint (call faults) or switch name: see the module docstring."""
    deletes_ignored: int = 0
    """The next N `DELETE /connections/{id}/users?email=` answer 204 and delete nothing (counts down as each fires)."""
    lose_import_answers: list[Action] = field(default_factory=list)
    """One action per import job to come: the job is made and runs on the clock, then its answer is lost:
    'drop' cuts the connection, a 5xx status answers instead (the next import job takes the next action)."""

    def fail_call(self, endpoint: str, nth: int = 1, action: Action = 500, times: int = 1) -> None:
        """Answer the `nth` call (1-based, counted from now) of `endpoint` and the `times - 1` after it."""
        if not (action in WORDS or (isinstance(action, int) and action in (429, 500, 502, 503, 504))):
            raise ValueError(f"unsupported fault action {action!r}")
        self.calls.append(CallFault(endpoint, self.counts[endpoint] + nth if endpoint != "*" else
                                    self.counts["*"] + nth, action, times))

    def on_call(self, endpoint: str, api: bool = True) -> Action | None:
        """Count a call and return the fault to answer it with, if any ('*' only counts `api` calls)."""
        self.counts[endpoint] += 1
        if api:
            self.counts["*"] += 1
        for fault in self.calls:
            if fault.endpoint == "*" and not api:
                continue
            seen = self.counts["*"] if fault.endpoint == "*" else self.counts[endpoint]
            if fault.endpoint in ("*", endpoint) and fault.nth <= seen < fault.nth + fault.times:
                self.injected[endpoint] += 1
                return fault.action
        return None

    def link_born_expired(self) -> bool:
        """Whether the download link being signed is born expired (one of the next `expire_links`)."""
        if self.expire_links <= 0:
            return False
        self.expire_links -= 1
        self.injected["expire_links"] += 1
        return True

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
            act: Action = action if action in WORDS else int(action)  # type: ignore[assignment]
            return CallFault(endpoint.strip(), int(nth), act, times)
        except ValueError:
            raise ValueError(f"bad fault {spec!r}; expected '{SPEC}'") from None
