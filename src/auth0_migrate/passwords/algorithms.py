"""Verify and make Auth0 import credentials, algorithm by algorithm.

`check_bcrypt` and `verify_custom` check a password against a `password_hash` or a
`custom_password_hash` (the tenant's login, `tenant.credentials.verify_password`, calls them);
`make_credential` makes the credential of each algorithm for tests, seeds and the demo.
The two are kept in one module so that what one algorithm reads is next to what it writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import argon2
import argon2.exceptions
import bcrypt

from .digests import DIGEST_ALIASES, hash_bytes, hmac_bytes, pbkdf2_bytes
from .encodings import PASSWORD_ENCODERS, URLSAFE_TO_STD, Malformed, as_object, decode, node_base64, node_utf8

#: The regex Auth0 applies to the plain ``password_hash`` field (support article in ref §2.4).
#: Note what it really allows: ``$2$``/``$2a$``/``$2b$`` and a cost of 1 followed by one or more
#: zeros, so in practice "bcrypt, cost 10".  Anything else must go through custom_password_hash.
PASSWORD_HASH_PATTERN: Final = r"^\$2[ab]?\$10+\$[./A-Za-z0-9]{53}$"

_PASSWORD_HASH_RE: Final = re.compile(PASSWORD_HASH_PATTERN)

#: bcrypt ignores everything past 72 bytes (salt included, ref §2.7).
_BCRYPT_MAX_BYTES: Final = 72

#: Memory ceiling for one scrypt verification.  Auth0 documents no limit; this only stops a
#: hostile file (cost=2**30) from exhausting the host.  Beyond it verification answers False.
_SCRYPT_MAX_MEMORY: Final = 1 << 30

_PBKDF2_DEFAULT_ITERATIONS: Final = 100_000
_PBKDF2_DEFAULT_KEYLEN: Final = 64


# --- verification: what every algorithm shares ------------------------------------------------



def check_bcrypt(password: bytes, hashed: str) -> bool:
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    return bcrypt.checkpw(password[:_BCRYPT_MAX_BYTES], hashed.encode("ascii"))


def _salted(password: bytes, salt: dict[str, Any]) -> bytes:
    """Apply the optional ``salt`` object: salt+password (prefix, default) or password+salt."""
    if not salt:
        return password
    salt_bytes = decode(salt.get("value"), salt.get("encoding", "utf8"))
    position = salt.get("position", "prefix")
    if position == "prefix":
        return salt_bytes + password
    if position == "suffix":
        return password + salt_bytes
    raise Malformed


LDAP_SCHEMES: Final[dict[str, tuple[str, bool]]] = {
    "MD5": ("md5", False),
    "SMD5": ("md5", True),
    "SHA": ("sha1", False),
    "SSHA": ("sha1", True),
    "SHA256": ("sha256", False),
    "SSHA256": ("sha256", True),
    "SHA384": ("sha384", False),
    "SSHA384": ("sha384", True),
    "SHA512": ("sha512", False),
    "SSHA512": ("sha512", True),
}
LDAP_RE: Final = re.compile(r"\{([A-Za-z0-9]+)\}(.+)", re.DOTALL)

_PBKDF2_RE: Final = re.compile(
    r"\$pbkdf2-(?P<digest>[A-Za-z0-9-]+)(?:\$(?P<params>[a-z]=[0-9]+(?:,[a-z]=[0-9]+)*))?"
    r"\$(?P<salt>[A-Za-z0-9+/.\-_]*)\$(?P<hash>[A-Za-z0-9+/.\-_]+)"
)


def _phc_b64(value: str) -> bytes:
    """PHC "B64": standard alphabet without padding.  passlib's ``.`` for ``+`` and the
    URL-safe alphabet are accepted as well, since exporters differ."""
    value = value.replace(".", "+").translate(URLSAFE_TO_STD)
    if len(value) % 4 == 1:
        raise Malformed
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except binascii.Error as exc:
        raise Malformed from exc


def parse_pbkdf2(value: str) -> tuple[str, int, int, bytes, bytes]:
    """Split a ``$pbkdf2-<digest>$i=..,l=..$salt$hash`` string (``i``/``l`` default 100000/64)."""
    match = _PBKDF2_RE.fullmatch(value)
    if match is None:
        raise Malformed
    params = {"i": _PBKDF2_DEFAULT_ITERATIONS, "l": _PBKDF2_DEFAULT_KEYLEN}
    if match.group("params"):
        for item in match.group("params").split(","):
            key, _, number = item.partition("=")
            if key not in params:
                raise Malformed
            params[key] = int(number)
    if params["i"] < 1 or params["l"] < 1:
        raise Malformed
    return (
        match.group("digest"),
        params["i"],
        params["l"],
        _phc_b64(match.group("salt")),
        _phc_b64(match.group("hash")),
    )


def _scrypt_int(cph: dict[str, Any], key: str, default: int | None) -> int:
    value = cph.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed
    return value


@dataclass(frozen=True)
class _Custom:
    """What a verifier reads of a `custom_password_hash`: the hash object, its value, the salt
    object and the password encoded as the credential says."""

    cph: dict[str, Any]
    hash: dict[str, Any]
    value: str
    salt: dict[str, Any]
    pw: bytes


def verify_custom(password: str, cph: Any) -> bool:
    """Whether `password` matches a `custom_password_hash`; may raise on a malformed one (the caller,
    `tenant.credentials.verify_password`, turns that into False)."""
    if not isinstance(cph, dict):
        return False
    hash_obj = as_object(cph.get("hash"))
    value = hash_obj.get("value")
    if not isinstance(value, str):
        return False
    salt = as_object(cph.get("salt"))
    encoder = PASSWORD_ENCODERS.get(as_object(cph.get("password")).get("encoding", "utf8"))
    algorithm = cph.get("algorithm")
    verify = _VERIFIERS.get(algorithm) if isinstance(algorithm, str) else None
    if encoder is None or verify is None:
        return False
    return verify(_Custom(cph, hash_obj, value, salt, encoder(password)))


def _salt_object(params: dict[str, Any], default_random: bool = False) -> dict[str, Any] | None:
    """Auth0's optional salt object from `salt`/`salt_encoding`/`salt_position` (taken out of `params`)."""
    value = params.pop("salt", None)
    encoding = params.pop("salt_encoding", None)
    position = params.pop("salt_position", None)
    if value is None and default_random:
        value, encoding = secrets.token_hex(16), "hex"
    if value is None:
        return None
    obj: dict[str, Any] = {"value": value, "encoding": encoding or "utf8"}
    if position is not None:
        obj["position"] = position
    return obj


