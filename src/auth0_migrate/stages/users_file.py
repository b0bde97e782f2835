"""Stage 1 alternative (``--from-file``): users that come from a file instead of a bulk export.

Why this stage exists
---------------------
Users do not always come from another Auth0 connection. An owner moving from another system (or
re-running a migration from a prepared file) has them in Auth0's own bulk-import shape: a JSON
array, or NDJSON, of objects with ``email``, profile fields, ``user_id`` without ``auth0|``, and
a ``password_hash`` or ``custom_password_hash`` of any algorithm Auth0 imports (reference §2.6).
This module reads such a file as a stream of ``(ordinal, user)`` pairs so the rest of the
pipeline treats those users like exported ones.

* NDJSON is read line by line; the ordinal is the line number, and a bad line becomes a
  :class:`~auth0_migrate.stages.hashes.LineProblem` while the read goes on.
* A JSON array is streamed element by element with :meth:`json.JSONDecoder.raw_decode` over a
  sliding buffer (``ijson`` is not a dependency), so a file of a million users never sits in
  memory whole; the ordinal is the user's 1-based position. An element that is valid JSON but not
  a usable user is a problem and the read goes on; broken JSON syntax inside an array leaves no
  safe place to resume, so it raises :class:`~auth0_migrate.errors.InputError`.
* ``NaN``/``Infinity`` (which Python's json accepts but JSON does not) are refused per user: they
  would make an import file Auth0 cannot parse, failing a whole job of other users.
* A user with neither ``user_id`` nor ``email`` cannot be identified, keyed or imported (Auth0
  requires ``email``), so it is reported here rather than passed on.

No message quotes file content: such files carry password hashes.

Example::

    for item in iter_users_file("users.json"):
        if isinstance(item, LineProblem):
            report(str(item))                       # "line 4: not valid JSON"
        else:
            ordinal, user = item
            key = source_key(user)                  # "auth0|abc" or "email:ann@example.com"
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any, Final, TypeAlias

from auth0_migrate.errors import InputError

from .hashes import LineProblem, open_input

__all__ = ["UsersFileItem", "credential_of", "iter_users_file", "source_key"]

UsersFileItem: TypeAlias = tuple[int, dict[str, Any]] | LineProblem

#: Read size for arrays; the buffer holds at most this plus one partly read user.
_CHUNK_CHARS: Final = 1 << 20
#: One user larger than this is not a user (Auth0 profiles are limited to about 10 KB); stop
#: growing the buffer rather than read the rest of a broken file into memory.
_MAX_ELEMENT_CHARS: Final = 16 << 20
_WS: Final = re.compile(r"[ \t\r\n]*")


class _Decoder:
    """``json`` decoding that notices ``NaN``/``Infinity`` instead of accepting them.

    Python's json turns them into floats and would write them back as bare ``NaN``, which is not
    JSON: Auth0 would fail the whole import job. ``parse_constant`` raising would lose our place in
    an array, so it only raises a flag, checked after each value.
    """

    def __init__(self) -> None:
        self.non_finite = False
        self._json = json.JSONDecoder(parse_constant=self._mark)

    def _mark(self, name: str) -> None:
        self.non_finite = True

    def decode(self, text: str) -> Any:
        self.non_finite = False
        return self._json.decode(text)

    def raw_decode(self, text: str, pos: int) -> tuple[Any, int]:
        self.non_finite = False
        return self._json.raw_decode(text, pos)


def source_key(user: Mapping[str, Any]) -> str:
    """The key a file user is tracked by: ``"auth0|" + user_id``, else ``"email:" + email``.

    File users have no ``auth0|`` source id of their own; their ``user_id`` (given without the
    prefix, as the import wants it) becomes one so the ledger can treat them like exported users.
    An id already carrying ``auth0|`` is not prefixed twice. Users without an id fall back to the
    lower-cased e-mail. Raises ``ValueError`` for a user with neither (``iter_users_file`` never
    yields one).

    >>> source_key({"user_id": "abc", "email": "A@x.io"}), source_key({"email": "A@x.io"})
    ('auth0|abc', 'email:a@x.io')
    """
    user_id = user.get("user_id")
    if user_id is not None and user_id != "":
        text = str(user_id)
        return text if text.startswith("auth0|") else "auth0|" + text
    email = user.get("email")
    if isinstance(email, str) and email:
        return "email:" + email.lower()
    raise ValueError("the user has neither user_id nor email")


def credential_of(user: Mapping[str, Any]) -> dict[str, Any] | None:
    """The user's own import credential (``password_hash`` and/or ``custom_password_hash``).

    File users bring their hash inside the record; the transform takes the credential as a
    separate argument (as exported users get theirs from the hash file), so this lifts it out.
    Both keys are returned when both are present, so that the import schema reports the
    conflict instead of this function choosing one silently.
    """
    credential = {k: user[k] for k in ("password_hash", "custom_password_hash") if user.get(k) is not None}
    return credential or None


def iter_users_file(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]] | LineProblem]:
    """Yield ``(ordinal, user)`` or :class:`LineProblem` for each user of a JSON-array or NDJSON file.

    The format is told by the first non-blank character (``[`` means an array). Plain and gzip
    files are both read. Raises :class:`InputError` when the file cannot be read or an array's
    syntax is broken.
    """
    try:
        stream = open_input(path)
    except OSError as exc:
        raise InputError(f"cannot read the users file {os.fspath(path)}: {exc.strerror}") from exc
    with stream:
        try:
            if _first_char(stream) == "[":
                with io.TextIOWrapper(stream, encoding="utf-8-sig") as text:  # closes the stream too
                    yield from _iter_array(text, os.fspath(path))
            else:
                yield from _iter_ndjson(stream)
        except UnicodeDecodeError as exc:
            raise InputError(f"the users file {os.fspath(path)} is not valid UTF-8") from exc
        except (OSError, EOFError) as exc:  # includes a corrupt or truncated gzip file
            raise InputError(f"cannot read the users file {os.fspath(path)}: {exc}") from exc


def _first_char(stream: IO[bytes]) -> str:
    """Peek at the first non-blank character without consuming it (rewinds the stream)."""
    first = ""
    head = stream.read(4096).removeprefix(b"\xef\xbb\xbf")
    while head:
        stripped = head.lstrip(b" \t\r\n")
        if stripped:
            first = chr(stripped[0])
            break
        head = stream.read(4096)
    stream.seek(0)
    return first


def _user(ordinal: int, obj: Any, unit: str, non_finite: bool) -> tuple[int, dict[str, Any]] | LineProblem:
    if not isinstance(obj, dict):
        return LineProblem(ordinal, "not a JSON object", unit=unit)
    try:
        source_key(obj)
    except ValueError:
        return LineProblem(ordinal, "no user_id and no email: the user cannot be identified", unit=unit)
    if non_finite:
        return LineProblem(ordinal, "contains NaN or Infinity, which JSON does not allow", unit=unit)
    return ordinal, obj


def _iter_ndjson(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]] | LineProblem]:
    decoder = _Decoder()
    for line_no, raw in enumerate(stream, start=1):
        if line_no == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        try:
            obj = decoder.decode(raw.decode("utf-8"))
        except UnicodeDecodeError:
            yield LineProblem(line_no, "not valid UTF-8")
            continue
        except ValueError:
            # Deliberately not the decoder's message: the line may hold a hash.
            yield LineProblem(line_no, "not valid JSON")
            continue
        yield _user(line_no, obj, "line", decoder.non_finite)


def _iter_array(text: IO[str], name: str) -> Iterator[tuple[int, dict[str, Any]] | LineProblem]:
    reader = _ArrayReader(text)
    if reader.peek() != "[":
        raise InputError(f"the users file {name} does not start with '['")
    reader.advance()
    ordinal = 0
    if reader.peek() == "]":
        reader.advance()
    else:
        while True:
            ordinal += 1
            try:
                obj = reader.value()
            except ValueError:
                raise InputError(
                    f"the users file {name}, user {ordinal}: not valid JSON (or larger than "
                    f"{_MAX_ELEMENT_CHARS >> 20} MB); the rest of the array cannot be read"
                ) from None
            yield _user(ordinal, obj, "user", reader.non_finite)
            separator = reader.peek()
            reader.advance()
            if separator == "]":
                break
            if separator != ",":
                raise InputError(
                    f"the users file {name}: expected ',' or ']' after user {ordinal}; "
                    "the rest of the array cannot be read"
                )
    if reader.peek() != "":
        raise InputError(f"the users file {name}: unexpected content after the closing ']'")


class _ArrayReader:
    """A sliding window over a text stream, decoding one JSON value at a time.

    ``raw_decode`` needs the whole value in the buffer; when it fails, or when a number ends
    exactly at the buffer's end (it might continue), more text is read and the value retried.
    The retry costs one partial value per chunk, which is negligible for 1 MB chunks.
    """

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._decoder = _Decoder()

    @property
    def non_finite(self) -> bool:
        """Whether the last value held ``NaN`` or ``Infinity``."""
        return self._decoder.non_finite

    def _more(self) -> bool:
        chunk = self._text.read(_CHUNK_CHARS)
        if not chunk:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character, or ``""`` at the end of the file."""
        while True:
            match = _WS.match(self._buf, self._pos)
            assert match is not None  # the pattern matches the empty string
            self._pos = match.end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def advance(self) -> None:
        self._pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except ValueError:
                if self._eof or len(self._buf) - self._pos > _MAX_ELEMENT_CHARS or not self._more():
                    raise
                continue
            if end == len(self._buf) and not self._eof and self._more():
                continue  # a number or literal cut by the chunk boundary may go on
            self._pos = end
            return obj
