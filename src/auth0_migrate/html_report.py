"""The report to share: one self-contained HTML page about a migration, drawn from its ledger alone.

`run --report FILE.html`, `verify --report FILE.html` and `status --state LEDGER --report FILE.html` write
it (`write_report`); whatever the command did, the page is what the ledger says afterwards, so the three
agree and a report can be written again at any time, with no network. It holds:

- the summary (users by outcome, grants, organizations, linked accounts, MFA) and the exit status;
- what to do next: the exact command to resume, retry or verify again (from the options the last
  session recorded; secrets come from the environment and are never on the page);
- the timeline: each session (a run, a resumed run, a verify) and its stages, their durations and the
  Management API calls they made, with the 429s and retries among them (`timeline.py`);
- the rate-limit headroom over time, per tenant, as the governor saw it;
- the import files and how full each was (bytes against Auth0's 500 KB limit);
- the users not carried, grouped by code with counts: held back and why, failed and why (ids and
  emails; no hash, secret or profile field is read to make the page);
- what the users held beside their profile (organizations, linked accounts, MFA factors): found,
  not carriable (grouped by reason), carried, verified: the plan's inventory against what happened;
- input problems by kind, and the users verification found different in the target.

The page is plain HTML with inline CSS and inline SVG charts: no script, no external asset, no link out,
so it opens the same from a mail attachment, a ticket or an air-gapped laptop; every value from the
ledger is escaped. The file is created 0600 (it names users).

Choices where Auth0 is silent
-----------------------------
- At most `LIST_LIMIT` users are listed per failure code (the count is always whole): a page naming a
  million users helps no one; `status --json` lists them all.
- Times are shown in UTC and durations on the run's own clock; a session killed without a word (SIGKILL,
  power) has no end: its last stage is shown as "did not end".

Example::

    write_report("report.html", "migration.sqlite")
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shlex
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from .formats.import_file import MAX_REQUEST_BYTES
from .ledger import (
    MIGRATED,
    RETRYABLE_CODES,
    HoldingKind,
    Ledger,
    NotCarried,
    RateSample,
    Session,
    StageTime,
)
from .model import RunResult

LIST_LIMIT = 200
"""Users listed per failure code (all are counted)."""

_COLORS = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2")
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2937;margin:2em auto;max-width:1000px;
padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;text-align:left;border-bottom:1px solid #f3f4f6;
vertical-align:top}th{background:#f9fafb}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.6em}.card{border:1px solid #e5e7eb;border-radius:6px;padding:.5em .9em;
min-width:7em}.card b{display:block;font-size:1.5em}.ok{color:#047857}.bad{color:#b91c1c}.warn{color:#b45309}
pre{background:#f3f4f6;padding:.7em;border-radius:4px;white-space:pre-wrap;word-break:break-all}
.muted{color:#6b7280}details{margin:.4em 0}svg text{font:12px system-ui,sans-serif}
"""


@dataclass
class ReportData:
    """What the page shows, read from the ledger in one go."""

    state: str
    result: RunResult
    fingerprint: dict[str, Any]
    not_carried: list[NotCarried]
    sessions: list[Session]
    stages: list[StageTime]
    samples: list[RateSample]
    holdings: dict[str, dict[str, int]]
    cannot: dict[str, Counter[str]]


def read_report_data(ledger: Ledger) -> ReportData:
    from .pipeline import summarize

    result = summarize(ledger)
    cannot: dict[str, Counter[str]] = {}
    for kind in get_args(HoldingKind):
        cannot[kind] = Counter(h.detail or "no reason recorded" for h in ledger.holdings(kind, ["cannot"]))
    return ReportData(state=ledger.path, result=result, fingerprint=ledger.get_meta("fingerprint") or {},
                      not_carried=ledger.users_not_carried(), sessions=ledger.sessions(),
                      stages=ledger.stage_times(), samples=ledger.rate_samples(),
                      holdings=ledger.holding_counts(), cannot=cannot)


def write_report(path: str, state: str, *, generated: float | None = None) -> None:
    """Write the report of the migration whose ledger is `state` to `path`, created (or replaced) with mode 0600."""
    with Ledger.open_readonly(state) as ledger:
        page = render(read_report_data(ledger), generated=time.time() if generated is None else generated)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_TRUNC: make it private too
    with open(fd, "w", encoding="utf-8") as out:
        out.write(page)


