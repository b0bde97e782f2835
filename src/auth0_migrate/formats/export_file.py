"""The export job's file: gzipped NDJSON, one user a line, read in pieces of whole lines (`formats.pieces`).

The export stage reads it here or in worker processes (`stages/ingest.py`); `auth0.jobs.iter_export_lines`
reads it line by line for the stages that need only a few fields. A line that is not a JSON object is a
problem named by its number, never quoted (a record may hold secrets).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ..errors import InputError
from .hash_file import READ_ERRORS, open_input
from .pieces import read_pieces, split_lines


def read_export_chunks(path: str) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, text) of a gzipped (or plain) NDJSON export, in pieces of whole lines; a file
    that cannot be read, or whose gzip is corrupt or cut short, is an `InputError` naming it."""
    try:
        with open_input(path) as stream:
            yield from read_pieces(stream, universal=True)
    except READ_ERRORS as exc:
        raise InputError(f"cannot read the export file {path}: {exc}") from exc


def parse_export_lines(chunk: bytes, first: int) -> Iterator[tuple[int, bytes, dict[str, Any] | None, str | None]]:
    """(line number, JSON text, record, problem) of each non-blank line of a piece from `read_export_chunks`."""
    # Without a CR, universal newlines split where LF alone does, and that split compares each byte with one
    # value rather than two (about 3,000 fewer instructions a user): most exports have no CR at all.
    for number, line in enumerate(split_lines(chunk, universal=b"\r" in chunk), first):
        text = line.strip()
        if not text:
            continue
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            yield number, text, None, f"export line {number} is not valid JSON"
            continue
        if not isinstance(record, dict):
            yield number, text, None, f"export line {number} is not a JSON object"
            continue
        yield number, text, record, None
