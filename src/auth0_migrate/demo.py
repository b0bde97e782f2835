"""`auth0-migrate demo`: a whole migration on a local tenant started for the purpose.

It starts a local tenant in-process, seeds a source connection with realistic users (names,
metadata, unverified and blocked users, several hash algorithms, roles, DIRECT permissions),
writes their support-format hash file, migrates them into a new connection, verifies, logs a
sample of users in on the target with their original passwords, and prints what happened.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import tempfile
import time
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from .auth0.client import TenantClient, TenantCredentials
from .model import EXIT_ERROR, IdStrategy, MigrationOptions
from .pipeline import run
from .report import ConsoleReporter, print_json, render_result
from .seed import ensure_connection, seed_connection
from .tenant import TenantConfig, create_app
from .tenant.support_export import export_hashes

SOURCE, TARGET = "Legacy-DB", "New-DB"
DEMO_URL = "http://demo-tenant.local"


async def login(client: TenantClient, connection: str, email: str, password: str) -> bool:
    response = await client.http.post("/oauth/token", data={
        "grant_type": "http://auth0.com/oauth/grant-type/password-realm", "username": email, "password": password,
        "realm": connection, "client_id": client.credentials.client_id,
        "client_secret": client.credentials.client_secret, "audience": client.credentials.audience})
    return response.status_code == 200


async def demo(users: int = 300, user_ids: IdStrategy = "regenerate", console: Console | None = None,
               workdir: str | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    started = time.monotonic()
    workdir = workdir or tempfile.mkdtemp(prefix="auth0-migrate-demo-")
    secret = secrets.token_urlsafe(32)
    app = create_app(TenantConfig(name="demo-tenant", client_id="demo-client", client_secret=secret,
                                  base_url=DEMO_URL, db_path=os.path.join(workdir, "tenant.sqlite")))
    tenant = app.state.tenant
    client = TenantClient(TenantCredentials(DEMO_URL, "demo-client", secret), transport=httpx.ASGITransport(app=app))
    try:
        console.print(f"[bold]local tenant[/] {DEMO_URL} (in-process), state in {escape(workdir)}")
        seeded = await seed_connection(client, SOURCE, users=users)
        console.print(f"seeded {seeded.users} users in {SOURCE}: {seeded.role_members} role memberships, "
                      f"{seeded.permissions} DIRECT permissions on {seeded.users_with_permissions} users, "
                      f"{len(set(seeded.algorithms.values()))} hash algorithms")
        # Users imported with other algorithms who have logged in since have bcrypt hashes (Auth0 re-hashes on
        # login); the support file carries only bcrypt. Log those users in once, as they would have.
        rehashed = [e for e, a in seeded.algorithms.items() if a != "bcrypt"]
        logged = await asyncio.gather(*(login(client, SOURCE, e, seeded.passwords[e]) for e in rehashed))
        console.print(f"{sum(logged)}/{len(rehashed)} users with non-bcrypt imported hashes logged in on the "
                      "source (re-hashed to bcrypt, as Auth0 does)")
        await ensure_connection(client, TARGET)
        hash_file = os.path.join(workdir, "password-hashes.ndjson")
        with open(hash_file, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:  # noqa: ASYNC230
            lines = export_hashes(tenant.store, SOURCE, "demo-tenant", out)
        console.print(f"support-ticket hash file: {lines} lines -> {hash_file} (mode 0600)", markup=False)
        options = MigrationOptions(source_connection=SOURCE, target_connection=TARGET, user_ids=user_ids,
                                   id_prefix="migrated_" if user_ids == "prefix" else None,
                                   record_source_id="legacy_user_id", password_hashes=hash_file,
                                   delete_source_users=user_ids == "keep",
                                   state=os.path.join(workdir, "migration.sqlite"))
        reporter = ConsoleReporter(console.file)
        result = await run(options, source=client, reporter=reporter)
        reporter.close()
        render_result(result, console, title=f"Migration {SOURCE} -> {TARGET} ({user_ids})")
        rng = random.Random(1)
        sample = rng.sample(sorted(seeded.passwords), min(12, len(seeded.passwords)))
        ok = await asyncio.gather(*(login(client, TARGET, e, seeded.passwords[e]) for e in sample))
        wrong = await asyncio.gather(*(login(client, TARGET, e, seeded.passwords[e] + "x") for e in sample[:4]))
        blocked = seeded.blocked.intersection(sample)
        expected_ok = [e not in blocked for e in sample]
        console.print(f"login on {TARGET} with original passwords: {sum(ok)}/{len(sample)} succeeded "
                      f"({len(blocked)} of the sample are blocked users, refused as they should be); "
                      f"wrong passwords refused: {len(wrong) - sum(wrong)}/{len(wrong)}")
        logins_ok = list(ok) == expected_ok and not any(wrong)
        seconds = time.monotonic() - started
        exit_code = result.exit_code if logins_ok else EXIT_ERROR
        console.print(f"demo finished in {seconds:.1f} s, exit code {exit_code}")
        return {"migration": result.as_dict(), "logins": {"sample": len(sample), "succeeded": sum(ok),
                                                          "blocked_in_sample": len(blocked),
                                                          "wrong_password_refused": len(wrong) - sum(wrong)},
                "seconds": round(seconds, 1), "workdir": workdir,
                "exit_code": exit_code}
    finally:
        await client.aclose()
        tenant.close()


def main(*, users: int, user_ids: IdStrategy, as_json: bool, console: Console) -> int:
    outcome = asyncio.run(demo(users=users, user_ids=user_ids, console=console))
    if as_json:
        print_json(outcome)
    return int(outcome["exit_code"])
