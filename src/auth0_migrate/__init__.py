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

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .auth0.client import TenantClient, TenantCredentials
    from .pipeline import plan, rollback, run, status, verify
    from .report import ConsoleReporter

_LAZY = {"TenantClient": ".auth0.client", "TenantCredentials": ".auth0.client", "plan": ".pipeline",
         "rollback": ".pipeline", "run": ".pipeline", "status": ".pipeline", "verify": ".pipeline",
         "ConsoleReporter": ".report"}
"""Names whose modules load the SDK, httpx and rich (about a second): imported on first use, so a process that
needs only part of the package (a worker process, `workers.py`) does not pay for them."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    "rollback",
    "run",
    "status",
    "verify",
]
