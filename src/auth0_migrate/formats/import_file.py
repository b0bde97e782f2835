"""The import file: pack import records into bulk-import files that Auth0 will take (stages 4 and 5).

Why this module exists
----------------------
Auth0 refuses an import request of 512,000 bytes or more with 413 ("Payload content length
greater than maximum allowed: 512000", reference §2.1-2.2), and the limit cannot be raised.
Each job also costs one of only two concurrent import slots and a poll loop, so files should
be as full as the limit allows: fewer, fuller files mean fewer jobs and a shorter migration.

* The limit is checked, as far as anyone can tell (INFERRED, §2.2), on the whole multipart
  request, not on the JSON alone; so the JSON budget, :data:`FILE_BUDGET`, is the limit minus a
  worst-case multipart envelope worked out below from the parts the import request carries.
* Packing is greedy and streaming: records are encoded once, appended while they fit, and a file
  is handed over as soon as the next record would not fit; only one file is ever in memory.
* A record that cannot fit even alone is never uploaded (it would fail the whole request): it
  comes out by itself with ``oversize=True`` for the caller to report.
* A file whose upload got an unexpected 413 anyway is halved by the import stage, from the
  ledger (the second half of its users go to a new file): bodies are rebuilt, never stored.

Bodies are compact UTF-8 JSON (``ensure_ascii=False``): escaping non-ASCII names as ``\\uXXXX``
would spend up to six bytes on what UTF-8 says in two or three.

Example::

    for packed in pack_files((key, record) for key, record in ready_users):
        if packed.oversize:
            report_too_large(packed.keys[0])
        else:
            upload(packed.body)          # len(packed.body) <= FILE_BUDGET
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ENVELOPE_ALLOWANCE",
    "FILE_BUDGET",
    "MAX_REQUEST_BYTES",
    "PackedFile",
    "encode_file",
    "encode_record",
    "FilePacker",
    "FileSizer",
    "SizedFile",
    "multipart_envelope",
    "pack_encoded",
    "pack_files",
]

#: The largest request Auth0 takes: the 413 names 512000, and we treat 512,000 itself as refused.
MAX_REQUEST_BYTES: Final = 512_000 - 1

#: Worst cases for the envelope's variable parts. A boundary is at most 70 characters (RFC 2046);
#: httpx uses 32. The file name is ours to choose; 128 covers any name the uploader makes. The
#: external_id is at most 64 characters (the uploader's own limit). Booleans are "false"/"true".
_MAX_BOUNDARY: Final = 70
_MAX_FILENAME: Final = 128
_MAX_EXTERNAL_ID: Final = 64
_CONNECTION_ID_CHARS: Final = 20  # "con_" + 16, the OAS pattern ^con_[A-Za-z0-9]{16}$


def multipart_envelope(
    *,
    boundary: str = "b" * _MAX_BOUNDARY,
    filename: str = "f" * _MAX_FILENAME,
    content_type: str = "application/octet-stream",
    connection_id: str = "c" * _CONNECTION_ID_CHARS,
    upsert: str = "false",
    external_id: str | None = "e" * _MAX_EXTERNAL_ID,
    send_completion_email: str = "false",
) -> bytes:
    """The bytes a ``POST /jobs/users-imports`` request adds around the JSON file, as httpx lays
    them out (the SDK's transport): one ``form-data`` part per field, the file part with its
    name and content type, CRLF line ends, and the closing boundary.

    The defaults are the worst case, which is what :data:`ENVELOPE_ALLOWANCE` is derived from; a
    test checks that a request httpx really builds stays within it.
    """
    dash = b"--" + boundary.encode("ascii")
    parts: list[bytes] = []
    fields = [("connection_id", connection_id), ("upsert", upsert)]
    if external_id is not None:
        fields.append(("external_id", external_id))
    fields.append(("send_completion_email", send_completion_email))
    for name, value in fields:
        parts.append(
            dash
            + b'\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name.encode(), value.encode())
        )
    parts.append(
        dash + b'\r\nContent-Disposition: form-data; name="users"; filename="%s"\r\n'
        b"Content-Type: %s\r\n\r\n" % (filename.encode(), content_type.encode())
    )
    parts.append(b"\r\n" + dash + b"--\r\n")
    return b"".join(parts)


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


#: The worst-case envelope (about 1,000 bytes) plus 1 KiB of slack for what no one has measured
#: (a client that adds per-part headers, a proxy's view of the length), rounded up to a KiB.
ENVELOPE_ALLOWANCE: Final = _round_up(len(multipart_envelope()) + 1024, 1024)

#: Most bytes of JSON one import file may hold: 512,000 - 1 - 2,048 = 509,951 bytes, 99.6% of
#: the 500 KB (512,000-byte) limit.
FILE_BUDGET: Final = MAX_REQUEST_BYTES - ENVELOPE_ALLOWANCE


@dataclass(frozen=True, slots=True, repr=False)
class PackedFile:
    """One import file: the users' source keys, in order, and the JSON array body.

    ``keys[i]`` is the key of the body's ``i``-th user, so a job's errors (reported by index and
    by user) map back to source users. ``oversize`` marks a lone record larger than the budget:
    report it, do not upload it. ``repr`` hides the body, which holds password hashes.
    """

    keys: list[str]
    body: bytes
    oversize: bool = False

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"PackedFile(users={len(self.keys)}, bytes={len(self.body)}, oversize={self.oversize})"


#: Built once: ``json.dumps`` with any non-default option builds a new encoder on every call,
#: which is a measurable share of the cost at a million records.
_UTF8_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ASCII_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def encode_record(record: dict[str, Any]) -> bytes:
    """One record as compact UTF-8 JSON.

    A string holding a lone surrogate (possible from a ``\\ud800`` escape in the input) has no
    UTF-8 form; such a record falls back to ASCII escapes, which keep the file valid JSON and
    leave the judgement on that one user to Auth0. ``NaN``/``Infinity`` raise ``ValueError``:
    they are not JSON, and readers refuse them before they get here.

    >>> encode_record({"email": "ann@example.com", "email_verified": True})
    b'{"email":"ann@example.com","email_verified":true}'
    """
    try:
        return _UTF8_ENCODER.encode(record).encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(record).encode("ascii")


def encode_file(records: Iterable[dict[str, Any]]) -> bytes:
    """The body :func:`pack_files` makes for these records, byte for byte.

    For a loader that rebuilds a packed file from stored records at upload time: the size the
    packer measured then still holds, because the encoding is the same.
    """
    return _body([encode_record(record) for record in records])


def _body(parts: list[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


def pack_files(
    records: Iterable[tuple[str, dict[str, Any]]], max_bytes: int = FILE_BUDGET
) -> Iterator[PackedFile]:
    """Pack ``(source key, import record)`` pairs, in order, into files of at most ``max_bytes``.

    Greedy: each file takes records until the next one would not fit, so every file but the
    last is full to within one record. Streaming: only the file being filled is in memory.
    A record too large for any file is yielded alone with ``oversize=True`` (its body then
    exceeds ``max_bytes``); the files around it are unaffected.
    """
    return pack_encoded(((key, encode_record(record)) for key, record in records), max_bytes)


def pack_encoded(parts_in: Iterable[tuple[str, bytes]], max_bytes: int = FILE_BUDGET) -> Iterator[PackedFile]:
    """:func:`pack_files` for records already encoded as :func:`encode_record` encodes them.

    For a caller that holds the records as compact JSON already (the ledger does): it need not
    decode and encode them again, and the files come out byte for byte the same.
    """
    packer = FilePacker(max_bytes)
    for key, part in parts_in:
        yield from packer.add(key, part)
    yield from packer.finish()


@dataclass(frozen=True, slots=True)
class SizedFile:
    """One import file as :class:`FileSizer` decides it: the users' keys, in order, and its body's size."""

    keys: list[str]
    size: int
    oversize: bool = False


class FileSizer:
    """The packing rule of :func:`pack_encoded` on sizes alone: which records go in which file.

    For a caller that stores the records elsewhere and rebuilds the bodies at upload (the export stage:
    the ledger keeps a file's users and size, never its body), so no body is built twice. :class:`FilePacker`
    is this rule with the bodies built.
    """

    def __init__(self, max_bytes: int = FILE_BUDGET) -> None:
        if max_bytes < 3:
            raise ValueError("max_bytes must leave room for a JSON array")
        self.max_bytes = max_bytes
        self.keys: list[str] = []
        self.size = 2  # "[" and "]"

    def add(self, key: str, size: int) -> list[SizedFile]:
        """A record of `size` bytes; the files it closed (none, one, or an open file plus an oversize one)."""
        closed: list[SizedFile] = []
        if size + 2 > self.max_bytes:
            if self.keys:
                closed.append(self._take())
            closed.append(SizedFile([key], size + 2, oversize=True))
            return closed
        added = size + (1 if self.keys else 0)  # the comma before all but the first
        if self.size + added > self.max_bytes:
            closed.append(self._take())
            added = size
        self.keys.append(key)
        self.size += added
        return closed

    def finish(self) -> list[SizedFile]:
        return [self._take()] if self.keys else []

    def _take(self) -> SizedFile:
        sized = SizedFile(self.keys, self.size)
        self.keys, self.size = [], 2
        return sized


class FilePacker:
    """The packing rule of :func:`pack_encoded`, fed one record at a time (for a stage that packs as it reads).

    ``add`` returns the files its record closed (none, one, or an open file plus an oversize one);
    ``finish`` returns the last, partly filled file.
    """

    def __init__(self, max_bytes: int = FILE_BUDGET) -> None:
        self.sizer = FileSizer(max_bytes)
        self.parts: list[bytes] = []

    def add(self, key: str, part: bytes) -> list[PackedFile]:
        closed = [self._packed(sized, part) for sized in self.sizer.add(key, len(part))]
        if not closed or not closed[-1].oversize:
            self.parts.append(part)
        return closed

    def finish(self) -> list[PackedFile]:
        return [self._packed(sized, b"") for sized in self.sizer.finish()]

    def _packed(self, sized: SizedFile, part: bytes) -> PackedFile:
        if sized.oversize:
            return PackedFile(sized.keys, _body([part]), oversize=True)
        packed = PackedFile(sized.keys, _body(self.parts))
        self.parts = []
        return packed
