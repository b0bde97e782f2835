"""Offline mode: the local work alone, through the tool's own stage code and ledger, no tenant.

Synthetic input is written first (not timed): a gzipped NDJSON export as the tenant produces it,
about 1 KB a record with realistic fields, and a support-format password-hash file with one line
per user (bcrypt cost 10, as Auth0 support hands them out). Then, timed, in a process of its own
(so its peak RSS is its own; a large file is read by worker processes too, `auth0_migrate.workers`,
whose largest peak is reported beside it, and the total counts each worker at that peak):
`pipeline.ingest_source` (the hash file indexed in the ledger, the export read with the download
replaced by the file, each user joined, transformed, validated and
packed as it is read, then the email fallback), and the stragglers' `stages.transform.transform_users`
and `pack_users`, on a `stages.context.Migration` with a real `Ledger` and no clients.

Then, also timed, the same per-user work with nothing written (`work_only`): the hash file's pieces and the
export's pieces through the same code and the same workers, each answer taken and dropped (the hash rows
the export's join reads come from a ledger loaded beforehand, not timed). That is the floor of this design's
local work on the machine of the day: the run's seconds above it are the ledger's (writes, indexes, commit,
the email join and the packing).

Run as a worker: `python -m bench.offline SPEC.json` prints one JSON object.
"""

from __future__ import annotations

import gzip
import os
import random
import resource
import shutil
import sys
import time
from typing import Any

from auth0_migrate.ledger import Ledger
from auth0_migrate.model import MigrationOptions
from auth0_migrate.pipeline import ingest_source
from auth0_migrate.stages import export, transform
from auth0_migrate.stages.context import Connection, Migration
from auth0_migrate.stages.hashes import hash_pieces, load_hashes
from auth0_migrate.stages.ingest import UserWork, findings_of_export
from auth0_migrate.workers import worker_count

from .migration import PhaseClock, log, peak_rss_mb, run_worker

SOURCE, TARGET = "Legacy-DB", "New-DB"
FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Linus", "Frances",
         "Niklaus", "Hedy", "Dennis", "Katherine", "Tim", "Sophie", "John", "Annie", "Whitfield")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Perlman",
        "Torvalds", "Allen", "Wirth", "Lamarr", "Ritchie", "Johnson", "Berners-Lee", "Wilson", "McCarthy", "Easley",
        "Diffie")
CITIES = ("London", "Paris", "Berlin", "Tokyo", "Lisbon", "Oslo", "Austin", "Toronto")
LOCALES = ("en-GB", "fr-FR", "de-DE", "ja-JP", "pt-PT", "nb-NO", "en-US", "en-CA")
PLANS = ("free", "pro", "team", "enterprise")


def user_oid(n: int) -> str:
    """A 24-hex id, unique per n, that does not look sequential (as Auth0's ObjectIds do not)."""
    return f"{(n * 0x9E3779B97F4A7C15 + 0x5DEECE66D) % (1 << 96):024x}"


def _bcrypt_pool() -> list[str]:
    import bcrypt

    return [bcrypt.hashpw(f"pw-{i}".encode(), bcrypt.gensalt(10)).decode() for i in range(4)]


