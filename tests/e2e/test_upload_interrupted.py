"""An upload on the wire when the run is interrupted is let finish, however many times the run's tasks are
cancelled on the way out, so the next run polls its job instead of settling a `submitting` file for minutes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from auth0_migrate.model import QuietReporter
from auth0_migrate.pipeline import open_migration
from auth0_migrate.stages import import_jobs

from .conftest import TARGET, World, options


def test_an_upload_cancelled_twice_still_finishes_and_is_recorded(world: World, tmp_path, monkeypatch) -> None:
    world.seed(users=2)
    world.connection(TARGET)
    started, release = asyncio.Event(), asyncio.Event()
    real_submit = import_jobs.jobs.submit_import
    calls: list[str] = []

    async def slow_submit(*args: Any, **kwargs: Any) -> str:
        started.set()
        await release.wait()  # the request is on its way when the interruption comes
        job_id = await real_submit(*args, **kwargs)
        calls.append(job_id)
        return job_id

    monkeypatch.setattr(import_jobs.jobs, "submit_import", slow_submit)

    async def go() -> tuple[str | None, str | None]:
        client = world.client()
        migration = await open_migration(options(tmp_path), client, None, QuietReporter())
        try:
            migration.ledger.add_file(1, None, 1)
            body = b'[{"email":"late@example.com","email_verified":false}]'
            task = asyncio.ensure_future(import_jobs._submit_uninterrupted(migration, 1, body))
            await started.wait()
            task.cancel()  # Ctrl-C / SIGTERM
            await asyncio.sleep(0)
            task.cancel()  # the pool above it stopping its tasks: a second cancellation
            await asyncio.sleep(0)
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            row = migration.ledger.file(1)
            assert row is not None
            return row.status, row.job_id
        finally:
            migration.ledger.close()
            await client.aclose()

    status, job_id = asyncio.run(go())
    assert len(calls) == 1  # the upload was made once, and not cut short
    assert (status, job_id) == ("submitted", calls[0])
