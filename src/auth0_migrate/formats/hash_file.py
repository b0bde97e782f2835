"""The password-hash file that Auth0 support hands over (reference §3), read by `stages.hashes`.

Why this module exists
----------------------
Auth0 never exposes password hashes through the API. The owner gets them once, through a support
ticket, as a PGP-encrypted NDJSON file; decrypted, each line looks like::

    {"_id":{"$oid":"5dea9f9c82dd7c0e76e4ec93"},"email":"user@example.com","email_verified":false,
     "passwordHash":"$2b$10$...","password_set_date":{"$date":"2019-12-06T18:36:12.412Z"},
     "tenant":"example","connection":"Username-Password-Authentication","_tmp_is_unique":true,
     "identifiers":[{"type":"email","value":"user@example.com","verified":false}],"alt_id":"euclid"}

This module turns that file into :class:`HashRow` values the join can use, and nothing more:

* The join key is ``"auth0|" + (alt_id or _id.$oid)``, the user id the bulk export carries (§3.3).
  The e-mail (lower-cased, from ``identifiers`` when the root ``email`` is missing) comes along
  only as the join's fallback; :attr:`HashRow.connection` is kept so the caller can keep only the
  source connection's rows, because one file may cover several databases.
* The hash is already wrapped in the import credential it will travel as
  (:func:`credential_for_bcrypt`): Auth0's plain ``password_hash`` takes only bcrypt cost 10
  (``$2a$``/``$2b$``); every other bcrypt must go through ``custom_password_hash``.
* The file is read line by line, in constant memory, and a bad line never stops the read: it
  becomes a :class:`LineProblem` that names the line and says what is wrong. Auth0's own sample
  line lacks a comma, so bad lines are expected in real files.
* ``password_set_date`` (``{"$date": "2019-12-06T18:36:12.412Z"}``) says when the hash was taken;
  it is kept as :attr:`HashRow.set_date` so that a user who changed their password after it
  (``last_password_reset`` later) is not imported with the old hash (`stages.transform`).
* Hash material never appears in a problem, a ``repr`` or an exception message: these end up in
  logs, reports and tracebacks, and the file is the most sensitive thing the tool touches.

Example::

    for item in iter_hash_file("hashes.json"):
        if isinstance(item, LineProblem):
            report(str(item))                   # "line 17: not valid JSON"
        elif item.connection == "Username-Password-Authentication":
            hashes[item.user_id] = item

Choices where Auth0 is silent
-----------------------------
- A line with no ``password_set_date`` (or ``null``) is read, with ``set_date`` None: the hash's age is unknown.
  Its user keeps the hash unless they have a ``last_password_reset`` (then the hash may predate it,
  and the user is held back as a stale hash: it is never assumed current).
- A ``password_set_date`` that is present but not ``{"$date": "<ISO 8601 date>"}`` is a bad line
  (like a ``connection`` that is not a string): the line's hash is not used, the problem names the
  line, the user and the field. A date without a time zone is taken as UTC (Auth0 writes UTC).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Final, TypeAlias, TypeVar, cast

import orjson
from isal import igzip, igzip_lib

from auth0_migrate.errors import InputError
from auth0_migrate.formats.pieces import read_pieces, split_lines
from auth0_migrate.passwords import PASSWORD_HASH_PATTERN

__all__ = [
    "HashFileItem",
    "HashLine",
    "HashRow",
    "HashSource",
    "LineProblem",
    "NotBcryptError",
    "credential_for_bcrypt",
    "hash_line_credential",
    "iter_hash_file",
    "iter_hash_piece",
    "iter_hash_piece_lines",
    "read_hash_pieces",
    "open_input",
    "parse_date",
    "plain_credential",
    "plain_credential_json",
]

#: A path, or an already open stream (binary or text) the caller owns and closes.
HashSource: TypeAlias = str | os.PathLike[str] | IO[bytes] | IO[str]

_PASSWORD_HASH_RE: Final = re.compile(PASSWORD_HASH_PATTERN)

#: Any bcrypt ``custom_password_hash`` takes: ``$2a$``, ``$2b$`` or ``$2y$`` (not ``$2$``/``$2x$``,
#: reference §2.7), a two-digit cost and the 22+31 characters of salt and digest.
_BCRYPT_RE: Final = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_BCRYPT_MIN_COST: Final = 4
_BCRYPT_MAX_COST: Final = 31

GZIP_MAGIC: Final = b"\x1f\x8b"
"""The first two bytes of a gzip file (and of each of its members)."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line (or, in a JSON array, a user) of an input file that could not be used.

    ``reason`` says what is wrong without quoting the line, so it never carries hash material;
    ``str(problem)`` gives the report form, ``"line 17: not valid JSON"``. ``user_id`` is set when
    the line was readable enough to say whose it is, so a refused hash can be reported against
    its user rather than as an anonymous line.
    """

    line_no: int
    reason: str
    user_id: str | None = None
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.line_no}: {self.reason}"


@dataclass(frozen=True, slots=True, repr=False)
class HashRow:
    """One usable line of the hash file.

    ``credential`` is ``{"password_hash": h}`` or ``{"custom_password_hash": {...}}``, ready to
    merge into an import record, or ``None`` for a user who has no password (to be reported: a
    user imported without a hash can never be given one later, reference §2.5).

    ``repr`` names the credential's kind only, never its value, because rows end up in
    debugger output and tracebacks.
    """

    line_no: int
    user_id: str
    email: str | None
    connection: str | None
    credential: dict[str, Any] | None
    set_date: str | None = None
    """``password_set_date.$date`` as the file gives it (checked to be a date), or None when absent."""

    def __repr__(self) -> str:
        kind = "None" if self.credential is None else "<" + "|".join(self.credential) + " hidden>"
        return (
            f"HashRow(line_no={self.line_no}, user_id={self.user_id!r}, email={self.email!r}, "
            f"connection={self.connection!r}, credential={kind}, set_date={self.set_date!r})"
        )


HashFileItem: TypeAlias = HashRow | LineProblem


class NotBcryptError(InputError, ValueError):
    """The value is not a bcrypt hash Auth0 can import. The message never quotes the value."""


def credential_for_bcrypt(h: str) -> dict[str, Any]:
    """Wrap a bcrypt hash in the import credential Auth0 accepts for it.

    Auth0's ``password_hash`` field is checked against ``PASSWORD_HASH_PATTERN`` (in practice
    ``$2a$``/``$2b$`` cost 10); any other bcrypt (``$2y$``, cost 12, ...) is refused there but
    accepted as ``custom_password_hash`` with algorithm ``bcrypt`` (reference §2.7). Both log the
    user in with the same password; the plain form is used when allowed because it is what Auth0
    itself stores.

    >>> credential_for_bcrypt("$2y$12$" + "a" * 53)["custom_password_hash"]["algorithm"]
    'bcrypt'

    Raises :class:`NotBcryptError` for anything else; the message does not quote the value.
    """
    plain = _bcrypt_kind(h)
    if plain is None:
        raise NotBcryptError("passwordHash is not a bcrypt hash ($2a$, $2b$ or $2y$) Auth0 can import")
    return _credential(h, plain)


def _bcrypt_kind(h: str) -> bool | None:
    """True for a hash Auth0's ``password_hash`` takes, False for another bcrypt it takes as
    ``custom_password_hash``, None for anything else."""
    if _PASSWORD_HASH_RE.fullmatch(h):
        return True
    match = _BCRYPT_RE.fullmatch(h)
    if match is None or not _BCRYPT_MIN_COST <= int(match.group(1)) <= _BCRYPT_MAX_COST:
        return None
    return False


def _credential(h: str, plain: bool) -> dict[str, Any]:
    if plain:
        return {"password_hash": h}
    return {"custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": h, "encoding": "utf8"}}}


_PLAIN_START: Final = '{"password_hash":"'


def plain_credential_json(h: str) -> str:
    """The JSON of ``{"password_hash": h}`` as ``ledger.dumps`` writes it, for a hash ``password_hash`` takes
    (``PASSWORD_HASH_PATTERN``: ``$``, digits, ASCII letters, ``.`` and ``/``, nothing JSON escapes)."""
    return _PLAIN_START + h + '"}'


def plain_credential(text: str) -> dict[str, Any] | None:
    """The reverse of :func:`plain_credential_json`: ``{"password_hash": h}`` when ``text`` is exactly that JSON
    of a hash ``password_hash`` takes, without parsing it (such an h holds nothing JSON escapes, so the text is
    what ``orjson.loads`` would read); None for anything else."""
    if text.startswith(_PLAIN_START) and text.endswith('"}'):
        value = text[len(_PLAIN_START):-2]
        if _PASSWORD_HASH_RE.fullmatch(value) is not None:
            return {"password_hash": value}
    return None


def parse_date(value: Any) -> datetime | None:
    """An Auth0 ISO 8601 date (``2019-12-06T18:36:12.412Z``) as an aware datetime; None if it is not one.

    A date without a time zone is taken as UTC.

    >>> parse_date("2019-12-06T18:36:12.412Z").year
    2019
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


