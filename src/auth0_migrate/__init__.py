"""auth0-migrate: move the users of one Auth0 database connection into another.

The library the command line is a thin twin of (docs/api.md)::

    from auth0_migrate import MigrationOptions, TenantClient, TenantCredentials, run

    source = TenantClient(TenantCredentials("my-tenant.eu.auth0.com", client_id, client_secret))
    result = await run(MigrationOptions(source_connection="Legacy-DB", target_connection="New-DB"), source=source)
    result.exit_code, result.users["verified"], result.failures

`plan`, `run` and `verify` are coroutines; `status` reads a ledger and needs no network. Everything
named in `__all__` is the public API; the modules behind it may move.
"""

__version__ = "0.1.0"

from .auth0.client import TenantClient, TenantCredentials
from .errors import (
    AnswerLost,
    Auth0Error,
    AuthenticationError,
    BadRequest,
    Conflict,
    ImportSlotsBusy,
    InputError,
    InsufficientScopeError,
    LedgerError,
    MigrationError,
    NotFoundError,
    PayloadTooLarge,
    RateLimited,
    Refused,
    TerminalError,
    TransientError,
    UnexpectedAnswerError,
    UsageError,
)
from .model import (
    CommandResult,
    DuplicateHash,
    Failure,
    IdStrategy,
    MigrationOptions,
    MissingHash,
    PlanResult,
    QuietReporter,
    Reporter,
    RunResult,
    StaleHash,
)
from .pipeline import plan, run, status, verify
from .report import ConsoleReporter

__all__ = [
    "AnswerLost",
    "Auth0Error",
    "AuthenticationError",
    "BadRequest",
    "CommandResult",
    "Conflict",
    "ConsoleReporter",
    "DuplicateHash",
    "Failure",
    "IdStrategy",
    "ImportSlotsBusy",
    "InputError",
    "InsufficientScopeError",
    "LedgerError",
    "MigrationError",
    "MigrationOptions",
    "MissingHash",
    "NotFoundError",
    "PayloadTooLarge",
    "PlanResult",
    "QuietReporter",
    "RateLimited",
    "Refused",
    "Reporter",
    "RunResult",
    "StaleHash",
    "TenantClient",
    "TenantCredentials",
    "TerminalError",
    "TransientError",
    "UnexpectedAnswerError",
    "UsageError",
    "__version__",
    "plan",
    "run",
    "status",
    "verify",
]