def _with_salt(cph: dict[str, Any], salt: dict[str, Any] | None) -> dict[str, Any]:
    return cph if salt is None else {**cph, "salt": salt}


# --- bcrypt ------------------------------------------------------------------------------------

def _verify_bcrypt(c: _Custom) -> bool:
    return check_bcrypt(_salted(c.pw, c.salt), c.value)


def _make_bcrypt(pw: bytes, params: dict[str, Any]) -> dict[str, Any]:
    cost = int(params.pop("cost", 10))
    salt = _salt_object(params)
    material = _salted(pw, salt or {})[:_BCRYPT_MAX_BYTES]
    hashed = bcrypt.hashpw(material, bcrypt.gensalt(rounds=cost, prefix=b"2b")).decode("ascii")
    return _with_salt({"algorithm": "bcrypt", "hash": {"value": hashed, "encoding": "utf8"}}, salt)


# --- argon2 ------------------------------------------------------------------------------------

def _verify_argon2(c: _Custom) -> bool:
    # Auth0 verifies argon2 through libsodium (auth0/magic), which has no argon2d.
    if c.salt or not c.value.startswith(("$argon2id$", "$argon2i$")):
        return False
    try:
        return argon2.PasswordHasher().verify(c.value, c.pw)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


def _make_argon2(pw: bytes, params: dict[str, Any]) -> dict[str, Any]:
    variant = params.pop("variant", "id")
    hasher = argon2.PasswordHasher(
        time_cost=int(params.pop("time_cost", 2)),
        memory_cost=int(params.pop("memory_cost", 65536)),
        parallelism=int(params.pop("parallelism", 1)),
        type=argon2.Type.ID if variant == "id" else argon2.Type.I,
    )
    return {"algorithm": "argon2", "hash": {"value": hasher.hash(pw), "encoding": "utf8"}}