# -- helpers -------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _users(count: int) -> str:
    return f"{count:,} user" + ("" if count == 1 else "s")


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "—"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "did not end"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{_e(_n(v) if isinstance(v, (int, float)) else v)}</td>' if i in numeric
                        else f"<td>{_e(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _hbars(title: str, items: Sequence[tuple[str, float, str]], *, scale: float | None = None,
           color: str = _COLORS[0], width: int = 900) -> str:
    """Horizontal bars, one per (label, value, shown text); `scale` is the value of a full bar (default: the max)."""
    if not items:
        return ""
    top = scale or max((v for _, v, _ in items), default=1) or 1
    row, label_w, bar_w = 22, 240, width - 240 - 150
    parts = [f'<svg role="img" width="{width}" height="{row * len(items) + 6}" '
             f'viewBox="0 0 {width} {row * len(items) + 6}"><title>{_e(title)}</title>']
    for i, (label, value, shown) in enumerate(items):
        y = i * row + 3
        w = max(1.0, bar_w * min(1.0, value / top))
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(label[:38])}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="14" fill="#f3f4f6"/>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="{color}"/>'
                     f'<text x="{label_w + bar_w + 6}" y="{y + 15}">{_e(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- the command to run next ---------------------------------------------------------------------


def _flags_of(command: str) -> dict[str, argparse.Action]:
    """The CLI's options of `command` by destination, read from the parser itself (so a new flag is known)."""
    from .cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            sub = action.choices[command]
            return {a.dest: a for a in sub._actions if a.option_strings}
    return {}


def command_line(command: str, recorded: dict[str, Any]) -> str:
    """The command that runs `command` again with the options a session recorded (secrets from the environment)."""
    flags = _flags_of(command)
    words = ["auth0-migrate", command]
    values = {**recorded.get("tenants", {}), **recorded.get("options", {})}
    for dest, value in values.items():
        action = flags.get(dest)
        if action is None or value is None or value is False or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if value is True:
            words.append(flag)
        else:
            words += [flag, ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)]
    return " ".join(shlex.quote(w) for w in words)


def _secrets_note(recorded: dict[str, Any]) -> str:
    tenants = recorded.get("tenants", {})
    names = ["AUTH0_CLIENT_SECRET"] + (["TARGET_AUTH0_CLIENT_SECRET"] if "target_domain" in tenants else [])
    return f"with {' and '.join(names)} set in the environment (secrets are never written in this report)"


def next_steps(data: ReportData) -> list[tuple[str, str]]:
    """(what, command) pairs: what to do next, the exact commands first."""
    result, users = data.result, data.result.users
    runs = [s for s in data.sessions if s.command.startswith("run")]
    status_cmd = f"auth0-migrate status --state {shlex.quote(data.state)} --report REPORT.html"
    if not runs:
        return [("The ledger records no run with its options (written by an older auth0-migrate): run the same "
                 "command again to resume; this report can be written again with", status_cmd)]
    last = data.sessions[-1]
    recorded = json.loads(runs[-1].options)
    run = command_line("run", recorded)
    verify = command_line("verify", recorded)
    steps: list[tuple[str, str]] = []
    if last.command == "rollback":
        undo = f"auth0-migrate rollback --state {shlex.quote(data.state)}"
        if last.outcome == "finished":
            steps.append(("The migration was rolled back (this ledger is not resumed again). What the rollback did "
                          "and could not restore is shown by", undo + " --dry-run"))
        else:
            steps.append((f"The last rollback {last.outcome or 'stopped without a word'}. Run it again to continue "
                          "(with --password-hashes FILE when cutover had deleted source users), "
                          + _secrets_note(recorded) + ":", undo))
        steps.append(("Write this report again from the ledger alone (no network):", status_cmd))
        return steps
    if last.outcome != "finished" or users.get("pending"):
        if last.outcome is None:
            how = "stopped without a word (killed, or it is still running)"
        elif last.outcome == "interrupted":
            how = "was interrupted"
        elif last.outcome != "finished":
            how = last.outcome
        else:
            how = "finished with users still pending"
        again = verify if last.command == "verify" else run
        steps.append((f"The last {last.command} {how}. Resume it (the ledger keeps every finished step), "
                      + _secrets_note(recorded) + ":", again))
    retry = sum(1 for r in data.not_carried if r.code in RETRYABLE_CODES and r.status not in MIGRATED)
    if retry:
        steps.append((f"Retry the {_users(retry)} whose import job failed or expired (the same command puts them "
                      "back in line), " + _secrets_note(recorded) + ":", run))
    final = users.get("failed", 0) + users.get("held_back", 0) - retry
    if final > 0:
        steps.append((f"{_users(final)} held back or refused for their data (see below): they stay so "
                      "until the data (or the hash file) changes, or a flag named in their reason allows them. Fix "
                      "it and run again with a new --state (users already in the target are recognised, not "
                      "imported twice); the command that ran was:", run))
    if result.differences:
        steps.append((f"{_users(len(result.differences))} differ in the target: after fixing, verify again:",
                      verify))
    if not steps:
        steps.append(("Nothing left to do. To check the target again later:", verify))
    steps.append(("Write this report again from the ledger alone (no network):", status_cmd))
    return steps


