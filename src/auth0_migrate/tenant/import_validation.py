"""The local tenant's own judgement of bulk-import files, written from Auth0's documentation only.

The migration tool validates users before upload with :mod:`auth0_migrate.import_schema`, a fast
hand-written validator. The tenant must not share it: a mistake there would then be made on both
sides and no test could see it. So the tenant judges each user with

1. **Auth0's published JSON schema** for import users, kept as data in
   ``tenant/data/user-import-schema.json`` (source URL and retrieval date inside), evaluated with
   ``jsonschema`` (draft 7 semantics, as close as jsonschema gets to z-schema, the validator
   Auth0's messages come from: a number with no fraction is an integer, as in JavaScript);
2. **the rules Auth0 states in prose** on the same pages, written here as plain checks:

   - ``phone_number`` is E.164 ("Must be in E.164 format"), the same pattern the schema gives
     to an MFA phone: ``^\\+[0-9]{1,15}$``;
   - ``password_hash`` is a bcrypt ``$2a$``/``$2b$`` hash with 10 salt rounds; the one real
     message seen for it (support.auth0.com, "user import fails with error in passwordHash
     property") names the pattern ``^\\$2[ab]?\\$10+\\$[./A-Za-z0-9]{53}$``;
   - ``password_hash`` and ``custom_password_hash`` are mutually exclusive;
   - ``app_metadata`` must not hold the 18 reserved keys; metadata field names must not contain
     ``.`` or ``$`` ("Metadata Field Names and Data Types"), at any depth;
   - per ``custom_password_hash.algorithm``: the allowed ``hash.encoding`` (utf8 for argon2,
     bcrypt, ldap, pbkdf2; hex or base64 for hmac, md4, md5, sha1, sha256, sha512, scrypt), no
     ``salt`` for argon2, ldap and pbkdf2, ``hash.digest`` and ``hash.key`` for hmac, ``keylen``
     (> 0) for scrypt, ``cost`` a power of two > 1, ``blockSize``/``parallelization`` > 0, and the
     documented shape of ``hash.value``: bcrypt prefix ``$2a$``/``$2b$``/``$2y$``, argon2 and
     pbkdf2 PHC strings (with the salt inside, pbkdf2 ``i``/``l`` optional and its digest from the
     documented list), ldap RFC 2307 ``{scheme}base64`` with schemes md5, smd5, sha*, ssha*
     (crypt refused);
   - an ``mfa_factors`` item names one of the supported enrolment types.

3. **The file itself** (:func:`parse_import_file`): UTF-8 JSON holding an array; anything else
   fails the whole job, as Auth0 fails a job only for a file it cannot read. The 500 KB limit is
   enforced on the request, before this module sees the file (413 in ``jobs.py``).

Error entries
-------------
Each entry has ``code``, ``message`` and ``path``, the shape of ``GET /jobs/{id}/errors``. Codes
are Auth0's documented list (``ANY_OF_MISSING ARRAY_LENGTH_LONG ARRAY_LENGTH_SHORT ENUM_MISMATCH
INVALID_TYPE MAX_LENGTH MAXIMUM MIN_LENGTH MINIMUM NOT_PASSED OBJECT_REQUIRED PATTERN``) with two
exceptions taken from what real Auth0 was seen to answer or cannot avoid answering:

* a failed ``format`` is ``INVALID_FORMAT`` (seen from a real tenant, community.auth0.com topic
  102951), not the documented ``FORMAT``;
* keywords the documented list has no code for use z-schema's: ``OBJECT_ADDITIONAL_PROPERTIES``
  and ``OBJECT_PROPERTIES_MAXIMUM``.

Messages follow the two real ones seen: ``Error in <path> property - <z-schema text>``, for
example ``Error in identities[0].profileData.email property - Object didn't pass validation for
format email: akshay144@``. That real answer also shows that Auth0 reports the top-level email's
format on its internal profile path, and the password_hash one on ``passwordHash``; the tenant
answers those two cases the same way. A pattern message never shows the value (hashes, MFA
secrets).

Choices where Auth0 is silent
-----------------------------
* **Other paths** are the import file's own, dotted with ``[i]`` for array items
  (``custom_password_hash.hash.value``, ``mfa_factors[1].phone.value``); a missing or extra
  property's path is that property's path. A non-object user has path ``""``.
* **The ``email`` format** is validator.js ``isEmail`` with ``require_tld`` (what z-schema's email
  format calls), re-implemented from its documented rules: a local part of at most 64 UTF-8
  bytes made of dot-separated atoms (internationalised characters allowed) or a quoted string,
  a domain of at most 254 bytes whose labels are 1-63 characters, no leading or trailing hyphen,
  no underscore, and a TLD of two or more letters (or ``xn--``), the whole at most 254 UTF-16
  code units. No IP-literal domains.
* **Patterns** are ECMAScript regular expressions (Auth0 runs Node.js): ``$`` matches only at the
  very end, so a trailing newline fails. jsonschema's stock ``pattern`` uses Python's ``re``,
  whose ``$`` also matches before a final newline; this module replaces it.
* **``custom_password_hash.hash.value`` is required** (``OBJECT_REQUIRED``): the schema does not
  list it, but every per-algorithm rule is about the value, and a hash without one can never
  match a password.
* **An empty ``mfa_factors`` item ``{}``** passes the published schema but enrols nothing; it
  fails with ``ANY_OF_MISSING`` (a documented code that no keyword of the published schema can
  produce, so Auth0 checks something the page does not show; "must be one of the supported
  types" is the natural reading).
* **Hash values**: bcrypt must be the complete modular-crypt string (prefix, two-digit cost 04-31,
  53 characters of salt and digest), since the tenant verifies logins against it; argon2 must be
  ``argon2i`` or ``argon2id`` (auth0/magic verifies with libsodium, which has no argon2d) with
  ``m``, ``t``, ``p`` in that order; the ldap part after the scheme is base64 characters, with
  padding optional (Node's base64 decoder does not insist on it, nor does the tenant's login
  check). pbkdf2 digests and ldap schemes are matched without regard to case (OpenSSL's names
  and RFC 2307's schemes are).
* **Codes of the prose rules**: a reserved ``app_metadata`` key and the two hashes together are
  ``NOT_PASSED`` (what a ``not`` in a schema would answer), a metadata field name is ``PATTERN``
  (a ``propertyNames`` pattern ``^[^.$]*$``), a missing ``encoding``/``digest``/``key``/``keylen``
  is ``OBJECT_REQUIRED``, an encoding the algorithm does not take is ``ENUM_MISMATCH``, a
  ``cost`` that is not a power of two is ``INVALID_FORMAT`` (format "power-of-two"), a value
  below the documented least is ``MINIMUM``, a ``hash.value`` of the wrong shape is ``PATTERN``.
  A user's errors list the schema's first, then these.
* **Not checked**, because Auth0 states them for other endpoints only (``POST /users``) or says
  writes still succeed: ``user_id`` length and whitespace, lengths of ``username`` and the name
  fields, ``picture`` as a URI, and the per-profile size limit. The migration tool checks the
  first three anyway (UNCONFIRMED for import); the differential test lists them.
* **The schema is compiled once, on first use**, so importing the tenant does not import
  jsonschema.

Example::

    users, problem = parse_import_file(body)          # (None, "why") fails the whole job
    for user in users:
        errors = validate_user(user)                  # [] means the user is imported
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = ["ImportProblem", "SCHEMA_FILE", "is_email", "load_schema", "parse_import_file", "validate_user"]

SCHEMA_FILE: Final = "data/user-import-schema.json"


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One entry of a user's ``errors`` in ``GET /jobs/{id}/errors``."""

    code: str
    message: str
    path: str


