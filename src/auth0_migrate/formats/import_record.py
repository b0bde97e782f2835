"""The import record: turn an exported user into a user Auth0's bulk import accepts (stage 4, transform).

Why this module exists
----------------------
A users-export line and an import-file element look alike but are not interchangeable
(reference §2.6, §9):

* The import schema has ``additionalProperties: false``: every export-only key (``identities``,
  ``created_at``, ``updated_at``, ``last_login``, ``logins_count``, ``multifactor``, ``last_ip``...)
  must go, or Auth0 refuses the user.
* ``email_verified`` is reset to ``false`` by any import that sets the e-mail, unless the file
  says ``true``; so it is always written, ``false`` when the export had none.
* ``user_id`` follows the run's strategy (``--user-ids``, see DESIGN.md): ``regenerate`` writes
  none (Auth0 makes one), ``keep`` writes the old id without ``auth0|`` (Auth0 adds it back,
  and ``auth0|auth0|...`` would follow otherwise), ``prefix`` writes ``--id-prefix`` + that id.
* The password travels as a credential (``password_hash`` or ``custom_password_hash``) given by
  the caller, from the hash file or from a ``--from-file`` user.
* ``--record-source-id KEY`` keeps the old id in ``app_metadata[KEY]`` so that it survives the
  ``regenerate`` strategy.

The result is then checked with :func:`auth0_migrate.import_schema.validate_import_user`, the
same rules the local tenant applies and Auth0 documents, so a user Auth0 would refuse is caught
here, reported with Auth0's own code and path, and never costs a job.

Beyond Auth0's rules, a ``custom_password_hash`` whose digest cannot have the length its algorithm
and encoding give (an md5 hex digest of 33 characters) is refused with ``DIGEST_LENGTH`` on
``custom_password_hash.hash.value``: Auth0 would import it, and the user could never log in with it
(:func:`auth0_migrate.passwords.digest_length_problem`).

Refusals are data, not exceptions: :func:`to_import_record` returns ``(None, problems)``.
Messages never carry hash material: what the validator says is scrubbed of every secret in the
credential before it is returned.

Speed: the benchmark pushes a million users through here, so a record is the export copied at C
speed less its export-only keys, and nothing is deep-copied (nested metadata is shared with the
input; only ``app_metadata`` is copied, one level, when the source id is added).

Example::

    record, problems = to_import_record(exported, credential={"password_hash": h},
                                        strategy="prefix", prefix="m1_", record_source_id=None)
    # record == {"user_id": "m1_5dea...", "email": ..., "email_verified": True, "password_hash": h}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

import orjson

from auth0_migrate.errors import UsageError
from auth0_migrate.import_schema import plainly_valid, validate_import_user
from auth0_migrate.model import IdStrategy
from auth0_migrate.passwords import REDACTED, digest_length_problem, secret_values

__all__ = [
    "CARRIED_KEYS",
    "DROPPED_KEYS",
    "IdStrategy",
    "TransformProblem",
    "UserIdError",
    "import_user_id",
    "plain_import_record",
    "target_user_id",
    "to_import_record",
]

AUTH0_PREFIX: Final = "auth0|"
MAX_USER_ID_CHARS: Final = 255

#: Keys copied from the export into the import record, as they are (when not null).
CARRIED_KEYS: Final = frozenset(
    {
        "email", "email_verified", "blocked", "given_name", "family_name", "name", "nickname",
        "picture", "username", "phone_number", "phone_verified", "app_metadata", "user_metadata",
        "mfa_factors",
    }
)  # fmt: skip

#: Keys a users export (or a ``--from-file`` user) may have that the import must not receive.
#: ``user_id`` is rebuilt by the strategy; the credential keys come in through ``credential``.
DROPPED_KEYS: Final = frozenset(
    {
        "user_id", "identities", "created_at", "updated_at", "last_login", "last_ip",
        "logins_count", "multifactor", "multifactor_last_modified", "last_password_reset",
        "blocked_for", "guardian_authenticators", "lastIP", "lastLogin", "loginsCount",
        "password_hash", "custom_password_hash",
    }
)  # fmt: skip

_KNOWN_KEYS: Final = CARRIED_KEYS | DROPPED_KEYS
_DROPPED_PRESENT: Final = DROPPED_KEYS.intersection
_CREDENTIAL_KEYS: Final = frozenset({"password_hash", "custom_password_hash"})
_STRATEGIES: Final = frozenset(get_args(IdStrategy))

#: Conservative: Auth0's ``POST /users`` forbids whitespace; ``|`` separates provider and id in
#: every Auth0 user id, and control characters have no place in an id (reference §2.6, §10).
_BAD_ID_CHAR: Final = re.compile(r"[\s|\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class TransformProblem:
    """Why one user cannot be imported: whose, which code, which field (a dotted path), why.

    ``code`` is one of this module's (``MISSING_EMAIL``, ``UNSUPPORTED_EXPORT_KEYS``,
    ``INVALID_USER_ID``, ``MISSING_USER_ID``, ``DIGEST_LENGTH``) or Auth0's import code from the validator
    (``FORMAT``, ``OBJECT_REQUIRED``...). ``field`` is ``None`` when no single field is at fault.
    """

    user_id: str | None
    email: str | None
    code: str
    field: str | None
    message: str


class UserIdError(ValueError):
    """A user id the target cannot take; the message says why (it may quote the id, not a hash)."""


def _bare(source_user_id: str) -> str:
    return source_user_id.removeprefix(AUTH0_PREFIX)


def _check_id(value: str) -> str:
    if not value:
        raise UserIdError("the user id would be empty")
    if len(value) > MAX_USER_ID_CHARS:
        raise UserIdError(
            f"the user id would be {len(value)} characters after 'auth0|'; at most {MAX_USER_ID_CHARS} are allowed"
        )
    if _BAD_ID_CHAR.search(value):
        raise UserIdError("the user id would contain whitespace, '|' or a control character")
    return value


def import_user_id(source_user_id: str, strategy: IdStrategy, prefix: str | None = None) -> str | None:
    """The ``user_id`` to write into the import record (``None``: write none).

    ``regenerate`` -> ``None``; ``keep`` -> the id without ``auth0|``; ``prefix`` -> ``prefix`` +
    the id without ``auth0|``. Raises :class:`UserIdError` when the id breaks the id rules (empty,
    over 255 characters, whitespace, ``|``, control characters).

    >>> import_user_id("auth0|5dea9f9c", "prefix", "m1_")
    'm1_5dea9f9c'
    """
    if strategy == "regenerate":
        return None
    if strategy == "keep":
        return _check_id(_bare(source_user_id))
    if strategy == "prefix":
        if prefix is None:
            raise UsageError("--user-ids prefix needs --id-prefix")
        return _check_id(prefix + _bare(source_user_id))
    raise UsageError(f"unknown user-id strategy {strategy!r}; use regenerate, keep or prefix")


def target_user_id(source_user_id: str, strategy: IdStrategy, prefix: str | None = None) -> str | None:
    """The id the user will have in the target: ``"auth0|" + import_user_id(...)``, or ``None``.

    ``None`` (``regenerate``) means the id is only known after the import, by looking the user up.

    >>> target_user_id("auth0|5dea9f9c", "keep")
    'auth0|5dea9f9c'
    """
    value = import_user_id(source_user_id, strategy, prefix)
    return None if value is None else AUTH0_PREFIX + value


def to_import_record(
    export: Mapping[str, Any],
    *,
    credential: Mapping[str, Any] | None,
    strategy: IdStrategy,
    prefix: str | None,
    record_source_id: str | None,
) -> tuple[dict[str, Any] | None, list[TransformProblem]]:
    """Build the import record for one exported user: ``(record, [])`` or ``(None, problems)``.

    ``credential`` is ``{"password_hash": ...}`` or ``{"custom_password_hash": {...}}`` (or
    ``None`` for a user imported without a password). Null values in the export count as absent.
    Keys the export should not have (``export_as`` display names such as ``"Given Name"``, dotted
    field paths) refuse the user with ``UNSUPPORTED_EXPORT_KEYS`` rather than lose the data they
    hold: the tool exports with the fields' own names, so such keys mean a foreign export.
    The input is not modified, and the record shares nested values with it.
    """
    source_id = export.get("user_id")
    email = export.get("email")
    who_id = source_id if isinstance(source_id, str) else None
    who_email = email if isinstance(email, str) else None
    problems: list[TransformProblem] = []
    if email is None or email == "" or not _KNOWN_KEYS.issuperset(export):
        problems = _shape_problems(export, who_id, who_email)

    new_id: str | None = None
    if strategy != "regenerate":
        if who_id is None or not _bare(who_id):
            problems.append(
                TransformProblem(
                    who_id,
                    who_email,
                    "MISSING_USER_ID",
                    "user_id",
                    f"--user-ids {strategy} needs the user's id, and the user has none",
                )
            )
        else:
            try:
                new_id = import_user_id(who_id, strategy, prefix)
            except UserIdError as exc:
                problems.append(TransformProblem(who_id, who_email, "INVALID_USER_ID", "user_id", str(exc)))
    if problems:
        return None, problems

    record = _record(export, new_id, who_id, record_source_id)
    if credential:
        if not _CREDENTIAL_KEYS.issuperset(credential):
            raise ValueError("a credential holds only password_hash or custom_password_hash")
        record.update(credential)

    errors = validate_import_user(record)
    if not errors:
        # Beyond Auth0's own checks: a digest of the wrong length imports fine and never logs anyone in.
        cph = record.get("custom_password_hash")
        wrong_length = None if cph is None else digest_length_problem(cph)
        if wrong_length is None:
            return record, []
        return None, [TransformProblem(who_id, who_email, "DIGEST_LENGTH", "custom_password_hash.hash.value",
                                       wrong_length + "; a hash that can never match is not imported")]
    secrets = list(secret_values(record))
    return None, [
        TransformProblem(who_id, who_email, e.code, e.path or None, _scrub(e.message, secrets))
        for e in errors
    ]


def _record(
    export: Mapping[str, Any], new_id: str | None, who_id: str | None, record_source_id: str | None
) -> dict[str, Any]:
    """The import record of an export with known keys only, before its credential and its validation."""
    # Copied at C speed, then the export-only keys taken out: nested values are shared with the export,
    # and the key order is the export's (hot path, see module doc). Every key is known by now.
    record = dict(export)
    for key in _DROPPED_PRESENT(export):
        del record[key]
    if None in record.values():
        record = {key: value for key, value in record.items() if value is not None}
    if new_id is not None:
        record["user_id"] = new_id
    if "email_verified" not in record:
        record["email_verified"] = False
    if record_source_id is not None and who_id is not None:
        metadata = record.get("app_metadata")
        if metadata is None:
            record["app_metadata"] = {record_source_id: who_id}
        elif isinstance(metadata, dict):
            record["app_metadata"] = {**metadata, record_source_id: who_id}
        # anything else is not an object: the validator reports it
    return record


def plain_import_record(
    export: Mapping[str, Any], *, strategy: IdStrategy, prefix: str | None, record_source_id: str | None
) -> bytes | None:
    """The common user's import record, with less work: its JSON (``orjson.dumps``, no credential), when
    :func:`to_import_record` with no credential, or with one that passes Auth0's checks on its own (a
    ``password_hash`` matching ``PASSWORD_HASH_PATTERN``), would return that record with no problem.
    ``None`` whenever it might answer otherwise: then ask it.

    The record is judged by the validator's fast path alone (:func:`~auth0_migrate.import_schema.plainly_valid`).
    A credential such as that is valid with any record that is (the validator checks each
    property on its own, the record holds no hash key, and the digest length concerns only a
    ``custom_password_hash``), so it is neither added nor taken out again.
    """
    email = export.get("email")
    if email is None or email == "" or not _KNOWN_KEYS.issuperset(export):
        return None
    source_id = export.get("user_id")
    who_id = source_id if isinstance(source_id, str) else None
    new_id: str | None = None
    if strategy != "regenerate":
        if who_id is None or not _bare(who_id):
            return None
        try:
            new_id = import_user_id(who_id, strategy, prefix)
        except UserIdError:
            return None
    record = _record(export, new_id, who_id, record_source_id)
    if not plainly_valid(record):
        return None
    try:
        return orjson.dumps(record)
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, a key that is not a string
        return None


def _shape_problems(
    export: Mapping[str, Any], who_id: str | None, who_email: str | None
) -> list[TransformProblem]:
    """Unknown keys and a missing e-mail: the slow path, taken only by users that have them."""
    problems: list[TransformProblem] = []
    unknown = export.keys() - _KNOWN_KEYS
    if unknown:
        problems.append(
            TransformProblem(
                who_id,
                who_email,
                "UNSUPPORTED_EXPORT_KEYS",
                None,
                "the export has keys this tool does not know: "
                + ", ".join(sorted(unknown))
                + " (an export made with export_as display names? export with the fields' own names)",
            )
        )
    email = export.get("email")
    if email is None or email == "":
        problems.append(
            TransformProblem(
                who_id, None, "MISSING_EMAIL", "email", "the user has no email; Auth0 imports require one"
            )
        )
    return problems


def _scrub(message: str, secrets: list[str]) -> str:
    """The validator promises not to quote secrets; this makes sure, at the cost of a few finds."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in message:
            message = message.replace(secret, REDACTED)
    return message