# -- sections ------------------------------------------------------------------------------------


def _summary(data: ReportData) -> str:
    result = data.result
    u = result.users
    migrated = u.get("imported", 0) + u.get("already_in_target", 0)
    cards = [("selected", u.get("selected", 0), ""), ("migrated", migrated, "ok"),
             ("verified", u.get("verified", 0), "ok"), ("held back", u.get("held_back", 0), "warn"),
             ("failed", u.get("failed", 0), "bad"), ("pending", u.get("pending", 0), "warn"),
             ("deleted from source", u.get("deleted_from_source", 0), ""),
             ("differences", len(result.differences), "bad")]
    out = ['<div class="cards">']
    for label, value, cls in cards:
        out.append(f'<div class="card"><b class="{cls if value else ""}">{_n(value)}</b>{_e(label)}</div>')
    out.append("</div>")
    total = u.get("selected", 0)
    if total:
        parts = [("migrated", migrated, "#059669"), ("held back", u.get("held_back", 0), "#d97706"),
                 ("failed", u.get("failed", 0), "#dc2626"), ("pending", u.get("pending", 0), "#9ca3af")]
        x, rects, legend = 0.0, [], []
        for label, value, color in parts:
            if not value:
                continue
            w = 900 * value / total
            rects.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="22" fill="{color}"><title>{_e(label)}: '
                         f'{_n(value)}</title></rect>')
            legend.append(f'<span style="color:{color}">■</span> {_e(label)} {_n(value)} '
                          f'({100 * value / total:.1f} %)')
            x += w
        out.append(f'<p><svg role="img" width="900" height="22" viewBox="0 0 900 22"><title>users by outcome'
                   f'</title>{"".join(rects)}</svg><br>{" &nbsp; ".join(legend)}</p>')
    rows: list[tuple[str, Any]] = [(f"refresh: {k.replace('_', ' ')}", v) for k, v in (result.delta or {}).items()]
    rows += [(k.replace("_", " "), v) for k, v in result.grants.items()]
    none_held = []
    for group, counts in (("organizations", result.organizations), ("linked accounts", result.identities),
                          ("MFA", result.mfa)):
        if any(counts.values()):
            rows += [(f"{group}: {k.replace('_', ' ')}", v) for k, v in counts.items()]
        else:
            none_held.append(group)
    rows += [(f"users {k.replace('_', ' ')}", v) for k, v in u.items()
             if k not in ("selected", "held_back", "failed", "pending", "verified", "deleted_from_source")]
    out.append(_table(["", "count"], rows, numeric=(1,)))
    if none_held:
        out.append(f'<p class="muted">No {_e(", ".join(none_held))} found on these users.</p>')
    return "".join(out)


