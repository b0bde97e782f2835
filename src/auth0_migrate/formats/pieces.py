"""A file of one record a line (an export, a hash file), read in pieces of whole lines, each with the number
of its first line: the unit a worker process takes (`auth0_migrate.workers`).

`universal` says which bytes end a line: LF, CR and CRLF, as a text file's universal newlines read them
(the export was read so), or LF alone, as a binary file's lines are (the hash file was read so). Either
way the numbers are those a line-by-line reading gives.

>>> import io
>>> list(read_pieces(io.BytesIO(b"a\\nb\\r\\nc\\rd\\ne"), size=4, universal=True))
[(1, b'a\\n'), (2, b'b\\r\\n'), (3, b'c\\rd\\n'), (5, b'e')]
>>> list(read_pieces(io.BytesIO(b"a\\nb\\r\\nc\\rd\\ne"), size=4, universal=False))
[(1, b'a\\n'), (2, b'b\\r\\n'), (3, b'c\\rd\\n'), (4, b'e')]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

PIECE_BYTES = 1 << 20
"""Bytes read at a time (about a thousand users of an export)."""


def read_pieces(stream: IO[bytes], size: int | None = None, *, universal: bool) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, bytes) of each piece: whole lines, ending after the last LF of what was read."""
    size = size or PIECE_BYTES
    first, tail = 1, b""
    while block := stream.read(size):
        block = tail + block
        end = block.rfind(b"\n") + 1
        if end == 0:
            tail = block
            continue
        piece, tail = block[:end], block[end:]
        yield first, piece
        first += piece.count(b"\n")
        if universal and b"\r" in piece:  # (a search for one byte is much cheaper than a count)
            first += piece.count(b"\r") - piece.count(b"\r\n")
    if tail:
        yield first, tail


def split_lines(piece: bytes, *, universal: bool) -> list[bytes]:
    """The lines of a piece, without their ends (a piece's last LF ends its last line: no empty line after it)."""
    if universal:
        return piece.splitlines()
    lines = piece.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines
