"""The support-ticket hash file: join keys, e-mails, credentials, bad lines, and secrecy."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from auth0_migrate.errors import InputError
from auth0_migrate.formats import pieces
from auth0_migrate.formats.export_file import read_export_chunks
from auth0_migrate.formats.hash_file import (
    HashRow,
    LineProblem,
    NotBcryptError,
    credential_for_bcrypt,
    iter_hash_file,
    iter_hash_piece,
    read_hash_pieces,
)
from auth0_migrate.formats.users_file import iter_users_file
from auth0_migrate.tenant.credentials import verify_password

TAIL = "abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./abcde"[:53]
H10 = "$2b$10$" + TAIL
H10A = "$2a$10$" + TAIL
H12 = "$2b$12$" + TAIL
H2Y = "$2y$10$" + TAIL


def line(**fields: Any) -> str:
    base: dict[str, Any] = {
        "_id": {"$oid": "5dea9f9c82dd7c0e76e4ec93"},
        "email_verified": False,
        "email": "User@Example.com",
        "passwordHash": H10,
        "password_set_date": {"$date": "2019-12-06T18:36:12.412Z"},
        "tenant": "example-tenant-name",
        "connection": "Username-Password-Authentication",
        "_tmp_is_unique": True,
        "identifiers": [{"type": "email", "value": "user@example.com", "verified": False}],
    }
    for key, value in fields.items():
        if value is ...:
            base.pop(key, None)
        else:
            base[key] = value
    return json.dumps(base)


def read(*lines: str) -> list[HashRow | LineProblem]:
    return list(iter_hash_file(io.BytesIO(("\n".join(lines) + "\n").encode())))


def only_row(*lines: str) -> HashRow:
    (item,) = read(*lines)
    assert isinstance(item, HashRow), item
    return item


# Join key ---------------------------------------------------------------------------------------


def test_user_id_is_auth0_plus_oid_without_alt_id() -> None:
    assert only_row(line()).user_id == "auth0|5dea9f9c82dd7c0e76e4ec93"


def test_alt_id_wins_over_oid() -> None:
    assert only_row(line(alt_id="euclid")).user_id == "auth0|euclid"


def test_unusable_alt_id_is_a_problem_not_a_silent_fallback() -> None:
    (item,) = read(line(alt_id=42))
    assert isinstance(item, LineProblem) and "alt_id" in item.reason


def test_no_id_at_all_is_a_problem() -> None:
    (item,) = read(line(_id=...))
    assert isinstance(item, LineProblem)
    assert str(item) == "line 1: no alt_id and no _id.$oid: the user id cannot be built"


# E-mail and connection ----------------------------------------------------------------------------


def test_root_email_is_lower_cased() -> None:
    assert only_row(line()).email == "user@example.com"


def test_email_falls_back_to_identifiers() -> None:
    row = only_row(
        line(
            email=...,
            email_verified=...,
            identifiers=[
                {"type": "phone", "value": "+1555"},
                {"type": "email", "value": "Only@Identifiers.io", "verified": True},
            ],
        )
    )
    assert row.email == "only@identifiers.io"


def test_no_email_anywhere_gives_none() -> None:
    assert only_row(line(email=..., identifiers=...)).email is None


def test_connection_is_kept_for_the_callers_filter() -> None:
    rows = read(line(connection="db-a"), line(connection="db-b", alt_id="x"))
    assert [r.connection for r in rows if isinstance(r, HashRow)] == ["db-a", "db-b"]


# Credentials ----------------------------------------------------------------------------------


@pytest.mark.parametrize("h", [H10, H10A])
def test_cost_10_2a_2b_is_a_plain_password_hash(h: str) -> None:
    assert only_row(line(passwordHash=h)).credential == {"password_hash": h}


@pytest.mark.parametrize("h", [H12, H2Y, "$2a$04$" + TAIL, "$2b$31$" + TAIL])
def test_other_bcrypt_goes_custom(h: str) -> None:
    assert only_row(line(passwordHash=h)).credential == {
        "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": h, "encoding": "utf8"}}
    }


@pytest.mark.parametrize(
    "h",
    [
        "$2x$10$" + TAIL,  # $2x$ is not accepted by Auth0
        "$2b$03$" + TAIL,  # cost below bcrypt's minimum
        "$2b$12$" + TAIL[:-1],  # truncated
        H12 + "\n",  # trailing newline must not sneak past a "$" anchor
        H10 + "\n",
        "{SSHA}c2FsdHNhbHRzYWx0",
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
        "",
    ],
)
def test_anything_not_bcrypt_is_refused_naming_the_line_not_the_hash(h: str) -> None:
    items = read(line(alt_id="first"), line(passwordHash=h, alt_id="second"))
    problem = items[1]
    assert isinstance(problem, LineProblem)
    assert problem.line_no == 2
    assert problem.user_id == "auth0|second"
    assert str(problem).startswith("line 2: passwordHash is not a bcrypt hash")
    if h:
        assert h.strip() not in str(problem) and h.strip() not in repr(problem)
    with pytest.raises(NotBcryptError) as caught:
        credential_for_bcrypt(h)
    if h:
        assert h.strip() not in str(caught.value)


def test_real_bcrypt_hashes_log_in_through_the_credential_they_get() -> None:
    cost4 = bcrypt.hashpw(b"s3cret!", bcrypt.gensalt(rounds=4, prefix=b"2b")).decode()
    credential = credential_for_bcrypt(cost4)
    assert "custom_password_hash" in credential
    assert verify_password("s3cret!", credential)
    assert not verify_password("wrong", credential)


def test_user_without_password_is_a_row_with_no_credential() -> None:
    row = only_row(line(passwordHash=...))
    assert row.credential is None and row.user_id == "auth0|5dea9f9c82dd7c0e76e4ec93"


# Bad lines ------------------------------------------------------------------------------------


def test_bad_lines_are_reported_by_number_and_reading_goes_on() -> None:
    broken = line(alt_id="a").replace(', "alt_id"', ' "alt_id"')  # Auth0's own sample lacks this comma
    items = read(
        line(alt_id="a0"),
        "",
        broken,
        line(passwordHash=12345, alt_id="b"),
        "[1, 2]",
        "\xff not json",
        line(alt_id="c"),
    )
    assert [str(i) for i in items if isinstance(i, LineProblem)] == [
        "line 3: not valid JSON",
        "line 4: passwordHash is not a string",
        "line 5: not a JSON object",
        "line 6: not valid JSON",
    ]
    assert [i.user_id for i in items if isinstance(i, HashRow)] == ["auth0|a0", "auth0|c"]
    assert all(H10 not in str(i) and H10 not in repr(i) for i in items)


def test_invalid_utf8_is_a_problem() -> None:
    items = list(iter_hash_file(io.BytesIO(line().encode() + b'\n{"email":"\xff"}\n')))
    assert isinstance(items[0], HashRow)
    assert str(items[1]) == "line 2: not valid UTF-8"


def test_blank_lines_are_skipped_but_counted() -> None:
    items = read("", "   ", line(alt_id="x"))
    assert len(items) == 1 and items[0].line_no == 3


def test_byte_order_mark_is_tolerated() -> None:
    items = list(iter_hash_file(io.BytesIO(b"\xef\xbb\xbf" + line().encode())))
    assert isinstance(items[0], HashRow)


# Secrecy ----------------------------------------------------------------------------------------


def test_repr_hides_the_credential() -> None:
    row = only_row(line(passwordHash=H12))
    text = repr(row) + str(row) + f"{row!r}" + repr([row])
    assert TAIL not in text and "$2b$12$" not in text
    assert "custom_password_hash hidden" in repr(row)
    assert "auth0|5dea9f9c82dd7c0e76e4ec93" in repr(row)


def test_repr_of_a_passwordless_row() -> None:
    assert "credential=None" in repr(only_row(line(passwordHash=...)))


# Sources and streaming -------------------------------------------------------------------------


def test_reads_paths_text_streams_and_gzip(tmp_path: Path) -> None:
    text = line(alt_id="p") + "\n"
    plain = tmp_path / "hashes.json"
    plain.write_text(text)
    packed = tmp_path / "hashes.json.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for source in (plain, str(plain), packed, io.StringIO(text)):
        (row,) = iter_hash_file(source)
        assert isinstance(row, HashRow) and row.user_id == "auth0|p"


def test_stream_is_read_lazily() -> None:
    """An endless file still yields its first rows: nothing is read ahead of the caller."""

    def endless() -> Iterator[bytes]:
        for n in itertools.count():
            yield (line(alt_id=f"u{n}") + "\n").encode()

    first = list(itertools.islice(iter_hash_file(endless()), 3))  # type: ignore[arg-type]
    assert [r.user_id for r in first if isinstance(r, HashRow)] == ["auth0|u0", "auth0|u1", "auth0|u2"]


def test_docstring_examples_hold() -> None:
    import doctest

    from auth0_migrate.formats import hash_file as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(iter_hash_file(tmp_path / "absent.json"))
    data = gzip.compress(("\n".join(line(alt_id=f"u{n}") for n in range(500))).encode())
    (tmp_path / "cut.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError):
        list(iter_hash_file(tmp_path / "cut.json.gz"))


# password_set_date ------------------------------------------------------------------------------


def test_password_set_date_is_kept_with_the_hash() -> None:
    assert only_row(line()).set_date == "2019-12-06T18:36:12.412Z"


@pytest.mark.parametrize("absent", [..., None])
def test_missing_password_set_date_reads_as_unknown(absent: Any) -> None:
    row = only_row(line(password_set_date=absent))
    assert row.set_date is None and row.credential == {"password_hash": H10}


@pytest.mark.parametrize("bad", ["2019-12-06T18:36:12.412Z", {"$date": "yesterday"}, {"$date": 1575657372412},
                                 {"date": "2019-12-06T18:36:12.412Z"}, [1]])
def test_malformed_password_set_date_is_a_problem_naming_user_and_field(bad: Any) -> None:
    (item,) = read(line(password_set_date=bad))
    assert isinstance(item, LineProblem)
    assert item.user_id == "auth0|5dea9f9c82dd7c0e76e4ec93"
    assert "password_set_date" in str(item) and "$2" not in str(item)


@pytest.mark.parametrize("size", [1, 7, 100, 1 << 20])
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_pieces_give_what_the_whole_file_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int,
                                               gzipped: bool) -> None:
    """Read in pieces (as a path is, here or by worker processes), the file gives the rows and problems a line by
    line reading of it gives, numbered alike:
    a byte-order mark, blank and bad lines, CRLF ends, a CR inside a line, no LF after the last line."""
    text = ("\ufeff" + line(_id={"$oid": "a" * 24}) + "\r\n\n   \n{not json\n[1]\n"
            + line(_id={"$oid": "b" * 24}, passwordHash="nope") + "\n"
            + line(_id={"$oid": "c" * 24}).replace(",", ",\r", 1) + "\n"
            + line(_id=..., alt_id="custom-1", email="Other@Example.com") + "\n"
            + "\n".join(line(_id={"$oid": f"{n:024x}"}) for n in range(20)) + "\n" + line(_id={"$oid": "d" * 24}))
    path = tmp_path / ("hashes.ndjson.gz" if gzipped else "hashes.ndjson")
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    monkeypatch.setattr(pieces, "PIECE_BYTES", size)

    whole = list(iter_hash_file(io.BytesIO(data)))  # a stream's lines, one by one
    in_pieces = [item for first, piece in read_hash_pieces(str(path)) for item in iter_hash_piece(piece, first)]

    assert in_pieces == whole
    assert list(iter_hash_file(str(path))) == whole
    assert len([i for i in whole if isinstance(i, HashRow)]) == 24
    assert [i.line_no for i in whole if isinstance(i, LineProblem)] == [4, 5, 6]


@pytest.mark.parametrize("damage", ["cut short", "corrupt"])
def test_pieces_of_a_corrupt_gzip_file_raise_input_error(tmp_path: Path, damage: str) -> None:
    """Cut short (EOFError) or with a broken deflate stream (the inflater's own error, which is not an OSError):
    either is an InputError naming the file, for the hash file, the export and a --from-file users file."""
    data = gzip.compress(b"".join(b'{"n":%d}\n' % n for n in range(2000)))
    data = data[:-20] if damage == "cut short" else data[:40] + bytes(b ^ 0x5A for b in data[40:80]) + data[80:]
    path = tmp_path / "hashes.ndjson.gz"
    path.write_bytes(data)
    with pytest.raises(InputError, match="cannot read the hash file"):
        list(read_hash_pieces(str(path)))
    with pytest.raises(InputError, match="cannot read the export file"):
        list(read_export_chunks(str(path)))
    with pytest.raises(InputError, match="cannot read the users file"):
        list(iter_users_file(str(path)))


# The hash load's own reading (`stages.hashes._hash_piece`) -------------------------------------------------

LINE_CHANGES: list[dict[str, Any]] = [
    {}, {"passwordHash": H10A}, {"passwordHash": H12}, {"passwordHash": H2Y}, {"passwordHash": None},
    {"passwordHash": ...}, {"passwordHash": "$2b$10$" + "é" * 53}, {"passwordHash": "$2b$1٠$" + TAIL},
    {"passwordHash": "$2b$١٢$" + TAIL}, {"passwordHash": 10}, {"passwordHash": "x"}, {"alt_id": "custom"},
    {"alt_id": ""}, {"_id": {}}, {"email": ...}, {"email": 3}, {"email": "ÉMILE@Exämple.com"},
    {"connection": "Other-DB"}, {"connection": None}, {"connection": 7}, {"password_set_date": None},
    {"password_set_date": {"$date": "x"}}, {"password_set_date": ...}, {"identifiers": []},
]


def test_the_hash_loads_rows_are_the_hash_files_rows(tmp_path: Path) -> None:
    """`_hash_piece` (plain tuples, a plain credential's JSON written without encoding it) against the rows
    `iter_hash_piece` gives, encoded by `ledger.dumps`, line by line and at random."""
    from auth0_migrate.ledger import dumps
    from auth0_migrate.stages.hashes import _hash_piece

    rng = random.Random(11)
    lines = [line(**changes) for changes in LINE_CHANGES]
    for _ in range(500):
        changes: dict[str, Any] = {}
        for _ in range(rng.randint(0, 3)):
            changes.update(rng.choice(LINE_CHANGES))
        lines.append(line(**changes) if rng.random() < 0.95 else rng.choice(["", "{", "[1]", "null"]))
    piece = ("\n".join(lines) + "\n").encode()
    items = list(iter_hash_piece(piece, 3))
    found = _hash_piece("hashes.ndjson", "Username-Password-Authentication", piece, 3)
    rows = [(r.user_id, r.email, None if r.credential is None else dumps(r.credential), r.line_no, r.set_date)
            for r in items if isinstance(r, HashRow) and r.connection == "Username-Password-Authentication"]
    assert found.rows == rows
    assert [int(ref) for _, ref, _ in found.problems] == [p.line_no for p in items if isinstance(p, LineProblem)]
    assert found.other_connections == sum(isinstance(r, HashRow) and r.connection != "Username-Password-Authentication"
                                          for r in items)
    kinds = {json.loads(r[2]).popitem()[0] if r[2] else None for r in found.rows}
    assert kinds == {"password_hash", "custom_password_hash", None} and len(found.problems) > 50
