"""The records and options that flow through a migration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

IdStrategy = Literal["regenerate", "keep", "prefix"]
MissingHash = Literal["hold", "import"]
DuplicateHash = Literal["first", "last", "hold"]
StaleHash = Literal["hold", "import-without-hash"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FAILED_USERS = 3
EXIT_VERIFY = 4
EXIT_TRANSIENT = 75
EXIT_INTERRUPTED = 130


@dataclass
class MigrationOptions:
    """What to migrate and how; the same fields back the command-line flags of `plan`, `run` and `verify`."""

    source_connection: str
    target_connection: str
    user_ids: IdStrategy = "regenerate"
    id_prefix: str | None = None
    record_source_id: str | None = None
    password_hashes: str | None = None
    missing_hash: MissingHash = "hold"
    duplicate_hash: DuplicateHash = "hold"
    stale_hash: StaleHash = "hold"
    from_file: str | None = None
    users_file: str | None = None
    delete_source_users: bool = False
    delete_source_connection: bool = False
    """Cutover by deleting the whole source connection (one call), once every user of it is verified."""
    state: str | None = None
    refresh: bool = False
    """Carry what changed in the source since this ledger's last export (`run --refresh`, `plan --refresh`)."""
    propagate_deletes: bool = False
    """With `refresh`: delete from the target the users this migration made that the source no longer has."""
    refresh_permissions: bool = False
    """With `refresh`: read every migrated user's DIRECT permissions again (one call each), not only those of the
    users whose profile changed, so that permission changes of the others are carried too (roles always are)."""


class Reporter(Protocol):
    """Where stages tell people what is happening (stderr in the CLI); stages never print."""

    def phase(self, name: str, total: int | None = None) -> None: ...
    def advance(self, amount: int = 1) -> None: ...
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...


class QuietReporter:
    """A reporter that keeps messages in memory (library default, tests)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.phases: list[str] = []

    def phase(self, name: str, total: int | None = None) -> None:
        self.phases.append(name)

    def advance(self, amount: int = 1) -> None:
        pass

    def info(self, message: str) -> None:
        self.messages.append(message)

    def warn(self, message: str) -> None:
        self.messages.append("warning: " + message)


@dataclass
class Failure:
    """A user a run did not carry (or would not, in a plan): who, at which stage, a code and the reason."""

    user_id: str
    email: str | None
    stage: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "email": self.email, "stage": self.stage, "code": self.code,
                "message": self.message}


@dataclass
class RunResult:
    """The summary of a run (or a verify); `as_dict()` is what `--json` prints."""

    users: dict[str, int] = field(default_factory=dict)
    grants: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    state: str | None = None
    delta: dict[str, int] | None = None
    """After a refresh: users `new`, `updated`, `deleted_in_source`, and `grants_added`/`grants_removed`."""
    organizations: dict[str, int] = field(default_factory=dict)
    """Organization `memberships` and `roles` found in the source, `memberships_restored`/`roles_restored`
    (written to the target), `memberships_verified`/`roles_verified`, and `cannot_carry` (both kinds)."""
    identities: dict[str, int] = field(default_factory=dict)
    """Linked secondary accounts: `secondaries` found, `relinked` (moved to the new primary), `verified`,
    `cannot_carry`."""
    mfa: dict[str, int] = field(default_factory=dict)
    """MFA factors: `factors` found, `factors_imported`, `factors_verified`, `cannot_carry`."""

    def as_dict(self) -> dict[str, Any]:
        return {"users": self.users, "grants": self.grants, "organizations": self.organizations,
                "identities": self.identities, "mfa": self.mfa, "failures": [f.as_dict() for f in self.failures],
                "differences": self.differences, "reports": self.reports, "state": self.state,
                "exit_code": self.exit_code, **({"delta": self.delta} if self.delta is not None else {})}


@dataclass
class PlanResult:
    """What `plan` found, writing nothing; `as_dict()` is what `plan --json` prints.

    `users` counts `selected`, `will_import`, `held_back`, `will_fail`, `with_password_hash` and `stale_hash`
    (hashes older than the user's last password change: held back, or imported without a hash);
    `failures` are the users a run would not carry, with the reason; `problems` the input problems by
    kind (as in `RunResult.reports`); `import_files` the size in bytes of each import file a run would
    upload; `calls` the Management API calls a run would make by kind (and `total`); `minutes_at` how
    long those calls take at a sustained request rate ("2 req/s" -> minutes).
    """

    users: dict[str, int]
    failures: list[Failure]
    problems: dict[str, list[dict[str, Any]]]
    import_files: list[int]
    roles_missing_in_target: list[str]
    apis_missing_in_target: list[str]
    calls: dict[str, int]
    minutes_at: dict[str, float]
    delta: dict[str, Any] | None = None
    """`plan --refresh`: the counts a refresh would carry (`new`, `updated`, `deleted_in_source`, `password`)
    and `exceptions`, the changes it could not carry, named per user."""

    def as_dict(self) -> dict[str, Any]:
        return {"users": self.users, "failures": [f.as_dict() for f in self.failures], "problems": self.problems,
                "import_files": self.import_files, "roles_missing_in_target": self.roles_missing_in_target,
                "apis_missing_in_target": self.apis_missing_in_target, "calls": self.calls,
                "minutes_at": self.minutes_at, **({"delta": self.delta} if self.delta is not None else {})}