# --- md4, md5, sha1, sha256, sha512 ---------------------------------------------------------------

_PLAIN_DIGESTS: Final = ("md4", "md5", "sha1", "sha256", "sha512")


def _verify_digest(c: _Custom) -> bool:
    expected = decode(c.value, c.hash.get("encoding"))
    return hmac.compare_digest(hash_bytes(c.cph["algorithm"], _salted(c.pw, c.salt)), expected)


def _make_digest(algorithm: str) -> Callable[[bytes, dict[str, Any]], dict[str, Any]]:
    def make(pw: bytes, params: dict[str, Any]) -> dict[str, Any]:
        encoding = params.pop("encoding", "hex")
        salt = _salt_object(params)
        raw = hash_bytes(algorithm, _salted(pw, salt or {}))
        return _with_salt({"algorithm": algorithm, "hash": {"value": _encode_out(raw, encoding),
                                                            "encoding": encoding}}, salt)
    return make


# --- hmac --------------------------------------------------------------------------------------

_HMAC_DIGESTS: Final = frozenset(
    {"md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool"}
)



def _verify_hmac(c: _Custom) -> bool:
    digest = c.hash.get("digest")
    key_obj = as_object(c.hash.get("key"))
    if not isinstance(digest, str) or digest not in _HMAC_DIGESTS or "value" not in key_obj:
        return False
    key = decode(key_obj.get("value"), key_obj.get("encoding", "utf8"))
    expected = decode(c.value, c.hash.get("encoding"))
    return hmac.compare_digest(hmac_bytes(digest, key, _salted(c.pw, c.salt)), expected)


def _make_hmac(pw: bytes, params: dict[str, Any]) -> dict[str, Any]:
    digest = params.pop("digest", "sha256")
    key = params.pop("key", None)
    key_encoding = params.pop("key_encoding", None)
    if key is None:
        key, key_encoding = secrets.token_hex(32), key_encoding or "hex"
    key_encoding = key_encoding or "utf8"
    encoding = params.pop("encoding", "hex")
    salt = _salt_object(params)
    raw = hmac_bytes(digest, decode(key, key_encoding), _salted(pw, salt or {}))
    return _with_salt({"algorithm": "hmac", "hash": {"value": _encode_out(raw, encoding), "encoding": encoding,
                                                     "digest": digest,
                                                     "key": {"value": key, "encoding": key_encoding}}}, salt)


# --- ldap --------------------------------------------------------------------------------------

def _verify_ldap_custom(c: _Custom) -> bool:
    return not c.salt and _verify_ldap(c.pw, c.value)


def _verify_ldap(pw: bytes, value: str) -> bool:
    """RFC 2307 ``{SCHEME}base64``; salted schemes append the salt after the digest.

    ``{CRYPT}`` is refused because Auth0 refuses it (its result depends on the host's crypt(3)).
    """
    match = LDAP_RE.fullmatch(value)
    if match is None:
        return False
    scheme = LDAP_SCHEMES.get(match.group(1).upper())
    if scheme is None:
        return False
    digest_name, salted = scheme
    raw = node_base64(match.group(2))
    size = hashlib.new(digest_name).digest_size
    if salted:
        if len(raw) <= size:
            return False
        expected, salt_bytes = raw[:size], raw[size:]
    else:
        if len(raw) != size:
            return False
        expected, salt_bytes = raw, b""
    return hmac.compare_digest(hashlib.new(digest_name, pw + salt_bytes).digest(), expected)


def _make_ldap(pw: bytes, params: dict[str, Any]) -> dict[str, Any]:
    scheme = str(params.pop("scheme", "SSHA")).upper()
    if scheme not in LDAP_SCHEMES:
        raise ValueError(f"unsupported LDAP scheme {scheme!r}")
    digest_name, salted = LDAP_SCHEMES[scheme]
    salt_bytes = params.pop("salt", None)
    if salted and salt_bytes is None:
        salt_bytes = secrets.token_bytes(8)
    salt_bytes = bytes(salt_bytes or b"") if salted else b""
    raw = hashlib.new(digest_name, pw + salt_bytes).digest() + salt_bytes
    value = "{" + scheme + "}" + base64.b64encode(raw).decode("ascii")
    return {"algorithm": "ldap", "hash": {"value": value, "encoding": "utf8"}}