# --- the file --------------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def parse_import_file(data: bytes) -> tuple[list[Any] | None, str | None]:
    """The users of an uploaded file, or ``(None, reason)`` when the job must fail as a whole.

    Node's ``JSON.parse`` is the model: UTF-8 text, no byte-order mark, no ``NaN``/``Infinity``.
    The reason names a position, never the file's content (it holds password hashes).
    """
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"Failed to parse users file: the file is not UTF-8 (byte {exc.start})."
    if text.startswith("\ufeff"):
        return None, "Failed to parse users file: it starts with a byte order mark."
    try:
        users = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return None, f"Failed to parse users file JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
    except ValueError as exc:
        return None, f"Failed to parse users file JSON: {exc} is not JSON."
    except RecursionError:
        return None, "Failed to parse users file JSON: nested too deeply."
    if not isinstance(users, list):
        return None, f"The users file must hold a JSON array, not {_type_name(users)}."
    return users, None


# --- the published schema --------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    """The data file: ``{"source", "retrieved", "note", "schema"}``."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a schema pattern with ECMAScript meaning (see the module docstring)."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return re.compile("".join(out), re.ASCII)


@functools.cache
def _compiled_pattern(pattern: str) -> re.Pattern[str]:
    return _ecma_pattern(pattern)


@functools.cache
def _validator() -> Validator:
    """The published schema, compiled once (jsonschema is imported here, not at tenant start)."""
    from jsonschema import Draft7Validator, FormatChecker, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, patrn: str, instance: Any, schema: dict[str, Any]) -> Any:
        if validator.is_type(instance, "string") and not _compiled_pattern(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    checker = FormatChecker(formats=())
    checker.checks("email")(lambda value: not isinstance(value, str) or is_email(value))
    cls = validators.extend(Draft7Validator, {"pattern": pattern})
    schema = load_schema()["schema"]
    cls.check_schema(schema)
    return cls(schema, format_checker=checker)


def _type_name(value: Any) -> str:
    """The JSON type z-schema names for a value (JavaScript has one number type)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _dotted(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _problem(code: str, path: str, detail: str) -> ImportProblem:
    return ImportProblem(code, f"Error in {path} property - {detail}" if path else detail, path)


def _schema_problems(user: Any) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    for error in _validator().iter_errors(user):
        path = _dotted(error.absolute_path)
        keyword, expected, instance = error.validator, error.validator_value, error.instance
        if keyword == "type":
            problems.append(_problem("INVALID_TYPE", path,
                                     f"Expected type {expected} but found type {_type_name(instance)}"))
        elif keyword == "required":
            problems += [_problem("OBJECT_REQUIRED", _join(path, name), f"Missing required property: {name}")
                         for name in expected if name not in instance]
        elif keyword == "additionalProperties":
            known = error.schema.get("properties", {})
            problems += [_problem("OBJECT_ADDITIONAL_PROPERTIES", _join(path, name),
                                  f"Additional properties not allowed: {name}")
                         for name in instance if name not in known]
        elif keyword == "enum":
            problems.append(_problem("ENUM_MISMATCH", path, f"No enum match for: {instance}"))
        elif keyword == "format":
            if path == "email":  # as a real tenant answered (see the module docstring)
                path = "identities[0].profileData.email"
            problems.append(_problem("INVALID_FORMAT", path,
                                     f"Object didn't pass validation for format {expected}: {instance}"))
        elif keyword == "pattern":
            problems.append(_problem("PATTERN", path, f"String does not match pattern {expected}"))
        elif keyword == "maxProperties":
            problems.append(_problem("OBJECT_PROPERTIES_MAXIMUM", path,
                                     f"Too many properties defined ({len(instance)}), maximum {expected}"))
        elif keyword == "minItems":
            problems.append(_problem("ARRAY_LENGTH_SHORT", path,
                                     f"Array is too short ({len(instance)}), minimum {expected}"))
        elif keyword == "maxItems":
            problems.append(_problem("ARRAY_LENGTH_LONG", path,
                                     f"Array is too long ({len(instance)}), maximum {expected}"))
        else:  # the published schema uses no other keyword; a new one must be mapped, not guessed
            raise AssertionError(f"unmapped JSON-schema keyword {keyword!r} at {path!r}")
    # One entry per missing or extra property, even where jsonschema reported the object twice.
    return list(dict.fromkeys(problems))


# --- the email format: validator.js isEmail(value, {require_tld: true}) ------------------------------

_JS_SPACE: Final = "\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_UTF8_ATEXT: Final = "a-zA-Z0-9!#$%&'*+\\-/=?^_`{|}~\u00a1-\ud7ff\uf900-\ufdcf\ufdf0-\uffef"
_ATOM_RE: Final = re.compile(f"[{_UTF8_ATEXT}]+")
_QUOTED_RE: Final = re.compile(  # raw strings: the regex engine, not Python, reads \x5b and \x5d
    rf"(?:[{_JS_SPACE}\x01-\x08\x0b\x0c\x0e-\x1f\x7f\x21\x23-\x5b\x5d-\x7e\u00a1-\ud7ff\uf900-\ufdcf\ufdf0-\uffef]"
    r"|\\[\x01-\x09\x0b\x0c\x0d-\x7f\u00a1-\ud7ff\uf900-\ufdcf\ufdf0-\uffef])*"
)
_TLD_RE: Final = re.compile("(?:[a-zA-Z\u00a1-\u00a8\u00aa-\ud7ff\uf900-\ufdcf\ufdf0-\uffef]{2,}|xn[a-zA-Z0-9-]{2,})")
_LABEL_RE: Final = re.compile("[a-zA-Z_\u00a1-\uffff0-9-]+")
_FULLWIDTH_RE: Final = re.compile("[\uff01-\uff5e]")
_SPACE_RE: Final = re.compile(f"[{_JS_SPACE}]")


def _utf16_units(value: str) -> str:
    """The string as JavaScript sees it: astral characters become two surrogate code units."""
    if value.isascii() or max(value) < "\U00010000":
        return value
    units = []
    for char in value:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            units += [chr(0xD800 + (code >> 10)), chr(0xDC00 + (code & 0x3FF))]
        else:
            units.append(char)
    return "".join(units)


def _utf8_length(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _is_fqdn(domain: str) -> bool:
    labels = domain.split(".")
    tld = labels[-1]
    if len(labels) < 2 or not _TLD_RE.fullmatch(tld) or _SPACE_RE.search(tld) or tld.isdigit():
        return False
    for label in labels:
        if (len(label) > 63 or not _LABEL_RE.fullmatch(label) or _FULLWIDTH_RE.search(label)
                or label.startswith("-") or label.endswith("-") or "_" in label):
            return False
    return True


def is_email(value: str) -> bool:
    """The ``email`` format (see "Choices where Auth0 is silent")."""
    units = _utf16_units(value)
    if len(units) > 254:
        return False
    local, _, domain = units.rpartition("@")
    if _utf8_length(local) > 64 or _utf8_length(domain) > 254 or not _is_fqdn(domain):
        return False
    if local.startswith('"'):
        return _QUOTED_RE.fullmatch(local[1:-1]) is not None
    return all(_ATOM_RE.fullmatch(atom) for atom in local.split("."))


# --- the rules stated in prose ---------------------------------------------------------------------

_RESERVED_APP_METADATA: Final = frozenset((
    "__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email", "globalClientID",
    "global_client_id", "identities", "lastIP", "lastLogin", "loginsCount", "metadata",
    "multifactor_last_modified", "multifactor", "updated_at", "user_id",
))
_PHONE: Final = "^\\+[0-9]{1,15}$"
_PASSWORD_HASH: Final = "^\\$2[ab]?\\$10+\\$[./A-Za-z0-9]{53}$"
_HEX_OR_BASE64: Final = ("hex", "base64")
#: algorithm -> (hash.encodings allowed, None meaning "utf8, or left out"; salt allowed)
_ALGORITHMS: Final[dict[str, tuple[tuple[str, ...] | None, bool]]] = {
    "argon2": (None, False), "bcrypt": (None, True), "ldap": (None, False), "pbkdf2": (None, False),
    "hmac": (_HEX_OR_BASE64, True), "md4": (_HEX_OR_BASE64, True), "md5": (_HEX_OR_BASE64, True),
    "sha1": (_HEX_OR_BASE64, True), "sha256": (_HEX_OR_BASE64, True), "sha512": (_HEX_OR_BASE64, True),
    "scrypt": (_HEX_OR_BASE64, True),
}
_PBKDF2_DIGEST_NAMES: Final = (
    "RSA-MD4 RSA-MD5 RSA-MDC2 RSA-RIPEMD160 RSA-SHA1 RSA-SHA1-2 RSA-SHA224 RSA-SHA256 RSA-SHA384 RSA-SHA512 "
    "md4 md4WithRSAEncryption md5 md5WithRSAEncryption mdc2 mdc2WithRSA ripemd ripemd160 ripemd160WithRSA "
    "rmd160 sha1 sha1WithRSAEncryption sha224 sha224WithRSAEncryption sha256 sha256WithRSAEncryption sha384 "
    "sha384WithRSAEncryption sha512 sha512WithRSAEncryption ssl3-md5 ssl3-sha1 whirlpool"
)
_PBKDF2_DIGESTS: Final = frozenset(_PBKDF2_DIGEST_NAMES.lower().split())
_LDAP_SCHEMES: Final = frozenset(("md5", "smd5", "sha", "ssha", "sha256", "ssha256", "sha384", "ssha384",
                                  "sha512", "ssha512"))
_B64: Final = "[A-Za-z0-9+/]+"
_BCRYPT_RE: Final = re.compile(r"\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_ARGON2_RE: Final = re.compile(rf"\$argon2(?:i|id)\$(?:v=[0-9]+\$)?m=[0-9]+,t=[0-9]+,p=[0-9]+\${_B64}\${_B64}")
_PBKDF2_RE: Final = re.compile(rf"\$pbkdf2-([A-Za-z0-9-]+)(?:\$([a-z]=[0-9]+(?:,[a-z]=[0-9]+)*))?\${_B64}\${_B64}")
_LDAP_RE: Final = re.compile(r"\{([A-Za-z0-9]+)\}([A-Za-z0-9+/]+={0,2})")


def _not_passed(path: str, why: str) -> ImportProblem:
    return _problem("NOT_PASSED", path, f"Data matches schema from 'not' ({why})")


def _bad_keys(value: Any, path: str, out: list[ImportProblem]) -> None:
    """Metadata field names with ``.`` or ``$``, at any depth, inside arrays too."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if "." in key or "$" in key:
                out.append(_problem("PATTERN", where, "Property name does not match pattern ^[^.$]*$"))
            if isinstance(item, (dict, list)):
                _bad_keys(item, where, out)
    else:
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                _bad_keys(item, f"{path}[{index}]", out)


def _value_shape(algorithm: str, value: str) -> str | None:
    """Why ``hash.value`` does not have the documented shape for ``algorithm``, or None."""
    if algorithm == "bcrypt":
        return None if _BCRYPT_RE.fullmatch(value) else "a bcrypt hash with prefix $2a$, $2b$ or $2y$"
    if algorithm == "argon2":
        return None if _ARGON2_RE.fullmatch(value) else "an argon2i or argon2id PHC string with its salt"
    if algorithm == "pbkdf2":
        match = _PBKDF2_RE.fullmatch(value)
        if match is None:
            return "a PHC string $pbkdf2-<digest>[$i=<n>,l=<n>]$<salt>$<hash>"
        names = [param.partition("=")[0] for param in (match[2] or "").split(",") if param]
        if any(name not in ("i", "l") for name in names) or len(set(names)) != len(names):
            return "pbkdf2 parameters i and l, each at most once"
        return None if match[1].lower() in _PBKDF2_DIGESTS else f"a supported pbkdf2 digest, not {match[1]}"
    if algorithm == "ldap":
        match = _LDAP_RE.fullmatch(value)
        if match is None or match[1].lower() not in _LDAP_SCHEMES:
            return "an RFC 2307 {scheme} value with scheme md5, smd5, sha* or ssha* (crypt is not supported)"
    return None


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float)
                                                                         and value.is_integer()))


