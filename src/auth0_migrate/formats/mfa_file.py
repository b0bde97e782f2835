"""The MFA-secrets file Auth0 support hands out with the password hashes, read by `stages.mfa` (`--mfa-secrets`).

Auth0 gives users' MFA secrets only through the support process that gives the password hashes
(reference: export-password-hashes-and-mfa-secrets), and does not publish the file's layout. This
module is the one place that knows a layout: a small adapter from one line to (user key, factors in
the import's `mfa_factors` shape). A different real layout is a change to `_user_key` and `_factors`.

Assumptions (all UNCONFIRMED against a real support file):

* NDJSON, one line per user (gzip accepted, as for the hash file); blank lines are skipped.
* The user is named by `user_id` as the users export gives it (`auth0|...`), or, as in the hash file,
  by `_id.$oid` with an optional `alt_id` (the user id is then `auth0|` + (alt_id or $oid)). An `email`
  is the join's fallback, used only for a line that names no id (the hash file joins the same way).
* A `connection`, when a line has one, must be the source connection; lines of other connections are
  skipped (one file may cover several databases, as the hash file does).
* The factors are either `mfa_factors` in the import's own shape (`[{"totp": {"secret": ...}},
  {"phone": {"value": ...}}, {"email": {"value": ...}}]`, what `tenant export-mfa-secrets` writes), or
  `authenticators` in the Management API's authentication-method shape (`[{"type": "totp", "totp_secret":
  ...}, {"type": "phone", "phone_number": ...}, {"type": "email", "email": ...}]`, what
  `PUT /users/{id}/authentication-methods` takes). Other types in that list (push, webauthn...) carry
  no secret an import could take: they are skipped, and the line is reported.

Values are not judged here: the transform validates each user's `mfa_factors` with the import schema
(Base32 secret, E.164 phone, email; 1-10 items) and refuses the user naming the field. No secret ever
appears in a problem, a `repr` or an exception: problems name the line, the user and the field.

Example::

    secrets = read_mfa_file("mfa.ndjson", connection="Username-Password-Authentication")
    factors = secrets.factors_for("auth0|5dea9f9c82dd7c0e76e4ec93", "user@example.com")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .hash_file import open_input

IMPORTABLE: tuple[str, ...] = ("totp", "phone", "email")
"""The factor types Auth0's import takes; each holds one value: `totp.secret`, `phone.value`, `email.value`."""
_VALUE = {"totp": "secret", "phone": "value", "email": "value"}
_API_VALUE = {"totp": "totp_secret", "phone": "phone_number", "email": "email"}


@dataclass(frozen=True)
class MfaLineProblem:
    """A line that could not be used (or only partly): where and why, never a value."""

    line_no: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.message}"


@dataclass
class MfaSecrets:
    """Users' importable factors from the file, by user id (and, for lines with no id, by lower-cased email)."""

    by_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    by_email: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    problems: list[MfaLineProblem] = field(default_factory=list)

    def factors_for(self, user_id: str, email: str | None) -> list[dict[str, Any]] | None:
        """The user's factors, in the import's shape; None when the file has none for them."""
        found = self.by_id.get(user_id)
        if found is None and email:
            found = self.by_email.get(email.lower())
        return found

    def __repr__(self) -> str:  # never the secrets
        return f"MfaSecrets({len(self.by_id)} by id, {len(self.by_email)} by email, {len(self.problems)} problems)"


def factor_types(factors: list[dict[str, Any]]) -> list[str]:
    """The type of each factor of an `mfa_factors` list (`["totp", "phone"]`)."""
    return [next(iter(item)) for item in factors if isinstance(item, dict) and len(item) == 1]


def _user_key(line: dict[str, Any]) -> tuple[str | None, str | None]:
    """(user id, lower-cased email) a line names; either may be None."""
    email = line.get("email")
    email = email.lower() if isinstance(email, str) and email else None
    user_id = line.get("user_id")
    if isinstance(user_id, str) and user_id:
        return user_id, email
    oid = line.get("_id")
    oid = oid.get("$oid") if isinstance(oid, dict) else None
    alt = line.get("alt_id")
    local = alt if isinstance(alt, str) and alt else oid if isinstance(oid, str) and oid else None
    return (f"auth0|{local}" if local else None), email


def _factors(line: dict[str, Any], where: str) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """(the line's importable factors in the import shape, or None; what was wrong with the line)."""
    if "mfa_factors" in line:
        raw = line["mfa_factors"]
        if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
            return None, [f"{where}: mfa_factors is not a list of objects"]
        return raw, []  # the import's own shape: the transform's validator judges each item, naming it
    raw = line.get("authenticators")
    if raw is None:
        return None, [f"{where}: the line has neither mfa_factors nor authenticators"]
    if not isinstance(raw, list):
        return None, [f"{where}: authenticators is not a list"]
    factors: list[dict[str, Any]] = []
    notes: list[str] = []
    for index, item in enumerate(raw):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in IMPORTABLE:
            notes.append(f"{where}: authenticators[{index}] is of type {kind!r}, which no import can carry")
            continue
        value = item.get(_API_VALUE[str(kind)])
        if not isinstance(value, str):
            notes.append(f"{where}: authenticators[{index}].{_API_VALUE[str(kind)]} is missing or not a string")
            continue
        factors.append({str(kind): {_VALUE[str(kind)]: value}})
    return factors or None, notes


def read_mfa_file(path: str, connection: str | None = None) -> MfaSecrets:
    """Read the whole file (it holds only enrolled users); bad lines become problems, never exceptions."""
    secrets = MfaSecrets()
    with open_input(path) as stream:
        for line_no, raw in enumerate(stream, 1):
            text = raw.strip()
            if not text:
                continue
            try:
                line = orjson.loads(text)
            except orjson.JSONDecodeError:
                secrets.problems.append(MfaLineProblem(line_no, "not valid JSON"))
                continue
            if not isinstance(line, dict):
                secrets.problems.append(MfaLineProblem(line_no, "not a JSON object"))
                continue
            owner = line.get("connection")
            if connection is not None and isinstance(owner, str) and owner != connection:
                continue
            user_id, email = _user_key(line)
            if user_id is None and email is None:
                secrets.problems.append(MfaLineProblem(line_no, "names no user (no user_id, _id or email)"))
                continue
            who = user_id or email or ""
            factors, notes = _factors(line, who)
            secrets.problems.extend(MfaLineProblem(line_no, note) for note in notes)
            if factors is None:
                continue
            table, key = (secrets.by_id, user_id) if user_id else (secrets.by_email, email or "")
            if key in table:
                secrets.problems.append(MfaLineProblem(line_no, f"{who} appears again; the first line is used"))
                continue
            table[key] = factors
    return secrets