# --- pbkdf2 ------------------------------------------------------------------------------------

def _verify_pbkdf2(c: _Custom) -> bool:
    if c.salt:
        return False
    digest, iterations, keylen, salt_bytes, expected = parse_pbkdf2(c.value)
    if digest.lower() not in DIGEST_ALIASES or len(expected) != keylen:
        return False
    derived = pbkdf2_bytes(digest, c.pw, salt_bytes, iterations, keylen)
    return hmac.compare_digest(derived, expected)


def _make_pbkdf2(pw: bytes, params: dict[str, Any]) -> dict[str, Any]:
    digest = params.pop("digest", "sha256")
    iterations = int(params.pop("iterations", _PBKDF2_DEFAULT_ITERATIONS))
    keylen = int(params.pop("keylen", 32))
    salt_bytes = bytes(params.pop("salt", None) or secrets.token_bytes(16))
    raw = pbkdf2_bytes(digest, pw, salt_bytes, iterations, keylen)
    value = f"$pbkdf2-{digest}$i={iterations},l={keylen}${_phc_b64_encode(salt_bytes)}${_phc_b64_encode(raw)}"
    return {"algorithm": "pbkdf2", "hash": {"value": value, "encoding": "utf8"}}


# --- scrypt ------------------------------------------------------------------------------------

def _verify_scrypt(c: _Custom) -> bool:
    keylen = _scrypt_int(c.cph, "keylen", None)
    n = _scrypt_int(c.cph, "cost", 16384)
    r = _scrypt_int(c.cph, "blockSize", 8)
    p = _scrypt_int(c.cph, "parallelization", 1)
    if keylen < 1 or n < 2 or n & (n - 1) or r < 1 or p < 1:
        return False
    needed = 128 * r * (n + p + 2)
    if needed > _SCRYPT_MAX_MEMORY:
        return False
    salt_bytes = decode(c.salt.get("value"), c.salt.get("encoding", "utf8")) if c.salt else b""
    expected = decode(c.value, c.hash.get("encoding"))
    derived = hashlib.scrypt(c.pw, salt=salt_bytes, n=n, r=r, p=p, maxmem=needed + (1 << 20), dklen=keylen)
    return hmac.compare_digest(derived, expected)


def _make_scrypt(pw: bytes, params: dict[str, Any]) -> dict[str, Any]:
    keylen = int(params.pop("keylen", 64))
    n = int(params.pop("cost", 16384))
    r = int(params.pop("blockSize", 8))
    p = int(params.pop("parallelization", 1))
    encoding = params.pop("encoding", "base64")
    salt = _salt_object(params, default_random=True)
    assert salt is not None
    salt.pop("position", None)
    raw = hashlib.scrypt(pw, salt=decode(salt["value"], salt["encoding"]), n=n, r=r, p=p,
                         maxmem=128 * r * (n + p + 2) + (1 << 20), dklen=keylen)
    return {"algorithm": "scrypt", "hash": {"value": _encode_out(raw, encoding), "encoding": encoding},
            "salt": salt, "keylen": keylen, "cost": n, "blockSize": r, "parallelization": p}


# --- the algorithms, by Auth0's name ------------------------------------------------------------

_VERIFIERS: Final[dict[str, Callable[[_Custom], bool]]] = {
    "bcrypt": _verify_bcrypt, "argon2": _verify_argon2, "hmac": _verify_hmac, "ldap": _verify_ldap_custom,
    "pbkdf2": _verify_pbkdf2, "scrypt": _verify_scrypt, **{name: _verify_digest for name in _PLAIN_DIGESTS},
}
_MAKERS: Final[dict[str, Callable[[bytes, dict[str, Any]], dict[str, Any]]]] = {
    "bcrypt": _make_bcrypt, "argon2": _make_argon2, "hmac": _make_hmac, "ldap": _make_ldap,
    "pbkdf2": _make_pbkdf2, "scrypt": _make_scrypt, **{name: _make_digest(name) for name in _PLAIN_DIGESTS},
}


# --- making credentials --------------------------------------------------------------------------

