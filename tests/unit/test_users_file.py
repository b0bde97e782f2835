"""--from-file: JSON arrays and NDJSON of import-shaped users, streamed, with ordinals and keys."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from auth0_migrate.errors import InputError
from auth0_migrate.formats import users_file
from auth0_migrate.formats.hash_file import LineProblem
from auth0_migrate.formats.users_file import credential_of, iter_users_file, source_key

ARGON = {
    "algorithm": "argon2",
    "hash": {"value": "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "encoding": "utf8"},
}
USERS: list[dict[str, Any]] = [
    {"email": "ann@example.com", "user_id": "legacy-1", "custom_password_hash": ARGON, "given_name": "Änn"},
    {"email": "Bob@Example.com", "email_verified": True},
    {
        "email": "cy@example.com",
        "user_id": "legacy-3",
        "custom_password_hash": {
            "algorithm": "md5",
            "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"},
        },
    },
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def users_only(items: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    return [i for i in items if isinstance(i, tuple)]


# Formats ----------------------------------------------------------------------------------------


def test_json_array_gives_users_with_1_based_ordinals(tmp_path: Path) -> None:
    path = write(tmp_path / "u.json", json.dumps(USERS, indent=2))
    assert list(iter_users_file(path)) == [(1, USERS[0]), (2, USERS[1]), (3, USERS[2])]


def test_ndjson_ordinal_is_the_line_number(tmp_path: Path) -> None:
    path = write(
        tmp_path / "u.ndjson", "\n".join(json.dumps(u) for u in USERS[:2]) + "\n\n" + json.dumps(USERS[2])
    )
    assert list(iter_users_file(path)) == [(1, USERS[0]), (2, USERS[1]), (4, USERS[2])]


def test_empty_array_and_empty_file(tmp_path: Path) -> None:
    assert list(iter_users_file(write(tmp_path / "a.json", " [ ] \n"))) == []
    assert list(iter_users_file(write(tmp_path / "b.json", ""))) == []


def test_gzip_and_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "u.json.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + json.dumps(USERS).encode()))
    assert [o for o, _ in users_only(list(iter_users_file(tmp_path / "u.json.gz")))] == [1, 2, 3]
    (tmp_path / "u.ndjson").write_bytes(b"\xef\xbb\xbf" + json.dumps(USERS[0]).encode())
    assert users_only(list(iter_users_file(tmp_path / "u.ndjson"))) == [(1, USERS[0])]


def test_array_is_streamed_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny chunks force every value, number and literal to straddle a buffer boundary."""
    monkeypatch.setattr(users_file, "_CHUNK_CHARS", 7)
    users = [
        {
            "email": f"u{n}@example.com",
            "user_id": str(n),
            "app_metadata": {"n": 1234567 * n, "ok": True, "none": None, "f": 0.5},
        }
        for n in range(50)
    ]
    path = write(tmp_path / "u.json", json.dumps(users))
    assert [u for _, u in users_only(list(iter_users_file(path)))] == users