def _timeline(data: ReportData) -> str:
    if not data.sessions:
        return '<p class="muted">This ledger records no timeline (it was written by an older auth0-migrate).</p>'
    by_session: dict[int, list[StageTime]] = defaultdict(list)
    for stage in data.stages:
        by_session[stage.session].append(stage)
    out = []
    for s in data.sessions:
        stages = by_session.get(s.session, [])
        end = s.ended if s.ended is not None else max([st.ended or st.started for st in stages] + [s.started])
        span = max(end - s.started, 1e-9)
        outcome = s.outcome or "did not end (the process was killed, or is still running)"
        calls = sum(st.calls for st in stages)
        out.append(f"<h3>Session {s.session}: {_e(s.command)}, {_when(s.started)}, "
                   f"{_e(_duration(None if s.ended is None else s.ended - s.started))}, {_n(calls)} calls, "
                   f"<span class=\"{'ok' if s.outcome == 'finished' else 'warn'}\">{_e(outcome)}</span></h3>")
        if not stages:
            out.append('<p class="muted">No stage started (everything was already done, or it stopped first).</p>')
            continue
        row, label_w, bar_w = 22, 300, 560
        svg = [f'<svg role="img" width="{label_w + bar_w + 20}" height="{row * len(stages) + 6}" '
               f'viewBox="0 0 {label_w + bar_w + 20} {row * len(stages) + 6}"><title>stages of session '
               f'{s.session}</title>']
        for i, st in enumerate(stages):
            stop = st.ended if st.ended is not None else end
            x = label_w + bar_w * (st.started - s.started) / span
            w = max(2.0, bar_w * (stop - st.started) / span)
            color = _COLORS[i % len(_COLORS)] if st.ended is not None else "#dc2626"
            svg.append(f'<text x="{label_w - 6}" y="{i * row + 18}" text-anchor="end">{_e(st.stage[:44])}</text>'
                       f'<rect x="{x:.1f}" y="{i * row + 6}" width="{w:.1f}" height="14" fill="{color}">'
                       f'<title>{_e(st.stage)}: {_e(_duration(None if st.ended is None else stop - st.started))}'
                       f'</title></rect>')
        svg.append("</svg>")
        out.append("".join(svg))
        out.append(_table(["stage", "started", "duration", "calls", "429s", "retries"],
                          [(st.stage, _when(st.started),
                            _duration(None if st.ended is None else st.ended - st.started), st.calls, st.http_429,
                            st.retries) for st in stages], numeric=(3, 4, 5)))
    return "".join(out)


def _headroom(data: ReportData) -> str:
    if not data.samples:
        return '<p class="muted">No rate-limit headers were recorded.</p>'
    out = []
    starts = {s.session: s.started for s in data.sessions}
    by_session: dict[int, list[RateSample]] = defaultdict(list)
    for sample in data.samples:
        by_session[sample.session].append(sample)
    for session, samples in by_session.items():
        t0 = starts.get(session, samples[0].at)
        span = max(max(s.at for s in samples) - t0, 1e-9)
        width, height, left, bottom = 900, 200, 50, 24
        plot_w, plot_h = width - left - 20, height - bottom - 10
        svg = [f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}"><title>rate-limit '
               f'headroom, session {session}</title>']
        for pct in (0, 50, 100):
            y = 10 + plot_h * (1 - pct / 100)
            svg.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                       f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{pct} %</text>')
        svg.append(f'<text x="{left}" y="{height - 4}">0 s</text><text x="{left + plot_w}" y="{height - 4}" '
                   f'text-anchor="end">{_e(_duration(span))}</text>')
        marks = [st for st in data.stages if st.session == session]
        for i, st in enumerate(marks):  # where each stage began: which stage drew the bucket down
            x = left + plot_w * max(0.0, st.started - t0) / span
            svg.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="10" y2="{10 + plot_h}" stroke="#9ca3af" '
                       f'stroke-dasharray="3,3"><title>{_e(st.stage)}</title></line>'
                       f'<text x="{x + 2:.1f}" y="{20 + (i % 3) * 12}" fill="#6b7280">{i + 1}</text>')
        rows = []
        tenants = sorted({s.tenant for s in samples})
        for i, tenant in enumerate(tenants):
            mine = [s for s in samples if s.tenant == tenant]
            color = _COLORS[i % len(_COLORS)]
            points = [(left + plot_w * (s.at - t0) / span, 10 + plot_h * (1 - s.remaining / max(1, s.size)))
                      for s in mine]
            svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                       + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
            svg += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in points]
            low = min(mine, key=lambda s: s.remaining / max(1, s.size))
            rows.append((f"{tenant} (line {i + 1})", len(mine), f"{low.remaining:,} of {low.size:,}",
                         f"{100 * low.remaining / max(1, low.size):.0f} %"))
        svg.append("</svg>")
        out.append(f"<h3>Session {session}</h3>" + "".join(svg))
        if marks:
            out.append('<p class="muted">Stages (dashed lines): '
                       + " · ".join(f"{i + 1} {_e(st.stage)}" for i, st in enumerate(marks)) + "</p>")
        out.append(_table(["tenant", "samples", "lowest remaining", "lowest headroom"], rows, numeric=(1,)))
    return "".join(out)