INFLATE_ERRORS: Final[tuple[type[Exception], ...]] = (
    zlib.error, cast(type[Exception], igzip_lib.IsalError))  # (isal's stubs call it an instance)
"""What inflating damaged gzip data raises (ISA-L's error, or zlib's)."""
READ_ERRORS: Final[tuple[type[Exception], ...]] = (OSError, EOFError, *INFLATE_ERRORS)
"""What reading an input file from :func:`open_input` may raise besides a line's own problem: the file cannot be
read, or its gzip is truncated (EOFError) or corrupt (the inflater's error)."""


def open_input(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open an input file for binary reading, gunzipping it when it is gzip (as exports are).

    Shared by the file-reading stages so that ``file.ndjson`` and ``file.ndjson.gz`` both work. The gzip is
    inflated by ISA-L (`isal`, the stdlib's interface over a faster inflater): a million users' export in 0.9 s
    of CPU against 3.1 s with `gzip`, and the export stage's process reads all of it.
    """
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return cast(IO[bytes], igzip.open(path, "rb"))  # type: ignore[no-untyped-call]
    return open(path, "rb")  # the caller closes it


def iter_hash_file(source: HashSource) -> Iterator[HashRow | LineProblem]:
    """Yield a :class:`HashRow` or a :class:`LineProblem` for each non-blank line, in file order.

    Streams: one line in memory at a time, so a file of millions of lines costs nothing extra.
    Never stops on a bad line. ``source`` is a path (plain or gzip) or an open stream; a stream
    is left open. A file that cannot be opened or decompressed raises
    :class:`~auth0_migrate.errors.InputError`.
    """
    if isinstance(source, (str, os.PathLike)):
        for first, piece in read_hash_pieces(os.fspath(source)):
            yield from iter_hash_piece(piece, first)
    else:
        yield from _iter_lines(source, 1, _row)


def read_hash_pieces(path: str) -> Iterator[tuple[int, bytes]]:
    """The hash file (plain or gzip) in pieces of whole lines, each with its first line's number, for
    :func:`iter_hash_piece` (here or in a worker process); raises :class:`InputError` as
    :func:`iter_hash_file` does."""
    try:
        stream = open_input(path)
    except OSError as exc:
        raise InputError(f"cannot read the hash file {path}: {exc.strerror}") from exc
    with stream:
        try:
            yield from read_pieces(stream, universal=False)
        except READ_ERRORS as exc:  # a corrupt or truncated gzip file: no line to blame
            raise InputError(f"cannot read the hash file {path}: {exc}") from exc


def iter_hash_piece(piece: bytes, first: int) -> Iterator[HashRow | LineProblem]:
    """:func:`iter_hash_file` of one piece from :func:`read_hash_pieces`: the same rows and problems, numbered
    as in the whole file."""
    return _iter_lines(split_lines(piece, universal=False), first, _row)


HashLine: TypeAlias = tuple[int, str, "str | None", "str | None", "str | None", bool, "str | None"]
"""A usable line as :func:`iter_hash_piece_lines` gives it: line_no, user_id, email, connection, the bcrypt hash
(or None), whether ``password_hash`` takes it (else it travels as ``custom_password_hash``), set_date."""


def iter_hash_piece_lines(piece: bytes, first: int) -> Iterator[HashLine | LineProblem]:
    """:func:`iter_hash_piece` with each row as a plain tuple (:data:`HashLine`) and its hash not yet wrapped in
    a credential: what the hash load writes to the ledger, for less work a line than a :class:`HashRow`."""
    return _iter_lines(split_lines(piece, universal=False), first, _line)


def hash_line_credential(line: HashLine) -> dict[str, Any] | None:
    """The credential of a :data:`HashLine`, as its :class:`HashRow` holds it."""
    return None if line[4] is None else _credential(line[4], line[5])


_Item = TypeVar("_Item")


def _iter_lines(lines: Iterable[bytes | str], first: int,
                build: Callable[[int, Any], _Item | LineProblem]) -> Iterator[_Item | LineProblem]:
    for line_no, line in enumerate(lines, start=first):
        if line_no == 1:
            line = (
                line.removeprefix("\ufeff") if isinstance(line, str) else line.removeprefix(b"\xef\xbb\xbf")
            )
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            # Let the standard parser say what is wrong, never quoting the line (it may hold a hash).
            try:
                obj = json.loads(line)
            except UnicodeDecodeError:
                yield LineProblem(line_no, "not valid UTF-8")
                continue
            except ValueError:
                yield LineProblem(line_no, "not valid JSON")
                continue
        yield build(line_no, obj)


def _row(line_no: int, obj: Any) -> HashRow | LineProblem:
    found = _line(line_no, obj)
    if isinstance(found, LineProblem):
        return found
    return HashRow(line_no, found[1], found[2], found[3], hash_line_credential(found), found[6])


def _line(line_no: int, obj: Any) -> HashLine | LineProblem:
    if not isinstance(obj, dict):
        return LineProblem(line_no, "not a JSON object")
    user_id = _user_id(line_no, obj)

    if isinstance(user_id, LineProblem):
        return user_id
    email = obj.get("email")
    if not email:
        email = _identifier_email(obj.get("identifiers"))
    elif not isinstance(email, str):
        return LineProblem(line_no, "email is not a string", user_id)
    connection = obj.get("connection")
    if connection is not None and not isinstance(connection, str):
        return LineProblem(line_no, "connection is not a string", user_id)

    password_hash = obj.get("passwordHash")
    plain = False
    if password_hash is not None:
        if not isinstance(password_hash, str):
            return LineProblem(line_no, "passwordHash is not a string", user_id)
        kind = _bcrypt_kind(password_hash)
        if kind is None:
            return LineProblem(line_no, "passwordHash is not a bcrypt hash ($2a$, $2b$ or $2y$)", user_id)
        plain = kind
    set_date: str | None = None
    stamp = obj.get("password_set_date")
    if stamp is not None:
        set_date = stamp.get("$date") if isinstance(stamp, dict) else None
        if parse_date(set_date) is None:
            return LineProblem(line_no, 'password_set_date is not {"$date": "<ISO 8601 date>"}', user_id)
    return line_no, user_id, email.lower() if email else None, connection, password_hash, plain, set_date


def _user_id(line_no: int, obj: dict[str, Any]) -> str | LineProblem:
    """``"auth0|" + (alt_id or _id.$oid)``: alt_id is the custom id of users created with one.

    A present but unusable ``alt_id`` is a problem, not a reason to fall back to ``_id``: the
    user's id is built from the alt_id, so the fallback would join the hash to nobody, silently.
    """
    alt_id = obj.get("alt_id")
    if alt_id is not None:
        if isinstance(alt_id, str) and alt_id:
            return "auth0|" + alt_id
        return LineProblem(line_no, "alt_id is not a non-empty string")
    internal = obj.get("_id")
    oid = internal.get("$oid") if isinstance(internal, dict) else None
    if isinstance(oid, str) and oid:
        return "auth0|" + oid
    return LineProblem(line_no, "no alt_id and no _id.$oid: the user id cannot be built")


def _identifier_email(identifiers: Any) -> str | None:
    """Newer files may hold the e-mail only in ``identifiers`` (reference §3.2)."""
    if not isinstance(identifiers, list):
        return None
    for identifier in identifiers:
        if isinstance(identifier, dict) and identifier.get("type") == "email":
            value = identifier.get("value")
            if isinstance(value, str) and value:
                return value
    return None
