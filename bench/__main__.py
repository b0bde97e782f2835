"""`python -m bench [--users N] [--json]`, `python -m bench --offline [--users N] [--json]` and
`python -m bench --tenant [--json]` (the local tenant's and the validator's own speed).

Progress goes to stderr; the table (or, with `--json`, one JSON object) to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from typing import Any

from rich.console import Console
from rich.table import Table


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description="auth0-migrate benchmark (issue 4)")
    p.add_argument("--offline", action="store_true", help="measure the local work alone (no tenant, no network)")
    p.add_argument("--tenant", action="store_true",
                   help="measure the local tenant (export, import, calls, search) and the import validator")
    p.add_argument("--users", type=int, default=None,
                   help="users to migrate (default 5,000; offline: 1,000,000)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    g = p.add_argument_group("migration mode")
    g.add_argument("--rate", type=float, default=50.0, help="the tenant's sustained limit, req/s (default 50)")
    g.add_argument("--burst", type=int, default=None, help="its bucket size (default: the rate)")
    g.add_argument("--latency", type=float, default=0.15, help="seconds added to every call (default 0.15)")
    g.add_argument("--job-seconds", type=float, default=None,
                   help="processing time of a bulk job (default 2 + users/1000)")
    g.add_argument("--strategies", default="regenerate,keep,prefix", help="comma-separated user-id strategies")
    g.add_argument("--baseline-users", type=int, default=500,
                   help="users the per-user script is measured on, scaled to --users (default 500; "
                        "-1: all of them; 0: no baseline)")
    g.add_argument("--known-rate", action="store_true",
                   help="tell the tool the rate (like --rate on `run`) instead of letting it learn from headers")
    g.add_argument("--profile", action="store_true", help="write a cProfile of each run next to its state")
    g.add_argument("--essentials-users", type=int, default=200,
                   help="users of the extra run on the Essentials plan's per-endpoint buckets (default 200; 0: none)")
    g.add_argument("--workdir", help="keep the seeded tenant, states and specs here (default: a temporary dir)")
    o = p.add_argument_group("offline mode")
    o.add_argument("--no-compare", action="store_true",
                   help="offline: measure only --users, not also 100,000 for the memory comparison")
    return p.parse_args(argv)


def _fmt_calls(r: dict[str, Any]) -> str:
    calls = sorted(r.get("calls_by_endpoint", {}).items(), key=lambda x: -x[1])
    return "\n".join(f"{n:>6}  {e.replace('/api/v2', '')}" for e, n in calls)


def migration_table(out: dict[str, Any], console: Console) -> None:
    limits = out["limits"]
    t = Table(title=f"auth0-migrate run: {out['users']:,} users, {limits['rate']:g} req/s (burst {limits['burst']}), "
                    f"{limits['latency'] * 1000:.0f} ms latency, jobs {limits['job_seconds']:g} s")
    t.add_column("")
    for name in out["strategies"]:
        t.add_column(name, justify="right")
    if "baseline" in out:
        t.add_column("per-user script", justify="right")
    rows: list[tuple[str, Any, Any]] = [
        ("calls", lambda r: f"{r['calls']:,}", lambda b: f"{b['calls']:,}"),
        ("floor calls", lambda r: f"{r['floor_calls']:,}", lambda b: ""),
        ("calls ÷ floor (≤ 1.02)", lambda r: f"{r['calls_ratio']:.3f}", lambda b: ""),
        ("calls ÷ before issue 9", lambda r: f"{r['calls_vs_before']:.3f}" if "calls_vs_before" in r else "",
         lambda b: ""),
        ("wall time, s", lambda r: f"{r['seconds']:.1f}", lambda b: f"{b['seconds']:.1f}"),
        ("floor time, s", lambda r: f"{r['floor_seconds']:.1f}", lambda b: ""),
        ("time ÷ floor (≤ 1.10)", lambda r: f"{r['time_ratio']:.3f}", lambda b: ""),
        ("429s (≤ 1 %)", lambda r: f"{r['http_429']} ({100 * r['http_429_share']:.2f} %)",
         lambda b: str(b["http_429"])),
        ("413s", lambda r: str(r["http_413"]), lambda b: ""),
        ("baseline ÷ ours (≥ 12)", lambda r: f"{r['baseline_ratio']:.1f}" if "baseline_ratio" in r else "",
         lambda b: ""),
        ("peak RSS, MB", lambda r: f"{r['peak_rss_mb']:.0f}", lambda b: f"{b['peak_rss_mb']:.0f}"),
        ("import files (floor)", lambda r: f"{r['import_files']} ({r['floor_import_files']})", lambda b: ""),
        ("smallest file but last, % of 500 KB",
         lambda r: f"{100 * min(r['import_file_bytes'][:-1]) / 512000:.1f}" if r["import_files"] > 1 else "-",
         lambda b: ""),
        ("verified users", lambda r: f"{r['user_counts']['verified']:,}", lambda b: ""),
        ("calls of run --refresh after a 1 % delta (÷ full run)",
         lambda r: f"{r['delta_calls']:,} ({r['delta_ratio']:.3f})" if "delta_calls" in r else "", lambda b: ""),
        ("exit code", lambda r: str(r["exit_code"]), lambda b: ""),
        ("calls by endpoint", _fmt_calls, _fmt_calls),
    ]
    for label, ours, base in rows:
        cells = [ours(r) for r in out["strategies"].values()]
        if "baseline" in out:
            cells.append(base(out["baseline"]))
        t.add_row(label, *cells)
    console.print(t)
    if "essentials" in out:
        e = out["essentials"]
        console.print(f"Essentials plan (per-endpoint buckets, learned from the headers), regenerate, {e['users']:,} "
                      f"users: {e['calls']:,} calls (floor {e['floor_calls']:,}, {e['calls_ratio']:.3f}), "
                      f"{e['seconds']:.1f} s, 429s {e['http_429']} ({100 * e['http_429_share']:.2f} % of calls), "
                      f"{e['failed_users']} users not migrated, exit {e['exit_code']}")
    if "baseline" in out and out["baseline"].get("extrapolated"):
        b = out["baseline"]
        console.print(f"per-user script: import part measured in full ({b['import_seconds']:.1f} s, "
                      f"{b['import_calls']} calls); the per-user loop measured on {b['measured_users']} users "
                      f"({b['measured_seconds']:.1f} s, {b['measured_calls']} calls) and scaled to {b['users']:,}.")


def offline_table(out: dict[str, Any], console: Console) -> None:
    t = Table(title="auth0-migrate local work: export file + hash file -> ledger -> joined, transformed, "
                    "validated, packed")
    for col in ("users", "seconds (≤ 30 at 1M)", "CPU seconds", "workers", "peak RSS, MB: this process + workers "
                "(≤ 300)", "import files", "users/s"):
        t.add_column(col, justify="right")
    for r in [out, *out.get("compare", [])]:
        t.add_row(f"{r['users']:,}", f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.1f}", str(r["workers"]),
                  f"{r['peak_rss_total_mb']:.0f} ({r['peak_rss_mb']:.0f} + {r['workers']} × "
                  f"{r['worker_peak_rss_mb']:.0f})", f"{r['import_files']:,}",
                  f"{r['users'] / r['seconds']:,.0f}" if r["seconds"] else "")
    console.print(t)
    console.print(f"this machine's speed that day: 10,000,000 additions in a Python loop took "
                  f"{out['python_loop_seconds']:.2f} s of CPU")
    if out.get("rss_ratio") is not None:
        console.print(f"RSS at {out['users']:,} ÷ RSS at {out['compare'][0]['users']:,} = {out['rss_ratio']:.2f} "
                      "(≤ 1.5)")
    phases = out.get("phases") or {}
    if phases:
        console.print("phases at " + f"{out['users']:,}: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    for r in [out, *out.get("compare", [])]:
        w = r.get("work_only")
        if w:
            console.print(f"the same per-user work at {r['users']:,} with nothing written (this design's floor): "
                          f"{w['seconds']:.1f} s (hash file {w['hashes_seconds']:.1f} s, export "
                          f"{w['export_seconds']:.1f} s); the ledger's part of the run: "
                          f"{r['seconds'] - w['seconds']:.1f} s")


def tenant_table(out: dict[str, Any], console: Console) -> None:
    t = Table(title="the local tenant's own speed, and the import validator (in-process, no OAS checks)")
    for col in ("what", "figure", "budget the tests used to assert"):
        t.add_column(col)
    e, i, c, v = out["export"], out["import"], out["calls_and_search"], out["import_validation"]
    t.add_row(f"export of {e['users']:,} users end to end",
              f"{e['wall_seconds']:.2f} s wall, {e['cpu_seconds']:.2f} s CPU", e["budget"])
    t.add_row(f"import file of {i['users']:,} users ({i['bytes']:,} B), half upserts",
              f"{i['wall_seconds'] * 1000:.0f} ms wall, {i['cpu_seconds'] * 1000:.0f} ms CPU", i["budget"])
    t.add_row("GET /users/{id}; users-by-email; unrouted 404",
              f"{c['get_user_per_second']:.0f}/s; {c['users_by_email_per_second']:.0f}/s; "
              f"{c['unrouted_404_per_second']:.0f}/s", c["budget"])
    for label, seconds in c["search_seconds"].items():
        t.add_row(f"search {label} among {c['users']:,} users", f"{seconds * 1000:.1f} ms", "")
    t.add_row(f"import validation of {v['users']:,} users", f"{v['cpu_seconds']:.2f} s CPU", v["budget"])
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console(highlight=False)
    if args.tenant:
        from .tenant_speed import benchmark as tenant_speed

        out = tenant_speed()
        if args.json:
            print(json.dumps(out))
        else:
            tenant_table(out, console)
        return 0
    workdir = args.workdir or tempfile.mkdtemp(prefix="auth0-migrate-bench-")
    os.makedirs(workdir, exist_ok=True)
    try:
        if args.offline:
            from .offline import benchmark as offline

            out = offline(args.users or 1_000_000, workdir=workdir, compare=not args.no_compare)
            if args.json:
                print(json.dumps(out))
            else:
                offline_table(out, console)
            return 0
        from .migration import Limits, benchmark

        limits = Limits(rate=args.rate, burst=args.burst or max(1, int(args.rate)), latency=args.latency,
                        job_seconds=args.job_seconds)
        users = args.users or 5000
        sample = None if args.baseline_users < 0 else args.baseline_users
        out = benchmark(users, workdir=workdir, limits=limits,
                        strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
                        baseline_users=sample, known_rate=args.known_rate, profile=args.profile,
                        essentials_users=args.essentials_users)
        if args.json:
            print(json.dumps(out))
        else:
            migration_table(out, console)
        return 0
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
