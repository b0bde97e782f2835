"""The local tenant's login check: does a password match a user's imported credential?

Only the tenant logs users in, so the entry point lives here; the per-algorithm checks sit in
`passwords.algorithms` beside the code that makes each credential.

Failure policy: a wrong password, or a credential that is malformed or that Auth0 itself would not
accept for login (``{CRYPT}``, unknown algorithm, undecodable value), gives ``False``. No exception
raised from `verify_password` ever carries hash material; the one exception is
`UnsupportedDigestError` (a digest Auth0 supports that this host cannot compute), raised so that a
missing capability is never mistaken for a wrong password.
"""

from __future__ import annotations

from typing import Any

from ..passwords.algorithms import check_bcrypt, verify_custom
from ..passwords.digests import UnsupportedDigestError
from ..passwords.encodings import node_utf8


def verify_password(password: str, credential: dict[str, Any]) -> bool:
    """Tell whether ``password`` is the one behind an imported Auth0 credential.

    ``credential`` is ``{"password_hash": "$2b$10$..."}`` or ``{"custom_password_hash": {...}}``
    exactly as an import file carries it; a whole import user dict works too.  Having both
    fields is refused by Auth0's schema, so it answers ``False`` here as well.

    Returns ``False`` for a wrong password and for a malformed credential.  Raises
    :class:`UnsupportedDigestError` only when Auth0 supports the digest but this host cannot
    compute it, and ``TypeError`` when ``password`` is not a ``str`` (a caller bug).
    """
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    if not isinstance(credential, dict):
        return False
    plain = credential.get("password_hash")
    custom = credential.get("custom_password_hash")
    try:
        if plain is not None and custom is not None:
            return False
        if plain is not None:
            if not isinstance(plain, str):
                return False
            return check_bcrypt(node_utf8(password), plain)
        if custom is not None:
            return verify_custom(password, custom)
        return False
    except UnsupportedDigestError:
        raise
    except Exception:  # noqa: BLE001 - any failure to interpret the credential means "no match";
        # the exception is dropped on purpose so no hash material can leak through its message.
        return False
