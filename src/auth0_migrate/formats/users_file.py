"""A users file (``--from-file``, the export stage's alternative): users from a file, not a bulk export.

Why this module exists
----------------------
Users do not always come from another Auth0 connection. An owner moving from another system (or
re-running a migration from a prepared file) has them in Auth0's own bulk-import shape: a JSON
array, or NDJSON, of objects with ``email``, profile fields, ``user_id`` without ``auth0|``, and
a ``password_hash`` or ``custom_password_hash`` of any algorithm Auth0 imports (reference §2.6).
This module reads such a file as a stream of ``(ordinal, user)`` pairs so the rest of the
pipeline treats those users like exported ones.

* NDJSON is read line by line; the ordinal is the line number, and a bad line becomes a
  :class:`~auth0_migrate.stages.hashes.LineProblem` while the read goes on. A line whose first
  non-blank character is ``#`` is a comment (no JSON value starts so): the retry file
  (``--failed-users``, :mod:`~auth0_migrate.formats.failed_users`) says each user's reason in one.
* A JSON array is streamed element by element with :meth:`json.JSONDecoder.raw_decode` over a
  sliding buffer (``ijson`` is not a dependency), so a file of a million users never sits in
  memory whole; the ordinal is the user's 1-based position. An element that is valid JSON but not
  a usable user is a problem and the read goes on; broken JSON syntax inside an array leaves no
  safe place to resume, so it raises :class:`~auth0_migrate.errors.InputError`.
* ``NaN``/``Infinity`` (which Python's json accepts but JSON does not) are refused per user: they
  would make an import file Auth0 cannot parse, failing a whole job of other users.
* A user with neither ``user_id`` nor ``email`` cannot be identified, keyed or imported (Auth0
  requires ``email``), so it is reported here rather than passed on; so is an ``email`` that is
  not a string (named as the field at fault).
* A user nested deeper than :data:`MAX_DEPTH` levels is a problem of its own line, named with the
  field; one so deep that Python's JSON reader gives up (``RecursionError``) is skipped the same
  way, in NDJSON and in arrays alike, so one absurd record never stops the read of the others.
* A file that is one JSON object (``{"users": [...]}``, or any object spread over several lines)
  is refused with :class:`~auth0_migrate.errors.InputError` naming the file (see the choices below).
  So is a file in UTF-16 or UTF-32 (told by its byte-order mark): it would otherwise read as one
  bad line after another.

``--users FILE`` (which users of the source to move, :func:`read_selection`) is read here too: one
e-mail or user id a line, ``#`` comments, UTF-8 with or without a byte-order mark, or UTF-16/32
with one. A line that is not one entry (two entries on a line, text that is neither an e-mail
nor an id) is a :class:`LineProblem`, counted; a file that lists nobody refuses the run.

Choices where Auth0 is silent
-----------------------------
* ``{"users": [...]}`` is refused, not unwrapped. It is the shape of a page of
  ``GET /api/v2/users?include_totals=true`` (with ``start``, ``limit``, ``total``) and of many
  other systems' paged answers: accepting it would quietly migrate one page and say nothing of
  the rest. Auth0's own bulk import takes only an array; unwrapping is one ``jq '.users'``, done
  by the owner who knows whether the page is the whole.
* At most :data:`MAX_DEPTH` (100) levels of nesting in a user record, the record itself being
  level 1. Auth0 documents no depth limit for metadata; the user store behind it is MongoDB (the
  hash file's ``_id.$oid`` shows it), whose documents stop at 100 levels, and orjson, which this
  tool writes import files with, stops at 254. Deeper than that cannot be carried, so the user is
  named instead of crashing the run.

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

import codecs
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Final, TypeAlias

from auth0_migrate.errors import InputError

from .hash_file import READ_ERRORS, LineProblem, open_input

__all__ = ["MAX_DEPTH", "Selection", "UsersFileItem", "check_users_file", "credential_of", "iter_users_file",
           "read_selection", "source_key"]

UsersFileItem: TypeAlias = tuple[int, dict[str, Any]] | LineProblem

#: Read size for arrays; the buffer holds at most this plus one partly read user.
_CHUNK_CHARS: Final = 1 << 20
#: One user larger than this is not a user (Auth0 profiles are limited to about 10 KB); stop
#: growing the buffer rather than read the rest of a broken file into memory.
_MAX_ELEMENT_CHARS: Final = 16 << 20
_WS: Final = re.compile(r"[ \t\r\n]*")
#: Levels of nesting a user record may have, the record itself being level 1 (module docstring).
MAX_DEPTH: Final = 100
_TOO_DEEP_REASON: Final = f"nested more than {MAX_DEPTH} levels deep"
#: Byte-order marks of encodings other than UTF-8, longest first (UTF-32-LE starts like UTF-16-LE).
_WIDE_BOMS: Final = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
#: What separates two entries written on one line of a ``--users`` file.
_SEPARATORS: Final = re.compile(r"[\s,;]+")


class _TooDeep:
    """Stands for an array element too deep for the JSON reader; the element itself was skipped."""


_TOO_DEEP: Final = _TooDeep()


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
    name = os.fspath(path)
    with stream:
        try:
            _refuse_wide_encoding(stream, name)
            if _first_char(stream) == "[":
                with io.TextIOWrapper(stream, encoding="utf-8-sig") as text:  # closes the stream too
                    yield from _iter_array(text, name)
            else:
                _refuse_one_document(stream, name)
                yield from _iter_ndjson(stream)
        except UnicodeDecodeError as exc:
            raise InputError(f"the users file {os.fspath(path)} is not valid UTF-8") from exc
        except READ_ERRORS as exc:  # includes a corrupt or truncated gzip file
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


def check_users_file(path: str | os.PathLike[str]) -> None:
    """Refuse, before anything runs, a ``--from-file`` whose shape is wrong as a whole (see the module notes).

    Reads a line or one document at most; :func:`iter_users_file` checks the same again as it reads.
    """
    name = os.fspath(path)
    try:
        stream = open_input(path)
    except OSError as exc:
        raise InputError(f"cannot read the users file {name}: {exc.strerror}") from exc
    with stream:
        try:
            _refuse_wide_encoding(stream, name)
            if _first_char(stream) != "[":
                _refuse_one_document(stream, name)
        except UnicodeDecodeError as exc:
            raise InputError(f"the users file {name} is not valid UTF-8") from exc
        except READ_ERRORS as exc:
            raise InputError(f"cannot read the users file {name}: {exc}") from exc


def _refuse_wide_encoding(stream: IO[bytes], name: str) -> None:
    """A UTF-16/32 file (told by its byte-order mark) is refused by name rather than read as bad lines."""
    head = stream.read(4)
    stream.seek(0)
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            raise InputError(f"the users file {name} is {encoding.upper()} text; --from-file reads UTF-8: "
                             f"convert it first (iconv -f {encoding.upper()} -t UTF-8)")


def _refuse_one_document(stream: IO[bytes], name: str) -> None:
    """Refuse a file that is one JSON object rather than users: ``{"users": [...]}`` or a pretty-printed object.

    Only two cheap shapes are looked at, so an NDJSON file costs one line of reading: a first line
    that is a whole object holding a ``users`` array, and a first line that is a lone ``{`` (how
    ``json.dump(indent=...)`` and ``jq`` begin an object), which is then read as one document.
    """
    first = b""
    for raw in stream:
        if raw.strip():
            first = raw.removeprefix(b"\xef\xbb\xbf").strip()
            break
    try:
        if first == b"{":
            stream.seek(0)
            text = io.TextIOWrapper(stream, encoding="utf-8-sig")
            try:
                document = _ArrayReader(text).value()
            finally:
                text.detach()  # the caller still owns (and closes) the stream
        else:
            document = json.loads(first) if first.startswith(b"{") else None
    except (ValueError, RecursionError):
        document = None  # not one document: read it line by line, and name the bad lines
    stream.seek(0)
    if not isinstance(document, dict):
        return
    if isinstance(document.get("users"), list) and "email" not in document and "user_id" not in document:
        raise InputError(
            f"the users file {name} is one JSON object holding a \"users\" array, not a list of users. "
            "--from-file takes what Auth0's bulk import takes: a JSON array of users, or one user per line. "
            "Such an object is often one page of a paged answer: if its array holds every user, extract it "
            f"(jq '.users' {name} > users.json) and pass that file")
    if first == b"{":
        raise InputError(f"the users file {name} is one JSON object over several lines; --from-file takes a JSON "
                         "array of users, or NDJSON (one user per line)")


def _deepest_field(user: dict[str, Any]) -> str | None:
    """The top-level field of ``user`` that nests deeper than :data:`MAX_DEPTH`, or None (no recursion)."""
    stack: list[tuple[Any, int, str]] = [(value, 2, key) for key, value in user.items()
                                         if isinstance(value, (dict, list))]
    while stack:
        value, depth, field = stack.pop()
        if depth > MAX_DEPTH:
            return field
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1, field) for child in children if isinstance(child, (dict, list)))
    return None


def _user(ordinal: int, obj: Any, unit: str, non_finite: bool) -> tuple[int, dict[str, Any]] | LineProblem:
    if obj is _TOO_DEEP:
        return LineProblem(ordinal, _TOO_DEEP_REASON, unit=unit)
    if not isinstance(obj, dict):
        return LineProblem(ordinal, "not a JSON object", unit=unit)
    try:
        key: str | None = source_key(obj)
    except ValueError:
        key = None
    email = obj.get("email")
    if email is not None and not isinstance(email, str):
        whose = f" (user {key})" if key else ""
        return LineProblem(ordinal, f"email: expected a string, found {_json_type(email)}{whose}", unit=unit)
    if key is None:
        return LineProblem(ordinal, "no user_id and no email: the user cannot be identified", unit=unit)
    if non_finite:
        return LineProblem(ordinal, f"contains NaN or Infinity, which JSON does not allow (user {key})", unit=unit)
    deep = _deepest_field(obj)
    if deep is not None:
        return LineProblem(ordinal, f"{deep}: {_TOO_DEEP_REASON} (user {key})", user_id=key, unit=unit)
    return ordinal, obj


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _iter_ndjson(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]] | LineProblem]:
    decoder = _Decoder()
    for line_no, raw in enumerate(stream, start=1):
        if line_no == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip() or raw.lstrip().startswith(b"#"):  # `#` lines are comments (a retry file's reasons)
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
        except RecursionError:
            yield LineProblem(line_no, _TOO_DEEP_REASON)
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
            except RecursionError:
                return self._skip_deep_value()
            except ValueError:
                if self._eof or len(self._buf) - self._pos > _MAX_ELEMENT_CHARS or not self._more():
                    raise
                continue
            if end == len(self._buf) and not self._eof and self._more():
                continue  # a number or literal cut by the chunk boundary may go on
            self._pos = end
            return obj

    def _skip_deep_value(self) -> Any:
        """Step over a value too deep to decode, by its brackets alone; :data:`_TOO_DEEP` stands for it.

        Raises ``ValueError`` (as a broken value does) when its end is not within reach.
        """
        while True:
            end = _value_end(self._buf, self._pos)
            if end >= 0:
                self._pos = end
                return _TOO_DEEP
            if len(self._buf) - self._pos > _MAX_ELEMENT_CHARS or not self._more():
                raise ValueError("a value too deep to read, with no end in reach")


_STRUCTURE: Final = re.compile(r'["\\\[\]{}]')


def _value_end(text: str, start: int) -> int:
    """The index just past the array or object starting at ``text[start]``, or -1 if it ends later."""
    depth = 0
    in_string = False
    escaped_until = -1
    for match in _STRUCTURE.finditer(text, start):
        at = match.start()
        if at < escaped_until:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                escaped_until = at + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return at + 1
    return -1


@dataclass(frozen=True, slots=True)
class Selection:
    """The users a ``--users`` file lists: user ids, lower-cased e-mails, and its lines that are not one entry."""

    ids: frozenset[str]
    emails: frozenset[str]
    problems: tuple[LineProblem, ...]


def read_selection(path: str) -> Selection:
    """``--users FILE``: one e-mail or user id a line (``#`` comments allowed), read whole (it is a list of names).

    UTF-8 with or without a byte-order mark, or UTF-16/32 with one. Raises :class:`InputError` when
    the file cannot be read or lists nobody (nothing could run); a line that is not one entry is a
    :class:`LineProblem` and the others are still selected.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("\\ufeffAnn@Example.com\\nauth0|abc  # old account\\nbob@x.io cy@x.io\\n")
    >>> chosen = read_selection(f.name); os.unlink(f.name)
    >>> sorted(chosen.emails), sorted(chosen.ids), [str(p) for p in chosen.problems]
    (['ann@example.com'], ['auth0|abc'], ['line 3: 2 entries on one line; put one e-mail or user id on each line'])
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"cannot read the --users file {path}: {exc.strerror}") from exc
    encoding = next((enc for bom, enc in _WIDE_BOMS if data.startswith(bom)), "utf-8-sig")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise InputError(f"the --users file {path} is not UTF-8 text (nor UTF-16 or UTF-32 with a byte-order "
                         "mark); save it as UTF-8") from None
    if "\x00" in text:
        raise InputError(f"the --users file {path} holds NUL characters: UTF-16 without a byte-order mark? "
                         "Save it as UTF-8")
    ids: set[str] = set()
    emails: set[str] = set()
    problems: list[LineProblem] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        parts = _SEPARATORS.split(entry)
        if len(parts) > 1:
            problems.append(LineProblem(number, f"{len(parts)} entries on one line; put one e-mail or user id on "
                                                "each line"))
        elif "|" in entry:
            ids.add(entry)
        elif "@" in entry:
            emails.add(entry.lower())
        else:
            problems.append(LineProblem(number, f"{entry!r} is neither an e-mail nor a user id (user ids look "
                                                "like auth0|...)"))
    if not ids and not emails:
        why = f"; {len(problems)} lines could not be read, the first: {problems[0]}" if problems else ""
        raise InputError(f"the --users file {path} lists no users{why}: nothing to migrate")
    return Selection(frozenset(ids), frozenset(emails), tuple(problems))
