"""Auth0's bulk-import user validation, as the migration tool applies it before upload.

The tool validates users before uploading them so that a bad user is caught, named, before it
costs a job.  It is hand-written rather than driven by ``jsonschema`` because the benchmark
validates a million users, and a generic validator per user is several times slower.  The
local tenant does not use this module: it judges uploaded files with its own validator,
written apart from Auth0's published schema (``tenant/import_validation.py``), so that a
mistake here shows up as a disagreement in ``tests/unit/test_import_validation_differential.py``,
which also lists, with reasons, where the two are meant to differ (this module is stricter on
the ``POST /users`` limits below, and refuses quoted email local parts).

For the same reason a user goes first through a fast path (``plainly_valid``): one pass over
the common properties with the checks written inline, the metadata field names checked on
orjson's text of the metadata rather than by a walk in Python.  It only ever answers "valid";
anything it is not sure of goes to the rule-by-rule checks (``_problems``), which alone produce
errors, so the answer is the same either way (``tests/unit/test_import_fast_path.py``).  The
transform asks it directly for the common user (``formats.import_record.plain_import_record``).

Sources: the import schema and per-algorithm rules of the reference, §2.6-2.7 (Auth0's
``bulk-user-import-schema`` page), and ``CreateUserRequestContent`` of the Management API
spec for the string limits that the import schema does not state.

Error codes
-----------
Auth0 documents these codes for import errors: ``ANY_OF_MISSING, ARRAY_LENGTH_LONG,
ARRAY_LENGTH_SHORT, ENUM_MISMATCH, FORMAT, INVALID_TYPE, MAX_LENGTH, MAXIMUM, MIN_LENGTH,
MINIMUM, NOT_PASSED, OBJECT_REQUIRED, PATTERN`` (plus job-level ones such as
``DUPLICATED_USER`` that need the whole file or the tenant, not one user).  The choices made
where the documented list does not settle the question:

* **Missing required property -> ``OBJECT_REQUIRED``.**  It is in Auth0's list, and it is the
  code that tv4 uses for ``required``; z-schema's ``OBJECT_MISSING_REQUIRED_PROPERTY`` is not
  in the list.  Message as in both validators: ``Missing required property: email``.  ``path``
  is the path of the missing property.
* **``additionalProperties: false`` -> ``OBJECT_ADDITIONAL_PROPERTIES``.**  Auth0's list has no
  code for it; this is the string that both z-schema and tv4 use.  One error per extra
  property, in the user's key order, with z-schema's message ``Additional properties not
  allowed: identities`` and ``path`` pointing at the extra property.
* **``maxProperties: 1`` on an ``mfa_factors`` item -> ``OBJECT_PROPERTIES_MAXIMUM``**
  (z-schema's and tv4's code; nothing in Auth0's list fits).  An empty item ``{}`` passes
  Auth0's published schema but enrols nothing, so it is refused with ``ANY_OF_MISSING``, the
  documented code that fits "must be one of totp, phone, email".
* **Invalid format -> ``FORMAT``** (documented), although ``INVALID_FORMAT`` has been seen in
  Auth0 responses in the wild (reference §2.4).  Match on codes from this module, not text.
* **Rules beyond plain JSON Schema**, which Auth0 states in prose:

  - ``password_hash`` together with ``custom_password_hash``: ``NOT_PASSED`` on
    ``custom_password_hash``;
  - reserved ``app_metadata`` keys: ``NOT_PASSED`` on ``app_metadata.<key>``;
  - metadata field names containing ``.`` or ``$`` (at any depth, inside arrays too):
    ``PATTERN`` (a ``propertyNames`` pattern ``^[^.$]*$``), path to the key;
  - ``hash.encoding`` not allowed for the algorithm: ``ENUM_MISMATCH``; missing where the
    algorithm needs ``hex``/``base64``: ``OBJECT_REQUIRED``;
  - ``salt`` given to argon2, ldap or pbkdf2: ``NOT_PASSED`` on ``custom_password_hash.salt``;
  - hmac without ``hash.digest``/``hash.key``, scrypt without ``keylen``: ``OBJECT_REQUIRED``;
  - ``keylen < 1``, ``cost < 2``, ``blockSize``/``parallelization < 1``: ``MINIMUM``; a
    ``cost`` that is not a power of two: ``FORMAT`` (format "power-of-two");
  - a bcrypt/argon2/pbkdf2/ldap ``hash.value`` of the wrong shape: ``PATTERN``; a pbkdf2
    digest outside Auth0's list: ``ENUM_MISMATCH``.
  - ``custom_password_hash.hash.value`` is required (``OBJECT_REQUIRED``).  Auth0's published
    schema does not list it as required, but a hash without a value cannot log anyone in.

Messages follow z-schema's templates (``Expected type string but found type integer``,
``String is too long (129 chars), maximum 128``, ``No enum match for: md6``...).  Pattern
messages never include the offending value: it may be a password hash or an MFA secret.

Paths are dotted, with ``[i]`` for array items, as Auth0 reports them
(``identities[0].profileData.email`` in the wild): ``custom_password_hash.hash.value``,
``app_metadata.__tenant``, ``mfa_factors[2].totp.secret``.  A non-object user has path ``""``.

Other decisions
---------------
* ``user_id``: at most 255 characters and no whitespace.  **UNCONFIRMED for import**: these
  are ``POST /users`` rules (reference §2.6 and §10).  A ``user_id`` starting with ``auth0|``
  is accepted, as Auth0 accepts it; it then becomes ``auth0|auth0|...``.
* ``username`` 1-128, ``given_name``/``family_name`` 1-150, ``name``/``nickname`` 1-300 come
  from ``POST /users`` as well (UNCONFIRMED for import).  Lengths count code points, as
  z-schema does.
* ``picture`` must be an absolute URI (``scheme://host...``, no whitespace), after
  ``POST /users``'s ``strict-uri`` format; the import schema itself gives no format.
* ``email`` approximates validator.js ``isEmail`` (z-schema's ``email`` format): a dot-atom
  local part of at most 64 UTF-8 bytes, a domain with a TLD and no full-width forms, 254
  characters in all; internationalised characters are allowed.
* argon2 hashes must be ``$argon2id$`` or ``$argon2i$`` with ``m``, ``t``, ``p`` in that
  order: Auth0 points to auth0/magic, which verifies through libsodium, and libsodium has no
  argon2d.
* ldap schemes: ``{MD5} {SMD5} {SHA} {SSHA} {SHA256} {SSHA256} {SHA384} {SSHA384} {SHA512}
  {SSHA512}`` (case-insensitive); ``{CRYPT}`` is refused, as Auth0 refuses it.
* Integers: a JSON number with no fractional part counts as an integer (``64.0``), as in
  JavaScript; ``true`` does not.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from auth0_migrate.passwords import PASSWORD_HASH_PATTERN

__all__ = [
    "ImportProblem",
    "json_type",
    "plainly_valid",
    "validate_import_file",
    "validate_import_user",
]


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One entry of ``errors`` for a user, as ``GET /jobs/{id}/errors`` returns it."""

    code: str
    message: str
    path: str


