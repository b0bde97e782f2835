"""Digest lengths: custom hashes that can never match, found before anything is imported."""

from __future__ import annotations

import re
from typing import Any, Final

from .algorithms import LDAP_RE, LDAP_SCHEMES, parse_pbkdf2
from .encodings import Malformed, node_base64

#: Bytes in a digest, for every algorithm whose output length is fixed.
DIGEST_SIZES: Final[dict[str, int]] = {
    "md4": 16, "md5": 16, "ripemd160": 20, "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48,
    "sha512": 64, "whirlpool": 64,
}  # fmt: skip

_STRICT_HEX_RE: Final = re.compile(r"[0-9A-Fa-f]*")
_STRICT_B64_RE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9\-_]*={0,2}")


def _strict_length(value: str, encoding: str) -> int | None:
    """Bytes a hex or base64 value holds when written exactly (no stray characters, no odd hex digit,
    no partial base64 group, padding only where it belongs), or None when it is not written so."""
    if encoding == "hex":
        return len(value) // 2 if len(value) % 2 == 0 and _STRICT_HEX_RE.fullmatch(value) else None
    if encoding == "base64":
        body = value.rstrip("=")
        padding = len(value) - len(body)
        if not _STRICT_B64_RE.fullmatch(value) or len(body) % 4 == 1 or (padding and len(value) % 4):
            return None
        if padding and padding != -len(body) % 4:
            return None
        return len(body) * 3 // 4
    return None


def digest_length_problem(cph: Any) -> str | None:
    """Why a ``custom_password_hash`` can never match any password, judged on its length alone, or None.

    Choices where Auth0 is silent: hex in either case, and base64 in the standard or the URL-safe
    alphabet, padded or not, are all exact writings; anything Node would have to skip or cut
    (a stray character, an odd hex digit, a partial base64 group) is not, and is refused with
    the lengths. A salted ldap value needs at least one byte of salt after its digest.

    Where the algorithm fixes the digest's length (md4, md5, sha1, sha256, sha512; hmac by its
    ``hash.digest``; scrypt by ``keylen``; pbkdf2 by its ``l=``; unsalted ldap schemes) and the
    encoding fixes how it is written (hex, base64), a value of another length is a truncated or
    corrupted hash. Auth0 accepts it (Node's ``Buffer`` decodes what it can and ignores the
    rest), and the user could then never log in, or log in against a digest the owner never
    had: so the tool refuses it by name. The message gives lengths only, never the value.

    >>> digest_length_problem({"algorithm": "md5", "hash": {"value": "a" * 33, "encoding": "hex"}})
    'the md5 digest is 16 bytes, 32 hex characters; this value is 33 characters'
    """
    if not isinstance(cph, dict):
        return None
    algorithm = cph.get("algorithm")
    raw_hash = cph.get("hash")
    hash_obj: dict[str, Any] = raw_hash if isinstance(raw_hash, dict) else {}
    value = hash_obj.get("value")
    if not isinstance(value, str):
        return None
    encoding = hash_obj.get("encoding")
    if algorithm in ("md4", "md5", "sha1", "sha256", "sha512"):
        size, what = DIGEST_SIZES[algorithm], f"the {algorithm} digest"
    elif algorithm == "hmac" and isinstance(hash_obj.get("digest"), str):
        size = DIGEST_SIZES.get(hash_obj["digest"].lower(), 0)
        what = f"the hmac-{hash_obj['digest']} digest"
    elif algorithm == "scrypt" and _is_whole(cph.get("keylen")):
        size, what = int(cph["keylen"]), f"the scrypt key (keylen {int(cph['keylen'])})"
    elif algorithm == "pbkdf2":
        return _pbkdf2_length_problem(value)
    elif algorithm == "ldap":
        return _ldap_length_problem(value)
    else:
        return None
    if not size or encoding not in ("hex", "base64"):
        return None
    if _strict_length(value, encoding) == size:
        return None
    if encoding == "hex":
        odd = "" if _STRICT_HEX_RE.fullmatch(value) else ", not all hex digits"
        return f"{what} is {size} bytes, {2 * size} hex characters; this value is {len(value)} characters{odd}"
    expected = -(-size * 4 // 3)
    odd = "" if _STRICT_B64_RE.fullmatch(value) else ", not written as base64"
    return (f"{what} is {size} bytes, {expected} base64 characters ({expected + -expected % 4} with padding); "
            f"this value is {len(value)} characters{odd}")


def _is_whole(number: Any) -> bool:
    return isinstance(number, (int, float)) and not isinstance(number, bool) and float(number).is_integer() \
        and number >= 1


def _pbkdf2_length_problem(value: str) -> str | None:
    try:
        _digest, _iterations, keylen, _salt, expected = parse_pbkdf2(value)
    except Malformed:
        return "the pbkdf2 value's salt or derived key is not whole base64 (or its i= or l= is 0)"
    if len(expected) == keylen:
        return None
    return f"the pbkdf2 value says l={keylen} but its derived key is {len(expected)} bytes"


def _ldap_length_problem(value: str) -> str | None:
    match = LDAP_RE.fullmatch(value)
    scheme = LDAP_SCHEMES.get(match.group(1).upper()) if match else None
    if match is None or scheme is None:
        return None
    digest_name, salted = scheme
    size = DIGEST_SIZES[digest_name]
    raw = node_base64(match.group(2))
    if salted and len(raw) <= size:
        return (f"a {{{match.group(1)}}} value is a {size}-byte {digest_name} digest followed by a salt; "
                f"this one holds {len(raw)} bytes")
    if not salted and _strict_length(match.group(2), "base64") != size:
        return (f"a {{{match.group(1)}}} value is a {size}-byte {digest_name} digest in base64; "
                f"this one is {len(match.group(2))} characters")
    return None
