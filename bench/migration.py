"""Migration mode: seed a local tenant once, then migrate it with each user-id strategy under a rate limit.

The tenant runs in-process (`create_app` over `httpx.ASGITransport`) on the system clock, with a
sustained rate limit, a per-call latency and a job processing time, so a run costs what it would
cost against Auth0, not what a loopback costs. Seeding runs with no limit and no latency; each
strategy then runs in its own subprocess, on its own copy of the seeded SQLite file, so every run
starts from the same tenant and its peak RSS (`ru_maxrss`, tool and tenant together) is its own.

Run as a worker: `python -m bench.migration SPEC.json` prints one JSON object (see `run_strategy`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.ledger import MIGRATED, Ledger
from auth0_migrate.model import MigrationOptions, QuietReporter
from auth0_migrate.pipeline import run
from auth0_migrate.seed import credential_pool, disable_connection_for_clients, ensure_connection, seed_connection
from auth0_migrate.tenant import TenantConfig, create_app
from auth0_migrate.tenant.support_export import export_hashes

from .floor import FloorInputs, floor

SOURCE, TARGET = "Legacy-DB", "New-DB"
TENANT_NAME = "bench-tenant"
BASE_URL = "http://bench-tenant.local"
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret-0123456789"
STRATEGIES = ("regenerate", "keep", "prefix")


@dataclass
class Limits:
    """The tenant knobs every measured run gets."""

    rate: float = 50.0
    burst: int = 50
    latency: float = 0.15
    job_seconds: float | None = None
    """None: 2 s + 1 s per 1,000 users (an export or import of the whole connection takes that long)."""

    def jobs(self, users: int) -> float:
        return self.job_seconds if self.job_seconds is not None else round(2.0 + users / 1000.0, 3)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- seeding (once, no limits) ------------------------------------------------------------------

def tenant_app(db_path: str, *, rate: float | None = None, burst: int | None = None, latency: float = 0.0,
               job_seconds: float = 0.0, plan: str = "unlimited") -> Any:
    return create_app(TenantConfig(name=TENANT_NAME, base_url=BASE_URL, client_id=CLIENT_ID,
                                   client_secret=CLIENT_SECRET, db_path=db_path, rate=rate, burst=burst,
                                   latency=latency, job_seconds=job_seconds, plan=plan))  # type: ignore[arg-type]


def limited_tenant_app(spec: dict[str, Any]) -> Any:
    """The copy of the seeded tenant a worker migrates, under the spec's limits (or a plan's buckets: `plan`)."""
    limits = Limits(**spec["limits"])
    if spec.get("plan"):
        return tenant_app(spec["db"], latency=limits.latency, job_seconds=limits.jobs(spec["users"]),
                          plan=spec["plan"])
    return tenant_app(spec["db"], rate=limits.rate, burst=limits.burst, latency=limits.latency,
                      job_seconds=limits.jobs(spec["users"]))


def worker_main(run: Any, argv: list[str]) -> int:
    """`python -m bench.<worker> SPEC.json`: run the worker on the spec, print its result as one JSON line."""
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    print(json.dumps(asyncio.run(run(spec))))
    return 0


def client_for(app: Any, **kwargs: Any) -> TenantClient:
    return TenantClient(TenantCredentials(BASE_URL, CLIENT_ID, CLIENT_SECRET),
                        transport=httpx.ASGITransport(app=app), **kwargs)


async def seed(workdir: str, users: int, *, seed_value: int = 7) -> dict[str, Any]:
    """Seed `workdir/seed.sqlite` with `users` users, roles, permissions; write the support hash file."""
    db_path = os.path.join(workdir, "seed.sqlite")
    app = tenant_app(db_path)  # rate None, latency 0, jobs at once: seeding is set-up, not measured
    tenant = app.state.tenant
    client = client_for(app)
    try:
        # A few bcrypt cost-10 hashes shared by every user: hashing is what costs, not variety. Cost-10
        # bcrypt is what Auth0 stores and what its support file carries, so every user has a hash.
        pool = [p for p in credential_pool(random.Random(seed_value), size_per_algorithm=2)
                if "password_hash" in p[2]]
        seeded = await seed_connection(client, SOURCE, users=users, seed=seed_value, pool=pool)
        await ensure_connection(client, TARGET)
    finally:
        await client.aclose()
    hashes = os.path.join(workdir, "password-hashes.ndjson")
    lines = write_hash_file(tenant, hashes)
    tenant.close()
    return {"db": db_path, "hashes": hashes, "users": seeded.users, "hash_lines": lines,
            "role_members": seeded.role_members, "users_with_permissions": seeded.users_with_permissions,
            "permissions": seeded.permissions}


def write_hash_file(tenant: Any, path: str) -> int:
    """The support-ticket hash file of the source connection (mode 0600, as it holds hashes)."""
    with open(path, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        return export_hashes(tenant.store, SOURCE, TENANT_NAME, out)


# -- one strategy (a worker process) ------------------------------------------------------------

class PhaseClock(QuietReporter):
    """A reporter that keeps when each phase began (the pipeline's own phase names)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def phase(self, name: str, total: int | None = None) -> None:
        super().phase(name, total)
        self.marks.append((name, time.monotonic() - self.started))

    def durations(self, end: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for (name, t), nxt in zip(self.marks, [*self.marks[1:], ("end", end)], strict=True):
            out[name] = round(out.get(name, 0.0) + nxt[1] - t, 2)
        return out


def options_for(strategy: str, hashes: str, state: str) -> MigrationOptions:
    return MigrationOptions(source_connection=SOURCE, target_connection=TARGET, user_ids=strategy,  # type: ignore[arg-type]
                            id_prefix="migrated_" if strategy == "prefix" else None,
                            record_source_id="legacy_user_id" if strategy == "regenerate" else None,
                            password_hashes=hashes, delete_source_connection=strategy == "keep", state=state)


def floor_inputs(state: str, tenant: Any = None) -> FloorInputs:
    """N, m_r, P and B of a finished run, from its ledger (the source side of the data), and M_r (the members of
    each role in the target when the run verified it) from the tenant after the run (one tenant: the same roles)."""
    with Ledger.open(state, lock=False, create=False) as ledger:
        migrated = f"status IN {MIGRATED!r}"  # a tuple of two strings reads as an SQL list
        counts = ledger.user_counts()
        n = counts["imported"] + counts["already_in_target"]
        rows = [(str(r[0]), int(r[1])) for r in ledger.db.execute(
            f"SELECT r.source_role_id, (SELECT COUNT(*) FROM role_members m JOIN users u USING (ordinal) "
            f"WHERE m.source_role_id = r.source_role_id AND u.{migrated}) FROM roles r ORDER BY r.source_role_id")]
        members = [n for _, n in rows]
        in_target = None
        if tenant is not None:
            held = {str(r["role_id"]): int(r["n"]) for r in tenant.store.query(
                "SELECT role_id, COUNT(*) AS n FROM role_members GROUP BY role_id")}
            in_target = [held.get(role_id, 0) for role_id, _ in rows]
        p = int(ledger.db.execute(f"SELECT COUNT(DISTINCT p.ordinal) FROM permissions p JOIN users u USING (ordinal) "
                                  f"WHERE u.{migrated}").fetchone()[0] or 0)
        files = ledger.files()
        b = sum(f.bytes or 0 for f in files)
        failed_jobs = sum(1 for f in files if f.summary and (json.loads(f.summary) or {}).get("failed"))
    return FloorInputs(users=n, role_members=members, users_with_permissions=p, import_bytes=b,
                       role_members_in_target=in_target, jobs_with_failures=failed_jobs)


async def run_strategy(spec: dict[str, Any]) -> dict[str, Any]:
    """Migrate a copy of the seeded tenant with one strategy; the measured figures as a dict."""
    limits = Limits(**spec["limits"])
    job_seconds = limits.jobs(spec["users"])
    app = limited_tenant_app(spec)
    tenant = app.state.tenant
    client = client_for(app, concurrency=spec.get("concurrency", 16), rate=spec.get("known_rate"))
    reporter = PhaseClock()
    options = options_for(spec["strategy"], spec["hashes"], spec["state"])
    if options.delete_source_connection:
        # The owner has switched the applications to the target connection (set-up, not measured).
        setup = client_for(app)
        try:
            await disable_connection_for_clients(setup, SOURCE)
        finally:
            await setup.aclose()
    profile = spec.get("profile")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.monotonic()
    delta: dict[str, Any] | None = None
    try:
        try:
            result = await run(options, source=client, reporter=reporter)
        finally:
            seconds = time.monotonic() - started
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            await client.aclose()
        inputs = floor_inputs(spec["state"], tenant)  # before the delta changes the roles
        if spec.get("delta"):
            delta = await measure_delta(app, options, share=spec.get("delta_share", DELTA_SHARE),
                                        seed_value=spec.get("delta_seed", 11))
    finally:
        tenant.close()
    stats = client.governor.stats
    # A plan's buckets differ by endpoint: no single rate, so no floor on time (its calls still have one).
    fl = floor(inputs, spec["strategy"], rate=limits.rate, job_seconds=job_seconds)
    calls = stats.total
    return {
        "strategy": spec["strategy"],
        "calls": calls,
        "floor_calls": fl.calls,
        "seconds": round(seconds, 2),
        "floor_seconds": None if spec.get("plan") else round(fl.seconds, 2),
        "http_429": stats.http_429,
        "http_413": stats.statuses[413],
        "retries": stats.retries,
        "import_files": len(result.reports["import_files"]),
        "import_file_bytes": [f["bytes"] for f in result.reports["import_files"]],
        "floor_import_files": fl.import_files,
        "peak_rss_mb": peak_rss_mb(),
        "calls_by_endpoint": dict(sorted(stats.calls.items())),
        "tenant_calls_by_endpoint": dict(sorted(tenant.stats.items())),
        "floor_by_item": fl.by_item,
        "phases": reporter.durations(seconds),
        "exit_code": result.exit_code,
        "user_counts": result.users,
        # The data the floor is computed from (bench/floor.py).
        "users": inputs.users,
        "users_with_permissions": inputs.users_with_permissions,
        "role_members": inputs.role_members,
        "role_members_in_target": inputs.role_members_in_target,
        "import_bytes": inputs.import_bytes,
        "job_seconds": job_seconds,
        "rate": None if spec.get("plan") else limits.rate,
        "plan": spec.get("plan"),
        "warnings": [m for m in reporter.messages if m.startswith("warning")][:20],
        **({} if delta is None else {"delta": delta, "delta_calls": delta["calls"],
                                     "delta_ratio": round(delta["calls"] / calls, 4) if calls else None}),
    }


# -- a 1 % delta after the full run -------------------------------------------------------------

DELTA_SHARE = 0.01
"""Share of the source users changed after the full run (issue 13: a delta of 1 %)."""


async def change_source_users(client: TenantClient, state: str, share: float, rng: random.Random) -> dict[str, int]:
    """Edit `share` of the migrated source users: each one's user_metadata; half of them also get a role they
    lack, the other half lose a DIRECT permission (or, holding none, get one). What was changed, counted."""
    from auth0_migrate.seed import API_IDENTIFIER, API_SCOPES
    from auth0_migrate.stages.grants import direct_permissions

    with Ledger.open(state, lock=False, create=False) as ledger:
        migrated = {u.ordinal for u in ledger.migrated_users()}
        # In export order, not by id: ids are random, so sorting by them would pick other users each time.
        ids = [source_id for source_id, ordinal in sorted(ledger.ordinals_by_source_id().items(), key=lambda kv: kv[1])
               if ordinal in migrated]
    chosen = rng.sample(ids, max(2, round(len(ids) * share)))
    roles = {str(r.name): str(r.id) for r in (await client.sdk.roles.list(per_page=100)).items or []}
    counts = {"users": len(chosen), "metadata_edits": 0, "roles_added": 0, "permissions_removed": 0,
              "permissions_added": 0}
    for n, user_id in enumerate(chosen):
        await client.call("edit metadata", client.sdk.users.update, user_id,
                          user_metadata={"delta_edit": n, "locale": rng.choice(["en-GB", "fr-FR"])})
        counts["metadata_edits"] += 1
        if n % 2 == 0:
            held = {str(r.name) for r in (await client.sdk.users.roles.list(user_id, per_page=100)).items or []}
            lacking = sorted(set(roles) - held)
            if lacking:
                await client.call("add a role", client.sdk.users.roles.assign, user_id,
                                  roles=[roles[rng.choice(lacking)]])
                counts["roles_added"] += 1
            continue
        perms = sorted(await direct_permissions(client, user_id))
        if perms:
            api, name = rng.choice(perms)
            await client.call("remove a permission", client.sdk.users.permissions.delete, user_id,
                              permissions=[{"resource_server_identifier": api, "permission_name": name}])
            counts["permissions_removed"] += 1
        else:
            await client.call("add a permission", client.sdk.users.permissions.create, user_id,
                              permissions=[{"resource_server_identifier": API_IDENTIFIER,
                                            "permission_name": rng.choice(API_SCOPES)}])
            counts["permissions_added"] += 1
    return counts


async def measure_delta(app: Any, options: MigrationOptions, *, share: float = DELTA_SHARE,
                        seed_value: int = 11) -> dict[str, Any]:
    """After a full run: change `share` of the source users, then count the calls of `run --refresh`.

    Counted on a client of its own: the whole refresh (token, scopes, connections, one export of the
    source and one of the target, the upsert job, roles compared set-wise, the changed users'
    DIRECT permissions read again, writes, and the verification of what changed).
    """
    from auth0_migrate.pipeline import run as run_migration

    setup = client_for(app)
    try:
        changed = await change_source_users(setup, options.state or "", share, random.Random(seed_value))
    finally:
        await setup.aclose()
    client = client_for(app)
    started = time.monotonic()
    try:
        result = await run_migration(dataclasses.replace(options, refresh=True), source=client)
    finally:
        await client.aclose()
    stats = client.governor.stats
    delta = result.delta or {}
    return {"share": share, "changed": changed, "exit_code": result.exit_code, "updated": delta.get("updated", 0),
            "grants_added": delta.get("grants_added", 0), "grants_removed": delta.get("grants_removed", 0),
            "calls": stats.total, "seconds": round(time.monotonic() - started, 2),
            "calls_by_endpoint": dict(sorted(stats.calls.items()))}


# -- the orchestration (parent process) ---------------------------------------------------------

def run_worker(module: str, spec: dict[str, Any], workdir: str) -> dict[str, Any]:
    """Run `python -m <module> spec.json` and return the JSON object it prints last."""
    spec_path = os.path.join(workdir, f"{spec['name']}.spec.json")
    with open(spec_path, "w", encoding="utf-8") as out:
        json.dump(spec, out)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run([sys.executable, "-m", module, spec_path], cwd=root, env=env, stdout=subprocess.PIPE,
                          stderr=None, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{module} {spec['name']} failed (exit {done.returncode}): {done.stdout[-2000:]}")
    return json.loads(lines[-1])


def fresh_copy(seeded: dict[str, Any], workdir: str, name: str) -> str:
    path = os.path.join(workdir, f"{name}.tenant.sqlite")
    shutil.copyfile(seeded["db"], path)
    os.chmod(path, 0o600)
    return path


BEFORE_ISSUE_9 = {"regenerate": 12_178, "keep": 29_212, "prefix": 12_178}
"""Calls of each strategy on the default data before issue 9 (README's table at commit b98b583, 5,000 users)."""


def essentials_run(users: int, *, workdir: str, limits: Limits, concurrency: int = 16) -> dict[str, Any]:
    """`regenerate` on a tenant with the Essentials plan's per-endpoint buckets (no --rate: the tool learns them
    from the headers), on its own smaller seeded tenant: the plan's "all other endpoints" bucket (permissions,
    roles) allows 2.5 req/s."""
    where = os.path.join(workdir, "essentials")
    os.makedirs(where, exist_ok=True)
    seeded = asyncio.run(seed(where, users))
    spec = {"name": "essentials", "strategy": "regenerate", "users": users, "plan": "essentials",
            "db": fresh_copy(seeded, where, "essentials"), "hashes": seeded["hashes"],
            "state": os.path.join(where, "essentials.migration.sqlite"), "limits": limits.__dict__,
            "concurrency": concurrency}
    r = run_worker("bench.migration", spec, where)
    r["http_429_share"] = round(r["http_429"] / r["calls"], 4) if r["calls"] else 0.0
    r["failed_users"] = r["user_counts"]["failed"] + r["user_counts"]["held_back"] + r["user_counts"]["pending"]
    r["calls_ratio"] = round(r["calls"] / r["floor_calls"], 3) if r["floor_calls"] else None
    return r


def benchmark(users: int, *, workdir: str, limits: Limits, strategies: tuple[str, ...] = STRATEGIES,
              baseline_users: int | None = None, concurrency: int = 16, known_rate: bool = False,
              profile: bool = False, essentials_users: int = 0) -> dict[str, Any]:
    """Seed once, run each strategy and the baseline in their own processes; the report as a dict."""
    log(f"seeding {users} users in {workdir} (no rate limit, no latency)")
    started = time.monotonic()
    seeded = asyncio.run(seed(workdir, users))
    log(f"seeded in {time.monotonic() - started:.1f} s: {seeded['role_members']} role memberships, "
        f"{seeded['users_with_permissions']} users with DIRECT permissions; {seeded['hash_lines']} hash lines")
    out: dict[str, Any] = {"users": users, "limits": {"rate": limits.rate, "burst": limits.burst,
                                                      "latency": limits.latency,
                                                      "job_seconds": limits.jobs(users)},
                           "strategies": {}}
    for strategy in strategies:
        log(f"migrating with --user-ids {strategy} ...")
        spec = {"name": strategy, "strategy": strategy, "users": users, "db": fresh_copy(seeded, workdir, strategy),
                "hashes": seeded["hashes"], "state": os.path.join(workdir, f"{strategy}.migration.sqlite"),
                "limits": limits.__dict__, "concurrency": concurrency,
                "known_rate": limits.rate if known_rate else None,
                "profile": os.path.join(workdir, f"{strategy}.prof") if profile else None,
                # After the full run of regenerate: the calls of a 1 % delta (issue 13).
                "delta": strategy == "regenerate"}
        r = run_worker("bench.migration", spec, workdir)
        out["strategies"][strategy] = r
        log(f"{strategy}: {r['calls']} calls (floor {r['floor_calls']}), {r['seconds']} s (floor "
            f"{r['floor_seconds']}), {r['http_429']} x 429, exit {r['exit_code']}")
        if "delta_calls" in r:
            out["delta_calls"], out["delta_ratio"] = r["delta_calls"], r["delta_ratio"]
            log(f"{strategy}: a {100 * r['delta']['share']:g} % delta costs {r['delta_calls']} calls with "
                f"run --refresh ({r['delta_ratio']:.3f} of the full run)")
    if baseline_users != 0:
        log("baseline: the per-user script ...")
        spec = {"name": "baseline", "users": users, "db": fresh_copy(seeded, workdir, "baseline"),
                "hashes": seeded["hashes"], "state": os.path.join(workdir, "baseline.migration.sqlite"),
                "limits": limits.__dict__, "sample": baseline_users, "concurrency": concurrency}
        b = run_worker("bench.baseline", spec, workdir)
        out["baseline"] = b
        log(f"baseline: {b['calls']} calls, {b['seconds']} s" + (
            f" (per-user part measured on {b['measured_users']} users, scaled to {users})" if b.get("extrapolated")
            else ""))
    if essentials_users:
        log(f"essentials: regenerate on the Essentials plan's buckets, {essentials_users} users ...")
        e = essentials_run(essentials_users, workdir=workdir, limits=limits, concurrency=concurrency)
        out["essentials"] = e
        log(f"essentials: {e['calls']} calls, {e['seconds']} s, {e['http_429']} x 429 "
            f"({100 * e['http_429_share']:.2f} %), {e['failed_users']} users not migrated, exit {e['exit_code']}")
    for name, r in out["strategies"].items():
        if name in BEFORE_ISSUE_9 and users == 5000:
            r["calls_before_issue_9"] = BEFORE_ISSUE_9[name]
            r["calls_vs_before"] = round(r["calls"] / BEFORE_ISSUE_9[name], 3)
        r["calls_ratio"] = round(r["calls"] / r["floor_calls"], 3) if r["floor_calls"] else None
        r["time_ratio"] = round(r["seconds"] / r["floor_seconds"], 3) if r["floor_seconds"] else None
        r["http_429_share"] = round(r["http_429"] / r["calls"], 4) if r["calls"] else 0.0
        if "baseline" in out and r["seconds"]:
            r["baseline_ratio"] = round(out["baseline"]["seconds"] / r["seconds"], 2)
    return out


if __name__ == "__main__":
    sys.exit(worker_main(run_strategy, sys.argv))