# Codes --------------------------------------------------------------------------------------

ANY_OF_MISSING: Final = "ANY_OF_MISSING"
ARRAY_LENGTH_LONG: Final = "ARRAY_LENGTH_LONG"
ARRAY_LENGTH_SHORT: Final = "ARRAY_LENGTH_SHORT"
ENUM_MISMATCH: Final = "ENUM_MISMATCH"
FORMAT: Final = "FORMAT"
INVALID_TYPE: Final = "INVALID_TYPE"
MAX_LENGTH: Final = "MAX_LENGTH"
MIN_LENGTH: Final = "MIN_LENGTH"
MINIMUM: Final = "MINIMUM"
NOT_PASSED: Final = "NOT_PASSED"
OBJECT_REQUIRED: Final = "OBJECT_REQUIRED"
PATTERN: Final = "PATTERN"
OBJECT_ADDITIONAL_PROPERTIES: Final = "OBJECT_ADDITIONAL_PROPERTIES"
OBJECT_PROPERTIES_MAXIMUM: Final = "OBJECT_PROPERTIES_MAXIMUM"

_NOT_PASSED_MSG: Final = "Data matches schema from 'not'"

# Patterns (compiled once; always used with fullmatch so "$" cannot match before a newline) ----

E164_PATTERN: Final = r"^\+[0-9]{1,15}$"
TOTP_SECRET_PATTERN: Final = r"^[A-Z2-7]+$"
USER_ID_PATTERN: Final = r"^\S*$"
METADATA_KEY_PATTERN: Final = r"^[^.$]*$"
BCRYPT_PATTERN: Final = r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$"
ARGON2_PATTERN: Final = (
    r"^\$argon2(id|i)\$(v=[0-9]+\$)?m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)
PBKDF2_PATTERN: Final = (
    r"^\$pbkdf2-[A-Za-z0-9-]+(\$(i=[0-9]+(,l=[0-9]+)?|l=[0-9]+(,i=[0-9]+)?))?\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)
LDAP_PATTERN: Final = (
    r"^\{(MD5|SMD5|SHA|SSHA|SHA256|SSHA256|SHA384|SSHA384|SHA512|SSHA512)\}[A-Za-z0-9+/]+={0,2}$"
)


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile a ``^...$`` pattern for use with ``fullmatch``."""
    if pattern.startswith("^") and pattern.endswith("$"):
        pattern = pattern[1:-1]
    return re.compile(pattern, flags)


_PASSWORD_HASH_RE: Final = _compile(PASSWORD_HASH_PATTERN)
_BCRYPT_RE: Final = _compile(BCRYPT_PATTERN)
_ARGON2_RE: Final = _compile(ARGON2_PATTERN)
_PBKDF2_RE: Final = _compile(PBKDF2_PATTERN)
_LDAP_RE: Final = _compile(LDAP_PATTERN, re.IGNORECASE)

_EMAIL_LOCAL: Final = r"[^\s\x00-\x1f\x7f@\"(),:;<>\[\\\].]+(?:\.[^\s\x00-\x1f\x7f@\"(),:;<>\[\\\].]+)*"
_EMAIL_LABEL: Final = r"[A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?"
_EMAIL_TLD: Final = r"(?:[A-Za-z\u00a1-\uffff]{2,63}|xn--[A-Za-z0-9-]{1,59})"
_EMAIL_RE: Final = re.compile(rf"({_EMAIL_LOCAL})@(?:{_EMAIL_LABEL}\.)+{_EMAIL_TLD}")
# The same shape restricted to ASCII, with possessive quantifiers: about twice as fast, and
# nearly every address takes this path.
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_EMAIL_ASCII_RE: Final = re.compile(
    rf"({_ATEXT}++(?:\.{_ATEXT}++)*+)@(?:[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+\.)++"
    r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
)
_FULLWIDTH_RE: Final = re.compile("[\uff01-\uff5e]")
_URI_PREFIX_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*+://[^\s/?#]")
# JavaScript's \s, which is what Auth0's patterns mean; Python's differs at the edges
# (\x1c-\x1f and \x85 are whitespace only in Python, \ufeff only in JavaScript).
_JS_WHITESPACE_RE: Final = re.compile(
    r"[\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)

# Vocabulary -----------------------------------------------------------------------------------

_ALGORITHMS: Final = (
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2", "scrypt",
)  # fmt: skip
_ALGORITHM_SET: Final = frozenset(_ALGORITHMS)
_DATA_ENCODINGS: Final = frozenset({"base64", "hex", "utf8"})
_PASSWORD_ENCODINGS: Final = frozenset({"ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"})
_SALT_POSITIONS: Final = frozenset({"prefix", "suffix"})
_HMAC_DIGESTS: Final = frozenset(
    {"md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool"}
)
_PBKDF2_DIGESTS: Final = frozenset(
    d.lower()
    for d in (
        "RSA-MD4", "RSA-MD5", "RSA-MDC2", "RSA-RIPEMD160", "RSA-SHA1", "RSA-SHA1-2", "RSA-SHA224",
        "RSA-SHA256", "RSA-SHA384", "RSA-SHA512", "md4", "md4WithRSAEncryption", "md5",
        "md5WithRSAEncryption", "mdc2", "mdc2WithRSA", "ripemd", "ripemd160", "ripemd160WithRSA",
        "rmd160", "sha1", "sha1WithRSAEncryption", "sha224", "sha224WithRSAEncryption", "sha256",
        "sha256WithRSAEncryption", "sha384", "sha384WithRSAEncryption", "sha512",
        "sha512WithRSAEncryption", "ssl3-md5", "ssl3-sha1", "whirlpool",
    )
)  # fmt: skip
_UTF8_ONLY: Final = frozenset({"argon2", "bcrypt", "ldap", "pbkdf2"})
_HEX_OR_BASE64: Final = frozenset({"hmac", "md4", "md5", "sha1", "sha256", "sha512", "scrypt"})
_NO_SALT: Final = frozenset({"argon2", "ldap", "pbkdf2"})
_RESERVED_APP_METADATA: Final = frozenset(
    {
        "__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
        "globalClientID", "global_client_id", "identities", "lastIP", "lastLogin", "loginsCount",
        "metadata", "multifactor_last_modified", "multifactor", "updated_at", "user_id",
    }
)  # fmt: skip
_CPH_PROPERTIES: Final = frozenset(
    {"algorithm", "hash", "salt", "password", "keylen", "cost", "blockSize", "parallelization"}
)
_MFA_KINDS: Final = {"totp": "secret", "phone": "value", "email": "value"}

_Errors = list[ImportProblem]
_MISSING: Final = object()


# Primitive checks ---------------------------------------------------------------------------


def json_type(value: Any) -> str:
    """The JSON Schema type name z-schema (Auth0's validator) reports for ``value``: an integral
    number is ``integer``, any other ``number``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return type(value).__name__


def _type_error(expected: str, value: Any, path: str) -> ImportProblem:
    return ImportProblem(INVALID_TYPE, f"Expected type {expected} but found type {json_type(value)}", path)


def _required(key: str, path: str) -> ImportProblem:
    return ImportProblem(OBJECT_REQUIRED, f"Missing required property: {key}", path)


def _additional(key: str, path: str) -> ImportProblem:
    return ImportProblem(OBJECT_ADDITIONAL_PROPERTIES, f"Additional properties not allowed: {key}", path)


def _pattern_error(pattern: str, path: str, detail: str = "") -> ImportProblem:
    return ImportProblem(PATTERN, f"String does not match pattern {pattern}{detail}", path)


def _format_error(fmt: str, value: Any, path: str) -> ImportProblem:
    return ImportProblem(FORMAT, f"Object didn't pass validation for format {fmt}: {value}", path)


def _enum_error(value: Any, path: str, detail: str = "") -> ImportProblem:
    return ImportProblem(ENUM_MISMATCH, f"No enum match for: {value}{detail}", path)


def _minimum_error(value: Any, minimum: int, path: str) -> ImportProblem:
    return ImportProblem(MINIMUM, f"Value {value} is less than minimum {minimum}", path)


def is_valid_email(value: str) -> bool:
    """The ``email`` format as applied here (see the module docstring)."""
    if len(value) > 254:
        return False
    match = (_EMAIL_ASCII_RE if value.isascii() else _EMAIL_RE).fullmatch(value)
    # validator.js counts the local part in UTF-8 bytes, and refuses full-width forms in the domain.
    if match is None or len(match.group(1).encode("utf-8")) > 64:
        return False
    if not value.isascii() and _FULLWIDTH_RE.search(value, match.end(1)):
        return False
    domain = value[match.end(1) + 1 :]
    return len(domain) <= 63 or all(len(label) <= 63 for label in domain.split("."))


_DIGITS: Final = "0123456789"
_BASE32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _is_e164(value: str) -> bool:
    """``^\\+[0-9]{1,15}$`` without the regex engine (``strip`` runs at C speed)."""
    return 2 <= len(value) <= 16 and value[0] == "+" and not value[1:].strip(_DIGITS)


def _is_totp_secret(value: str) -> bool:
    """``^[A-Z2-7]+$`` (un-padded base32) without the regex engine."""
    return bool(value) and not value.strip(_BASE32)


def _has_js_whitespace(value: str) -> bool:
    """Whether ``value`` contains a character JavaScript's ``\\s`` matches.

    ``str.split()`` answers the common case at C speed; only strings it splits, or that hold
    U+FEFF, are looked at with the exact JavaScript class.
    """
    if value.split() == [value] and "\ufeff" not in value:
        return False
    return _JS_WHITESPACE_RE.search(value) is not None


def _is_integer(value: Any) -> bool:
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value) and value.is_integer()


def _string_check(path: str, min_length: int, max_length: int) -> Callable[[Any, _Errors], None]:
    """A check for a string property with length limits (counted in code points)."""

    def check(value: Any, errors: _Errors) -> None:
        if type(value) is not str:
            errors.append(_type_error("string", value, path))
            return
        length = len(value)
        if length < min_length:
            errors.append(
                ImportProblem(MIN_LENGTH, f"String is too short ({length} chars), minimum {min_length}", path)
            )
        elif length > max_length:
            errors.append(
                ImportProblem(MAX_LENGTH, f"String is too long ({length} chars), maximum {max_length}", path)
            )

    return check


def _boolean_check(path: str) -> Callable[[Any, _Errors], None]:
    def check(value: Any, errors: _Errors) -> None:
        if value is not True and value is not False:
            errors.append(_type_error("boolean", value, path))

    return check


def _check_email(value: Any, errors: _Errors) -> None:
    if type(value) is not str:
        errors.append(_type_error("string", value, "email"))
    elif not is_valid_email(value):
        errors.append(_format_error("email", value, "email"))


def _check_user_id(value: Any, errors: _Errors) -> None:
    if type(value) is not str:
        errors.append(_type_error("string", value, "user_id"))
        return
    if len(value) > 255:
        errors.append(
            ImportProblem(MAX_LENGTH, f"String is too long ({len(value)} chars), maximum 255", "user_id")
        )
    if value and _has_js_whitespace(value):
        errors.append(_pattern_error(USER_ID_PATTERN, "user_id"))


def _check_phone_number(value: Any, errors: _Errors) -> None:
    if type(value) is not str:
        errors.append(_type_error("string", value, "phone_number"))
    elif not _is_e164(value):
        errors.append(_pattern_error(E164_PATTERN, "phone_number"))


def _check_picture(value: Any, errors: _Errors) -> None:
    if type(value) is not str:
        errors.append(_type_error("string", value, "picture"))
    elif _URI_PREFIX_RE.match(value) is None or _has_js_whitespace(value):
        errors.append(_format_error("uri", value, "picture"))


# Metadata -------------------------------------------------------------------------------------


def _has_bad_key(obj: Any) -> bool:
    """Fast pre-scan: any field name with ``.`` or ``$`` below ``obj`` (a dict or a list)?

    Builds no paths, and walks lists inline rather than recursing into them (lists of
    scalars such as roles are the common case), so a clean profile stays cheap;
    :func:`_scan_keys` builds paths only once this has found something.
    """
    items = obj.items() if type(obj) is dict else (("", value) for value in obj)
    for key, value in items:
        if "." in key or "$" in key:
            return True
        kind = type(value)
        if kind is dict:
            if value and _has_bad_key(value):
                return True
        elif kind is list:
            for item in value:
                item_kind = type(item)
                if (item_kind is dict or item_kind is list) and item and _has_bad_key(item):
                    return True
    return False


def _scan_keys(obj: Any, path: str, errors: _Errors) -> None:
    """Refuse field names containing ``.`` or ``$`` anywhere below a metadata object."""
    if not _has_bad_key(obj):
        return
    if type(obj) is dict:
        for key, value in obj.items():
            if "." in key or "$" in key:
                errors.append(
                    ImportProblem(
                        PATTERN,
                        f"Property name does not match pattern {METADATA_KEY_PATTERN}: {key} "
                        "(metadata field names must not contain '.' or '$')",
                        f"{path}.{key}",
                    )
                )
            if (type(value) is dict or type(value) is list) and value:
                _scan_keys(value, f"{path}.{key}", errors)
    else:
        for index, value in enumerate(obj):
            if (type(value) is dict or type(value) is list) and value:
                _scan_keys(value, f"{path}[{index}]", errors)


def _check_app_metadata(value: Any, errors: _Errors) -> None:
    if type(value) is not dict:
        errors.append(_type_error("object", value, "app_metadata"))
        return
    if not _RESERVED_APP_METADATA.isdisjoint(value):
        for key in value:
            if key in _RESERVED_APP_METADATA:
                errors.append(
                    ImportProblem(
                        NOT_PASSED,
                        f"{_NOT_PASSED_MSG}: app_metadata must not contain the reserved property {key}",
                        f"app_metadata.{key}",
                    )
                )
    _scan_keys(value, "app_metadata", errors)


def _check_user_metadata(value: Any, errors: _Errors) -> None:
    if type(value) is not dict:
        errors.append(_type_error("object", value, "user_metadata"))
        return
    _scan_keys(value, "user_metadata", errors)


# MFA factors ----------------------------------------------------------------------------------


def _check_mfa_factors(value: Any, errors: _Errors) -> None:
    if type(value) is not list:
        errors.append(_type_error("array", value, "mfa_factors"))
        return
    count = len(value)
    if count < 1:
        errors.append(
            ImportProblem(ARRAY_LENGTH_SHORT, f"Array is too short ({count}), minimum 1", "mfa_factors")
        )
    elif count > 10:
        errors.append(
            ImportProblem(ARRAY_LENGTH_LONG, f"Array is too long ({count}), maximum 10", "mfa_factors")
        )
    for index, factor in enumerate(value):
        if type(factor) is dict and len(factor) == 1:
            # Fast path for the usual well-formed item; anything unusual takes the slow path.
            ((kind, body),) = factor.items()
            field = _MFA_KINDS.get(kind)
            if field is not None and type(body) is dict and len(body) == 1:
                item = body.get(field)
                if type(item) is str:
                    if kind == "totp":
                        ok = _is_totp_secret(item)
                    elif kind == "phone":
                        ok = _is_e164(item)
                    else:
                        ok = is_valid_email(item)
                    if ok:
                        continue
        _check_mfa_factor(index, factor, errors)


def _check_mfa_factor(index: int, factor: Any, errors: _Errors) -> None:
    path = f"mfa_factors[{index}]"
    if type(factor) is not dict:
        errors.append(_type_error("object", factor, path))
        return
    if len(factor) > 1:
        errors.append(
            ImportProblem(
                OBJECT_PROPERTIES_MAXIMUM, f"Too many properties defined ({len(factor)}), maximum 1", path
            )
        )
    elif not factor:
        errors.append(
            ImportProblem(
                ANY_OF_MISSING,
                "Data does not match any schemas from 'anyOf' (expected one of totp, phone, email)",
                path,
            )
        )
    for kind, body in factor.items():
        field = _MFA_KINDS.get(kind)
        kind_path = f"{path}.{kind}"
        if field is None:
            errors.append(_additional(kind, kind_path))
            continue
        if type(body) is not dict:
            errors.append(_type_error("object", body, kind_path))
            continue
        for extra in body:
            if extra != field:
                errors.append(_additional(extra, f"{kind_path}.{extra}"))
        field_path = f"{kind_path}.{field}"
        item = body.get(field, _MISSING)
        if item is _MISSING:
            errors.append(_required(field, field_path))
        elif type(item) is not str:
            errors.append(_type_error("string", item, field_path))
        elif kind == "totp":
            if not _is_totp_secret(item):
                errors.append(_pattern_error(TOTP_SECRET_PATTERN, field_path))
        elif kind == "phone":
            if not _is_e164(item):
                errors.append(_pattern_error(E164_PATTERN, field_path))
        elif not is_valid_email(item):
            errors.append(_format_error("email", item, field_path))


# custom_password_hash -----------------------------------------------------------------------

_CPH: Final = "custom_password_hash"


def _check_enum_string(
    obj: dict[str, Any], key: str, allowed: frozenset[str], path: str, errors: _Errors
) -> Any:
    """Check an optional string-enum property; return its value, or None if absent/invalid."""
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        return None
    if type(value) is not str:
        errors.append(_type_error("string", value, path))
        return None
    if value not in allowed:
        errors.append(_enum_error(value, path))
        return None
    return value


def _check_required_string(obj: dict[str, Any], key: str, path: str, errors: _Errors) -> Any:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        errors.append(_required(key, path))
        return None
    if type(value) is not str:
        errors.append(_type_error("string", value, path))
        return None
    return value


def _check_custom_password_hash(cph: Any, errors: _Errors) -> None:
    if type(cph) is not dict:
        errors.append(_type_error("object", cph, _CPH))
        return
    for key in cph:
        if key not in _CPH_PROPERTIES:
            errors.append(_additional(key, f"{_CPH}.{key}"))

    algorithm = cph.get("algorithm", _MISSING)
    if algorithm is _MISSING:
        errors.append(_required("algorithm", f"{_CPH}.algorithm"))
        algorithm = None
    elif type(algorithm) is not str:
        errors.append(_type_error("string", algorithm, f"{_CPH}.algorithm"))
        algorithm = None
    elif algorithm not in _ALGORITHM_SET:
        errors.append(_enum_error(algorithm, f"{_CPH}.algorithm"))
        algorithm = None

    hash_path = f"{_CPH}.hash"
    hash_obj = cph.get("hash", _MISSING)
    value = encoding = None
    has_encoding = has_digest = has_key = False
    if hash_obj is _MISSING:
        errors.append(_required("hash", hash_path))
    elif type(hash_obj) is not dict:
        errors.append(_type_error("object", hash_obj, hash_path))
    else:
        value = _check_required_string(hash_obj, "value", f"{hash_path}.value", errors)
        has_encoding = "encoding" in hash_obj
        encoding = _check_enum_string(hash_obj, "encoding", _DATA_ENCODINGS, f"{hash_path}.encoding", errors)
        has_digest = "digest" in hash_obj
        _check_enum_string(hash_obj, "digest", _HMAC_DIGESTS, f"{hash_path}.digest", errors)
        key_obj = hash_obj.get("key", _MISSING)
        has_key = key_obj is not _MISSING
        if has_key:
            key_path = f"{hash_path}.key"
            if type(key_obj) is not dict:
                errors.append(_type_error("object", key_obj, key_path))
            else:
                _check_required_string(key_obj, "value", f"{key_path}.value", errors)
                _check_enum_string(key_obj, "encoding", _DATA_ENCODINGS, f"{key_path}.encoding", errors)

    salt = cph.get("salt", _MISSING)
    if salt is not _MISSING:
        salt_path = f"{_CPH}.salt"
        if type(salt) is not dict:
            errors.append(_type_error("object", salt, salt_path))
        else:
            _check_required_string(salt, "value", f"{salt_path}.value", errors)
            _check_enum_string(salt, "encoding", _DATA_ENCODINGS, f"{salt_path}.encoding", errors)
            _check_enum_string(salt, "position", _SALT_POSITIONS, f"{salt_path}.position", errors)

    password = cph.get("password", _MISSING)
    if password is not _MISSING:
        password_path = f"{_CPH}.password"
        if type(password) is not dict:
            errors.append(_type_error("object", password, password_path))
        else:
            _check_enum_string(password, "encoding", _PASSWORD_ENCODINGS, f"{password_path}.encoding", errors)

    numbers: dict[str, Any] = {}
    for key in ("keylen", "cost", "blockSize", "parallelization"):
        number = cph.get(key, _MISSING)
        if number is _MISSING:
            continue
        if not _is_integer(number):
            errors.append(_type_error("integer", number, f"{_CPH}.{key}"))
        else:
            numbers[key] = int(number)

    if algorithm is None:
        return
    _check_algorithm_rules(
        algorithm, cph, value, has_encoding, encoding, has_digest, has_key, numbers, errors
    )


def _check_algorithm_rules(
    algorithm: str,
    cph: dict[str, Any],
    value: str | None,
    has_encoding: bool,
    encoding: str | None,
    has_digest: bool,
    has_key: bool,
    numbers: dict[str, int],
    errors: _Errors,
) -> None:
    """The per-algorithm rules of reference §2.7 (Auth0 states them in prose, not schema)."""
    encoding_path = f"{_CPH}.hash.encoding"
    if algorithm in _UTF8_ONLY:
        if encoding is not None and encoding != "utf8":
            errors.append(
                _enum_error(encoding, encoding_path, f" (algorithm {algorithm} requires hash.encoding utf8)")
            )
    elif not has_encoding and type(cph.get("hash")) is dict:  # a missing hash is reported once, as itself
        errors.append(_required("encoding", encoding_path))
    elif encoding is not None and encoding not in ("hex", "base64"):
        errors.append(
            _enum_error(
                encoding, encoding_path, f" (algorithm {algorithm} requires hash.encoding hex or base64)"
            )
        )

    if algorithm in _NO_SALT and "salt" in cph:
        errors.append(
            ImportProblem(
                NOT_PASSED,
                f"{_NOT_PASSED_MSG}: salt is not allowed with algorithm {algorithm}",
                f"{_CPH}.salt",
            )
        )

    value_path = f"{_CPH}.hash.value"
    if algorithm == "hmac":
        if not has_digest:
            errors.append(_required("digest", f"{_CPH}.hash.digest"))
        if not has_key:
            errors.append(_required("key", f"{_CPH}.hash.key"))
    elif algorithm == "scrypt":
        if "keylen" not in cph:
            errors.append(_required("keylen", f"{_CPH}.keylen"))
        keylen = numbers.get("keylen")
        if keylen is not None and keylen < 1:
            errors.append(_minimum_error(keylen, 1, f"{_CPH}.keylen"))
        cost = numbers.get("cost")
        if cost is not None:
            if cost < 2:
                errors.append(_minimum_error(cost, 2, f"{_CPH}.cost"))
            elif cost & (cost - 1):
                errors.append(_format_error("power-of-two", cost, f"{_CPH}.cost"))
        for key in ("blockSize", "parallelization"):
            number = numbers.get(key)
            if number is not None and number < 1:
                errors.append(_minimum_error(number, 1, f"{_CPH}.{key}"))
    elif value is not None:
        if algorithm == "bcrypt":
            if _BCRYPT_RE.fullmatch(value) is None:
                errors.append(
                    _pattern_error(BCRYPT_PATTERN, value_path, " (prefix must be $2a$, $2b$ or $2y$)")
                )
        elif algorithm == "argon2":
            if _ARGON2_RE.fullmatch(value) is None:
                errors.append(_pattern_error(ARGON2_PATTERN, value_path))
        elif algorithm == "pbkdf2":
            if _PBKDF2_RE.fullmatch(value) is None:
                errors.append(_pattern_error(PBKDF2_PATTERN, value_path))
            else:
                pbkdf2_digest = value[8 : value.index("$", 8)]
                if pbkdf2_digest.lower() not in _PBKDF2_DIGESTS:
                    errors.append(_enum_error(pbkdf2_digest, value_path, " (unsupported pbkdf2 digest)"))
        elif algorithm == "ldap" and _LDAP_RE.fullmatch(value) is None:
            detail = " (the {CRYPT} scheme is not supported)" if value[:7].upper() == "{CRYPT}" else ""
            errors.append(_pattern_error(LDAP_PATTERN, value_path, detail))


def _check_password_hash(value: Any, errors: _Errors) -> None:
    if type(value) is not str:
        errors.append(_type_error("string", value, "password_hash"))
    elif _PASSWORD_HASH_RE.fullmatch(value) is None:
        errors.append(_pattern_error(PASSWORD_HASH_PATTERN, "password_hash"))


# The user -------------------------------------------------------------------------------------

_TOP_CHECKS: Final[dict[str, Callable[[Any, _Errors], None]]] = {
    "email": _check_email,
    "email_verified": _boolean_check("email_verified"),
    "phone_number": _check_phone_number,
    "phone_verified": _boolean_check("phone_verified"),
    "user_id": _check_user_id,
    "username": _string_check("username", 1, 128),
    "given_name": _string_check("given_name", 1, 150),
    "family_name": _string_check("family_name", 1, 150),
    "name": _string_check("name", 1, 300),
    "nickname": _string_check("nickname", 1, 300),
    "picture": _check_picture,
    "blocked": _boolean_check("blocked"),
    "password_hash": _check_password_hash,
    "custom_password_hash": _check_custom_password_hash,
    "app_metadata": _check_app_metadata,
    "user_metadata": _check_user_metadata,
    "mfa_factors": _check_mfa_factors,
}
_RARE_CHECKS: Final = (("custom_password_hash", _check_custom_password_hash), ("mfa_factors", _check_mfa_factors))


def validate_import_user(user: Any) -> list[ImportProblem]:
    """Validate one element of an import file; an empty list means Auth0 would accept it.

    Every rule is checked, so one user can yield several errors (as Auth0 reports them).
    Errors come in the user's key order, then a missing ``email``, then the
    ``password_hash``/``custom_password_hash`` conflict.

    >>> validate_import_user({"email": "jane@example.com", "email_verified": "yes"})
    [ImportProblem(code='INVALID_TYPE', message='Expected type boolean but found type string', path='email_verified')]
    """
    if type(user) is dict and plainly_valid(user):
        return []
    return _problems(user)


def _problems(user: Any) -> list[ImportProblem]:
    """The rule-by-rule validator: every error of ``user``, in the order :func:`validate_import_user` states."""
    if not isinstance(user, dict):
        return [_type_error("object", user, "")]
    errors: _Errors = []
    checks = _TOP_CHECKS
    for key, value in user.items():
        check = checks.get(key)
        if check is None:
            errors.append(_additional(key, key))
        else:
            check(value, errors)
    if "email" not in user:
        errors.append(_required("email", "email"))
    if "password_hash" in user and _CPH in user:
        errors.append(
            ImportProblem(
                NOT_PASSED,
                f"{_NOT_PASSED_MSG}: password_hash and custom_password_hash are mutually exclusive",
                _CPH,
            )
        )
    return errors


# The fast path --------------------------------------------------------------------------------
#
# Nearly every user is well formed and has the same few properties, so one pass with the common
# checks written inline settles them, without a call per property or a Python walk of the
# metadata (about a quarter less work than the checks above on the benchmark's users); it answers
# True only when _problems(user) would be empty, and otherwise, or when unsure, False: the
# caller then runs _problems, which alone words the errors.  Each inline test implies the rule
# it stands for (it may be stricter: an email that is not ASCII, a picture with a character
# outside printable ASCII, a metadata text with a backslash take the slow road, and are judged
# there).  tests/unit/test_import_fast_path.py holds the two to that, rule by rule and on
# random mutations.

_BACKSLASH: Final = ord("\\")
_DOLLAR: Final = ord("$")
_DOT: Final = ord(".")
_RARE_KEYS: Final = frozenset(
    {"phone_verified", "username", "user_id", "phone_number", "custom_password_hash", "mfa_factors"}
)
# The URI check of _check_picture, restricted to printable ASCII without spaces, so it holds
# no whitespace in JavaScript's sense either.
_PLAIN_URI_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*+://[!-\"$-.0-9:->@-~][!-~]*+")


def plainly_valid(user: dict[str, Any]) -> bool:
    """Whether ``user`` certainly has no problem; False means "ask :func:`_problems`", not "invalid"."""
    if not _TOP_CHECKS.keys() >= user.keys():
        return False
    email = user.get("email")
    if type(email) is not str or len(email) > 254 or not email.isascii():
        return False
    # is_valid_email on an ASCII address: one byte a character, so the local part's end is its length.
    match = _EMAIL_ASCII_RE.fullmatch(email)
    if match is None or match.end(1) > 64 or len(email) - match.end(1) > 64:
        return False
    # Written out rather than looped: this runs once per user, a million times a run.
    value = user.get("email_verified", False)
    if value is not True and value is not False:
        return False
    value = user.get("blocked", False)
    if value is not True and value is not False:
        return False
    value = user.get("given_name", "-")
    if type(value) is not str or not 0 < len(value) <= 150:
        return False
    value = user.get("family_name", "-")
    if type(value) is not str or not 0 < len(value) <= 150:
        return False
    value = user.get("name", "-")
    if type(value) is not str or not 0 < len(value) <= 300:
        return False
    value = user.get("nickname", "-")
    if type(value) is not str or not 0 < len(value) <= 300:
        return False
    value = user.get("picture", _MISSING)
    if value is not _MISSING and (type(value) is not str or _PLAIN_URI_RE.fullmatch(value) is None):
        return False
    value = user.get("password_hash", _MISSING)
    if value is not _MISSING and (
        _CPH in user or type(value) is not str or _PASSWORD_HASH_RE.fullmatch(value) is None
    ):
        return False
    app_metadata = user.get("app_metadata", _MISSING)
    user_metadata = user.get("user_metadata", _MISSING)
    if app_metadata is not _MISSING:
        if type(app_metadata) is not dict or not _RESERVED_APP_METADATA.isdisjoint(app_metadata):
            return False
        if user_metadata is not _MISSING:
            if type(user_metadata) is not dict or not _plain_keys([app_metadata, user_metadata]):
                return False
        elif not _plain_keys(app_metadata):
            return False
    elif user_metadata is not _MISSING and (type(user_metadata) is not dict or not _plain_keys(user_metadata)):
        return False
    return _RARE_KEYS.isdisjoint(user) or _rare_properties_plain(user)


def _rare_properties_plain(user: dict[str, Any]) -> bool:
    """The fast path's rest, for the properties few users have."""
    value = user.get("phone_verified", False)
    if value is not True and value is not False:
        return False
    value = user.get("username", "-")
    if type(value) is not str or not 0 < len(value) <= 128:
        return False
    value = user.get("user_id", _MISSING)
    # Every character JavaScript's \s matches, but the space, is unprintable to Python.
    if value is not _MISSING and (
        type(value) is not str or len(value) > 255 or not value.isprintable() or " " in value
    ):
        return False
    value = user.get("phone_number", _MISSING)
    if value is not _MISSING and (type(value) is not str or not _is_e164(value)):
        return False
    # The rarest: their own checks, with nothing to report if they pass.
    errors: _Errors = []
    for key, check in _RARE_CHECKS:
        value = user.get(key, _MISSING)
        if value is not _MISSING:
            check(value, errors)
    return not errors


def _plain_keys(obj: dict[str, Any] | list[Any]) -> bool:
    """Whether no field name anywhere below ``obj`` holds ``.`` or ``$`` (False also when unsure).

    One walk in C instead of one in Python: orjson writes ``obj`` out, and the text after each
    ``.`` or ``$`` is read only as far as the next quote, which ends a field name when ``:``
    follows it.  Without backslashes every quote in orjson's text opens or closes a string, so
    a bad name cannot hide; a ``:`` after a value's closing quote is impossible, and after a
    number's dot it means the next name starts with ``:`` (a false alarm: the slow road decides).
    """
    try:
        text = orjson.dumps(obj)
    except (TypeError, ValueError):  # orjson.JSONEncodeError: non-string keys, lone surrogates, deep nesting
        return False
    # (bytes `in` with an int is a memchr; with a one-byte bytes it raises and clears a TypeError first)
    if _BACKSLASH in text:
        return False
    if _DOLLAR in text:
        text = text.replace(b"$", b".")
    if _DOT in text:
        for after_mark in text.split(b".")[1:]:
            if after_mark.partition(b'"')[2][:1] == b":":
                return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def validate_import_file(data: bytes | str) -> tuple[list[Any] | None, str | None]:
    """Parse an import file body: ``(users, None)``, or ``(None, message)`` for a failed job.

    Auth0 fails the whole job (status ``failed``) only when the file itself is unusable: not
    JSON, or not a JSON array (reference §2.3).  Individual bad users do not fail the job, so
    array elements are returned as they are, objects or not, for
    :func:`validate_import_user` to judge one by one.  ``NaN``/``Infinity`` are refused, as
    ``JSON.parse`` refuses them; a UTF-8 byte-order mark is refused too.  The message names
    the position of a syntax error but never quotes the file, which holds password hashes.
    """
    if isinstance(data, str):  # already-decoded text is tolerated
        text = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"Failed to parse users file: invalid UTF-8 at byte {exc.start}."
    else:
        raise TypeError("data must be bytes")
    if text.startswith("\ufeff"):
        return None, "Failed to parse users file: unexpected byte order mark; the file must be UTF-8 JSON."
    try:
        users = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return None, f"Failed to parse users file JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
    except (ValueError, RecursionError) as exc:
        reason = (
            str(exc) if isinstance(exc, ValueError) and "not valid JSON" in str(exc) else "too deeply nested"
        )
        return None, f"Failed to parse users file JSON: {reason}."
    if not isinstance(users, list):
        return None, f"Users file must contain a JSON array of user objects, found {json_type(users)}."
    return users, None
