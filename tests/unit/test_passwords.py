"""Unit tests for auth0_migrate.passwords: every shared vector, Node-made credentials,
make_credential round trips, the library-backed digests, failure handling and redaction."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest

from auth0_migrate.import_schema import validate_import_user
from auth0_migrate.passwords import (
    PASSWORD_HASH_PATTERN,
    REDACTED,
    UnsupportedDigestError,
    bcrypt_hash,
    digest_available,
    digests,
    encodings,
    make_credential,
    redact,
    secret_values,
)
from auth0_migrate.stages.transform import to_import_record
from auth0_migrate.tenant.credentials import verify_password

# Vendored from the project's shared reference folder, 2026-12-02 (tests/support/data/README.md).
VECTORS_PATH = Path(__file__).resolve().parents[1] / "support/data/password-hash-vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())["vectors"]


def _credential(vector: dict[str, Any]) -> dict[str, Any]:
    return {k: vector[k] for k in ("password_hash", "custom_password_hash") if k in vector}


# --- the shared vectors ------------------------------------------------------------------------


def test_vectors_file_covers_every_auth0_algorithm_shape() -> None:
    algorithms = {v["custom_password_hash"]["algorithm"] for v in VECTORS if "custom_password_hash" in v}
    assert algorithms >= {
        "argon2",
        "bcrypt",
        "hmac",
        "ldap",
        "md5",
        "sha1",
        "sha256",
        "sha512",
        "pbkdf2",
        "scrypt",
    }
    assert any("password_hash" in v for v in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_shared_vector_verifies_with_its_password_only(vector: dict[str, Any]) -> None:
    credential = _credential(vector)
    assert verify_password(vector["password"], credential) is True
    assert verify_password(vector["password"] + "x", credential) is False


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_shared_vector_is_accepted_by_the_import_schema(vector: dict[str, Any]) -> None:
    assert validate_import_user({"email": "v@example.com", **_credential(vector)}) == []


# --- credentials computed by Node.js (Auth0's runtime), OpenSSL 3 legacy provider ---------------
# Generated with `node --openssl-legacy-provider` (Node 20): crypto.createHash/createHmac/
# pbkdf2Sync/scryptSync and Buffer.from(password, encoding).  They pin the library MD4,
# RIPEMD-160 and Whirlpool code and Node's password transcoding to the real thing.

NODE_VECTORS: list[tuple[str, str, dict[str, Any]]] = [
    ("md4 base64", "md4-pässword",
     {"algorithm": "md4", "hash": {"value": "nXdQmHRn6ISVsR2sCL1LBg==", "encoding": "base64"}}),
    ("md4 hex, base64 salt suffix", "md4-salted",
     {"algorithm": "md4", "hash": {"value": "4c493b4904674e0ead44cc0f66f8fbea", "encoding": "hex"},
      "salt": {"value": "c2FsdA==", "encoding": "base64", "position": "suffix"}}),
    ("hmac whirlpool", "hmac-whirlpool-pw",
     {"algorithm": "hmac", "hash": {
         "value": "B5kGrwKiS0bo9xWVbKGe8HG8LDyX9HzEeUW+anBvs+qGMNiYJ6UWZcZZpX3FbyKTZl4WmRJLc2TWwbLMbIJiyA==",
         "encoding": "base64", "digest": "whirlpool", "key": {"value": "0badc0de", "encoding": "hex"}}}),
    ("hmac md4", "hmac-md4-pw",
     {"algorithm": "hmac", "hash": {"value": "qfMuDdLLV56b0SWgwuiCzQ==", "encoding": "base64", "digest": "md4",
                                    "key": {"value": "0badc0de", "encoding": "hex"}}}),
    ("hmac ripemd160", "hmac-ripemd160-pw",
     {"algorithm": "hmac", "hash": {"value": "Nh+yJZCEhwJYjzdk975TcFjBWXM=", "encoding": "base64",
                                    "digest": "ripemd160", "key": {"value": "0badc0de", "encoding": "hex"}}}),
    ("hmac sha384", "hmac-sha384-pw",
     {"algorithm": "hmac", "hash": {
         "value": "dZySnb3VnSMYm7SwxoPPlIC9MByUzAsqJ0RL/bb4hKH/rm74Vw7S9qrJC7xb1sof", "encoding": "base64",
         "digest": "sha384", "key": {"value": "0badc0de", "encoding": "hex"}}}),
    ("pbkdf2 md4", "pbkdf2-md4",
     {"algorithm": "pbkdf2", "hash": {
         "value": "$pbkdf2-md4$i=100,l=32$cGVwcGVyJnNhbHQh$yzsl9p0BDMWdwhc5yPHy5ZnfPmyk1YJP3D3pqGKDsLw",
         "encoding": "utf8"}}),
    ("pbkdf2 whirlpool", "pbkdf2-whirlpool",
     {"algorithm": "pbkdf2", "hash": {
         "value": "$pbkdf2-whirlpool$i=100,l=32$cGVwcGVyJnNhbHQh$A6CAKn81/kwn1L9bS9Smi64zCJhrOwk4APdz77dFQEw",
         "encoding": "utf8"}}),
    ("pbkdf2 RSA-SHA256 alias", "pbkdf2-RSA-SHA256",
     {"algorithm": "pbkdf2", "hash": {
         "value": "$pbkdf2-RSA-SHA256$i=1000,l=32$cGVwcGVyJnNhbHQh$JTYSEEkpVHLkdxO0VSKmai2U7YuErjo6Se07cyCTYGg",
         "encoding": "utf8"}}),
    ("sha256 of a utf16le password, upper-case hex", "päss€",
     {"algorithm": "sha256", "hash": {
         "value": "069B3CCEBFECA33099CD3A3A5D6EEDC04EF78141519D52CD61310ACC190B74AD", "encoding": "hex"},
      "password": {"encoding": "utf16le"}}),
    ("sha1 of a latin1 password (low byte of €), url-safe unpadded base64", "päss€",
     {"algorithm": "sha1", "hash": {"value": "L1O20OKJosHUawIrCkzBlUfGlh0", "encoding": "base64"},
      "password": {"encoding": "latin1"}}),
    ("scrypt hex salt", "scrypt-hex",
     {"algorithm": "scrypt", "hash": {"value": "7e1d03c657ee5605560bd846a4e84e353d32b4bb00906ea5", "encoding": "hex"},
      "salt": {"value": "00ff10ee", "encoding": "hex"}, "keylen": 24, "cost": 256, "blockSize": 4}),
    # Auth0's own documentation examples (bulk-user-import-schema page); passwords recovered.
    ("auth0 docs scrypt example", "password",
     {"algorithm": "scrypt", "hash": {
         "value": "097f6197e1b41538f723e32aa7a68e8d76227d8e432ce5faa4882a913032db29", "encoding": "hex"},
      "salt": {"value": "abc123", "encoding": "utf8"}, "keylen": 32, "cost": 4096}),
    ("auth0 docs bcrypt example", "hello",
     {"algorithm": "bcrypt", "hash": {"value": "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K"}}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "password", "cph"), NODE_VECTORS, ids=[v[0] for v in NODE_VECTORS])
def test_node_computed_credentials_verify(name: str, password: str, cph: dict[str, Any]) -> None:
    credential = {"custom_password_hash": cph}
    assert verify_password(password, credential) is True
    assert verify_password(password + "!", credential) is False
    assert validate_import_user({"email": "n@example.com", **credential}) == []


def test_password_encodings_follow_node_buffer_semantics() -> None:
    # Buffer.from("é€😀", enc).toString("hex") in Node 20.
    encode = encodings.PASSWORD_ENCODERS
    for name in ("ascii", "latin1", "binary"):
        assert encode[name]("é€😀").hex() == "e9ac3d00"
    for name in ("ucs2", "utf16le"):
        assert encode[name]("é€😀").hex() == "e900ac203dd800de"
    assert encode["utf8"]("\ud800x").hex() == "efbfbd78"  # lone surrogate -> U+FFFD


def test_hash_value_decoding_follows_node_buffer_semantics() -> None:
    assert encodings.node_hex("ABcd") == b"\xab\xcd"
    assert encodings.node_hex("abzz") == b"\xab"
    assert encodings.node_base64("-_8") == encodings.node_base64("+/8") == b"\xfb\xff"
    assert encodings.node_base64("YW Jj") == b"abc"
    assert encodings.node_base64("YW=Jj") == b"a"


# --- MD4, RIPEMD-160 (libraries), Whirlpool (ours) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [  # RFC 1320 appendix A.5
        (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
        (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
        (b"message digest", "d9130a8164549fe818874806e1c7014b"),
        (b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "e33b4ddc9c38f2199c3e7b164fcc0536"),
    ],
)  # fmt: skip
def test_md4_matches_rfc_1320(data: bytes, expected: str) -> None:
    assert digests.LIBRARY_DIGESTS["md4"](data).hexdigest() == expected


def test_whirlpool_matches_reference_vectors() -> None:
    w = digests.LIBRARY_DIGESTS["whirlpool"]
    assert w(b"").hexdigest().startswith("19fa61d75522a4669b44e39c1d2e1726c530232130d407f89afee0964997f7a7")
    assert (
        w(b"abc").hexdigest().startswith("4e2448a4c6f486bb16b6562c73b4020bf3043e3a731bce721ae1b303d97e6d4c")
    )
    fox = b"The quick brown fox jumps over the lazy dog"
    assert w(fox).hexdigest().startswith("b97de512e91e3828b40d2b0fdce9ceb3c4a71f9bea8d88e75c4fa854df36725f")


def test_ripemd160_library_matches_openssl_and_reference() -> None:
    r = digests.LIBRARY_DIGESTS["ripemd160"]
    assert r(b"").hexdigest() == "9c1185a5c5e9fc54612808977ee8f548b2258d31"
    assert r(b"abc").hexdigest() == "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
    if "ripemd160" in digests.OPENSSL_DIGESTS:
        for size in (55, 56, 64, 65, 200):
            data = bytes(range(256))[:size]
            assert r(data).digest() == hashlib.new("ripemd160", data).digest()


def test_library_digests_work_incrementally_and_under_hmac() -> None:
    for cls in digests.LIBRARY_DIGESTS.values():
        h = cls()
        h.update(b"x" * 70)
        h.update(b"y" * 100)
        assert h.digest() == cls(b"x" * 70 + b"y" * 100).digest()
    if "ripemd160" in digests.OPENSSL_DIGESTS:  # keys longer than a block get hashed first
        key = b"k" * 100
        assert (
            hmac.new(key, b"msg", digests.LIBRARY_DIGESTS["ripemd160"]).digest()
            == hmac.new(key, b"msg", "ripemd160").digest()
        )


def test_hmac_and_pbkdf2_fall_back_to_the_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """With OpenSSL pretending to have none of them, the Node vectors still verify."""
    monkeypatch.setattr(
        digests, "OPENSSL_DIGESTS", frozenset({"md5", "sha1", "sha256", "sha384", "sha512"})
    )
    for name, password, cph in NODE_VECTORS:
        if name in ("hmac ripemd160", "hmac md4", "pbkdf2 md4"):
            assert verify_password(password, {"custom_password_hash": cph}) is True, name
    assert digest_available("RSA-MD4") and digest_available("whirlpool") and digest_available("rmd160")


def test_a_digest_this_host_lacks_raises_without_hash_material() -> None:
    if digest_available("mdc2"):
        pytest.skip("this host's OpenSSL provides MDC-2")
    secret_hash = "SECRETHASHVALUESECRETHASHVALUE"
    credential = {
        "custom_password_hash": {
            "algorithm": "pbkdf2",
            "hash": {"value": f"$pbkdf2-mdc2$i=10,l=22$c2FsdHNhbHQ${secret_hash}", "encoding": "utf8"},
        }
    }
    with pytest.raises(UnsupportedDigestError) as caught:
        verify_password("pw", credential)
    assert secret_hash not in str(caught.value) and "mdc2" in str(caught.value)


# --- make_credential ----------------------------------------------------------------------------

ROUND_TRIPS: list[tuple[str, dict[str, Any]]] = [
    ("bcrypt", {"cost": 4}),
    ("bcrypt", {"cost": 4, "salt": "pepper", "salt_position": "suffix"}),
    ("argon2", {"memory_cost": 1024, "time_cost": 1}),
    ("argon2i", {"memory_cost": 1024, "time_cost": 1}),
    ("hmac", {}),
    ("hmac", {"digest": "whirlpool", "key": "k3y", "encoding": "base64"}),
    ("hmac", {"digest": "md4", "salt": "NaCl"}),
    ("ldap", {}),
    ("ldap", {"scheme": "SHA"}),
    ("ldap", {"scheme": "SSHA512"}),
    ("ldap", {"scheme": "SMD5"}),
    ("md4", {}),
    ("md5", {"salt": "abc123"}),
    ("md5", {"salt": "00ff", "salt_encoding": "hex", "salt_position": "suffix", "encoding": "base64"}),
    ("sha1", {}),
    ("sha256", {"salt": "abc123"}),
    ("sha512", {"encoding": "base64"}),
    ("sha256", {"password_encoding": "utf16le"}),
    ("md5", {"password_encoding": "latin1"}),
    ("pbkdf2", {"iterations": 1000}),
    ("pbkdf2", {"digest": "sha512", "iterations": 1000, "keylen": 64}),
    ("pbkdf2", {"digest": "md4", "iterations": 50}),
    ("scrypt", {"cost": 1024}),
    (
        "scrypt",
        {"cost": 256, "keylen": 32, "blockSize": 4, "parallelization": 2, "encoding": "hex", "salt": "s"},
    ),
]


@pytest.mark.parametrize(("algorithm", "params"), ROUND_TRIPS, ids=[f"{a}-{p}" for a, p in ROUND_TRIPS])
def test_make_credential_round_trips(algorithm: str, params: dict[str, Any]) -> None:
    password = "Pässw0rd €uro"
    credential = make_credential(password, algorithm, **params)
    assert list(credential) == ["custom_password_hash"]
    assert verify_password(password, credential) is True
    assert verify_password(password + " ", credential) is False
    assert validate_import_user({"email": "r@example.com", **credential}) == []


def test_make_credential_bcrypt_cost_10_is_a_plain_password_hash() -> None:
    credential = make_credential("hunter2", "bcrypt")
    assert list(credential) == ["password_hash"]
    assert re.fullmatch(PASSWORD_HASH_PATTERN[1:-1], credential["password_hash"])
    assert credential["password_hash"].startswith("$2b$10$")
    assert verify_password("hunter2", credential) and not verify_password("hunter3", credential)


def test_make_credential_defaults_and_errors() -> None:
    cph = make_credential("pw", "argon2id", memory_cost=1024, time_cost=1)["custom_password_hash"]
    assert cph["hash"]["value"].startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert (
        make_credential("pw", "bcrypt", cost=10, custom=True)["custom_password_hash"]["algorithm"] == "bcrypt"
    )
    assert make_credential("pw", "md5", salt="a")["custom_password_hash"]["salt"] == {
        "value": "a",
        "encoding": "utf8",
    }
    with pytest.raises(ValueError):
        make_credential("pw", "crypt")
    with pytest.raises(TypeError):
        make_credential("pw", "md5", bogus=1)


# --- bcrypt_hash ----------------------------------------------------------------------------------


def test_bcrypt_hash_is_auth0_shaped_and_verifies() -> None:
    hashed = bcrypt_hash("correct horse")
    assert re.fullmatch(PASSWORD_HASH_PATTERN[1:-1], hashed)
    assert verify_password("correct horse", {"password_hash": hashed})
    assert bcrypt_hash("x", cost=4).startswith("$2b$04$")
    with pytest.raises(ValueError):
        bcrypt_hash("x", cost=3)


def test_bcrypt_reads_72_bytes_like_node_instead_of_raising() -> None:
    long_password = "é" * 40  # 80 UTF-8 bytes
    credential = make_credential(long_password, "bcrypt", cost=4)
    assert verify_password(long_password, credential)
    assert verify_password("é" * 36 + "tail ignored", credential)  # same first 72 bytes
    salted = make_credential("p" * 70, "bcrypt", cost=4, salt="0123456789")  # salt counts too
    assert verify_password("p" * 62, salted) and verify_password("p" * 62 + "zz", salted)


# --- failure handling ---------------------------------------------------------------------------

MALFORMED: list[Any] = [
    {},
    None,
    "not a dict",
    {"password_hash": 5},
    {"password_hash": "$2b$10$tooshort"},
    {"password_hash": "plaintext"},
    {"custom_password_hash": "x"},
    {"custom_password_hash": {"algorithm": "md6", "hash": {"value": "00", "encoding": "hex"}}},
    {"custom_password_hash": {"algorithm": "md5"}},
    {"custom_password_hash": {"algorithm": "md5", "hash": {"value": 7, "encoding": "hex"}}},
    {"custom_password_hash": {"algorithm": "md5", "hash": {"value": "zz", "encoding": "hex"}}},
    {"custom_password_hash": {"algorithm": "md5", "hash": {"value": "00", "encoding": "rot13"}}},
    {"custom_password_hash": {"algorithm": "md5", "hash": {"value": "00", "encoding": "hex"}, "salt": "x"}},
    {"custom_password_hash": {"algorithm": "md5", "hash": {"value": "00", "encoding": "hex"},
                              "salt": {"value": "x", "position": "middle"}}},
    {"custom_password_hash": {"algorithm": "md5", "hash": {"value": "00", "encoding": "hex"},
                              "password": {"encoding": "ebcdic"}}},
    {"custom_password_hash": {"algorithm": "hmac", "hash": {"value": "00", "encoding": "hex"}}},
    {"custom_password_hash": {"algorithm": "hmac", "hash": {"value": "00", "encoding": "hex", "digest": "sha3",
                                                             "key": {"value": "k"}}}},
    {"custom_password_hash": {"algorithm": "ldap", "hash": {"value": "{CRYPT}aa1234567890"}}},
    {"custom_password_hash": {"algorithm": "ldap", "hash": {"value": "{SSHA}!!!"}}},
    {"custom_password_hash": {"algorithm": "ldap", "hash": {"value": "no scheme"}}},
    {"custom_password_hash": {"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha256$i=x$a$b"}}},
    {"custom_password_hash": {"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-nope$i=1,l=4$c2FsdA$AAAAAA"}}},
    {"custom_password_hash": {"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha1$i=0,l=4$c2FsdA$AAAAAA"}}},
    {"custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "00", "encoding": "hex"}}},
    {"custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "00", "encoding": "hex"}, "keylen": 1,
                              "cost": 1000}},
    {"custom_password_hash": {"algorithm": "scrypt", "hash": {"value": "00", "encoding": "hex"}, "keylen": 1,
                              "cost": 2**30}},
    {"custom_password_hash": {"algorithm": "argon2", "hash": {"value": "$argon2id$garbage"}}},
    {"custom_password_hash": {"algorithm": "argon2", "hash": {
        "value": "$argon2d$v=19$m=4096,t=3,p=1$a9EPDJJqRzgWq2/4uo+y5Q$a6VXl44iVuU0vQvs5Scyuz2Ns7Mdd4Ir8gKll6jeiU4"}}},
    {"custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": "$2x$10$" + "a" * 53}}},
    {"custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": "$sha1$whatever"}}},
]  # fmt: skip


@pytest.mark.parametrize("credential", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_credentials_answer_false_without_raising(credential: Any) -> None:
    assert verify_password("password", credential) is False


def test_both_hash_fields_are_refused() -> None:
    vector = VECTORS[0]
    other = next(v for v in VECTORS if "custom_password_hash" in v and v["password"] == "md5-pass")
    both = {"password_hash": vector["password_hash"], "custom_password_hash": other["custom_password_hash"]}
    assert verify_password(vector["password"], both) is False


def test_a_whole_import_user_can_be_passed() -> None:
    user = {"email": "a@example.com", "name": "A", **make_credential("pw", "sha1")}
    assert verify_password("pw", user) and not verify_password("pw2", user)


def test_password_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        verify_password(b"bytes", {"password_hash": VECTORS[0]["password_hash"]})  # type: ignore[arg-type]


def test_tampered_hash_fails() -> None:
    vector = next(v for v in VECTORS if v["name"].startswith("sha256"))
    credential = copy.deepcopy(_credential(vector))
    value = credential["custom_password_hash"]["hash"]["value"]
    credential["custom_password_hash"]["hash"]["value"] = ("0" if value[0] != "0" else "1") + value[1:]
    assert verify_password(vector["password"], credential) is False


# --- redact --------------------------------------------------------------------------------------


def test_redact_hides_every_secret_and_leaves_the_rest() -> None:
    user = {
        "email": "r@example.com",
        "name": "Redacted Person",
        "password_hash": VECTORS[0]["password_hash"],
        "custom_password_hash": {
            "algorithm": "hmac",
            "hash": {"value": "SECRET-HASH", "encoding": "hex", "digest": "sha256",
                     "key": {"value": "SECRET-KEY", "encoding": "utf8"}},
            "salt": {"value": "SECRET-SALT", "encoding": "utf8", "position": "prefix"},
        },
        "mfa_factors": [{"totp": {"secret": "JBTWY3DPEHPK3PNP"}}, {"phone": {"value": "+14155550123"}},
                        {"totp": {"secret": "SECRETTOTPTWO"}}],
        "app_metadata": {"plan": "gold"},
    }  # fmt: skip
    original = copy.deepcopy(user)
    hidden = redact(user)
    assert user == original  # the input is not touched
    text = json.dumps(hidden)
    for secret in (VECTORS[0]["password_hash"], "SECRET-HASH", "SECRET-KEY", "SECRET-SALT",
                   "JBTWY3DPEHPK3PNP", "SECRETTOTPTWO"):  # fmt: skip
        assert secret not in text
    assert hidden["password_hash"] == REDACTED
    cph = hidden["custom_password_hash"]
    assert cph["hash"]["value"] == cph["hash"]["key"]["value"] == cph["salt"]["value"] == REDACTED
    assert cph["hash"]["digest"] == "sha256" and cph["salt"]["position"] == "prefix"
    assert hidden["mfa_factors"][0]["totp"]["secret"] == REDACTED
    assert hidden["mfa_factors"][1] == {"phone": {"value": "+14155550123"}}
    assert hidden["email"] == "r@example.com" and hidden["app_metadata"] == {"plan": "gold"}


def test_secret_values_lists_what_redact_hides() -> None:
    """One walker serves both: every value `secret_values` names is one `redact` hides, and back."""
    user = {
        "email": "s@example.com",
        "password_hash": "PH",
        "custom_password_hash": {"algorithm": "hmac", "hash": {"value": "HV", "key": {"value": "KV"}},
                                 "salt": {"value": "SV"}},
        "mfa_factors": [{"totp": {"secret": "TS"}}, {"phone": {"value": "+14155550123"}}],
    }  # fmt: skip
    assert sorted(secret_values(user)) == ["HV", "KV", "PH", "SV", "TS"]
    text = json.dumps(redact(user))
    assert not any(f'"{value}"' in text for value in secret_values(user))


def test_an_empty_secret_does_not_garble_a_problem_message() -> None:
    """An empty `password_hash` is no secret to scrub: the problem keeps its message as written."""
    record, problems = to_import_record({"user_id": "auth0|a", "email": "e@example.com"},
                                        credential={"password_hash": ""}, strategy="regenerate", prefix=None,
                                        record_source_id=None)
    assert record is None and [p.field for p in problems] == ["password_hash"]
    assert problems[0].message.startswith("String does not match pattern") and REDACTED not in problems[0].message


def test_redact_copes_with_odd_shapes() -> None:
    assert redact([1, 2]) == [1, 2]
    assert redact({"custom_password_hash": "x", "mfa_factors": ["y", {"totp": "z"}]}) == {
        "custom_password_hash": "x",
        "mfa_factors": ["y", {"totp": "z"}],
    }
