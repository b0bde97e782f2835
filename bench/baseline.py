"""The baseline: the per-user script people write today, against the same tenant and limits.

The users are first imported exactly as `auth0-migrate` imports them (the same stages: export,
hash join, transform, pack, import jobs), and that part is timed. Then, for each user, one after
another, with the official SDK and its default retry behaviour (2 retries, honouring the
rate-limit headers), the script does what such scripts do::

    new_id = GET /users-by-email?email=...         (the copy in the target connection)
    roles  = GET /users/{old_id}/roles
    perms  = GET /users/{old_id}/permissions       (DIRECT ones kept)
    POST /users/{new_id}/roles        when it has roles
    POST /users/{new_id}/permissions  when it has DIRECT permissions

The per-user part is linear in the users (one call after another, far below the rate limit), so it
can be measured on the first `sample` users and scaled to all of them; the result says when it was
(`extrapolated`, `measured_users`). `seconds` = import part + per-user part (scaled).

Run as a worker: `python -m bench.baseline SPEC.json` prints one JSON object.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

import httpx
from auth0.management import AsyncAuth0

from auth0_migrate.auth0.governor import endpoint_label
from auth0_migrate.pipeline import ingest_source, open_migration
from auth0_migrate.stages import import_jobs, transform

from .migration import (
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    TARGET,
    PhaseClock,
    client_for,
    limited_tenant_app,
    options_for,
    peak_rss_mb,
    worker_main,
)


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts requests by endpoint and answers by status; no pacing, no retries of its own."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[endpoint_label(request)] += 1
        response = await self.inner.handle_async_request(request)
        self.statuses[response.status_code] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def per_user_script(sdk: AsyncAuth0, users: list[tuple[str, str]]) -> int:
    """The loop itself; returns how many users it could not find in the target."""
    missing = 0
    for old_id, email in users:
        found = await sdk.users.list_users_by_email(email=email)
        new_id = next((u.user_id for u in found or []
                       if any(i.connection == TARGET for i in (u.identities or []))), None)
        if new_id is None:
            missing += 1
            continue
        roles = await sdk.users.roles.list(old_id, per_page=50)
        perms = await sdk.users.permissions.list(old_id, per_page=100)
        direct = [p for p in (perms.items or []) if any(
            (s.get("source_type") if isinstance(s, dict) else getattr(s, "source_type", None)) == "DIRECT"
            for s in (p.sources or []))]
        role_ids = [r.id for r in (roles.items or []) if r.id]
        if role_ids:
            await sdk.users.roles.assign(new_id, roles=role_ids)
        if direct:
            await sdk.users.permissions.create(new_id, permissions=[
                {"resource_server_identifier": p.resource_server_identifier, "permission_name": p.permission_name}
                for p in direct])
    return missing


async def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    app = limited_tenant_app(spec)
    tenant = app.state.tenant
    options = options_for("regenerate", spec["hashes"], spec["state"])
    client = client_for(app, concurrency=spec.get("concurrency", 16))
    reporter = PhaseClock()
    # 1. the import, done the same way as ours
    started = time.monotonic()
    migration = await open_migration(options, client, None, reporter)
    try:
        await ingest_source(migration)
        transform.transform_users(migration)
        transform.pack_users(migration)
        await import_jobs.import_users(migration)
        users = [(r["source_id"], r["email"]) for r in migration.ledger.db.execute(
            "SELECT source_id, email FROM users WHERE status = 'imported' ORDER BY ordinal")]
    finally:
        migration.ledger.close()
        await client.aclose()
    import_seconds = time.monotonic() - started
    import_stats = client.governor.stats

    # 2. the per-user script, with the SDK as people use it (default retries)
    counting = CountingTransport(httpx.ASGITransport(app=app))
    http = httpx.AsyncClient(transport=counting, base_url=BASE_URL, timeout=60.0)
    sample = spec.get("sample") or len(users)
    chosen = users[:sample]
    started = time.monotonic()
    try:
        token = (await http.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "audience": f"{BASE_URL}/api/v2/"})).json()["access_token"]
        sdk = AsyncAuth0(base_url=f"{BASE_URL}/api/v2", token=token, httpx_client=http)
        missing = await per_user_script(sdk, chosen)
    finally:
        per_user_seconds = time.monotonic() - started
        await http.aclose()
        tenant.close()
    scale = len(users) / len(chosen) if chosen else 1.0
    token = counting.calls.pop("POST /oauth/token", 0)  # once per script, not per user: not scaled
    per_user_calls = sum(counting.calls.values())
    calls = import_stats.total + token + round(per_user_calls * scale)
    seconds = import_seconds + per_user_seconds * scale
    return {
        "calls": calls,
        "seconds": round(seconds, 2),
        "http_429": import_stats.http_429 + round(counting.statuses[429] * scale),
        "import_seconds": round(import_seconds, 2),
        "import_calls": import_stats.total,
        "per_user_seconds": round(per_user_seconds * scale, 2),
        "per_user_calls": round(per_user_calls * scale),
        "measured_users": len(chosen),
        "measured_seconds": round(per_user_seconds, 2),
        "measured_calls": per_user_calls + token,
        "extrapolated": len(chosen) < len(users),
        "users": len(users),
        "not_found_in_target": missing,
        "peak_rss_mb": peak_rss_mb(),
        "calls_by_endpoint": dict(sorted((import_stats.calls + Counter({"POST /oauth/token": token}) + Counter(
            {k: round(v * scale) for k, v in counting.calls.items()})).items())),
    }


if __name__ == "__main__":
    sys.exit(worker_main(run_baseline, sys.argv))