def bcrypt_hash(password: str, cost: int = 10) -> str:
    """bcrypt ``$2b$`` hash of ``password``, as Auth0 stores it after a custom-hash login.

    Auth0 drops an imported non-bcrypt hash on the first successful login and keeps its own
    bcrypt instead (ref §2.7), so the local tenant calls this at that point.  Passwords longer
    than 72 UTF-8 bytes are truncated, which is what bcrypt itself has always done.
    """
    if not 4 <= cost <= 31:
        raise ValueError("bcrypt cost must be between 4 and 31")
    salt = bcrypt.gensalt(rounds=cost, prefix=b"2b")
    return bcrypt.hashpw(node_utf8(password)[:_BCRYPT_MAX_BYTES], salt).decode("ascii")


def _encode_out(raw: bytes, encoding: str) -> str:
    if encoding == "hex":
        return raw.hex()
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    raise ValueError(f"unsupported hash encoding {encoding!r} (use 'hex' or 'base64')")


def _phc_b64_encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def make_credential(password: str, algorithm: str, **params: Any) -> dict[str, Any]:
    """Build an Auth0-import credential for ``password`` (used by the demo and bench seeders).

    Returns ``{"password_hash": ...}`` for bcrypt cost 10, otherwise
    ``{"custom_password_hash": {...}}``.  Every result passes ``tenant.credentials.verify_password`` and
    Auth0's import schema.  Salts are random unless given, so pass ``salt=`` for reproducible
    fixtures.  Parameters per ``algorithm``:

    * ``"bcrypt"``: ``cost=10``; ``custom=True`` forces the custom form even at cost 10;
      ``salt``/``salt_encoding``/``salt_position`` add Auth0's optional salt object.
    * ``"argon2"`` (or ``"argon2id"``, ``"argon2i"``): ``time_cost=2``, ``memory_cost=65536``
      (KiB), ``parallelism=1`` (the auth0/magic defaults); ``variant="id"|"i"``.
    * ``"hmac"``: ``digest="sha256"``, ``key`` (str, random hex if omitted),
      ``key_encoding="utf8"`` (``"hex"`` when the key is generated), ``encoding="hex"``,
      optional ``salt`` (str) with ``salt_encoding``/``salt_position``.
    * ``"ldap"``: ``scheme="SSHA"`` (any RFC 2307 scheme Auth0 takes), ``salt`` (bytes, 8 random).
    * ``"md4"``, ``"md5"``, ``"sha1"``, ``"sha256"``, ``"sha512"``: ``encoding="hex"``, optional
      ``salt`` (str) with ``salt_encoding="utf8"``/``salt_position="prefix"``.
    * ``"pbkdf2"``: ``digest="sha256"``, ``iterations=100000``, ``keylen=32``, ``salt`` (bytes,
      16 random).
    * ``"scrypt"``: ``keylen=64``, ``cost=16384``, ``blockSize=8``, ``parallelization=1``,
      ``encoding="base64"``, ``salt`` (str, random hex if omitted) with ``salt_encoding``.

    Any algorithm also takes ``password_encoding`` (Auth0's ``password.encoding``).
    """
    params = dict(params)
    password_encoding = params.pop("password_encoding", None)
    encoder = PASSWORD_ENCODERS["utf8" if password_encoding is None else password_encoding]
    algo = algorithm.lower()
    if algo in ("argon2id", "argon2i"):
        params.setdefault("variant", algo.removeprefix("argon2"))
        algo = "argon2"
    if algo == "bcrypt" and not params.pop("custom", False) and int(params.get("cost", 10)) == 10 \
            and params.get("salt") is None and password_encoding is None:
        for key in ("cost", "salt", "salt_encoding", "salt_position"):
            params.pop(key, None)
        _no_leftovers(params, algorithm)
        return {"password_hash": bcrypt_hash(password)}
    make = _MAKERS.get(algo)
    if make is None:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    cph = make(encoder(password), params)
    _no_leftovers(params, algorithm)
    if password_encoding is not None:
        cph["password"] = {"encoding": password_encoding}
    return {"custom_password_hash": cph}


def _no_leftovers(params: dict[str, Any], algorithm: str) -> None:
    if params:
        raise TypeError(f"unexpected parameters for {algorithm}: {', '.join(sorted(params))}")
