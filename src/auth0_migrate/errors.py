"""The exceptions of auth0-migrate, all under one root so a caller can catch them together.

    MigrationError                  anything this tool raises on purpose
    ├── UsageError                  bad flags or arguments (exit 2)
    ├── InputError                  a bad input file or line; names the file, line, user and field (exit 2)
    ├── LedgerError                 the state file cannot be used: locked, newer schema, other job (exit 1)
    └── Auth0Error                  an answer from Auth0 (or the local tenant) we cannot go past
        ├── TransientError          5xx, 408, timeouts, dropped connections (exit 75: run again)
        │   ├── RateLimited         429, still refused after the governor's waits
        │   │   └── ImportSlotsBusy 429 "There are 2 active import users jobs": wait for a slot, not a rate limit
        │   └── AnswerLost          a request the server may have acted on got no answer (an import upload)
        └── TerminalError           retrying will not help (exit 1)
            ├── Refused             a 4xx: Auth0 refused the request and did nothing
            │   ├── BadRequest      400: a body or query Auth0 will not take (e.g. too many users in one call)
            │   ├── AuthenticationError  bad client credentials, or a token the API refuses (401)
            │   ├── InsufficientScopeError  the token lacks scopes; `.scopes` names them (403)
            │   ├── NotFoundError   an unknown connection, job, user or role (404)
            │   ├── Conflict        409: it exists already
            │   └── PayloadTooLarge 413: the body is over the endpoint's size limit (an import file)
            └── UnexpectedAnswerError  an answer the SDK cannot read (not JSON, or not the documented shape)

Callers catch these classes, never an HTTP status: `auth0.client.translate` is the one place that
maps a status to a class (`status` stays on the exception for messages and reports).

Per-user failures are not exceptions: they are recorded in the ledger with a code and reported.
Errors from the HTTP layer (httpx, the SDK's `ApiError` and `ParsingError`) are translated once, in
`auth0.client`, and chained with `from`. No message ever carries a secret or a password hash.
"""

from __future__ import annotations


class MigrationError(Exception):
    """The root of every error auth0-migrate raises on purpose."""

    exit_code = 1


class UsageError(MigrationError):
    exit_code = 2


class InputError(MigrationError):
    """A bad input file: names the file, the line or user, and the field."""

    exit_code = 2


class LedgerError(MigrationError):
    pass


class Auth0Error(MigrationError):
    """An error answer from Auth0; `status` is the HTTP status (0 when none arrived)."""

    def __init__(self, message: str, *, status: int = 0, code: str | None = None, operation: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.operation = operation


class TransientError(Auth0Error):
    """Worth running again later: rate limits, server errors, timeouts, lost connections."""

    exit_code = 75


class RateLimited(TransientError):
    """429 after the governor waited out the rate limit as long as it may: run again later."""


class AnswerLost(TransientError):
    """The request went out but its answer did not come (dropped connection, timeout, 5xx): what the
    server did is unknown, so it is settled from the target, never sent again blindly."""


class ImportSlotsBusy(RateLimited):
    """Auth0 runs at most two import jobs at once; the third is refused with a 429 that says so."""


class TerminalError(Auth0Error):
    pass


class Refused(TerminalError):
    """A 4xx answer: the request was refused, so nothing was done (no job made, nothing written)."""


class BadRequest(Refused):
    """400: Auth0 will not take this body or query as it is."""


class AuthenticationError(Refused):
    pass


class InsufficientScopeError(Refused):
    def __init__(self, message: str, *, scopes: list[str], status: int = 403, operation: str = "") -> None:
        super().__init__(message, status=status, code="insufficient_scope", operation=operation)
        self.scopes = scopes


class NotFoundError(Refused):
    pass


class Conflict(Refused):
    """409: what the request would create exists already."""


class PayloadTooLarge(Refused):
    """413: the body is larger than the endpoint takes (an import file over 500 KB)."""


class UnexpectedAnswerError(TerminalError):
    """A 2xx answer the SDK could not read; the message names the operation, never the body."""
