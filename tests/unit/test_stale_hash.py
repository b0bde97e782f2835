"""The stale-hash decision of the transform (`stages.transform.transform_one`) at its edges."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_migrate.model import MigrationOptions
from auth0_migrate.stages.transform import transform_one

CREDENTIAL = {"password_hash": "$2b$10$" + "a" * 53}
TAKEN = "2024-05-01T10:00:00.000Z"


def user(**fields: Any) -> dict[str, Any]:
    return {"user_id": "auth0|u1", "email": "u1@example.com", "email_verified": True, **fields}


def opts(**kw: Any) -> MigrationOptions:
    return MigrationOptions("Legacy-DB", "New-DB", password_hashes="hashes.ndjson", **kw)


@pytest.mark.parametrize("reset", [None, TAKEN, "2024-05-01T09:59:59.999Z", "2024-05-01T12:00:00+02:00"])
def test_not_stale_when_the_hash_is_as_new_as_the_last_change(reset: str | None) -> None:
    fields = {} if reset is None else {"last_password_reset": reset}
    outcome = transform_one(opts(), "auth0|u1", user(**fields), dict(CREDENTIAL), TAKEN)
    assert outcome.status == "ready" and outcome.credential and outcome.stale_note is None


@pytest.mark.parametrize(("reset", "set_date", "says"), [
    ("2024-05-01T10:00:00.001Z", TAKEN, f"is later than the hash's password_set_date {TAKEN}"),
    ("2024-05-01T10:00:00.000Z", None, "gives no password_set_date"),
    ("not a date", TAKEN, "is not a date"),
])
def test_stale_is_held_back_naming_both_dates(reset: str, set_date: str | None, says: str) -> None:
    outcome = transform_one(opts(), "auth0|u1", user(last_password_reset=reset), dict(CREDENTIAL), set_date)
    assert (outcome.status, outcome.code, outcome.credential) == ("held_back", "STALE_HASH", None)
    assert outcome.message and says in outcome.message and reset in outcome.message
    assert "$2b$" not in outcome.message


def test_import_without_hash_drops_the_hash_even_under_missing_hash_hold() -> None:
    outcome = transform_one(opts(stale_hash="import-without-hash", missing_hash="hold"), "auth0|u1",
                            user(last_password_reset="2025-01-01T00:00:00.000Z"), dict(CREDENTIAL), TAKEN)
    assert outcome.status == "ready" and outcome.credential is None
    assert outcome.stale_note and "must reset" in outcome.stale_note and TAKEN in outcome.stale_note


def test_no_hash_file_no_stale_check() -> None:
    """A --from-file credential carries no date: nothing to compare."""
    options = MigrationOptions("Legacy-DB", "New-DB", from_file="users.json")
    outcome = transform_one(options, "auth0|u1", user(last_password_reset="2025-01-01T00:00:00.000Z",
                                                      password_hash=CREDENTIAL["password_hash"]), None)
    assert outcome.status == "ready" and outcome.credential
