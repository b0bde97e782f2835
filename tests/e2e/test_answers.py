"""The tool against answers as real Auth0 gives them (issue 11, items 1 and 3).

- Role members: real Auth0 is always asked with `include_totals=true` and answers `{users, next}`;
  with `false` the OAS promises a bare array, which the SDK cannot read. The tenant answers as the
  OAS says, so only a tool that sends `true` gets the members.
- An answer the SDK cannot read is an `UnexpectedAnswerError` naming the operation, never a
  traceback, and never echoing the body.
- `DELETE /connections/{id}/users?email=` answers 204 whether or not it deleted: a deletion counts
  only once the user is seen gone from the source connection.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import pytest
from auth0.management.core.parse_error import ParsingError

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.errors import MigrationError, UnexpectedAnswerError
from auth0_migrate.seed import ensure_connection, seed_connection

from .conftest import SOURCE, TARGET, World, dump, grants_of, migrate, options, pool

GARBLED_TEXT = "user data that must not reach a message"  # what the tenant's `garbled` fault answers


def _role_ids(world: World) -> list[str]:
    return [r["id"] for r in world.tenant.store.query("SELECT id FROM roles ORDER BY id")]


def test_role_members_are_asked_with_totals_so_a_tenant_answering_bare_arrays_still_gives_them(
        world: World, tmp_path) -> None:
    seeded = world.seed(users=30, role_share=0.6, permission_share=0.0)
    world.connection(TARGET)
    assert seeded.role_members > 0

    async def ask_without_totals() -> None:
        client = world.client()
        try:
            await client.call("list members without totals", client.sdk.roles.users.list, _role_ids(world)[0],
                              take=50, include_totals=False)
        finally:
            await client.aclose()

    # The tenant answers as the OAS says: `false` gives a bare array, which the SDK cannot read; the
    # boundary turns that into our error, naming the operation.
    with pytest.raises(UnexpectedAnswerError, match="^list members without totals: the answer .HTTP 200.") as info:
        asyncio.run(ask_without_totals())
    assert isinstance(info.value.__cause__, ParsingError)

    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    result = migrate(world, options(tmp_path, password_hashes=hashes))
    assert result.exit_code == 0, dump(result)
    assert result.grants["role_memberships_in_source"] == result.grants["roles_restored"] == seeded.role_members


def test_an_answer_the_sdk_cannot_read_stops_the_run_with_a_named_error(world: World, tmp_path,
                                                                         oas_problems: list[str]) -> None:
    world.seed(users=12, role_share=0.5)
    world.connection(TARGET)
    world.tenant.faults.fail_call("GET /api/v2/roles/{id}/users", nth=1, action="garbled")
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    opts = options(tmp_path, password_hashes=hashes)

    with pytest.raises(MigrationError) as info:
        migrate(world, opts)
    # The fault fired: the tenant answered one role-member page with a body no schema allows.
    assert world.tenant.faults.counts["GET /api/v2/roles/{id}/users"] >= 1
    assert any("/roles/{id}/users" in p for p in oas_problems), oas_problems
    oas_problems.clear()
    error = info.value
    assert isinstance(error, UnexpectedAnswerError) and error.exit_code == 1
    assert str(error).startswith("list members of role rol_")
    assert "HTTP 200" in str(error) and "ListRoleUsersPaginatedResponseContent" in str(error)
    assert GARBLED_TEXT not in str(error)
    assert isinstance(error.__cause__, ParsingError)

    # The fault was for one call: the same command goes on from the ledger and finishes.
    result = migrate(world, opts)
    assert result.exit_code == 0, dump(result)


@pytest.mark.parametrize("strategy", ["regenerate", "keep"])
def test_a_delete_that_deletes_nothing_is_a_named_failure_and_the_rerun_retries_it(world: World, tmp_path,
                                                                                    strategy: str) -> None:
    seeded = world.seed(users=8, role_share=1.0, permission_share=1.0)
    world.connection(TARGET)
    before = {u["email"]: u["user_id"] for u in world.users(SOURCE)}
    grants_before = {e: grants_of(world, i) for e, i in before.items()}
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    opts = options(tmp_path, user_ids=strategy, password_hashes=hashes, delete_source_users=True)
    world.tenant.faults.deletes_ignored = 1

    result = migrate(world, opts)
    assert world.tenant.faults.deletes_ignored == 0  # the fault fired: one DELETE answered 204 and kept its user
    left = world.users(SOURCE)
    assert len(left) == 1
    stuck = left[0]["email"]
    assert result.exit_code == 3, dump(result)
    assert result.users["deleted_from_source"] == seeded.users - 1
    assert result.users["deletion_not_confirmed"] == 1
    assert [(f.email, f.user_id, f.stage, f.code) for f in result.failures] == [
        (stuck, before[stuck], "cutover", "DELETE_NOT_CONFIRMED")]
    assert f"{stuck} is still in {SOURCE}" in result.failures[0].message
    assert result.differences == []

    # The same command again: the fault is spent, the user is deleted and confirmed, nothing else changes.
    again = migrate(world, opts)
    assert again.exit_code == 0, dump(again)
    assert world.users(SOURCE) == []
    assert again.users["deleted_from_source"] == seeded.users
    assert again.users["deletion_not_confirmed"] == 0 and again.failures == []
    moved = {u["email"]: u["user_id"] for u in world.users(TARGET)}
    assert len(moved) == seeded.users
    if strategy == "keep":
        # Deleting the stuck user in the second run dropped the grants under its kept id (the tenant's
        # pessimistic choice); that run applied them again, as the first did for the others.
        assert {e: grants_of(world, moved[e]) for e in before} == grants_before
    else:
        assert grants_of(world, moved[stuck]) == grants_before[stuck]


def test_the_cli_names_an_unreadable_answer_without_a_traceback(tmp_path) -> None:
    """`auth0-migrate run` against `tenant serve --fault ...=garbled`, over real HTTP, as a person runs it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    serve_log = tmp_path / "serve.stderr"
    with open(serve_log, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "auth0_migrate", "tenant", "serve", "--port", str(port),
             "--db", str(tmp_path / "tenant.sqlite"), "--client-id", "cli-client", "--client-secret", "cli-secret",
             "--fault", "GET /api/v2/roles/{id}/users@1=garbled"],
            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == url, serve_log.read_text()[-2000:]

        async def seed() -> None:
            client = TenantClient(TenantCredentials(url, "cli-client", "cli-secret"))
            try:
                await seed_connection(client, SOURCE, users=10, role_share=0.5,
                                      pool=[p for p in pool() if "password_hash" in p[2]])
                await ensure_connection(client, TARGET)
            finally:
                await client.aclose()
        asyncio.run(seed())

        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH0_", "TARGET_AUTH0_"))}
        env.update(AUTH0_DOMAIN=url, AUTH0_CLIENT_ID="cli-client", AUTH0_CLIENT_SECRET="cli-secret")
        done = subprocess.run([sys.executable, "-m", "auth0_migrate", "run", "--source-connection", SOURCE,
                               "--target-connection", TARGET, "--state", str(tmp_path / "state.sqlite")],
                              capture_output=True, text=True, env=env, timeout=120)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        if server.stdout is not None:
            server.stdout.close()
    assert done.returncode == 1, done.stderr
    said = " ".join(done.stderr.split())  # the console wraps long lines
    assert "Traceback" not in said
    assert "error: list members of role rol_" in said
    assert "(HTTP 200) does not have the shape Auth0 documents" in said
    assert GARBLED_TEXT not in said + done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
