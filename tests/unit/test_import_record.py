"""Export record -> import record: what is kept, what is dropped, ids, refusals, secrecy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from auth0_migrate.errors import UsageError
from auth0_migrate.formats.import_record import (
    CARRIED_KEYS,
    TransformProblem,
    UserIdError,
    import_user_id,
    target_user_id,
    to_import_record,
)
from auth0_migrate.import_schema import validate_import_user

H10 = "$2b$10$" + "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
H12 = "$2b$12$" + "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
OID = "5dea9f9c82dd7c0e76e4ec93"


def exported(**changes: Any) -> dict[str, Any]:
    user: dict[str, Any] = {
        "user_id": f"auth0|{OID}",
        "email": "ann@example.com",
        "email_verified": True,
        "username": "ann",
        "phone_number": "+12125550001",
        "phone_verified": False,
        "given_name": "Ann",
        "family_name": "Lee",
        "name": "Ann Lee",
        "nickname": "ann",
        "picture": "https://s.gravatar.com/avatar/x.png",
        "blocked": False,
        "app_metadata": {"plan": "gold", "nested": {"a": [1, 2]}},
        "user_metadata": {"lang": "fr"},
        "identities": [
            {
                "connection": "Username-Password-Authentication",
                "user_id": OID,
                "provider": "auth0",
                "isSocial": False,
            }
        ],
        "created_at": "2020-03-29T10:19:58.774Z",
        "updated_at": "2020-03-29T10:19:58.774Z",
        "last_login": "2020-03-29T10:19:58.774Z",
        "last_ip": "10.0.0.1",
        "logins_count": 7,
        "multifactor": ["guardian"],
    }
    for key, value in changes.items():
        if value is ...:
            user.pop(key, None)
        else:
            user[key] = value
    return user


def transform(
    user: dict[str, Any],
    *,
    credential: dict[str, Any] | None = None,
    strategy: Any = "regenerate",
    prefix: str | None = None,
    record_source_id: str | None = None,
) -> tuple[dict[str, Any] | None, list[TransformProblem]]:
    return to_import_record(
        user, credential=credential, strategy=strategy, prefix=prefix, record_source_id=record_source_id
    )


def ok(user: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    record, problems = transform(user, **kwargs)
    assert problems == [] and record is not None
    assert validate_import_user(record) == []
    return record


# What is kept and dropped ---------------------------------------------------------------------


def test_profile_is_kept_and_export_only_keys_dropped() -> None:
    record = ok(exported(), credential={"password_hash": H10})
    assert record == {
        "email": "ann@example.com",
        "email_verified": True,
        "username": "ann",
        "phone_number": "+12125550001",
        "phone_verified": False,
        "given_name": "Ann",
        "family_name": "Lee",
        "name": "Ann Lee",
        "nickname": "ann",
        "picture": "https://s.gravatar.com/avatar/x.png",
        "blocked": False,
        "app_metadata": {"plan": "gold", "nested": {"a": [1, 2]}},
        "user_metadata": {"lang": "fr"},
        "password_hash": H10,
    }
    for dropped in (
        "identities",
        "created_at",
        "updated_at",
        "last_login",
        "last_ip",
        "logins_count",
        "multifactor",
        "user_id",
    ):
        assert dropped not in record


def test_input_is_not_modified() -> None:
    user = exported()
    before = copy.deepcopy(user)
    ok(user, credential={"password_hash": H10}, record_source_id="old_id")
    assert user == before


@pytest.mark.parametrize("value", [True, False])
def test_email_verified_is_carried_as_is(value: bool) -> None:
    assert ok(exported(email_verified=value))["email_verified"] is value


@pytest.mark.parametrize("absent", [..., None])
def test_email_verified_defaults_to_false_so_it_is_always_written(absent: Any) -> None:
    assert ok(exported(email_verified=absent))["email_verified"] is False


def test_blocked_users_stay_blocked() -> None:
    assert ok(exported(blocked=True))["blocked"] is True


def test_nulls_count_as_absent() -> None:
    record = ok(exported(given_name=None, picture=None, app_metadata=None))
    assert "given_name" not in record and "picture" not in record and "app_metadata" not in record


def test_the_record_keeps_the_exports_key_order() -> None:
    """Import files and the order of a refused user's errors follow it, wherever nulls and export-only keys are."""
    user = exported(given_name=None)
    user = {key: user[key] for key in reversed(list(user))}
    record = ok(user, credential={"password_hash": H10})
    assert list(record) == [key for key, value in user.items() if key in CARRIED_KEYS and value is not None] + [
        "password_hash"]


def test_mfa_factors_are_carried() -> None:
    factors = [{"totp": {"secret": "2PRXZWZAYYDAWCD"}}, {"phone": {"value": "+15551234567"}}]
    assert ok(exported(mfa_factors=factors))["mfa_factors"] == factors


def test_export_as_renamed_keys_are_refused_clearly() -> None:
    user = {"user_id": f"auth0|{OID}", "email": "ann@example.com", "Given Name": "Ann", "Family Name": "Lee"}
    record, problems = transform(user)
    assert record is None
    assert [(p.code, p.user_id, p.email) for p in problems] == [
        ("UNSUPPORTED_EXPORT_KEYS", f"auth0|{OID}", "ann@example.com")
    ]
    assert "Family Name, Given Name" in problems[0].message


