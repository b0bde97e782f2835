"""Where an import user keeps its secrets, and the one walker that finds them.

Secrets: `password_hash`, `custom_password_hash.hash.value`, `custom_password_hash.hash.key.value`,
`custom_password_hash.salt.value` and each `mfa_factors[].totp.secret`. `redact` hides them the way
Auth0's job-errors endpoint echoes users back (ref §2.4); `secret_values` lists them, so a message
can be scrubbed of any it quotes. Reports and logs never show more than Auth0 does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any, Final

#: What Auth0's job-errors endpoint shows in place of secrets, and what our reports show too.
REDACTED: Final = "*****"


def _secret_slots(record: Any) -> Iterator[tuple[Any, str]]:
    """Each (holder, key) where `record` keeps a secret: `holder[key]` is the secret."""
    if not isinstance(record, Mapping):
        return
    if "password_hash" in record:
        yield record, "password_hash"
    cph = record.get("custom_password_hash")
    if isinstance(cph, dict):
        hash_obj = cph.get("hash")
        if isinstance(hash_obj, dict):
            if "value" in hash_obj:
                yield hash_obj, "value"
            key = hash_obj.get("key")
            if isinstance(key, dict) and "value" in key:
                yield key, "value"
        salt = cph.get("salt")
        if isinstance(salt, dict) and "value" in salt:
            yield salt, "value"
    factors = record.get("mfa_factors")
    if isinstance(factors, list):
        for factor in factors:
            totp = factor.get("totp") if isinstance(factor, dict) else None
            if isinstance(totp, dict) and "secret" in totp:
                yield totp, "secret"


def redact(obj: Any) -> Any:
    """Deep copy of an import user with every secret replaced by ``"*****"``.

    Anything that is not shaped like a user is copied unchanged.
    """
    result = copy.deepcopy(obj)
    for holder, key in _secret_slots(result):
        holder[key] = REDACTED
    return result


def secret_values(record: Mapping[str, Any]) -> Iterator[str]:
    """Every non-empty secret string of an import user (hash values, salts, hmac keys, TOTP secrets)."""
    for holder, key in _secret_slots(record):
        value = holder[key]
        if isinstance(value, str) and value:
            yield value
