"""The --mfa-secrets reader (`formats/mfa_file.py`): both assumed layouts, join keys, bad lines without secrets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from auth0_migrate.formats.mfa_file import read_mfa_file
from auth0_migrate.stages.mfa import numbered

SECRET = "JBSWY3DPEHPK3PXP"


def write(path: Path, lines: list[object | str]) -> str:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def test_both_layouts_and_every_key_a_line_can_name_its_user_by(tmp_path: Path) -> None:
    path = write(tmp_path / "mfa.ndjson", [
        {"user_id": "auth0|a", "mfa_factors": [{"totp": {"secret": SECRET}}]},
        {"_id": {"$oid": "5dea9f9c82dd7c0e76e4ec93"}, "authenticators": [
            {"type": "phone", "phone_number": "+15555550100"}, {"type": "email", "email": "b@example.com"}]},
        {"_id": {"$oid": "ffff"}, "alt_id": "euclid", "mfa_factors": [{"email": {"value": "e@example.com"}}]},
        {"email": "Only@Example.com", "mfa_factors": [{"phone": {"value": "+15555550101"}}]},
        {"user_id": "auth0|other", "connection": "Elsewhere", "mfa_factors": [{"totp": {"secret": SECRET}}]},
        "",
    ])
    found = read_mfa_file(path, connection="Legacy")
    assert found.problems == []
    assert found.factors_for("auth0|a", None) == [{"totp": {"secret": SECRET}}]
    assert found.factors_for("auth0|5dea9f9c82dd7c0e76e4ec93", None) == [
        {"phone": {"value": "+15555550100"}}, {"email": {"value": "b@example.com"}}]
    assert found.factors_for("auth0|euclid", None) == [{"email": {"value": "e@example.com"}}]
    assert found.factors_for("auth0|x", "only@example.com") == [{"phone": {"value": "+15555550101"}}]
    assert found.factors_for("auth0|other", None) is None  # another connection's line is skipped
    assert SECRET not in repr(found)


def test_bad_lines_are_named_by_line_and_user_never_by_value(tmp_path: Path) -> None:
    path = tmp_path / "mfa.ndjson.gz"
    body = "\n".join([
        "{not json " + SECRET,
        json.dumps([1]),
        json.dumps({"mfa_factors": [{"totp": {"secret": SECRET}}]}),
        json.dumps({"user_id": "auth0|a", "mfa_factors": {"totp": SECRET}}),
        json.dumps({"user_id": "auth0|b", "authenticators": [{"type": "push"}, {"type": "totp", "totp_secret": 7},
                                                              {"type": "totp", "totp_secret": SECRET}]}),
        json.dumps({"user_id": "auth0|b", "mfa_factors": [{"totp": {"secret": SECRET}}]}),
        json.dumps({"user_id": "auth0|c"}),
    ]) + "\n"
    path.write_bytes(gzip.compress(body.encode()))
    found = read_mfa_file(str(path))
    said = [str(p) for p in found.problems]
    assert said == [
        "line 1: not valid JSON",
        "line 2: not a JSON object",
        "line 3: names no user (no user_id, _id or email)",
        "line 4: auth0|a: mfa_factors is not a list of objects",
        "line 5: auth0|b: authenticators[0] is of type 'push', which no import can carry",
        "line 5: auth0|b: authenticators[1].totp_secret is missing or not a string",
        "line 6: auth0|b appears again; the first line is used",
        "line 7: auth0|c: the line has neither mfa_factors nor authenticators",
    ]
    assert found.factors_for("auth0|b", None) == [{"totp": {"secret": SECRET}}]
    assert not any(SECRET in s for s in said)


def test_items_number_the_second_factor_of_a_type() -> None:
    assert numbered(["phone", "totp", "phone", "phone"]) == ["phone", "totp", "phone 2", "phone 3"]