# Credentials ----------------------------------------------------------------------------------


def test_custom_credential_is_added() -> None:
    cph = {"algorithm": "bcrypt", "hash": {"value": H12, "encoding": "utf8"}}
    assert ok(exported(), credential={"custom_password_hash": cph})["custom_password_hash"] == cph


def test_no_credential_means_no_hash_keys() -> None:
    record = ok(exported(), credential=None)
    assert "password_hash" not in record and "custom_password_hash" not in record


def test_a_file_users_own_hash_keys_never_leak_through_the_profile() -> None:
    record = ok(exported(password_hash=H10), credential=None)
    assert "password_hash" not in record


def test_invalid_credential_is_refused_without_quoting_the_hash() -> None:
    record, problems = transform(
        exported(), credential={"password_hash": H12}
    )  # cost 12 is not allowed there
    assert record is None
    assert [(p.code, p.field) for p in problems] == [("PATTERN", "password_hash")]
    assert all(H12 not in p.message and H12[7:] not in p.message for p in problems)


def test_schema_messages_are_scrubbed_of_secrets() -> None:
    # The validator quotes a bad e-mail; when that text is also a secret of the user (here a salt),
    # it must not survive in the problem.
    cph = {
        "algorithm": "argon2",
        "hash": {"value": "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA", "encoding": "utf8"},
        "salt": {"value": "not-an-email"},
    }
    record, problems = transform(exported(email="not-an-email"), credential={"custom_password_hash": cph})
    assert record is None
    by_field = {p.field: p.message for p in problems}
    assert set(by_field) == {"email", "custom_password_hash.salt"}
    assert "*****" in by_field["email"]
    assert all("not-an-email" not in message for message in by_field.values())


# Record the source id --------------------------------------------------------------------------


def test_record_source_id_goes_into_app_metadata() -> None:
    record = ok(exported(), record_source_id="migrated_from")
    assert record["app_metadata"] == {
        "plan": "gold",
        "nested": {"a": [1, 2]},
        "migrated_from": f"auth0|{OID}",
    }


def test_record_source_id_creates_app_metadata_when_there_is_none() -> None:
    assert ok(exported(app_metadata=...), record_source_id="src")["app_metadata"] == {"src": f"auth0|{OID}"}


# User-id strategies ----------------------------------------------------------------------------


def test_regenerate_writes_no_user_id() -> None:
    assert "user_id" not in ok(exported(), strategy="regenerate")
    assert import_user_id(f"auth0|{OID}", "regenerate") is None
    assert target_user_id(f"auth0|{OID}", "regenerate") is None


def test_keep_writes_the_id_without_its_prefix() -> None:
    assert ok(exported(), strategy="keep")["user_id"] == OID
    assert import_user_id(f"auth0|{OID}", "keep") == OID
    assert target_user_id(f"auth0|{OID}", "keep") == f"auth0|{OID}"


def test_keep_a_file_users_unprefixed_id() -> None:
    assert ok(exported(user_id="legacy-7"), strategy="keep")["user_id"] == "legacy-7"


def test_prefix_prepends_to_the_bare_id() -> None:
    assert ok(exported(), strategy="prefix", prefix="m1_")["user_id"] == f"m1_{OID}"
    assert import_user_id(f"auth0|{OID}", "prefix", "m1_") == f"m1_{OID}"
    assert target_user_id(f"auth0|{OID}", "prefix", "m1_") == f"auth0|m1_{OID}"


@pytest.mark.parametrize("prefix", ["m 1_", "m|1_", "m\t", "m\x00", "x" * 240])
def test_invalid_prefixed_id_is_refused_naming_the_field(prefix: str) -> None:
    record, problems = transform(exported(), strategy="prefix", prefix=prefix)
    assert record is None
    assert [(p.code, p.field, p.user_id, p.email) for p in problems] == [
        ("INVALID_USER_ID", "user_id", f"auth0|{OID}", "ann@example.com")
    ]
    with pytest.raises(UserIdError):
        target_user_id(f"auth0|{OID}", "prefix", prefix)


def test_255_characters_after_auth0_is_the_limit() -> None:
    fits = "p" * (255 - len(OID))
    assert len(import_user_id(f"auth0|{OID}", "prefix", fits) or "") == 255
    with pytest.raises(UserIdError):
        import_user_id(f"auth0|{OID}", "prefix", fits + "p")


def test_keep_or_prefix_without_a_source_id_is_refused() -> None:
    record, problems = transform(exported(user_id=...), strategy="keep")
    assert record is None and [(p.code, p.field) for p in problems] == [("MISSING_USER_ID", "user_id")]
    assert ok(exported(user_id=...), strategy="regenerate")["email"] == "ann@example.com"


def test_prefix_strategy_without_prefix_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        transform(exported(), strategy="prefix", prefix=None)


# Missing e-mail and options ------------------------------------------------------------------


@pytest.mark.parametrize("email", [..., None, ""])
def test_missing_email_is_refused_naming_the_user(email: Any) -> None:
    record, problems = transform(exported(email=email))
    assert record is None
    assert [(p.code, p.field, p.user_id) for p in problems] == [("MISSING_EMAIL", "email", f"auth0|{OID}")]


def test_docstring_examples_hold() -> None:
    import doctest

    from auth0_migrate.formats import import_record as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