def test_large_array_is_not_loaded_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_file, "_CHUNK_CHARS", 1 << 16)
    path = tmp_path / "u.json"
    with path.open("w") as out:
        out.write("[")
        out.write(
            ",".join(
                json.dumps({"email": f"u{n}@example.com", "user_metadata": {"pad": "x" * 500}})
                for n in range(10_000)
            )
        )
        out.write("]")
    assert path.stat().st_size > 5_000_000
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_users_file(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < 1_000_000, f"peak {peak} bytes: the array was not streamed"


# Problems ---------------------------------------------------------------------------------------


def test_bad_ndjson_lines_are_problems_and_reading_goes_on(tmp_path: Path) -> None:
    secret = "$2b$10$" + "s" * 53
    lines = [
        json.dumps(USERS[0]),
        '{"email": "x@y.z", "password_hash": "' + secret + '"',  # unterminated
        "[1]",
        '{"user_metadata": {}}',
        '{"email": "n@example.com", "app_metadata": {"v": NaN}}',
        json.dumps(USERS[1]),
    ]
    items = list(iter_users_file(write(tmp_path / "u.ndjson", "\n".join(lines))))
    problems = [i for i in items if isinstance(i, LineProblem)]
    assert [str(p) for p in problems] == [
        "line 2: not valid JSON",
        "line 3: not a JSON object",
        "line 4: no user_id and no email: the user cannot be identified",
        "line 5: contains NaN or Infinity, which JSON does not allow (user email:n@example.com)",
    ]
    assert all(secret not in str(p) and secret not in repr(p) for p in problems)
    assert [o for o, _ in users_only(items)] == [1, 6]


def test_array_element_problems_name_the_user_position(tmp_path: Path) -> None:
    text = json.dumps([USERS[0], "not a user", {"nickname": "anon"}, USERS[1]])
    text = text.replace('"given_name"', '"app_metadata": {"x": Infinity}, "given_name"')
    items = list(iter_users_file(write(tmp_path / "u.json", text)))
    assert [str(i) for i in items if isinstance(i, LineProblem)] == [
        "user 1: contains NaN or Infinity, which JSON does not allow (user auth0|legacy-1)",
        "user 2: not a JSON object",
        "user 3: no user_id and no email: the user cannot be identified",
    ]
    assert [o for o, _ in users_only(items)] == [4]


@pytest.mark.parametrize(
    "text",
    [
        '[{"email": "a@b.co"} {"email": "c@d.co"}]',
        '[{"email": "a@b.co"}, {"email": ',
        '[{"email": "a@b.co"}] x',
    ],
)
def test_broken_array_syntax_raises_input_error_without_quoting(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError) as caught:
        list(iter_users_file(write(tmp_path / "u.json", text)))
    assert "a@b.co" not in str(caught.value)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(iter_users_file(tmp_path / "absent.json"))


def test_invalid_utf8_in_an_array_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "u.json").write_bytes(b'[{"email": "\xff@b.co"}]')
    with pytest.raises(InputError):
        list(iter_users_file(tmp_path / "u.json"))


# Keys and credentials ---------------------------------------------------------------------------


def test_source_key_prefers_user_id_then_lower_cased_email() -> None:
    assert source_key({"user_id": "legacy-1", "email": "A@B.co"}) == "auth0|legacy-1"
    assert source_key({"user_id": "auth0|abc"}) == "auth0|abc"
    assert source_key({"user_id": 42, "email": "A@B.co"}) == "auth0|42"
    assert source_key({"email": "Bob@Example.com"}) == "email:bob@example.com"
    assert source_key({"user_id": "", "email": "Bob@Example.com"}) == "email:bob@example.com"
    with pytest.raises(ValueError):
        source_key({"nickname": "nobody"})


def test_credential_of_lifts_any_algorithm_out_of_the_user() -> None:
    assert credential_of(USERS[0]) == {"custom_password_hash": ARGON}
    assert credential_of(USERS[1]) is None
    both = {"email": "a@b.co", "password_hash": "h", "custom_password_hash": ARGON}
    assert credential_of(both) == {"password_hash": "h", "custom_password_hash": ARGON}


def test_docstring_examples_hold() -> None:
    import doctest

    from auth0_migrate.formats import users_file as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    data = gzip.compress(("\n".join(json.dumps(u) for u in USERS * 200)).encode())
    (tmp_path / "u.ndjson.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError):
        list(iter_users_file(tmp_path / "u.ndjson.gz"))


def test_leading_blank_space_longer_than_a_read_still_finds_the_array(tmp_path: Path) -> None:
    path = write(tmp_path / "u.json", " " * 10_000 + "\n" + json.dumps(USERS))
    assert [o for o, _ in users_only(list(iter_users_file(path)))] == [1, 2, 3]
