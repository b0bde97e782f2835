"""`jobs.GzipCheck`: a download is whole when its gzip inflates to the end of its last member, whatever the
chunks it arrives in; a body cut short, damaged or followed by bytes that are not gzip is not."""

from __future__ import annotations

import gzip
import os

import pytest

from auth0_migrate.auth0.jobs import CorruptDownload, GzipCheck

TEXT = gzip.compress(os.urandom(200_000).hex().encode())
ZEROS = gzip.compress(b"\0" * 20_000_000)  # about 1,000 to 1: one chunk in gives far more than 64 KB out
TWO_MEMBERS = TEXT + gzip.compress(b'{"user_id": "auth0|1"}\n' * 10_000)


def _check(body: bytes, step: int) -> None:
    check = GzipCheck()
    for i in range(0, len(body), step):
        check.feed(body[i:i + step])
    check.done()


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 16, 1 << 22])
@pytest.mark.parametrize("body", [TEXT, ZEROS, TWO_MEMBERS], ids=["text", "zeros", "two-members"])
def test_a_whole_gzip_passes_in_any_chunks(body: bytes, step: int) -> None:
    if step == 1 and len(body) > 100_000:
        body = gzip.compress(b"a short export\n" * 100)  # (one byte at a time: keep it small)
    _check(body, step)


@pytest.mark.parametrize(("damage", "says"), [
    (lambda b: b[:len(b) // 2], "cut short"),
    (lambda b: b[:-1], "cut short"),  # the last byte of the size in the trailer
    (lambda b: b[:1], "cut short"),  # half the magic number
    (lambda b: b[:5000] + bytes([b[5000] ^ 0xFF]) + b[5001:], "corrupt"),
    (lambda b: b + b"not gzip", "corrupt|cut short"),  # (the reader, igzip, refuses it too)
], ids=["half", "last-byte", "one-byte", "flipped-byte", "trailing-bytes"])
@pytest.mark.parametrize("body", [TEXT, TWO_MEMBERS], ids=["one-member", "two-members"])
def test_a_damaged_gzip_is_refused(body: bytes, damage, says: str) -> None:  # noqa: ANN001
    with pytest.raises(CorruptDownload, match=says):
        _check(damage(body), 1 << 16)


@pytest.mark.parametrize("body", [b'{"user_id": "auth0|1"}\n', b"", b"{"])
def test_a_body_that_is_not_gzip_is_left_to_the_reader(body: bytes) -> None:
    _check(body, 1 << 16)  # plain NDJSON (decoded by httpx from another encoding): the export reader judges it
