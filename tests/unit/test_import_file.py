"""Packing import records into bulk-import files: limits, fullness, fidelity, oversize, splitting."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from auth0_migrate.formats.import_file import (
    ENVELOPE_ALLOWANCE,
    FILE_BUDGET,
    MAX_REQUEST_BYTES,
    encode_file,
    encode_record,
    multipart_envelope,
    pack_files,
)

LIMIT = 512_000  # "500 KB": the 413 names 512000


def user(n: int, pad: int = 800) -> dict[str, Any]:
    """About 1 KB once encoded, with non-ASCII text so bytes and characters differ."""
    return {
        "email": f"user{n}@example.com",
        "email_verified": n % 2 == 0,
        "given_name": "Zoë",
        "family_name": "Ñandú",
        "password_hash": "$2b$10$" + "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
        "user_metadata": {"bio": "é" * (pad // 2)},
    }


def records(count: int, pad: int = 800) -> list[tuple[str, dict[str, Any]]]:
    return [(f"auth0|{n:024x}", user(n, pad)) for n in range(count)]


# The budget -------------------------------------------------------------------------------------


def test_budget_leaves_room_for_the_multipart_envelope_and_stays_near_the_limit() -> None:
    assert MAX_REQUEST_BYTES == LIMIT - 1
    assert FILE_BUDGET + ENVELOPE_ALLOWANCE <= LIMIT - 1
    assert len(multipart_envelope()) <= ENVELOPE_ALLOWANCE
    assert FILE_BUDGET >= 0.97 * LIMIT


def test_a_request_httpx_really_builds_fits_the_allowance() -> None:
    """The same fields the SDK sends (data parts + file part), measured, with a long external_id."""
    body = b"[" + b"x" * 1000 + b"]"
    for filename in ("upload", "users-000001.json", "f" * 128):
        request = httpx.Request(
            "POST",
            "https://tenant.example/api/v2/jobs/users-imports",
            data={
                "connection_id": "con_" + "A" * 16,
                "upsert": False,
                "external_id": "e" * 64,
                "send_completion_email": False,
            },
            files={"users": (filename, body, "application/octet-stream")},
        )
        envelope = len(request.read()) - len(body)
        assert envelope <= len(multipart_envelope())
        assert FILE_BUDGET + envelope < LIMIT


# Packing ----------------------------------------------------------------------------------------


def test_no_body_over_budget_and_full_files_over_90_percent() -> None:
    files = list(pack_files(records(2000)))
    assert len(files) >= 3
    assert all(len(f.body) <= FILE_BUDGET and not f.oversize for f in files)
    assert all(len(f.body) >= 0.9 * LIMIT for f in files[:-1])


def test_bodies_parse_back_to_the_same_records_in_order() -> None:
    given = records(1500)
    files = list(pack_files(given))
    assert [k for f in files for k in f.keys] == [k for k, _ in given]
    assert [u for f in files for u in json.loads(f.body)] == [r for _, r in given]
    for f in files:
        assert len(json.loads(f.body)) == len(f.keys) == len(f)


def test_encode_file_rebuilds_the_packed_body_byte_for_byte() -> None:
    given = records(700)
    for packed in pack_files(given, max_bytes=100_000):
        index = {k: r for k, r in given}
        assert encode_file(index[k] for k in packed.keys) == packed.body


def test_body_is_compact_utf8() -> None:
    (packed,) = pack_files([("k", {"email": "a@b.co", "name": "Zoë"})])
    assert packed.body == '[{"email":"a@b.co","name":"Zoë"}]'.encode()


@pytest.mark.parametrize("max_bytes", [3000, 4096, 10_000])
def test_files_are_filled_greedily_to_the_byte(max_bytes: int) -> None:
    given = records(200, pad=100)
    files = list(pack_files(given, max_bytes=max_bytes))
    sizes = [len(encode_record(r)) for _, r in given]
    start = 0
    for f in files:
        assert len(f.body) <= max_bytes
        end = start + len(f.keys)
        assert len(f.body) == 2 + sum(sizes[start:end]) + len(f.keys) - 1
        if end < len(given):  # the next record would not have fitted
            assert len(f.body) + 1 + sizes[end] > max_bytes
        start = end
    assert start == len(given)


def test_a_record_exactly_filling_the_file_fits() -> None:
    part = encode_record(user(0))
    (packed,) = pack_files([("k", user(0))], max_bytes=len(part) + 2)
    assert not packed.oversize and len(packed.body) == len(part) + 2


def test_oversize_record_goes_alone_and_is_flagged() -> None:
    big = {"email": "big@example.com", "user_metadata": {"blob": "x" * 5000}}
    given = records(3, pad=100) + [("auth0|big", big)] + records(2, pad=100)
    files = list(pack_files(given, max_bytes=4000))
    assert [(f.keys, f.oversize) for f in files] == [
        ([k for k, _ in given[:3]], False),
        (["auth0|big"], True),
        ([k for k, _ in given[4:]], False),
    ]
    assert json.loads(files[1].body) == [big]


def test_packing_is_streaming() -> None:
    produced = 0

    def source() -> Any:
        nonlocal produced
        for key, record in records(10_000):
            produced += 1
            yield key, record

    first = next(iter(pack_files(source())))
    assert produced <= len(first.keys) + 1  # only the file being filled was drawn from the source


def test_empty_input_gives_no_files() -> None:
    assert list(pack_files([])) == []


def test_lone_surrogates_still_make_valid_json() -> None:
    (packed,) = pack_files([("k", {"email": "a@b.co", "name": "bad \ud800 text"})])
    assert json.loads(packed.body) == [{"email": "a@b.co", "name": "bad \ud800 text"}]


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        list(pack_files([("k", {"email": "a@b.co", "app_metadata": {"x": float("nan")}})]))


def test_repr_hides_the_body() -> None:
    (packed,) = pack_files(records(2))
    assert "$2b$10$" not in repr(packed) and "users=2" in repr(packed)


def test_docstring_examples_hold() -> None:
    import doctest

    from auth0_migrate.formats import import_file as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_the_sizer_decides_as_the_packer_packs() -> None:
    """FileSizer (the export stage's packer, on sizes alone) closes the same files at the same records, each of the
    size the packer's body has: records of random sizes, some larger than a file."""
    import random

    from auth0_migrate.formats.import_file import FilePacker, FileSizer

    rng = random.Random(7)
    parts = [(str(n), b"x" * rng.choice([rng.randint(1, 300), rng.randint(300, 2000), 5000])) for n in range(3000)]
    packer, sizer = FilePacker(4000), FileSizer(4000)
    packed, sized = [], []
    for key, part in parts:
        packed += packer.add(key, part)
        sized += sizer.add(key, len(part))
    packed += packer.finish()
    sized += sizer.finish()
    assert [(f.keys, len(f.body), f.oversize) for f in packed] == [(f.keys, f.size, f.oversize) for f in sized]
    assert sum(f.oversize for f in sized) > 10 and len(sized) > 100
