"""The transform's fast paths (`stages.transform.transform_one`) against its whole way.

A user of the common shape (known keys, valid, with no credential or a plain `password_hash` as the hash file
gives for bcrypt of cost 10) is settled by `formats.import_record.plain_import_record`, its credential taken as
the ledger holds it (`stages.transform.plain_credential`) and its import size counted without building it
(`combined_size`). Whatever it does, the outcome must be the one the whole way gives (`to_import_record` with the
credential merged, validated, taken out again, both encoded): for the benchmark's users, which must all take the
fast path, for table cases at its edges, and for random (seeded) mutations of them.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import random
import sys
from typing import Any

import orjson
import pytest

from auth0_migrate.errors import UsageError
from auth0_migrate.formats.hash_file import credential_for_bcrypt
from auth0_migrate.formats.import_record import plain_import_record, to_import_record
from auth0_migrate.ledger import dumps
from auth0_migrate.model import MigrationOptions
from auth0_migrate.stages.transform import combine, combined_size, plain_credential, transform_one

from .test_import_fast_path import _mutate
from .test_import_schema import BCRYPT_10, BCRYPT_12

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PLAIN_TEXT = dumps({"password_hash": BCRYPT_10})
CREDENTIAL_TEXTS = [
    PLAIN_TEXT,
    dumps({"password_hash": "$2a$10$" + BCRYPT_10[7:]}),
    dumps(credential_for_bcrypt(BCRYPT_12)),  # a custom_password_hash: the whole way
    dumps(credential_for_bcrypt("$2y$10$" + BCRYPT_10[7:])),
    json.dumps({"password_hash": BCRYPT_10}),  # spaced: not as `dumps` writes it
    PLAIN_TEXT.replace("$", "\\u0024"),  # escaped: the same object, another text
    dumps({"password_hash": BCRYPT_10, "custom_password_hash": {"algorithm": "bcrypt"}}),
    dumps({"password_hash": BCRYPT_12}),  # not a hash password_hash takes: refused by the validator
    dumps({"password_hash": BCRYPT_10 + "x"}),
    dumps({"password_hash": BCRYPT_10[:-1] + '"'}),
    '{"password_hash":"' + BCRYPT_10 + '"} ',
    '{"password_hash":"' + BCRYPT_10 + '","password_hash":"' + BCRYPT_12 + '"}',
    "{}",
    "",
]


def bench_exports(tmp_dir: str, users: int = 200) -> list[dict[str, Any]]:
    from bench.offline import write_inputs

    export_path, _ = write_inputs(tmp_dir, users)
    with gzip.open(export_path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return bench_exports(str(tmp_path_factory.mktemp("bench")))


# --- the credential as the ledger holds it ----------------------------------------------------------------


@pytest.mark.parametrize("text", CREDENTIAL_TEXTS)
def test_a_plain_credential_is_the_text_as_it_is(text: str) -> None:
    plain = plain_credential(text)
    if text in CREDENTIAL_TEXTS[:2]:
        assert plain is not None
    if plain is not None:
        assert plain == orjson.loads(text) and dumps(plain) == text and list(plain) == ["password_hash"]
        assert to_import_record({"email": "a@b.co"}, credential=plain, strategy="regenerate", prefix=None,
                                record_source_id=None)[1] == []


# --- the import record -------------------------------------------------------------------------------------

STRATEGIES: list[dict[str, Any]] = [
    {"strategy": "regenerate", "prefix": None, "record_source_id": None},
    {"strategy": "keep", "prefix": None, "record_source_id": None},
    {"strategy": "prefix", "prefix": "m1_", "record_source_id": "source_id"},
    {"strategy": "prefix", "prefix": "bad prefix|", "record_source_id": None},
    {"strategy": "regenerate", "prefix": None, "record_source_id": "plan"},  # a key the export's metadata has
]


def whole_way(export: dict[str, Any], credential: dict[str, Any] | None, **kw: Any) -> str | None:
    """The record's ledger JSON as the transform built it before the fast path, or None when refused."""
    record, problems = to_import_record(copy.deepcopy(export), credential=credential, **kw)
    if record is None or problems:
        return None
    for key in credential or ():
        del record[key]
    return dumps(record)


def compare(export: dict[str, Any], kw: dict[str, Any]) -> str:
    """Fast path against the whole way, with no credential and with a plain one: "fast", "deferred" or "refused"."""
    try:
        plain = plain_import_record(export, **kw)
    except UsageError:
        with pytest.raises(UsageError):
            to_import_record(export, credential=None, **kw)
        return "refused"
    for credential in (None, {"password_hash": BCRYPT_10}):
        expected = whole_way(export, credential, **kw)
        if plain is not None:
            assert plain.decode() == expected
    return "fast" if plain is not None else "deferred" if expected is not None else "refused"


@pytest.mark.parametrize("kw", STRATEGIES, ids=[f"{k['strategy']}-{k['prefix']}-{k['record_source_id']}"
                                                 for k in STRATEGIES])
def test_the_benchmarks_users_take_the_fast_path(exports: list[dict[str, Any]], kw: dict[str, Any]) -> None:
    verdicts = [compare(export, kw) for export in exports]
    assert set(verdicts) == ({"refused"} if kw["prefix"] == "bad prefix|" else {"fast"})


