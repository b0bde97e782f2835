"""The validator's fast path (``import_schema.plainly_valid``) against its rule-by-rule checks (``_problems``).

``validate_import_user`` answers "valid" from the fast path alone, so the fast path must never pass a
user the full checks refuse; and whatever it does, ``validate_import_user`` must return exactly what
the full checks return (codes, paths, messages, order). Every rule the fast path tests inline is
broken here on its own, at its edges, and then at random (seeded) on a few thousand mutated users.
The benchmark's own users must take the fast path, or it saves nothing.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import random
import sys
from typing import Any

import pytest

from auth0_migrate import import_schema
from auth0_migrate.formats.hash_file import HashRow, iter_hash_file
from auth0_migrate.formats.import_record import to_import_record
from auth0_migrate.import_schema import _problems, plainly_valid, validate_import_user

from .test_import_schema import BCRYPT_10, BCRYPT_12

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


#: The common shape: what the benchmark and most exports produce.
PLAIN: dict[str, Any] = {
    "email": "grace.hopper.7@example.com",
    "email_verified": True,
    "phone_number": "+447700900007",
    "phone_verified": False,
    "given_name": "Grace",
    "family_name": "Hopper",
    "name": "Grace Hopper",
    "nickname": "grace7",
    "picture": "https://s.gravatar.com/avatar/0000000453845418?s=480&r=pg&d=mp",
    "blocked": False,
    "app_metadata": {"plan": "free", "customer_id": "cus_7", "flags": {"beta": False, "n": 1.5},
                     "roles_cache": ["reader", {"kind": "writer"}, [{"deep": "a.b$c"}]]},
    "user_metadata": {"locale": "en-GB", "bio": "Likes 1.5 dots. And $.", "site": "https://example.com/a.b",
                      "address": {"city": "London", "lines": ["1 Main St.", "Flat 2"]}},
    "password_hash": BCRYPT_10,
}

#: Every top-level property, all valid, the rarer ones included.
FULL: dict[str, Any] = {
    **PLAIN,
    "user_id": "migrated_64f1c2a9e4b0a1b2c3d4e5f6",
    "username": "grace_h",
    "mfa_factors": [{"totp": {"secret": "JBTWY3DPEHPK3PNP"}}, {"phone": {"value": "+15551112233"}},
                    {"email": {"value": "mfa@example.com"}}],
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with properties replaced; ``...`` removes one."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def check(user: Any) -> list[import_schema.ImportProblem]:
    """What every test asserts: the fast path passes only users with no problem, and the answer is the full one."""
    full = _problems(user)
    if type(user) is dict and plainly_valid(user):
        assert full == [], f"fast path passed a user the full checks refuse: {full}"
    assert validate_import_user(user) == full
    return full


# --- the common shape takes the fast path ------------------------------------------------------------------


def test_plain_and_full_users_take_the_fast_path() -> None:
    for user in (PLAIN, FULL, {"email": "a@b.co"}, with_(PLAIN, password_hash=...),
                 with_(PLAIN, password_hash=..., custom_password_hash={
                     "algorithm": "bcrypt", "hash": {"value": BCRYPT_12, "encoding": "utf8"}})):
        assert check(user) == []
        assert plainly_valid(user), user


def test_the_benchmarks_users_take_the_fast_path(tmp_path) -> None:  # noqa: ANN001
    """`python -m bench --offline`'s users, as transform builds them: all valid, all settled by the fast path."""
    from bench.offline import write_inputs

    export_path, hash_path = write_inputs(str(tmp_path), 200)
    credentials = {row.user_id: row.credential for row in iter_hash_file(hash_path) if isinstance(row, HashRow)}
    with gzip.open(export_path, "rt", encoding="utf-8") as lines:
        exports = [json.loads(line) for line in lines]
    assert len(exports) == 200
    for export in exports:
        record, problems = to_import_record(export, credential=credentials[export["user_id"]],
                                            strategy="regenerate", prefix=None, record_source_id="source_id")
        assert problems == [] and record is not None
        assert plainly_valid(record), record["email"]
        assert check(record) == []


