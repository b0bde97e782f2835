"""Digests by Auth0's names (hmac's `hash.digest`, pbkdf2's `pbkdf2-<digest>`): plain, HMAC and PBKDF2.

OpenSSL (hashlib) computes what it provides; MD4, RIPEMD-160 and Whirlpool, which OpenSSL 3 moved
to its legacy provider, come from maintained libraries when OpenSSL lacks them (pycryptodome for
MD4 and RIPEMD-160) or our own pure-Python Whirlpool (`passwords/whirlpool.py`: the one binding on
PyPI needs a C compiler to install), so they always work. A digest Auth0 supports that
neither provides (MDC-2 without the legacy provider) raises `UnsupportedDigestError`.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from Crypto.Hash import MD4, RIPEMD160

from .whirlpool import Whirlpool


class UnsupportedDigestError(ValueError):
    """The credential is valid for Auth0, but this host cannot compute its digest.

    Raised rather than answering ``False`` so that a missing capability is never mistaken for
    a wrong password.  The message names the digest only, never hash material.
    """


class HashObject(Protocol):
    """The subset of the hashlib object API this module calls directly."""

    @property
    def digest_size(self) -> int: ...

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


# Every digest name Auth0 documents (hmac's ``hash.digest`` and pbkdf2's ``pbkdf2-<digest>``),
# mapped to the underlying algorithm.  OpenSSL names are case-insensitive, hence lower-case keys.
DIGEST_ALIASES: Final[dict[str, str]] = {
    "md4": "md4", "rsa-md4": "md4", "md4withrsaencryption": "md4",
    "md5": "md5", "rsa-md5": "md5", "md5withrsaencryption": "md5", "ssl3-md5": "md5",
    "mdc2": "mdc2", "rsa-mdc2": "mdc2", "mdc2withrsa": "mdc2",
    "ripemd": "ripemd160", "ripemd160": "ripemd160", "rsa-ripemd160": "ripemd160",
    "ripemd160withrsa": "ripemd160", "rmd160": "ripemd160",
    "sha1": "sha1", "rsa-sha1": "sha1", "rsa-sha1-2": "sha1", "sha1withrsaencryption": "sha1",
    "ssl3-sha1": "sha1",
    "sha224": "sha224", "rsa-sha224": "sha224", "sha224withrsaencryption": "sha224",
    "sha256": "sha256", "rsa-sha256": "sha256", "sha256withrsaencryption": "sha256",
    "sha384": "sha384", "rsa-sha384": "sha384", "sha384withrsaencryption": "sha384",
    "sha512": "sha512", "rsa-sha512": "sha512", "sha512withrsaencryption": "sha512",
    "whirlpool": "whirlpool",
}  # fmt: skip


#: Digests OpenSSL 3 may hide behind its legacy provider, from maintained libraries instead:
#: pycryptodome (MD4, RIPEMD-160); Whirlpool is ours (see `passwords/whirlpool.py`).
LIBRARY_DIGESTS: Final[dict[str, Callable[..., HashObject]]] = {
    "md4": MD4.new,
    "ripemd160": RIPEMD160.new,
    "whirlpool": Whirlpool,
}


def _openssl_has(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:
        return False
    return True


#: Which digests hashlib (OpenSSL) provides on this host, probed once at import.
OPENSSL_DIGESTS: Final[frozenset[str]] = frozenset(
    name for name in set(DIGEST_ALIASES.values()) if _openssl_has(name)
)


def digest_available(name: str) -> bool:
    """Whether ``name`` (any Auth0 digest alias) can be computed here, natively or through a library."""
    canonical = DIGEST_ALIASES.get(name.lower())
    return canonical is not None and (canonical in OPENSSL_DIGESTS or canonical in LIBRARY_DIGESTS)


def _digest_constructor(name: str) -> Callable[..., HashObject]:
    """Return a hashlib-style constructor for an Auth0 digest name.

    Unknown names raise ``KeyError`` (the caller turns that into ``False``); a known digest this
    host cannot compute raises :class:`UnsupportedDigestError`.
    """
    canonical = DIGEST_ALIASES[name.lower()]
    if canonical in LIBRARY_DIGESTS and canonical not in OPENSSL_DIGESTS:
        return LIBRARY_DIGESTS[canonical]
    if canonical in OPENSSL_DIGESTS:
        return lambda data=b"": hashlib.new(canonical, data)
    raise UnsupportedDigestError(
        f"digest {canonical!r} is supported by Auth0 but not available on this host "
        "(load the OpenSSL legacy provider)"
    )


def hash_bytes(name: str, data: bytes) -> bytes:
    h = _digest_constructor(name)()
    h.update(data)
    return h.digest()


def hmac_bytes(name: str, key: bytes, data: bytes) -> bytes:
    canonical = DIGEST_ALIASES[name.lower()]
    if canonical in OPENSSL_DIGESTS:
        return hmac.new(key, data, canonical).digest()
    # The library objects follow the hashlib API (update/digest/copy/block_size), which is all
    # hmac needs from a digest constructor.
    return hmac.new(key, data, cast(Any, _digest_constructor(name))).digest()


def pbkdf2_bytes(name: str, password: bytes, salt: bytes, iterations: int, keylen: int) -> bytes:
    canonical = DIGEST_ALIASES[name.lower()]
    if canonical in OPENSSL_DIGESTS:
        return hashlib.pbkdf2_hmac(canonical, password, salt, iterations, keylen)
    constructor = _digest_constructor(name)
    # RFC 8018 PBKDF2 over a Python HMAC; only reached for digests OpenSSL does not provide.
    base = hmac.new(password, None, cast(Any, constructor))
    out = b""
    block_index = 1
    while len(out) < keylen:
        mac = base.copy()
        mac.update(salt + struct.pack(">I", block_index))
        u = mac.digest()
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            mac = base.copy()
            mac.update(u)
            u = mac.digest()
            acc ^= int.from_bytes(u, "big")
        out += acc.to_bytes(len(u), "big")
        block_index += 1
    return out[:keylen]
