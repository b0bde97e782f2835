"""What the owner of a production migration needs around the run (issue 10, items 3 to 5): users from another
system without a source connection, a retry file of the users not carried, a configuration file."""

from __future__ import annotations

import json

import pytest

from auth0_migrate.errors import UsageError
from auth0_migrate.passwords import make_credential

from .conftest import TARGET, World, dump, migrate, options


def _file_users(tmp_path, users: list[dict]) -> str:
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users))
    return str(path)


def test_from_file_needs_no_source_connection(world: World, tmp_path) -> None:
    world.connection(TARGET)  # the tenant has no source connection at all
    cred = make_credential("pw-from-file", "sha256", salt="s", salt_position="prefix")
    path = _file_users(tmp_path, [{"user_id": f"ext{i}", "email": f"ext{i}@example.com", **cred} for i in range(3)])
    result = migrate(world, options(tmp_path, source_connection=None, from_file=path))
    assert result.exit_code == 0, dump(result)
    assert result.users["imported"] == result.users["verified"] == 3
    assert {u["email"] for u in world.users(TARGET)} == {f"ext{i}@example.com" for i in range(3)}
    assert world.login(TARGET, "ext1@example.com", "pw-from-file") == 200


@pytest.mark.parametrize(("extra", "says"), [
    ({}, "--source-connection is required"),
    ({"from_file": "USERS", "password_hashes": "USERS"}, "--password-hashes needs --source-connection"),
    ({"from_file": "USERS", "delete_source_users": True}, "--delete-source-users needs --source-connection"),
])
def test_without_source_connection_what_cannot_work_is_refused(world: World, tmp_path, extra, says) -> None:
    world.connection(TARGET)
    path = _file_users(tmp_path, [{"user_id": "x", "email": "x@example.com"}])
    kwargs = {k: (path if v == "USERS" else v) for k, v in extra.items()}
    with pytest.raises(UsageError, match=says):
        migrate(world, options(tmp_path, source_connection=None, **kwargs))
    assert world.users(TARGET) == []
    assert not (tmp_path / "state.sqlite").exists()
