"""Stage 8: delete the source copy of each user, only once that user is verified in the target.

Deletion is by connection and email (`DELETE /connections/{source}/users?email=`), never by id:
with `--user-ids keep` two users share an id until this is done, and id-only endpoints would be
ambiguous. Deleting a user may drop the grants held under its id (Auth0 does not say), so with
`keep` the roles and permissions are applied again afterwards and verified again.
"""

from __future__ import annotations

from .context import Job
from .pool import run_pool, together
from .restore import restore_permissions, restore_roles
from .verify import verify_grants


async def delete_source_copies(job: Job) -> None:
    ledger = job.ledger
    if ledger.phase_done("cutover"):
        return
    users = ledger.q("SELECT ordinal, email FROM users WHERE status IN ('imported', 'already_in_target') AND "
                     "profile_ok = 1 AND grants_ok = 1 AND deleted = 0 AND email IS NOT NULL ORDER BY ordinal")
    job.reporter.phase("delete verified users from the source", total=len(users))
    done: list[int] = []

    async def delete(user: object) -> None:
        await job.source.call(f"delete {user['email']} from {job.source_connection.name}",  # type: ignore[index]
                              job.source.sdk.connections.users.delete_by_email, job.source_connection.id,
                              email=user["email"])  # type: ignore[index]

    def deleted(user: object, _: None) -> None:
        done.append(user["ordinal"])  # type: ignore[index]
        if len(done) >= 200:
            flush()

    def flush() -> None:
        with ledger.tx() as db:
            db.executemany("UPDATE users SET deleted = 1 WHERE ordinal = ?", [(o,) for o in done])
        job.reporter.advance(len(done))
        done.clear()

    try:
        await run_pool(users, delete, on_result=deleted)
    finally:
        flush()
    ledger.mark_phase("cutover")


async def reapply_after_cutover(job: Job) -> None:
    """With kept ids: grants again on the surviving copy, then verify again."""
    ledger = job.ledger
    if ledger.phase_done("reapply"):
        return
    job.reporter.phase("re-apply roles and permissions after cutover")
    await together(restore_roles(job, again=True), restore_permissions(job, again=True))
    ledger.db.execute("UPDATE users SET reapplied = 1 WHERE deleted = 1")
    ledger.mark_phase("reapply")
    await verify_grants(job, phase="verify-after-cutover")