def write_inputs(workdir: str, users: int, seed: int = 11) -> tuple[str, str]:
    """The export file (gzipped NDJSON) and the hash file (NDJSON) for `users` synthetic users."""
    rng = random.Random(seed)
    hashes = _bcrypt_pool()
    export_path = os.path.join(workdir, f"export-{users}.json.gz")
    hash_path = os.path.join(workdir, f"hashes-{users}.ndjson")
    with gzip.open(export_path, "wt", encoding="utf-8", compresslevel=1) as ex,\
            open(hash_path, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as hf:
        out_e: list[str] = []
        out_h: list[str] = []
        for n in range(users):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            oid = user_oid(n)
            email = f"{first}.{last}.{n}@example.com".lower()
            verified = "true" if rng.random() > 0.25 else "false"
            day = 1 + n % 28
            created = f"2021-{1 + n % 12:02d}-{day:02d}T{n % 24:02d}:{n % 60:02d}:{(n * 7) % 60:02d}.{n % 1000:03d}Z"
            login = f"2025-{1 + (n * 5) % 12:02d}-{day:02d}T08:{n % 60:02d}:00.000Z"
            phone = f',"phone_number":"+4477009{n % 100000:05d}","phone_verified":false' if n % 5 == 0 else ""
            blocked = ',"blocked":true' if n % 25 == 0 else ""
            bio = "Synthetic user for the auth0-migrate benchmark. " * rng.randint(1, 3)
            out_e.append(
                f'{{"user_id":"auth0|{oid}","email":"{email}","email_verified":{verified}{phone},'
                f'"given_name":"{first}","family_name":"{last}","name":"{first} {last}",'
                f'"nickname":"{first.lower()}{n}","picture":"https://s.gravatar.com/avatar/{oid}{oid[:8]}?s=480&r=pg&d=mp"'
                f'{blocked},"app_metadata":{{"plan":"{rng.choice(PLANS)}","customer_id":"cus_{n:010d}",'
                f'"flags":{{"beta":{"true" if n % 3 == 0 else "false"},"legacy_import":true}},'
                f'"roles_cache":["reader","{rng.choice(("writer", "billing", "support"))}"]}},'
                f'"user_metadata":{{"locale":"{rng.choice(LOCALES)}","timezone":"Europe/London",'
                f'"address":{{"city":"{rng.choice(CITIES)}","postcode":"N{n % 99} {n % 9}AB"}},'
                f'"preferences":{{"newsletter":{"true" if n % 2 else "false"},"theme":"dark"}},"bio":"{bio}"}},'
                f'"identities":[{{"connection":"{SOURCE}","user_id":"{oid}","provider":"auth0","isSocial":false}}],'
                f'"created_at":"{created}","updated_at":"{login}","last_login":"{login}",'
                f'"logins_count":{n % 400}}}\n')
            out_h.append(
                f'{{"_id":{{"$oid":"{oid}"}},"email_verified":{verified},"email":"{email}",'
                f'"passwordHash":"{hashes[n % len(hashes)]}","password_set_date":{{"$date":"{created}"}},'
                f'"tenant":"bench-tenant","connection":"{SOURCE}","_tmp_is_unique":true,'
                f'"identifiers":[{{"type":"email","value":"{email}","verified":{verified}}}]}}\n')
            if len(out_e) >= 10_000:
                ex.write("".join(out_e))
                hf.write("".join(out_h))
                out_e.clear()
                out_h.clear()
        ex.write("".join(out_e))
        hf.write("".join(out_h))
    return export_path, hash_path


def python_speed() -> float:
    """Seconds this machine takes for ten million additions in a Python loop (one core): the day's speed, for
    comparing runs on a shared machine whose speed changes from day to day."""
    started = time.process_time()
    total = 0
    for n in range(10_000_000):
        total += n
    return round(time.process_time() - started, 2)


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its children that have ended (all of the work's)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def run_local(spec: dict[str, Any]) -> dict[str, Any]:
    """Export file -> ledger -> join -> transform and validate -> pack; timed, in this process. Then `work_only`."""
    export_path, hash_path, state = spec["export"], spec["hashes"], spec["state"]
    options = MigrationOptions(source_connection=SOURCE, target_connection=TARGET, user_ids="regenerate",
                               password_hashes=hash_path, state=state)
    again = export_path + ".again"  # the stage deletes its download; `work_only` reads this copy (not timed)
    shutil.copyfile(export_path, again)
    try:
        out = await _timed_run(spec, options)
        out["work_only"] = work_only(options, again, hash_path, state + ".work-only")
    finally:
        os.unlink(again)
    return out


async def _timed_run(spec: dict[str, Any], options: MigrationOptions) -> dict[str, Any]:
    export_path, hash_path, state = spec["export"], spec["hashes"], spec["state"]

    async def downloaded(migration: Migration) -> tuple[str, str]:  # the export job's download, already on disk
        return "job_offline", export_path

    fresh_export = export._fresh_export
    export._fresh_export = downloaded  # type: ignore[assignment]  # the only network step of the loading path
    workers = max(worker_count(export_path), worker_count(hash_path))
    reporter = PhaseClock()
    cpu_started = cpu_seconds()
    started = time.monotonic()
    ledger = Ledger.open(state, {"bench": "offline"})
    try:
        migration = Migration(options, ledger, None, None, reporter,  # type: ignore[arg-type]  # no clients: no network
                  Connection("con_0000000000000001", SOURCE), Connection("con_0000000000000002", TARGET))
        await ingest_source(migration)
        transform.transform_users(migration)
        transform.pack_users(migration)
        seconds = time.monotonic() - started
        cpu = cpu_seconds() - cpu_started
        files = ledger.files()
        counts = {r["status"]: r["n"] for r in ledger.db.execute(
            "SELECT status, COUNT(*) AS n FROM users GROUP BY status")}
        with_hash = ledger.user_counts()["with_password_hash"]
    finally:
        ledger.close()
        export._fresh_export = fresh_export  # a later export in this process (the test suite) reads the network
    worker_rss = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, 1) if workers else 0.0
    return {"users": spec["users"], "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": peak_rss_mb(), "workers": workers, "worker_peak_rss_mb": worker_rss,
            "peak_rss_total_mb": round(peak_rss_mb() + workers * worker_rss, 1),
            "import_files": len(files), "import_bytes": sum(f.bytes or 0 for f in files),
            "statuses": counts, "with_password_hash": with_hash, "phases": reporter.durations(seconds)}


def work_only(options: MigrationOptions, export_path: str, hash_path: str, state: str) -> dict[str, Any]:
    """The run's per-user work with nothing written: the hash file's pieces (`hashes.hash_pieces`), then the
    export's (`ingest.findings_of_export`, joined to hash rows loaded beforehand into a ledger of their own, not
    timed), each answer dropped; seconds of each, and what they found (a check that the join found the hashes)."""
    Ledger.remove(state)
    ledger = Ledger.open(state, {"bench": "offline work only"})
    try:
        load_hashes(Migration(options, ledger, None, None, PhaseClock(),  # type: ignore[arg-type]  # no clients
                              Connection("con_0000000000000001", SOURCE), Connection("con_0000000000000002", TARGET)))
        started = time.monotonic()
        hash_rows = sum(len(piece.rows) for piece in hash_pieces(hash_path, SOURCE))
        hashes_done = time.monotonic()
        work = UserWork(options, SOURCE, None, None)
        ready = sum(sum(1 for row in findings.rows if row[8] == "ready")
                    for findings in findings_of_export(work, export_path, ledger.hashes_for, state))
        export_done = time.monotonic()
    finally:
        ledger.close()
        Ledger.remove(state)
    return {"hashes_seconds": round(hashes_done - started, 2), "export_seconds": round(export_done - hashes_done, 2),
            "seconds": round(export_done - started, 2), "hash_rows": hash_rows, "ready_users": ready}


def measure(users: int, workdir: str) -> dict[str, Any]:
    log(f"offline: writing {users:,} synthetic export records and hash lines (not timed)")
    started = time.monotonic()
    export_path, hash_path = write_inputs(workdir, users)
    log(f"offline: inputs written in {time.monotonic() - started:.1f} s "
        f"(export {os.path.getsize(export_path) / 2**20:.0f} MB gzipped, hashes "
        f"{os.path.getsize(hash_path) / 2**20:.0f} MB); running the stages")
    state = os.path.join(workdir, f"offline-{users}.migration.sqlite")
    Ledger.remove(state)
    speed = python_speed()
    try:
        result = run_worker("bench.offline", {"name": f"offline-{users}", "users": users, "export": export_path,
                                              "hashes": hash_path, "state": state}, workdir)
        result["ledger_mb"] = round(os.path.getsize(state) / 2**20, 1)
        result["python_loop_seconds"] = speed
    finally:
        for path in (export_path, hash_path):  # (the export stage deletes its download, this export)
            if os.path.exists(path):
                os.unlink(path)
        Ledger.remove(state)
    log(f"offline {users:,}: {result['seconds']} s wall, {result['cpu_seconds']} s CPU, "
        f"peak RSS {result['peak_rss_mb']} MB, phases {result['phases']}")
    return result


def benchmark(users: int, *, workdir: str, compare: bool = True) -> dict[str, Any]:
    """`users` through the local stages, and (with `compare`) 100,000 too, to show memory stays flat."""
    out = measure(users, workdir)
    if compare and users != 100_000:
        small = measure(100_000, workdir)
        out["compare"] = [small]
        out["rss_ratio"] = round(out["peak_rss_total_mb"] / small["peak_rss_total_mb"], 2)\
            if small["peak_rss_total_mb"] else None
    return out


if __name__ == "__main__":
    from .migration import worker_main

    sys.exit(worker_main(run_local, sys.argv))
