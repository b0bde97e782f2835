"""Password hashes in Auth0's bulk-import format: verify them, make them, redact them.

Why this module exists
----------------------
The migration carries password hashes from one Auth0 database connection to another, and the
local tenant used in tests and the demo has to log users in with those hashes exactly as Auth0
would.  Auth0 accepts two shapes in an import file (reference §2.6-2.7):

* ``password_hash``: a bcrypt string that must match :data:`PASSWORD_HASH_PATTERN` (cost 10).
* ``custom_password_hash``: ``{"algorithm", "hash": {value, encoding, digest, key}, "salt",
  "password": {encoding}, keylen, cost, blockSize, parallelization}`` for argon2, bcrypt, hmac,
  ldap, md4, md5, sha1, sha256, sha512, pbkdf2 and scrypt.

Auth0 runs on Node.js, so wherever the docs leave a detail open this module copies what Node's
``Buffer`` and ``crypto`` do (checked against Node 20 while writing it):

* ``Buffer.from(s, "hex")`` decodes pairs up to the first invalid one; ``"base64"`` accepts both
  the standard and the URL-safe alphabet, skips characters outside them and stops at ``=``.
  That is why upper/lower-case hex and URL-safe base64 are all accepted.
* ``password.encoding`` is the encoding the password had when the hash was made.  ``ascii``,
  ``latin1`` and ``binary`` keep the low byte of each UTF-16 code unit (Node's behaviour, not
  Python's strict codecs); ``utf16le``/``ucs2`` are UTF-16LE; ``utf8`` turns lone surrogates
  into U+FFFD.
* Salt and password are concatenated as bytes (``prefix``: salt+password, the default).
* bcrypt reads at most 72 bytes, salt included; Node's bcrypt truncates silently, while the
  Python ``bcrypt`` 5 package raises, so this module truncates before calling it.

Failure policy: a wrong password, or a credential that is malformed or that Auth0 itself would
not accept for login (``{CRYPT}``, unknown algorithm, undecodable value), gives ``False``.  No
exception raised from :func:`verify_password` ever carries hash material.  The one exception is
:class:`UnsupportedDigestError`: the credential is one Auth0 supports but this host cannot
compute (MDC-2 when OpenSSL's legacy provider is not loaded).  Answering ``False`` there would
silently lock users out, so it is raised instead, naming only the digest.  MD4, RIPEMD-160 and
Whirlpool, which OpenSSL 3 moved to the legacy provider, fall back to the pure-Python
implementations below, so they always work.

Comparisons of derived bytes use :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

import argon2
import argon2.exceptions
import bcrypt

__all__ = [
    "DIGEST_SIZES",
    "PASSWORD_HASH_PATTERN",
    "REDACTED",
    "UnsupportedDigestError",
    "bcrypt_hash",
    "digest_available",
    "digest_length_problem",
    "make_credential",
    "redact",
    "verify_password",
]

#: The regex Auth0 applies to the plain ``password_hash`` field (support article in ref §2.4).
#: Note what it really allows: ``$2$``/``$2a$``/``$2b$`` and a cost of 1 followed by one or more
#: zeros, so in practice "bcrypt, cost 10".  Anything else must go through custom_password_hash.
PASSWORD_HASH_PATTERN: Final = r"^\$2[ab]?\$10+\$[./A-Za-z0-9]{53}$"

#: What Auth0's job-errors endpoint shows in place of secrets, and what our reports show too.
REDACTED: Final = "*****"

_PASSWORD_HASH_RE: Final = re.compile(PASSWORD_HASH_PATTERN)

#: bcrypt ignores everything past 72 bytes (salt included, ref §2.7).
_BCRYPT_MAX_BYTES: Final = 72

#: Memory ceiling for one scrypt verification.  Auth0 documents no limit; this only stops a
#: hostile file (cost=2**30) from exhausting the host.  Beyond it verification answers False.
_SCRYPT_MAX_MEMORY: Final = 1 << 30

_PBKDF2_DEFAULT_ITERATIONS: Final = 100_000
_PBKDF2_DEFAULT_KEYLEN: Final = 64


class UnsupportedDigestError(ValueError):
    """The credential is valid for Auth0, but this host cannot compute its digest.

    Raised rather than answering ``False`` so that a missing capability is never mistaken for
    a wrong password.  The message names the digest only, never hash material.
    """


# --------------------------------------------------------------------------------------------
# Pure-Python digests for what OpenSSL 3 may hide behind its legacy provider
# --------------------------------------------------------------------------------------------


class _HashObject(Protocol):
    """The subset of the hashlib object API this module calls directly."""

    @property
    def digest_size(self) -> int: ...

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


_M32: Final = 0xFFFFFFFF
_M64: Final = 0xFFFFFFFFFFFFFFFF


def _rotl32(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


class _MerkleDamgard:
    """Shared buffering for the 64-byte-block digests below.

    Subclasses provide ``_compress(block)``, ``_finish(buffer, bit_length) -> bytes`` and the
    initial ``_state``.  Kept deliberately simple: passwords are short, speed is secondary.
    """

    name = ""
    digest_size = 0
    block_size = 64

    def __init__(self, data: bytes = b"") -> None:
        self._state: list[int] = self._initial_state()
        self._buffer = b""
        self._length = 0
        if data:
            self.update(data)

    def _initial_state(self) -> list[int]:
        raise NotImplementedError

    def _compress(self, block: bytes) -> None:
        raise NotImplementedError

    def _padding(self, length: int) -> bytes:
        raise NotImplementedError

    def _output(self) -> bytes:
        raise NotImplementedError

    def update(self, data: bytes, /) -> None:
        data = bytes(data)
        self._length += len(data)
        buffer = self._buffer + data
        size = self.block_size
        full = len(buffer) - len(buffer) % size
        for offset in range(0, full, size):
            self._compress(buffer[offset : offset + size])
        self._buffer = buffer[full:]

    def copy(self) -> _MerkleDamgard:
        other = copy.copy(self)
        other._state = list(self._state)
        return other

    def digest(self) -> bytes:
        clone = self.copy()
        clone.update(clone._padding(clone._length))
        return clone._output()

    def hexdigest(self) -> str:
        return self.digest().hex()


class _MD4(_MerkleDamgard):
    """MD4 (RFC 1320).  Broken as a hash, but Auth0 still imports md4 and hmac-md4 hashes."""

    name = "md4"
    digest_size = 16

    _R2: Final = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
    _R3: Final = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)

    def _initial_state(self) -> list[int]:
        return [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]

    def _padding(self, length: int) -> bytes:
        return b"\x80" + b"\x00" * ((55 - length) % 64) + struct.pack("<Q", (length * 8) & _M64)

    def _output(self) -> bytes:
        return struct.pack("<4I", *self._state)

    def _compress(self, block: bytes) -> None:
        x = struct.unpack("<16I", block)
        a, b, c, d = self._state
        shifts1 = (3, 7, 11, 19)
        for i in range(16):
            a = _rotl32((a + ((b & c) | (~b & d)) + x[i]) & _M32, shifts1[i % 4])
            a, b, c, d = d, a, b, c
        shifts2 = (3, 5, 9, 13)
        for i in range(16):
            f = (b & c) | (b & d) | (c & d)
            a = _rotl32((a + f + x[self._R2[i]] + 0x5A827999) & _M32, shifts2[i % 4])
            a, b, c, d = d, a, b, c
        shifts3 = (3, 9, 11, 15)
        for i in range(16):
            a = _rotl32((a + (b ^ c ^ d) + x[self._R3[i]] + 0x6ED9EBA1) & _M32, shifts3[i % 4])
            a, b, c, d = d, a, b, c
        s = self._state
        self._state = [(s[0] + a) & _M32, (s[1] + b) & _M32, (s[2] + c) & _M32, (s[3] + d) & _M32]


class _RIPEMD160(_MerkleDamgard):
    """RIPEMD-160, for hosts whose hashlib lacks it (OpenSSL 3 without the legacy provider)."""

    name = "ripemd160"
    digest_size = 20

    _RL: Final = (
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
        3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
        1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
        4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
    )  # fmt: skip
    _RR: Final = (
        5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
        6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
        15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
        8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
        12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
    )  # fmt: skip
    _SL: Final = (
        11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
        7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
        11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
        11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
        9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
    )  # fmt: skip
    _SR: Final = (
        8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
        9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
        9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
        15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
        8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
    )  # fmt: skip
    _KL: Final = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
    _KR: Final = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)

    def _initial_state(self) -> list[int]:
        return [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]

    def _padding(self, length: int) -> bytes:
        return b"\x80" + b"\x00" * ((55 - length) % 64) + struct.pack("<Q", (length * 8) & _M64)

    def _output(self) -> bytes:
        return struct.pack("<5I", *self._state)

    @staticmethod
    def _f(j: int, x: int, y: int, z: int) -> int:
        if j < 16:
            return x ^ y ^ z
        if j < 32:
            return (x & y) | (~x & z)
        if j < 48:
            return ((x | ~y) & _M32) ^ z
        if j < 64:
            return (x & z) | (y & ~z)
        return x ^ ((y | ~z) & _M32)

    def _compress(self, block: bytes) -> None:
        x = struct.unpack("<16I", block)
        h0, h1, h2, h3, h4 = self._state
        al, bl, cl, dl, el = h0, h1, h2, h3, h4
        ar, br, cr, dr, er = h0, h1, h2, h3, h4
        f = self._f
        for j in range(80):
            rnd = j >> 4
            t = _rotl32((al + f(j, bl, cl, dl) + x[self._RL[j]] + self._KL[rnd]) & _M32, self._SL[j])
            t = (t + el) & _M32
            al, el, dl, cl, bl = el, dl, _rotl32(cl, 10), bl, t
            t = _rotl32((ar + f(79 - j, br, cr, dr) + x[self._RR[j]] + self._KR[rnd]) & _M32, self._SR[j])
            t = (t + er) & _M32
            ar, er, dr, cr, br = er, dr, _rotl32(cr, 10), br, t
        t = (h1 + cl + dr) & _M32
        self._state = [
            t,
            (h2 + dl + er) & _M32,
            (h3 + el + ar) & _M32,
            (h4 + al + br) & _M32,
            (h0 + bl + cr) & _M32,
        ]


def _whirlpool_tables() -> tuple[list[list[int]], list[int]]:
    """Build Whirlpool's eight 256-entry lookup tables and its ten round constants.

    The S-box comes from the E, E^-1 and R mini-boxes of the specification, and each table
    entry is one row of the circulant MDS matrix cir(1, 1, 4, 1, 8, 5, 2, 9) over GF(2^8)
    reduced by x^8 + x^4 + x^3 + x^2 + 1.  Generating them keeps 2 KB of magic numbers out of
    the source and makes the construction checkable.
    """
    e_box = (0x1, 0xB, 0x9, 0xC, 0xD, 0x6, 0xF, 0x3, 0xE, 0x8, 0x7, 0x4, 0xA, 0x2, 0x5, 0x0)
    r_box = (0x7, 0xC, 0xB, 0xD, 0xE, 0x4, 0x9, 0xF, 0x6, 0x3, 0x8, 0xA, 0x2, 0x5, 0x1, 0x0)
    e_inv = [0] * 16
    for i, v in enumerate(e_box):
        e_inv[v] = i
    sbox = []
    for u in range(256):
        left, right = e_box[u >> 4], e_inv[u & 0xF]
        r = r_box[left ^ right]
        sbox.append((e_box[left ^ r] << 4) | e_inv[right ^ r])

    def gmul(a: int, b: int) -> int:
        product = 0
        while b:
            if b & 1:
                product ^= a
            a <<= 1
            if a & 0x100:
                a ^= 0x11D
            b >>= 1
        return product

    row = (1, 1, 4, 1, 8, 5, 2, 9)
    c0 = []
    for x in range(256):
        s = sbox[x]
        value = 0
        for factor in row:
            value = (value << 8) | gmul(s, factor)
        c0.append(value)
    tables = [c0]
    for k in range(1, 8):
        shift = 8 * k
        tables.append([((v >> shift) | (v << (64 - shift))) & _M64 for v in c0])
    constants = [int.from_bytes(bytes(sbox[8 * r : 8 * r + 8]), "big") for r in range(10)]
    return tables, constants


_WHIRLPOOL_TABLES: tuple[list[list[int]], list[int]] | None = None


class _Whirlpool(_MerkleDamgard):
    """Whirlpool (ISO/IEC 10118-3), needed for hmac ``digest: "whirlpool"`` and pbkdf2."""

    name = "whirlpool"
    digest_size = 64

    def _initial_state(self) -> list[int]:
        global _WHIRLPOOL_TABLES
        if _WHIRLPOOL_TABLES is None:
            _WHIRLPOOL_TABLES = _whirlpool_tables()
        return [0] * 8

    def _padding(self, length: int) -> bytes:
        # 0x80, zeros up to 32 bytes short of a block, then a 256-bit big-endian bit count.
        return b"\x80" + b"\x00" * ((31 - length) % 64) + (length * 8).to_bytes(32, "big")

    def _output(self) -> bytes:
        return struct.pack(">8Q", *self._state)

    def _compress(self, block: bytes) -> None:
        assert _WHIRLPOOL_TABLES is not None
        (c0, c1, c2, c3, c4, c5, c6, c7), constants = _WHIRLPOOL_TABLES
        m = struct.unpack(">8Q", block)
        k = list(self._state)
        state = [m[i] ^ k[i] for i in range(8)]

        def rho(w: list[int]) -> list[int]:
            return [
                c0[w[i] >> 56]
                ^ c1[(w[(i - 1) & 7] >> 48) & 0xFF]
                ^ c2[(w[(i - 2) & 7] >> 40) & 0xFF]
                ^ c3[(w[(i - 3) & 7] >> 32) & 0xFF]
                ^ c4[(w[(i - 4) & 7] >> 24) & 0xFF]
                ^ c5[(w[(i - 5) & 7] >> 16) & 0xFF]
                ^ c6[(w[(i - 6) & 7] >> 8) & 0xFF]
                ^ c7[w[(i - 7) & 7] & 0xFF]
                for i in range(8)
            ]

        for rc in constants:
            k = rho(k)
            k[0] ^= rc
            state = [v ^ kv for v, kv in zip(rho(state), k, strict=False)]
        self._state = [h ^ s ^ mv for h, s, mv in zip(self._state, state, m, strict=False)]


_PURE_DIGESTS: Final[dict[str, Callable[..., _MerkleDamgard]]] = {
    "md4": _MD4,
    "ripemd160": _RIPEMD160,
    "whirlpool": _Whirlpool,
}

# Every digest name Auth0 documents (hmac's ``hash.digest`` and pbkdf2's ``pbkdf2-<digest>``),
# mapped to the underlying algorithm.  OpenSSL names are case-insensitive, hence lower-case keys.
_DIGEST_ALIASES: Final[dict[str, str]] = {
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


def _openssl_has(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:
        return False
    return True


#: Which digests hashlib (OpenSSL) provides on this host, probed once at import.
_OPENSSL_DIGESTS: Final[frozenset[str]] = frozenset(
    name for name in set(_DIGEST_ALIASES.values()) if _openssl_has(name)
)


def digest_available(name: str) -> bool:
    """Whether ``name`` (any Auth0 digest alias) can be computed here, natively or in Python."""
    canonical = _DIGEST_ALIASES.get(name.lower())
    return canonical is not None and (canonical in _OPENSSL_DIGESTS or canonical in _PURE_DIGESTS)


def _digest_constructor(name: str) -> Callable[..., _HashObject]:
    """Return a hashlib-style constructor for an Auth0 digest name.

    Unknown names raise ``KeyError`` (the caller turns that into ``False``); a known digest this
    host cannot compute raises :class:`UnsupportedDigestError`.
    """
    canonical = _DIGEST_ALIASES[name.lower()]
    if canonical in _PURE_DIGESTS and canonical not in _OPENSSL_DIGESTS:
        return _PURE_DIGESTS[canonical]
    if canonical in _OPENSSL_DIGESTS:
        return lambda data=b"": hashlib.new(canonical, data)
    raise UnsupportedDigestError(
        f"digest {canonical!r} is supported by Auth0 but not available on this host "
        "(load the OpenSSL legacy provider)"
    )


def _hash_bytes(name: str, data: bytes) -> bytes:
    h = _digest_constructor(name)()
    h.update(data)
    return h.digest()


def _hmac_bytes(name: str, key: bytes, data: bytes) -> bytes:
    canonical = _DIGEST_ALIASES[name.lower()]
    if canonical in _OPENSSL_DIGESTS:
        return hmac.new(key, data, canonical).digest()
    # The pure-Python classes follow the hashlib API (update/digest/copy/block_size), which
    # is all hmac needs from a digest constructor.
    return hmac.new(key, data, cast(Any, _digest_constructor(name))).digest()


def _pbkdf2_bytes(name: str, password: bytes, salt: bytes, iterations: int, keylen: int) -> bytes:
    canonical = _DIGEST_ALIASES[name.lower()]
    if canonical in _OPENSSL_DIGESTS:
        return hashlib.pbkdf2_hmac(canonical, password, salt, iterations, keylen)
    constructor = _digest_constructor(name)
    # RFC 8018 PBKDF2 over a Python HMAC; slow, but only reached for md4/whirlpool hashes.
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


# --------------------------------------------------------------------------------------------
# Node.js Buffer encodings
# --------------------------------------------------------------------------------------------

_HEX_PAIRS_RE: Final = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_B64_JUNK_RE: Final = re.compile(r"[^A-Za-z0-9+/\-_]")
_URLSAFE_TO_STD: Final = str.maketrans("-_", "+/")


def _node_hex(value: str) -> bytes:
    """``Buffer.from(value, "hex")``: decode whole pairs up to the first invalid character."""
    match = _HEX_PAIRS_RE.match(value)
    return bytes.fromhex(match.group(0)) if match else b""


def _node_base64(value: str) -> bytes:
    """``Buffer.from(value, "base64")``: both alphabets, stop at ``=``, skip anything else."""
    cut = value.find("=")
    if cut >= 0:
        value = value[:cut]
    cleaned = _B64_JUNK_RE.sub("", value).translate(_URLSAFE_TO_STD)
    usable = len(cleaned) - (len(cleaned) % 4 == 1)  # a lone trailing sextet carries no byte
    cleaned = cleaned[:usable]
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _node_utf8(value: str) -> bytes:
    """UTF-8 as Node writes it: lone surrogates become U+FFFD instead of raising."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        repaired = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return repaired.encode("utf-8")