EDGES: list[tuple[str, dict[str, Any]]] = [
    ("unknown key", {"Given Name": "x"}),
    ("email null", {"email": None}),
    ("email empty", {"email": ""}),
    ("email missing", {"email": ...}),
    ("email a number", {"email": 3}),
    ("email not ASCII", {"email": "é@exämple.com"}),
    ("null values", {"given_name": None, "picture": None, "blocked": None}),
    ("user_id missing", {"user_id": ...}),
    ("user_id a number", {"user_id": 5}),
    ("user_id bare prefix", {"user_id": "auth0|"}),
    ("user_id with a space", {"user_id": "auth0|a b"}),
    ("user_id of another provider", {"user_id": "google-oauth2|x"}),
    ("export password_hash", {"password_hash": BCRYPT_12}),
    ("export custom_password_hash", {"custom_password_hash": {"algorithm": "md5"}}),
    ("mfa_factors", {"mfa_factors": [{"totp": {"secret": "JBTWY3DPEHPK3PNP"}}]}),
    ("mfa_factors bad", {"mfa_factors": [{"totp": {"secret": "x"}}]}),
    ("app_metadata null", {"app_metadata": None}),
    ("app_metadata a list", {"app_metadata": [1]}),
    ("app_metadata reserved key", {"app_metadata": {"email": "x"}}),
    ("app_metadata dotted key", {"app_metadata": {"a.b": 1}}),
    ("user_metadata dollar key", {"user_metadata": {"$a": 1}}),
    ("lone surrogate", {"user_metadata": {"bio": "\ud800"}}),
    ("non-string key", {"user_metadata": {1: "x"}}),
    ("big integer", {"user_metadata": {"n": 2**70}}),
    ("export-only keys only", {"multifactor": ["guardian"], "last_password_reset": "2020-01-01T00:00:00Z",
                               "blocked_for": [], "guardian_authenticators": [], "lastIP": "1.2.3.4"}),
]


@pytest.mark.parametrize(("name", "changes"), EDGES, ids=[name for name, _ in EDGES])
@pytest.mark.parametrize("kw", STRATEGIES[:4], ids=["regenerate", "keep", "prefix", "bad-prefix"])
def test_edges_give_the_whole_ways_answer(exports: list[dict[str, Any]], name: str, changes: dict[str, Any],
                                          kw: dict[str, Any]) -> None:
    export = copy.deepcopy(exports[5])
    for key, value in changes.items():
        if value is ...:
            export.pop(key, None)
        else:
            export[key] = value
    try:
        compare(export, kw)
    except TypeError:  # keys that are not strings fail the whole way as they always have
        with pytest.raises(TypeError):
            whole_way(export, None, **kw)


def test_random_mutations_give_the_whole_ways_answer(exports: list[dict[str, Any]]) -> None:
    rng = random.Random(20261202)
    verdicts = {"fast": 0, "deferred": 0, "refused": 0}
    for _ in range(3000):
        export = _mutate(rng, rng.choice(exports))
        try:
            verdicts[compare(export, rng.choice(STRATEGIES[:3]))] += 1
        except TypeError:  # a lone surrogate or a key that is not a string, as above
            continue
    assert verdicts["fast"] >= 300 and verdicts["refused"] >= 300 and verdicts["deferred"] >= 20, verdicts


# --- the whole transform: the credential as text (fast) or as an object (the whole way) ---------------------

OPTIONS = [
    MigrationOptions("Legacy-DB", "New-DB", password_hashes="hashes.ndjson"),
    MigrationOptions("Legacy-DB", "New-DB", password_hashes="hashes.ndjson", user_ids="keep",
                     stale_hash="import-without-hash", missing_hash="import"),
    MigrationOptions("Legacy-DB", "New-DB", password_hashes="hashes.ndjson", user_ids="prefix", id_prefix="m1_",
                     record_source_id="source_id", stale_hash="import-without-hash"),
    MigrationOptions(None, "New-DB", from_file="users.json", password_hashes="hashes.ndjson",
                     stale_hash="import-without-hash"),
]
RESETS = [None, "2000-01-01T00:00:00.000Z", "2030-01-01T00:00:00.000Z", "not a date"]


def test_a_credential_given_as_text_gives_what_the_object_gives(exports: list[dict[str, Any]]) -> None:
    rng = random.Random(7)
    fast = 0
    for n in range(3000):
        export = _mutate(rng, rng.choice(exports)) if n % 3 else copy.deepcopy(rng.choice(exports))
        reset = rng.choice(RESETS)
        if reset is not None:
            export["last_password_reset"] = reset
        if n % 7 == 0:
            export["password_hash"] = BCRYPT_10  # a --from-file user's own hash
        options = rng.choice(OPTIONS)
        text = rng.choice(CREDENTIAL_TEXTS + [PLAIN_TEXT] * 10)
        try:
            as_object = json.loads(text) if text else None
        except json.JSONDecodeError:
            continue
        set_date = rng.choice([None, "2024-01-01T00:00:00.000Z"])
        try:
            whole = transform_one(options, str(export.get("user_id")), copy.deepcopy(export), as_object, set_date)
        except (TypeError, ValueError) as exc:  # surrogates, non-string keys, a credential with a foreign key
            with pytest.raises(type(exc)):
                transform_one(options, str(export.get("user_id")), copy.deepcopy(export), text, set_date)
            continue
        got = transform_one(options, str(export.get("user_id")), copy.deepcopy(export), text, set_date)
        assert got == whole, (text, export)
        fast += got.status == "ready" and got.credential == PLAIN_TEXT
    assert fast >= 300


# --- the import size -----------------------------------------------------------------------------------------

RECORDS = ['{"email":"a@b.co"}', "{}", '{"name":"Zoë","email":"z@b.co"}', '{"name":"\ud800"}', '{"a":"日本"}']
CREDENTIALS = [None, "", "{}", PLAIN_TEXT, '{"custom_password_hash":{"algorithm":"md5","salt":{"value":"é"}}}']


@pytest.mark.parametrize("record", RECORDS)
@pytest.mark.parametrize("credential", CREDENTIALS)
def test_the_size_is_that_of_the_combined_record(record: str, credential: str | None) -> None:
    assert combined_size(record, credential) == len(combine(record, credential))