def _hash_rules(cph: dict[str, Any], out: list[ImportProblem]) -> None:
    algorithm: Any = cph.get("algorithm")
    hash_obj = cph.get("hash")
    if not isinstance(hash_obj, dict):
        return  # the schema has said why
    if "value" not in hash_obj:
        out.append(_problem("OBJECT_REQUIRED", "custom_password_hash.hash.value", "Missing required property: value"))
    rule = _ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else None
    if rule is None:
        return
    encodings, salt_allowed = rule
    encoding = hash_obj.get("encoding")
    path = "custom_password_hash.hash.encoding"
    if encodings is None:
        if encoding in _HEX_OR_BASE64:
            out.append(_problem("ENUM_MISMATCH", path, f"No enum match for: {encoding} ({algorithm} needs utf8)"))
    elif "encoding" not in hash_obj:
        out.append(_problem("OBJECT_REQUIRED", path, "Missing required property: encoding"))
    elif encoding == "utf8":
        out.append(_problem("ENUM_MISMATCH", path, f"No enum match for: utf8 ({algorithm} needs hex or base64)"))
    if not salt_allowed and "salt" in cph:
        out.append(_not_passed("custom_password_hash.salt", f"{algorithm} takes no salt"))
    if algorithm == "hmac":
        for name in ("digest", "key"):
            if name not in hash_obj:
                out.append(_problem("OBJECT_REQUIRED", f"custom_password_hash.hash.{name}",
                                    f"Missing required property: {name}"))
    elif algorithm == "scrypt":
        if "keylen" not in cph:
            out.append(_problem("OBJECT_REQUIRED", "custom_password_hash.keylen", "Missing required property: keylen"))
        for name, least in (("keylen", 1), ("cost", 2), ("blockSize", 1), ("parallelization", 1)):
            number: Any = cph.get(name)
            if _is_int(number) and number < least:
                out.append(_problem("MINIMUM", f"custom_password_hash.{name}",
                                    f"Value {int(number)} is less than minimum {least}"))
            elif name == "cost" and _is_int(number) and int(number) & (int(number) - 1):
                out.append(_problem("INVALID_FORMAT", "custom_password_hash.cost",
                                    f"Object didn't pass validation for format power-of-two: {int(number)}"))
    value = hash_obj.get("value")
    if isinstance(value, str):
        why = _value_shape(algorithm, value)
        if why:
            out.append(_problem("PATTERN", "custom_password_hash.hash.value", f"String does not match {why}"))