def _node_latin1(value: str) -> bytes:
    """Node's ``latin1``/``binary``/``ascii`` writers: the low byte of each UTF-16 code unit."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass")[::2]


def _node_utf16le(value: str) -> bytes:
    return value.encode("utf-16-le", "surrogatepass")


_DATA_DECODERS: Final[dict[str, Callable[[str], bytes]]] = {
    "hex": _node_hex,
    "base64": _node_base64,
    "utf8": _node_utf8,
}

_PASSWORD_ENCODERS: Final[dict[str, Callable[[str], bytes]]] = {
    "utf8": _node_utf8,
    "ascii": _node_latin1,
    "latin1": _node_latin1,
    "binary": _node_latin1,
    "utf16le": _node_utf16le,
    "ucs2": _node_utf16le,
}


class _Malformed(Exception):
    """Internal: the credential cannot be interpreted; :func:`verify_password` answers False."""


def _decode(value: Any, encoding: Any) -> bytes:
    if not isinstance(value, str):
        raise _Malformed
    decoder = _DATA_DECODERS.get(encoding if encoding is not None else "utf8")
    if decoder is None:
        raise _Malformed
    return decoder(value)


def _obj(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Malformed
    return value


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def verify_password(password: str, credential: dict[str, Any]) -> bool:
    """Tell whether ``password`` is the one behind an imported Auth0 credential.

    ``credential`` is ``{"password_hash": "$2b$10$..."}`` or ``{"custom_password_hash": {...}}``
    exactly as an import file carries it; a whole import user dict works too.  Having both
    fields is refused by Auth0's schema, so it answers ``False`` here as well.

    Returns ``False`` for a wrong password and for a malformed credential.  Raises
    :class:`UnsupportedDigestError` only when Auth0 supports the digest but this host cannot
    compute it, and ``TypeError`` when ``password`` is not a ``str`` (a caller bug).
    """
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    if not isinstance(credential, dict):
        return False
    plain = credential.get("password_hash")
    custom = credential.get("custom_password_hash")
    try:
        if plain is not None and custom is not None:
            return False
        if plain is not None:
            if not isinstance(plain, str):
                return False
            return _check_bcrypt(_node_utf8(password), plain)
        if custom is not None:
            return _verify_custom(password, custom)
        return False
    except UnsupportedDigestError:
        raise
    except Exception:  # noqa: BLE001 - any failure to interpret the credential means "no match";
        # the exception is dropped on purpose so no hash material can leak through its message.
        return False


def _check_bcrypt(password: bytes, hashed: str) -> bool:
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    return bcrypt.checkpw(password[:_BCRYPT_MAX_BYTES], hashed.encode("ascii"))


def _salted(password: bytes, salt: dict[str, Any]) -> bytes:
    """Apply the optional ``salt`` object: salt+password (prefix, default) or password+salt."""
    if not salt:
        return password
    salt_bytes = _decode(salt.get("value"), salt.get("encoding", "utf8"))
    position = salt.get("position", "prefix")
    if position == "prefix":
        return salt_bytes + password
    if position == "suffix":
        return password + salt_bytes
    raise _Malformed


_LDAP_SCHEMES: Final[dict[str, tuple[str, bool]]] = {
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
_LDAP_RE: Final = re.compile(r"\{([A-Za-z0-9]+)\}(.+)", re.DOTALL)

_PBKDF2_RE: Final = re.compile(
    r"\$pbkdf2-(?P<digest>[A-Za-z0-9-]+)(?:\$(?P<params>[a-z]=[0-9]+(?:,[a-z]=[0-9]+)*))?"
    r"\$(?P<salt>[A-Za-z0-9+/.\-_]*)\$(?P<hash>[A-Za-z0-9+/.\-_]+)"
)


def _phc_b64(value: str) -> bytes:
    """PHC "B64": standard alphabet without padding.  passlib's ``.`` for ``+`` and the
    URL-safe alphabet are accepted as well, since exporters differ."""
    value = value.replace(".", "+").translate(_URLSAFE_TO_STD)
    if len(value) % 4 == 1:
        raise _Malformed
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except binascii.Error as exc:
        raise _Malformed from exc


def _parse_pbkdf2(value: str) -> tuple[str, int, int, bytes, bytes]:
    """Split a ``$pbkdf2-<digest>$i=..,l=..$salt$hash`` string (``i``/``l`` default 100000/64)."""
    match = _PBKDF2_RE.fullmatch(value)
    if match is None:
        raise _Malformed
    params = {"i": _PBKDF2_DEFAULT_ITERATIONS, "l": _PBKDF2_DEFAULT_KEYLEN}
    if match.group("params"):
        for item in match.group("params").split(","):
            key, _, number = item.partition("=")
            if key not in params:
                raise _Malformed
            params[key] = int(number)
    if params["i"] < 1 or params["l"] < 1:
        raise _Malformed
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
        raise _Malformed
    return value


def _verify_custom(password: str, cph: Any) -> bool:
    if not isinstance(cph, dict):
        return False
    algorithm = cph.get("algorithm")
    hash_obj = _obj(cph.get("hash"))
    value = hash_obj.get("value")
    if not isinstance(value, str):
        return False
    salt = _obj(cph.get("salt"))
    encoder = _PASSWORD_ENCODERS.get(_obj(cph.get("password")).get("encoding", "utf8"))
    if encoder is None:
        return False
    pw = encoder(password)

    if algorithm == "bcrypt":
        return _check_bcrypt(_salted(pw, salt), value)

    if algorithm == "argon2":
        # Auth0 verifies argon2 through libsodium (auth0/magic), which has no argon2d.
        if salt or not value.startswith(("$argon2id$", "$argon2i$")):
            return False
        try:
            return argon2.PasswordHasher().verify(value, pw)
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    if algorithm in ("md4", "md5", "sha1", "sha256", "sha512"):
        expected = _decode(value, hash_obj.get("encoding"))
        return hmac.compare_digest(_hash_bytes(algorithm, _salted(pw, salt)), expected)

    if algorithm == "hmac":
        digest = hash_obj.get("digest")
        key_obj = _obj(hash_obj.get("key"))
        if not isinstance(digest, str) or digest not in _HMAC_DIGESTS or "value" not in key_obj:
            return False
        key = _decode(key_obj.get("value"), key_obj.get("encoding", "utf8"))
        expected = _decode(value, hash_obj.get("encoding"))
        return hmac.compare_digest(_hmac_bytes(digest, key, _salted(pw, salt)), expected)

    if algorithm == "ldap":
        if salt:
            return False
        return _verify_ldap(pw, value)

    if algorithm == "pbkdf2":
        if salt:
            return False
        digest, iterations, keylen, salt_bytes, expected = _parse_pbkdf2(value)
        if digest.lower() not in _DIGEST_ALIASES or len(expected) != keylen:
            return False
        derived = _pbkdf2_bytes(digest, pw, salt_bytes, iterations, keylen)
        return hmac.compare_digest(derived, expected)

    if algorithm == "scrypt":
        keylen = _scrypt_int(cph, "keylen", None)
        n = _scrypt_int(cph, "cost", 16384)
        r = _scrypt_int(cph, "blockSize", 8)
        p = _scrypt_int(cph, "parallelization", 1)
        if keylen < 1 or n < 2 or n & (n - 1) or r < 1 or p < 1:
            return False
        needed = 128 * r * (n + p + 2)
        if needed > _SCRYPT_MAX_MEMORY:
            return False
        salt_bytes = _decode(salt.get("value"), salt.get("encoding", "utf8")) if salt else b""
        expected = _decode(value, hash_obj.get("encoding"))
        derived = hashlib.scrypt(pw, salt=salt_bytes, n=n, r=r, p=p, maxmem=needed + (1 << 20), dklen=keylen)
        return hmac.compare_digest(derived, expected)

    return False


_HMAC_DIGESTS: Final = frozenset(
    {"md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool"}
)


def _verify_ldap(pw: bytes, value: str) -> bool:
    """RFC 2307 ``{SCHEME}base64``; salted schemes append the salt after the digest.

    ``{CRYPT}`` is refused because Auth0 refuses it (its result depends on the host's crypt(3)).
    """
    match = _LDAP_RE.fullmatch(value)
    if match is None:
        return False
    scheme = _LDAP_SCHEMES.get(match.group(1).upper())
    if scheme is None:
        return False
    digest_name, salted = scheme
    raw = _node_base64(match.group(2))
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


# --------------------------------------------------------------------------------------------
# Digest lengths: hashes that can never match
# --------------------------------------------------------------------------------------------

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
    hash_obj = cph.get("hash") if isinstance(cph.get("hash"), dict) else {}
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
        _digest, _iterations, keylen, _salt, expected = _parse_pbkdf2(value)
    except _Malformed:
        return "the pbkdf2 value's salt or derived key is not whole base64 (or its i= or l= is 0)"
    if len(expected) == keylen:
        return None
    return f"the pbkdf2 value says l={keylen} but its derived key is {len(expected)} bytes"


def _ldap_length_problem(value: str) -> str | None:
    match = _LDAP_RE.fullmatch(value)
    scheme = _LDAP_SCHEMES.get(match.group(1).upper()) if match else None
    if match is None or scheme is None:
        return None
    digest_name, salted = scheme
    size = DIGEST_SIZES[digest_name]
    raw = _node_base64(match.group(2))
    if salted and len(raw) <= size:
        return (f"a {{{match.group(1)}}} value is a {size}-byte {digest_name} digest followed by a salt; "
                f"this one holds {len(raw)} bytes")
    if not salted and _strict_length(match.group(2), "base64") != size:
        return (f"a {{{match.group(1)}}} value is a {size}-byte {digest_name} digest in base64; "
                f"this one is {len(match.group(2))} characters")
    return None


# --------------------------------------------------------------------------------------------
# Making credentials
# --------------------------------------------------------------------------------------------


def bcrypt_hash(password: str, cost: int = 10) -> str:
    """bcrypt ``$2b$`` hash of ``password``, as Auth0 stores it after a custom-hash login.

    Auth0 drops an imported non-bcrypt hash on the first successful login and keeps its own
    bcrypt instead (ref §2.7), so the local tenant calls this at that point.  Passwords longer
    than 72 UTF-8 bytes are truncated, which is what bcrypt itself has always done.
    """
    if not 4 <= cost <= 31:
        raise ValueError("bcrypt cost must be between 4 and 31")
    salt = bcrypt.gensalt(rounds=cost, prefix=b"2b")
    return bcrypt.hashpw(_node_utf8(password)[:_BCRYPT_MAX_BYTES], salt).decode("ascii")


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
    ``{"custom_password_hash": {...}}``.  Every result passes :func:`verify_password` and
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
    encoder = _PASSWORD_ENCODERS["utf8" if password_encoding is None else password_encoding]
    pw = encoder(password)
    cph: dict[str, Any]

    def salt_object(default_random: bool = False) -> dict[str, Any] | None:
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

    algo = algorithm.lower()
    if algo == "bcrypt":
        cost = int(params.pop("cost", 10))
        force_custom = bool(params.pop("custom", False))
        salt = salt_object()
        if cost == 10 and salt is None and not force_custom and password_encoding is None:
            _no_leftovers(params, algorithm)
            return {"password_hash": bcrypt_hash(password, cost)}
        material = _salted(pw, salt or {})[:_BCRYPT_MAX_BYTES]
        hashed = bcrypt.hashpw(material, bcrypt.gensalt(rounds=cost, prefix=b"2b")).decode("ascii")
        cph = {"algorithm": "bcrypt", "hash": {"value": hashed, "encoding": "utf8"}}
        if salt is not None:
            cph["salt"] = salt
    elif algo in ("argon2", "argon2id", "argon2i"):
        variant = params.pop("variant", "i" if algo == "argon2i" else "id")
        hasher = argon2.PasswordHasher(
            time_cost=int(params.pop("time_cost", 2)),
            memory_cost=int(params.pop("memory_cost", 65536)),
            parallelism=int(params.pop("parallelism", 1)),
            type=argon2.Type.ID if variant == "id" else argon2.Type.I,
        )
        cph = {"algorithm": "argon2", "hash": {"value": hasher.hash(pw), "encoding": "utf8"}}
    elif algo == "hmac":
        digest = params.pop("digest", "sha256")
        key = params.pop("key", None)
        key_encoding = params.pop("key_encoding", None)
        if key is None:
            key, key_encoding = secrets.token_hex(32), key_encoding or "hex"
        key_encoding = key_encoding or "utf8"
        encoding = params.pop("encoding", "hex")
        salt = salt_object()
        raw = _hmac_bytes(digest, _decode(key, key_encoding), _salted(pw, salt or {}))
        cph = {
            "algorithm": "hmac",
            "hash": {
                "value": _encode_out(raw, encoding),
                "encoding": encoding,
                "digest": digest,
                "key": {"value": key, "encoding": key_encoding},
            },
        }
        if salt is not None:
            cph["salt"] = salt
    elif algo == "ldap":
        scheme = str(params.pop("scheme", "SSHA")).upper()
        if scheme not in _LDAP_SCHEMES:
            raise ValueError(f"unsupported LDAP scheme {scheme!r}")
        digest_name, salted = _LDAP_SCHEMES[scheme]
        salt_bytes = params.pop("salt", None)
        if salted and salt_bytes is None:
            salt_bytes = secrets.token_bytes(8)
        salt_bytes = bytes(salt_bytes or b"") if salted else b""
        raw = hashlib.new(digest_name, pw + salt_bytes).digest() + salt_bytes
        value = "{" + scheme + "}" + base64.b64encode(raw).decode("ascii")
        cph = {"algorithm": "ldap", "hash": {"value": value, "encoding": "utf8"}}
    elif algo in ("md4", "md5", "sha1", "sha256", "sha512"):
        encoding = params.pop("encoding", "hex")
        salt = salt_object()
        raw = _hash_bytes(algo, _salted(pw, salt or {}))
        cph = {"algorithm": algo, "hash": {"value": _encode_out(raw, encoding), "encoding": encoding}}
        if salt is not None:
            cph["salt"] = salt
    elif algo == "pbkdf2":
        digest = params.pop("digest", "sha256")
        iterations = int(params.pop("iterations", _PBKDF2_DEFAULT_ITERATIONS))
        keylen = int(params.pop("keylen", 32))
        salt_bytes = bytes(params.pop("salt", None) or secrets.token_bytes(16))
        raw = _pbkdf2_bytes(digest, pw, salt_bytes, iterations, keylen)
        value = (
            f"$pbkdf2-{digest}$i={iterations},l={keylen}${_phc_b64_encode(salt_bytes)}${_phc_b64_encode(raw)}"
        )
        cph = {"algorithm": "pbkdf2", "hash": {"value": value, "encoding": "utf8"}}
    elif algo == "scrypt":
        keylen = int(params.pop("keylen", 64))
        n = int(params.pop("cost", 16384))
        r = int(params.pop("blockSize", 8))
        p = int(params.pop("parallelization", 1))
        encoding = params.pop("encoding", "base64")
        salt = salt_object(default_random=True)
        assert salt is not None
        salt.pop("position", None)
        raw = hashlib.scrypt(
            pw,
            salt=_decode(salt["value"], salt["encoding"]),
            n=n,
            r=r,
            p=p,
            maxmem=128 * r * (n + p + 2) + (1 << 20),
            dklen=keylen,
        )
        cph = {
            "algorithm": "scrypt",
            "hash": {"value": _encode_out(raw, encoding), "encoding": encoding},
            "salt": salt,
            "keylen": keylen,
            "cost": n,
            "blockSize": r,
            "parallelization": p,
        }
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    _no_leftovers(params, algorithm)
    if password_encoding is not None:
        cph["password"] = {"encoding": password_encoding}
    return {"custom_password_hash": cph}


def _no_leftovers(params: dict[str, Any], algorithm: str) -> None:
    if params:
        raise TypeError(f"unexpected parameters for {algorithm}: {', '.join(sorted(params))}")


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------


def redact(obj: Any) -> Any:
    """Deep copy of an import user with every secret replaced by ``"*****"``.

    Hidden: ``password_hash``, ``custom_password_hash.hash.value``,
    ``custom_password_hash.hash.key.value``, ``custom_password_hash.salt.value`` and each
    ``mfa_factors[].totp.secret``.  This is how Auth0's job-errors endpoint echoes users back
    (ref §2.4), and our own reports and logs must never show more than Auth0 does.  Anything
    that is not shaped like a user is copied unchanged.
    """
    result = copy.deepcopy(obj)
    if not isinstance(result, dict):
        return result
    if "password_hash" in result:
        result["password_hash"] = REDACTED
    cph = result.get("custom_password_hash")
    if isinstance(cph, dict):
        hash_obj = cph.get("hash")
        if isinstance(hash_obj, dict):
            if "value" in hash_obj:
                hash_obj["value"] = REDACTED
            key = hash_obj.get("key")
            if isinstance(key, dict) and "value" in key:
                key["value"] = REDACTED
        salt = cph.get("salt")
        if isinstance(salt, dict) and "value" in salt:
            salt["value"] = REDACTED
    factors = result.get("mfa_factors")
    if isinstance(factors, list):
        for factor in factors:
            if isinstance(factor, dict):
                totp = factor.get("totp")
                if isinstance(totp, dict) and "secret" in totp:
                    totp["secret"] = REDACTED
    return result