def _files(data: ReportData) -> str:
    files = data.result.reports.get("import_files") or []
    if not files:
        return '<p class="muted">No import file (yet).</p>'
    sizes = [f["bytes"] or 0 for f in files]
    head = (f"<p>{_n(len(files))} files, {_n(sum(f['users'] or 0 for f in files))} users, "
            f"{_n(sum(sizes))} bytes; each at most {_n(MAX_REQUEST_BYTES)} bytes (500 KB) as Auth0 takes it; "
            f"mean fill {100 * sum(sizes) / len(sizes) / MAX_REQUEST_BYTES:.1f} %.</p>")
    bars = _hbars("import file fill", [(f"file {f['file_id']} ({f['status']})", float(f["bytes"] or 0),
                                        f"{_n(f['bytes'] or 0)} B, {100 * (f['bytes'] or 0) / MAX_REQUEST_BYTES:.0f} %")
                                       for f in files[:300]], scale=float(MAX_REQUEST_BYTES), color=_COLORS[2])
    table = _table(["file", "users", "bytes", "fill", "job", "status"],
                   [(f["file_id"], f["users"] or 0, f["bytes"] or 0,
                     f"{100 * (f['bytes'] or 0) / MAX_REQUEST_BYTES:.1f} %", f["job_id"] or "", f["status"])
                    for f in files], numeric=(0, 1, 2))
    return head + bars + f"<details><summary>every file</summary>{table}</details>"


def _users_by_code(title: str, rows: list[NotCarried], state: str) -> str:
    if not rows:
        return ""
    by_code: dict[str, list[NotCarried]] = defaultdict(list)
    for r in rows:
        by_code[r.code or "NOT_FINISHED"].append(r)
    ordered = sorted(by_code.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    out = [f"<h3>{_e(title)}: {_n(len(rows))}</h3>",
           _hbars(title, [(code, float(len(users)), _n(len(users))) for code, users in ordered],
                  color="#dc2626" if title.startswith("Failed") else "#d97706")]
    for code, users in ordered:
        listed = users[:LIST_LIMIT]
        more = (f'<p class="muted">and {_n(len(users) - LIST_LIMIT)} more: <code>auth0-migrate status --state '
                f"{_e(shlex.quote(state))} --json</code> lists them all.</p>") if len(users) > LIST_LIMIT else ""
        out.append(f"<details open><summary><b>{_e(code)}</b>: {_users(len(users))}</summary>"
                   + _table(["user id", "email", "stage", "why"],
                            [(r.source_id, r.email or "", r.stage or r.status, r.message or "") for r in listed])
                   + more + "</details>")
    return "".join(out)


def _not_carried(data: ReportData) -> str:
    held = [r for r in data.not_carried if r.status == "held_back"]
    failed = [r for r in data.not_carried if r.status in ("failed", "invalid")]
    pending = [r for r in data.not_carried if r.status not in ("held_back", "failed", "invalid")
               and r.status not in MIGRATED]
    cutover = [r for r in data.not_carried if r.status in MIGRATED]
    codes = data.result.reports.get("failures_by_code") or {}
    out = []
    if codes:
        out.append(_table(["code", "users"], sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])), numeric=(1,)))
    out += [_users_by_code("Held back (left in the source)", held, data.state),
            _users_by_code("Failed", failed, data.state),
            _users_by_code("Not finished", pending, data.state),
            _users_by_code("Migrated, source copy kept", cutover, data.state)]
    body = "".join(out)
    return body or '<p class="ok">Every user was carried.</p>'