def _mfa_rules(factors: list[Any], out: list[ImportProblem]) -> None:
    for index, factor in enumerate(factors):
        if factor == {}:
            out.append(_problem("ANY_OF_MISSING", f"mfa_factors[{index}]",
                                "Data does not match any schemas from 'anyOf' (totp, phone or email)"))


def _prose_problems(user: dict[str, Any]) -> list[ImportProblem]:
    out: list[ImportProblem] = []
    phone = user.get("phone_number")
    if isinstance(phone, str) and not _compiled_pattern(_PHONE).search(phone):
        out.append(_problem("PATTERN", "phone_number", f"String does not match pattern {_PHONE}"))
    password_hash = user.get("password_hash")
    if isinstance(password_hash, str) and not _compiled_pattern(_PASSWORD_HASH).search(password_hash):
        out.append(_problem("PATTERN", "passwordHash", f"String does not match pattern {_PASSWORD_HASH}"))
    if "password_hash" in user and "custom_password_hash" in user:
        out.append(_not_passed("custom_password_hash", "password_hash and custom_password_hash are mutually exclusive"))
    app_metadata = user.get("app_metadata")
    if isinstance(app_metadata, dict):
        out += [_not_passed(f"app_metadata.{key}", f"{key} is reserved") for key in app_metadata
                if key in _RESERVED_APP_METADATA]
        _bad_keys(app_metadata, "app_metadata", out)
    user_metadata = user.get("user_metadata")
    if isinstance(user_metadata, dict):
        _bad_keys(user_metadata, "user_metadata", out)
    cph = user.get("custom_password_hash")
    if isinstance(cph, dict):
        _hash_rules(cph, out)
    factors = user.get("mfa_factors")
    if isinstance(factors, list):
        _mfa_rules(factors, out)
    return out


def validate_user(user: Any) -> list[ImportProblem]:
    """Every reason Auth0 would refuse this element of an import file; [] means it is imported."""
    problems = _schema_problems(user)
    if isinstance(user, dict):
        problems += _prose_problems(user)
    return problems
