"""Whirlpool (ISO/IEC 10118-3) in pure Python, for hmac and pbkdf2 hashes whose digest is `whirlpool`.

OpenSSL 3 keeps Whirlpool in its legacy provider, usually absent, and pycryptodome does not have it.
The one package on PyPI that binds the reference implementation (`whirlpool`) ships only as C
source, so installing it needs a compiler a fresh machine may lack. Passwords are short, so a slow
digest costs little here; `tests/unit/test_passwords.py` checks it against the ISO test vectors.
"""

from __future__ import annotations

import copy
import struct
from typing import Final

_M64: Final = 0xFFFFFFFFFFFFFFFF


class _BlockDigest:
    """Buffering of a 64-byte-block digest, with the hashlib object API (`update`, `digest`, `copy`).

    A subclass provides ``_initial_state``, ``_compress(block)``, ``_padding(length)`` and ``_output``.
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

    def copy(self) -> _BlockDigest:
        other = copy.copy(self)
        other._state = list(self._state)
        return other

    def digest(self) -> bytes:
        clone = self.copy()
        clone.update(clone._padding(clone._length))
        return clone._output()

    def hexdigest(self) -> str:
        return self.digest().hex()


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


class Whirlpool(_BlockDigest):
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