_KIND_NAMES = {"organization": "organization memberships", "organization-role": "organization roles",
               "identity": "linked accounts", "mfa-factor": "MFA factors"}


def _inventory(data: ReportData) -> str:
    rows = []
    for kind, counts in data.holdings.items():
        found = sum(counts[s] for s in ("found", "carried", "verified", "cannot"))
        rows.append((_KIND_NAMES.get(kind, kind), counts["users"], found, counts["cannot"],
                     counts["carried"] + counts["verified"], counts["verified"], counts["found"]))
    out = ["<p>What the users held beside profile, password and grants: what the plan counts (found in the source, "
           "and what cannot be carried with these options) against what the run did (carried to the target, "
           "verified there).</p>",
           _table(["kind", "users", "found", "cannot carry", "carried", "verified", "not yet carried"], rows,
                  numeric=(1, 2, 3, 4, 5, 6))]
    for kind, details in data.cannot.items():
        if details:
            out.append(f"<h3>{_e(_KIND_NAMES.get(kind, kind))} that cannot be carried</h3>"
                       + _table(["reason", "items"], details.most_common(), numeric=(1,)))
    u = data.result.users
    out.append("<p>Users: " + ", ".join(f"{_e(k.replace('_', ' '))} {_n(v)}" for k, v in u.items()) + ".</p>")
    return "".join(out)


def _problems(data: ReportData) -> str:
    problems = data.result.reports.get("problems") or {}
    out = []
    if problems:
        out.append(_table(["kind", "count"], [(k, len(v)) for k, v in problems.items()], numeric=(1,)))
        for kind, items in problems.items():
            out.append(f"<details><summary>{_e(kind)}: {_n(len(items))}</summary>"
                       + _table(["ref", "detail"], [(i["ref"] or "", i["detail"]) for i in items[:LIST_LIMIT]])
                       + "</details>")
    if data.result.differences:
        out.append(f"<h3>Users that differ in the target: {_n(len(data.result.differences))}</h3>")
        out.append(_table(["user id", "target id", "email", "differences"],
                          [(d["user_id"], d["target_id"] or "", d["email"] or "", "; ".join(d["differences"]))
                           for d in data.result.differences[:LIST_LIMIT]]))
    return "".join(out) or '<p class="ok">None.</p>'


_EXIT_WORDS = {0: "done: every user migrated and verified", 3: "users not migrated, or input problems",
               4: "verification found differences"}


def render(data: ReportData, *, generated: float) -> str:
    """The page, as one string."""
    fp = data.fingerprint
    code = data.result.exit_code
    source = f"{fp.get('source', '?')} / {fp.get('source_connection', '?')}"
    target = f"{fp.get('target', '?')} / {fp.get('target_connection', '?')}"
    steps = "".join(f"<p>{_e(what)}</p><pre>{_e(cmd)}</pre>" for what, cmd in next_steps(data))
    sections = [
        ("Summary", _summary(data)),
        ("Next step", steps),
        ("Timeline", _timeline(data)),
        ("Rate-limit headroom", "<p>The lowest share of the rate limit left, as the tool saw it every few seconds "
                                "(100 %: the bucket is full; 0 %: Auth0 answers 429).</p>" + _headroom(data)),
        ("Import files", _files(data)),
        ("Users not carried", _not_carried(data)),
        ("Inventory: planned against done", _inventory(data)),
        ("Input problems and differences", _problems(data)),
    ]
    body = "".join(f'<h2 id="{_e(title.split(":")[0].lower().replace(" ", "-"))}">{_e(title)}</h2>{content}'
                   for title, content in sections)
    status_class = "ok" if code == 0 else "bad"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>auth0-migrate report: '
            f'{_e(source)} to {_e(target)}</title><style>{_CSS}</style></head><body>'
            f"<h1>Migration report</h1><p>{_e(source)} &rarr; {_e(target)}, user ids: "
            f"{_e(fp.get('user_ids', '?'))}<br>ledger {_e(data.state)}<br>written {_when(generated)}</p>"
            f'<p class="{status_class}"><b>exit status {code}</b>: {_e(_EXIT_WORDS.get(code, "see below"))}</p>'
            f"{body}</body></html>\n")
