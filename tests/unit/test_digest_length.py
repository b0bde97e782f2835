"""`digest_length_problem`: a custom_password_hash whose digest cannot have its algorithm's length is named.

Every credential `make_credential` makes (the shapes Auth0 documents) passes; one character more or fewer,
or a stray character, is refused wherever the algorithm and encoding fix the length.
"""

from __future__ import annotations

from typing import Any

import pytest

from auth0_migrate.passwords import digest_length_problem, make_credential

FIXED = [
    ("md4", {}), ("md5", {}), ("sha1", {}), ("sha256", {}), ("sha512", {}),
    ("md5", {"encoding": "base64"}), ("sha1", {"encoding": "base64"}), ("sha512", {"encoding": "base64"}),
    ("md5", {"salt": "s4lt", "salt_position": "suffix"}),
    ("hmac", {}), ("hmac", {"digest": "sha1"}), ("hmac", {"digest": "sha384", "encoding": "base64"}),
    ("hmac", {"digest": "ripemd160"}), ("hmac", {"digest": "whirlpool"}), ("hmac", {"digest": "md4"}),
    ("scrypt", {"keylen": 64}), ("scrypt", {"keylen": 32, "encoding": "hex"}),
    ("pbkdf2", {"keylen": 32}), ("pbkdf2", {"digest": "sha512", "keylen": 64}),
    ("ldap", {"scheme": "SHA"}), ("ldap", {"scheme": "MD5"}), ("ldap", {"scheme": "SHA512"}),
]  # fmt: skip


def _cph(algorithm: str, params: dict[str, Any]) -> dict[str, Any]:
    return make_credential("correct horse", algorithm, **params)["custom_password_hash"]


@pytest.mark.parametrize("algorithm,params", FIXED, ids=[f"{a}-{p}" for a, p in FIXED])
def test_a_digest_of_the_right_length_passes_and_one_character_off_does_not(algorithm, params) -> None:
    cph = _cph(algorithm, params)
    assert digest_length_problem(cph) is None
    value = cph["hash"]["value"]
    body = value.rstrip("=")
    for wrong in (value + "A", body[:-2] + "=" * (len(value) - len(body))):
        cph["hash"]["value"] = wrong
        problem = digest_length_problem(cph)
        assert problem is not None, wrong
        assert wrong not in problem and body[:12] not in problem  # lengths only, never the value


def test_stray_characters_of_the_right_count_are_refused() -> None:
    cph = _cph("md5", {})
    cph["hash"]["value"] = "z" + cph["hash"]["value"][1:]
    assert digest_length_problem(cph) == ("the md5 digest is 16 bytes, 32 hex characters; this value is 32 "
                                          "characters, not all hex digits")
    b64 = _cph("sha1", {"encoding": "base64"})
    b64["hash"]["value"] = b64["hash"]["value"][:-2] + " ="
    assert "not written as base64" in (digest_length_problem(b64) or "")


def test_algorithms_without_a_fixed_length_are_not_judged() -> None:
    for algorithm, params in (("bcrypt", {"custom": True}), ("argon2", {}), ("ldap", {"scheme": "SSHA"})):
        assert digest_length_problem(_cph(algorithm, params)) is None
    # A salted ldap value with no room for a salt after its digest is judged, though.
    salted = _cph("ldap", {"scheme": "SSHA"})
    salted["hash"]["value"] = "{SSHA}" + "A" * 27
    assert digest_length_problem(salted) == ("a {SSHA} value is a 20-byte sha1 digest followed by a salt; "
                                             "this one holds 20 bytes")
    unpadded = _cph("sha256", {"encoding": "base64"})
    unpadded["hash"]["value"] = unpadded["hash"]["value"].rstrip("=")
    assert digest_length_problem(unpadded) is None  # 43 characters without padding is the same 32 bytes