# --- each rule the fast path tests, broken on its own -------------------------------------------------------

JS_WHITESPACE = "\t\n\v\f\r \xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Whitespace to Python but not to JavaScript: the full checks accept these, the fast path defers.
PYTHON_ONLY_WHITESPACE = "\x1c\x1d\x1e\x1f\x85"

BAD_OR_UNUSUAL: list[tuple[str, dict[str, Any]]] = [
    ("unknown property", with_(PLAIN, identities=[])),
    ("unknown properties, in order", with_(PLAIN, logins_count=3, created_at="x")),
    ("email missing", with_(PLAIN, email=...)),
    ("email null", with_(PLAIN, email=None)),
    ("email not a string", with_(PLAIN, email=["a@b.co"])),
    ("email malformed", with_(PLAIN, email="grace@@example.com")),
    ("email no tld", with_(PLAIN, email="grace@example")),
    ("email 254 chars", with_(PLAIN, email="a@" + ".".join(["b" * 62] * 4) [:248] + ".com")),
    ("email 255 chars", with_(PLAIN, email="a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".co" + "m" * 4)),
    ("email local part 64", with_(PLAIN, email="a" * 64 + "@b.co")),
    ("email local part 65", with_(PLAIN, email="a" * 65 + "@b.co")),
    ("email domain 63", with_(PLAIN, email="a@" + "b" * 60 + ".co")),
    ("email domain 64 in short labels", with_(PLAIN, email="a@" + "b" * 30 + "." + "c" * 30 + ".com")),
    ("email label 64", with_(PLAIN, email="a@" + "b" * 64 + ".com")),
    ("email not ASCII, valid", with_(PLAIN, email="grâce@exämple.com")),
    ("email not ASCII, 33 two-byte chars", with_(PLAIN, email="é" * 33 + "@b.com")),
    ("email full-width domain", with_(PLAIN, email="a@b.ｃｏｍ")),
    ("email trailing newline", with_(PLAIN, email="a@b.com\n")),
    ("email_verified null", with_(PLAIN, email_verified=None)),
    ("email_verified 1", with_(PLAIN, email_verified=1)),
    ("email_verified string", with_(PLAIN, email_verified="true")),
    ("blocked 0", with_(PLAIN, blocked=0)),
    ("blocked null", with_(PLAIN, blocked=None)),
    ("phone_verified string", with_(PLAIN, phone_verified="false")),
    ("phone_number null", with_(PLAIN, phone_number=None)),
    ("phone_number no plus", with_(PLAIN, phone_number="447700900007")),
    ("phone_number 16 digits", with_(PLAIN, phone_number="+" + "1" * 16)),
    ("phone_number 15 digits", with_(PLAIN, phone_number="+" + "1" * 15)),
    ("phone_number number", with_(PLAIN, phone_number=447700900007)),
    ("user_id null", with_(FULL, user_id=None)),
    ("user_id number", with_(FULL, user_id=12)),
    ("user_id empty", with_(FULL, user_id="")),
    ("user_id 255", with_(FULL, user_id="u" * 255)),
    ("user_id 256", with_(FULL, user_id="u" * 256)),
    ("user_id 256 with a space", with_(FULL, user_id="u " * 128)),
    ("user_id control character", with_(FULL, user_id="a\x01b")),
    ("user_id auth0| prefix", with_(FULL, user_id="auth0|abc")),
    ("user_id not ASCII", with_(FULL, user_id="ünïcode")),
    ("picture null", with_(PLAIN, picture=None)),
    ("picture number", with_(PLAIN, picture=3)),
    ("picture no scheme", with_(PLAIN, picture="s.gravatar.com/avatar/x")),
    ("picture empty host", with_(PLAIN, picture="https:///avatar")),
    ("picture query host", with_(PLAIN, picture="https://?x")),
    ("picture bad scheme", with_(PLAIN, picture="1http://example.com")),
    ("picture not ASCII", with_(PLAIN, picture="https://exämple.com/ä")),
    ("picture DEL", with_(PLAIN, picture="https://example.com/\x7f")),
    ("password_hash null", with_(PLAIN, password_hash=None)),
    ("password_hash cost 12", with_(PLAIN, password_hash=BCRYPT_12)),
    ("password_hash short", with_(PLAIN, password_hash=BCRYPT_10[:-1])),
    ("password_hash long", with_(PLAIN, password_hash=BCRYPT_10 + "a")),
    ("password_hash bad character", with_(PLAIN, password_hash=BCRYPT_10[:-1] + "!")),
    ("password_hash $2$", with_(PLAIN, password_hash="$2$10$" + BCRYPT_10[7:])),
    ("password_hash and custom_password_hash", with_(PLAIN, custom_password_hash={
        "algorithm": "bcrypt", "hash": {"value": BCRYPT_12, "encoding": "utf8"}})),
    ("custom_password_hash bad", with_(PLAIN, password_hash=..., custom_password_hash={"algorithm": "md6"})),
    ("custom_password_hash not an object", with_(PLAIN, password_hash=..., custom_password_hash="md5")),
    ("mfa_factors empty", with_(FULL, mfa_factors=[])),
    ("mfa_factors bad secret", with_(FULL, mfa_factors=[{"totp": {"secret": "lower"}}])),
    ("mfa_factors not a list", with_(FULL, mfa_factors={"totp": {"secret": "JBTWY3DPEHPK3PNP"}})),
    ("app_metadata null", with_(PLAIN, app_metadata=None)),
    ("app_metadata a list", with_(PLAIN, app_metadata=[{"a": 1}])),
    ("app_metadata reserved key", with_(PLAIN, app_metadata={"plan": "x", "__tenant": "t", "email": "e"})),
    ("app_metadata dotted key", with_(PLAIN, app_metadata={"a.b": 1})),
    ("app_metadata dollar key", with_(PLAIN, app_metadata={"$a": 1})),
    ("app_metadata dotted key deep", with_(PLAIN, app_metadata={"a": {"b": {"c.d": {"e$": 1}}}})),
    ("app_metadata dotted key in a list", with_(PLAIN, app_metadata={"a": [1, {"x.y": 2}]})),
    ("app_metadata dotted key in nested lists", with_(PLAIN, app_metadata={"a": [[[{"$": 2}]]]})),
    ("app_metadata dotted key after a dotted value", with_(PLAIN, app_metadata={"a": "x.y", "b.c": "z"})),
    ("app_metadata dotted key after a number", with_(PLAIN, app_metadata={"a": 1.5, "b.c": 2})),
    ("app_metadata key starting with a colon after a number", with_(PLAIN, app_metadata={"a": 1.5, ":b": 2})),
    ("app_metadata key with a quote and a dot", with_(PLAIN, app_metadata={'a".b': 1})),
    ("app_metadata key with a backslash and a dot", with_(PLAIN, app_metadata={"a\\.b": 1})),
    ("app_metadata clean key with a quote", with_(PLAIN, app_metadata={'say "hi"': "x.y"})),
    ("app_metadata clean value with a backslash", with_(PLAIN, app_metadata={"path": "C:\\x.y"})),
    ("app_metadata value with a newline", with_(PLAIN, app_metadata={"a": "1.\n2", "b": 1})),
    ("app_metadata dotted key, value with a newline", with_(PLAIN, app_metadata={"a": "1.\n2", "b.c": 1})),
    ("app_metadata value quoting a dotted key", with_(PLAIN, app_metadata={"a": '"b.c":'})),
    ("app_metadata not ASCII keys", with_(PLAIN, app_metadata={"ключ": {"clé.x": 1}})),
    ("app_metadata lone surrogate", with_(PLAIN, app_metadata={"a": "\ud800"})),
    ("app_metadata lone surrogate and a dotted key", with_(PLAIN, app_metadata={"a": "\ud800", "b.c": 1})),
    ("app_metadata huge integer", with_(PLAIN, app_metadata={"n": 2**70})),
    ("app_metadata tuple holding a dotted key", with_(PLAIN, app_metadata={"t": ({"a.b": 1},)})),
    ("user_metadata null", with_(PLAIN, user_metadata=None)),
    ("user_metadata a string", with_(PLAIN, user_metadata="{}")),
    ("user_metadata dotted key", with_(PLAIN, user_metadata={"a": {"b.c": 1}})),
    ("user_metadata reserved-looking key (allowed)", with_(PLAIN, user_metadata={"email": "x"})),
    ("only user_metadata, dotted", {"email": "a@b.co", "user_metadata": {"x$": 1}}),
    ("only app_metadata, dotted", {"email": "a@b.co", "app_metadata": {"x.": 1}}),
    ("only user_metadata, not an object", {"email": "a@b.co", "user_metadata": []}),
    ("deep metadata", with_(PLAIN, user_metadata=json.loads('{"a":' * 300 + "1" + "}" * 300))),
    ("deep metadata, dotted at the bottom", with_(PLAIN, user_metadata=json.loads('{"a":' * 300 + '{"b.c":1}'
                                                                                + "}" * 300))),
    ("everything wrong", {"email": 3, "blocked": "no", "name": "", "picture": "x", "user_metadata": {"a.b": 1},
                          "other": 1, "password_hash": "x", "custom_password_hash": {}}),
]
for key, longest in (("given_name", 150), ("family_name", 150), ("name", 300), ("nickname", 300),
                     ("username", 128)):
    BAD_OR_UNUSUAL += [
        (f"{key} null", with_(FULL, **{key: None})),
        (f"{key} number", with_(FULL, **{key: 7})),
        (f"{key} empty", with_(FULL, **{key: ""})),
        (f"{key} at its limit", with_(FULL, **{key: "n" * longest})),
        (f"{key} past its limit", with_(FULL, **{key: "n" * (longest + 1)})),
        (f"{key} past its limit in code points", with_(FULL, **{key: "é" * (longest + 1)})),
    ]
for char in JS_WHITESPACE + PYTHON_ONLY_WHITESPACE:
    BAD_OR_UNUSUAL += [
        (f"user_id with U+{ord(char):04X}", with_(FULL, user_id=f"a{char}b")),
        (f"picture with U+{ord(char):04X}", with_(PLAIN, picture=f"https://example.com/a{char}b")),
    ]


@pytest.mark.parametrize(("name", "user"), BAD_OR_UNUSUAL, ids=[name for name, _ in BAD_OR_UNUSUAL])
def test_each_rule_broken_gives_the_full_answer(name: str, user: dict[str, Any]) -> None:
    check(user)


def test_the_table_holds_refused_users_and_accepted_ones_the_fast_path_defers() -> None:
    """The table is not all one kind: most are refused, some are valid users the fast path leaves to the full checks."""
    refused = [name for name, user in BAD_OR_UNUSUAL if _problems(user)]
    deferred = [name for name, user in BAD_OR_UNUSUAL if not _problems(user) and not plainly_valid(user)]
    assert len(refused) > 100
    assert {"email not ASCII, valid", "app_metadata lone surrogate", "deep metadata",
            "app_metadata key starting with a colon after a number", "picture not ASCII"} <= set(deferred)


@pytest.mark.parametrize("char", list(JS_WHITESPACE))
def test_every_javascript_space_but_the_space_is_unprintable(char: str) -> None:
    """What the fast path's user_id test rests on: `isprintable()` and no " " leaves no JavaScript whitespace."""
    assert char == " " or not char.isprintable()


def test_non_string_metadata_keys_fail_as_before() -> None:
    """orjson refuses them, so the fast path defers; the full checks then fail as they always have."""
    user = with_(PLAIN, app_metadata={1: "x"})
    assert not plainly_valid(user)
    with pytest.raises(TypeError):
        _problems(user)
    with pytest.raises(TypeError):
        validate_import_user(user)


# --- random mutations -------------------------------------------------------------------------------------

KEYS = list(FULL) + ["identities", "created_at", "custom_password_hash", "Email", ""]
VALUES: list[Any] = [
    None, True, False, 0, 1, 1.5, 64.0, -1, "", " ", "x", "a.b", "$x", "\t", "\u3000", "\ufeff", "é", "\ud800",
    "a@b.co", "A@B.CO", "a@b", "x@y.z", "é@b.com", "+1", "+123456789012345", "+1234567890123456",
    "https://a.b/c", "https://a.b/ c", "http://", "ftp://x", BCRYPT_10, BCRYPT_12, "n" * 128, "n" * 129,
    "n" * 150, "n" * 151, "n" * 255, "n" * 256, "n" * 300, "n" * 301, [], {}, [1], {"a": 1}, {"a.b": 1},
    {"$": {"ok": 1}}, [{"a": [{"b.c": 1}]}], {"__tenant": 1}, {"blocked": True}, {"ok": "v.w"},
    [{"totp": {"secret": "JBTWY3DPEHPK3PNP"}}], [{"phone": {"value": "+1"}}, {"email": {"value": "a@b"}}],
    {"algorithm": "md5", "hash": {"value": "5ebe2294ecd0e0f08eab7690d2a6ee69", "encoding": "hex"}},
]
KEY_CHARS = "ab.$\"\\:é \n"


def _random_key(rng: random.Random) -> str:
    return "".join(rng.choice(KEY_CHARS) for _ in range(rng.randint(0, 4)))


def _mutate_metadata(rng: random.Random, metadata: Any) -> Any:
    """Put a random key (sometimes dotted, quoted, escaped) somewhere in a metadata tree, or a random value."""
    if type(metadata) is not dict or rng.random() < 0.1:
        return copy.deepcopy(rng.choice(VALUES))
    result = copy.deepcopy(metadata)
    holder: Any = result
    for _ in range(rng.randint(0, 3)):
        children = [v for v in (holder.values() if type(holder) is dict else holder) if type(v) in (dict, list)]
        if not children:
            break
        holder = rng.choice(children)
    value = copy.deepcopy(rng.choice(VALUES))
    if type(holder) is dict:
        holder[_random_key(rng)] = value
    else:
        holder.append({_random_key(rng): value} if rng.random() < 0.7 else value)
    return result


def _mutate(rng: random.Random, user: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(user)
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        key = rng.choice(KEYS)
        if roll < 0.15:
            result.pop(key, None)
        elif roll < 0.45 and key in ("app_metadata", "user_metadata"):
            result[key] = _mutate_metadata(rng, result.get(key, {}))
        elif roll < 0.55:
            result = {k: result[k] for k in rng.sample(list(result), len(result))}  # another key order
        else:
            result[key] = copy.deepcopy(rng.choice(VALUES))
    return result


def test_random_mutations_give_the_full_answer() -> None:
    rng = random.Random(20261202)
    verdicts = {"fast": 0, "deferred valid": 0, "refused": 0}
    for _ in range(4000):
        user = _mutate(rng, rng.choice((PLAIN, FULL)))
        problems = check(user)
        verdicts["refused" if problems else "fast" if plainly_valid(user) else "deferred valid"] += 1
    # The mutations reach every outcome, so the comparison above was made on each.
    assert verdicts["fast"] >= 500 and verdicts["refused"] >= 500 and verdicts["deferred valid"] >= 20, verdicts


def test_random_metadata_keys_give_the_full_answer() -> None:
    """Metadata trees with keys made of dots, dollars, quotes, backslashes and colons, at every depth."""
    rng = random.Random(9)
    refused = passed = 0
    for _ in range(3000):
        user = copy.deepcopy(PLAIN)
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(("app_metadata", "user_metadata"))
            user[key] = _mutate_metadata(rng, user[key]) if type(user[key]) is dict else {}
        problems = check(user)
        refused += bool(problems)
        passed += plainly_valid(user)
    assert refused >= 300 and passed >= 300, (refused, passed)
