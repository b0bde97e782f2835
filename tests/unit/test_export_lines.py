"""The export's lines as `formats.export_file.parse_export_lines` reads a piece: numbered as universal newlines
number them (LF, CR and CRLF each end a line), whichever way the piece is split (a piece without a CR is split
on LF alone, the cheap way); and the collector pause the per-user work runs under (`auth0_migrate.collector`)."""

from __future__ import annotations

import gc
import io
import random
import weakref

import pytest

from auth0_migrate import collector
from auth0_migrate.formats.export_file import parse_export_lines

RECORD = b'{"user_id":"auth0|1","email":"a@b.co"}'


def universal_lines(piece: bytes) -> list[bytes]:
    """The lines a text file opened with universal newlines gives, without their ends (the reference)."""
    text = io.StringIO(piece.decode("latin-1"), newline=None).read()
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.encode("latin-1") for line in lines]


def expected(piece: bytes, first: int) -> list[tuple[int, bytes, bool]]:
    return [(number, line.strip(), line.strip() == RECORD) for number, line in enumerate(universal_lines(piece), first)
            if line.strip()]


PIECES = [
    b"", b"\n", b"\n\n", RECORD, RECORD + b"\n", RECORD + b"\n" + RECORD, RECORD + b"\n\n" + RECORD + b"\n",
    RECORD + b"\r\n" + RECORD + b"\r\n", RECORD + b"\r" + RECORD + b"\r", RECORD + b"\r\r\n" + RECORD,
    b"\r", b"\r\n", b"\n\r", RECORD + b"\n \t\n" + RECORD + b" \n", b"not json\n" + RECORD + b"\n[1]\n",
    RECORD + b"\x0b" + RECORD + b"\n",  # a vertical tab ends no line of bytes: one line, not JSON
]


@pytest.mark.parametrize("piece", PIECES)
def test_lines_are_numbered_as_universal_newlines_number_them(piece: bytes) -> None:
    got = [(number, text, record is not None) for number, text, record, _ in parse_export_lines(piece, 7)]
    assert got == expected(piece, 7)


def test_random_pieces_are_numbered_as_universal_newlines_number_them() -> None:
    rng = random.Random(3)
    parts = [RECORD, b"", b" ", b"x", b"\n", b"\r", b"\r\n", b"\n\n"]
    with_cr = 0
    for _ in range(2000):
        piece = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        with_cr += b"\r" in piece
        got = [(number, text, record is not None) for number, text, record, _ in parse_export_lines(piece, 1)]
        assert got == expected(piece, 1), piece
    assert 300 < with_cr < 1900  # both ways of splitting were compared


def test_a_bad_line_is_named_by_its_number() -> None:
    found = list(parse_export_lines(b"\r\n".join([RECORD, b"{", b"[1]", RECORD]), 10))
    assert [(n, problem) for n, _, _, problem in found] == [
        (10, None), (11, "export line 11 is not valid JSON"), (12, "export line 12 is not a JSON object"), (13, None)]


def test_the_collector_is_paused_inside_and_on_again_after() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector.paused():
        raise ValueError("the block failed")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_cycles_made_while_paused_are_collected_after() -> None:
    with collector.paused():
        held = weakref.ref(Node())
        assert held() is not None
    gc.collect()
    assert held() is None
