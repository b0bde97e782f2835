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

    source_connection: str | None
    """None only with `from_file`: users from another system come from no connection."""
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
    create_missing_roles: bool = False
    """Across tenants: create in the target the source roles it lacks (same permissions; the API scopes they
    need are added to the target's APIs) before restoring members, instead of only reporting them."""
    allow_loss: tuple[str, ...] = ()
    """Holding groups (`ledger.LOSS_GROUPS`: organizations, identities, mfa) whose unverified holdings do not keep a
    user in the source at cutover (`--allow-loss`): the owner accepts losing them with the source copy."""
    refresh_permissions: bool = False
    """With `refresh`: read every migrated user's DIRECT permissions again (one call each), not only those of the
    users whose profile changed, so that permission changes of the others are carried too (roles always are)."""
    enable_org_connections: bool = False
    """Enable the target connection on each organization the migrated users belong to that lacks it (else their
    memberships there are not carried: they could not log in through the organization)."""
    mfa_secrets: str | None = None
    """The NDJSON file of users' MFA secrets from Auth0 support (`formats/mfa_file.py`): their TOTP, phone and email
    factors are imported with them (`stages/mfa.py`); without it enrolled users' factors cannot be carried."""


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


Command = Literal["plan", "run", "verify", "status", "rollback"]


@dataclass(kw_only=True)
class CommandResult:
    """What every command returns (`plan` a `PlanResult`, `run`, `verify` and `status` a `RunResult`): the
    command, its exit code, `users` counted by what became (or would become) of them, and `failures`, the
    users not carried, each with its reason. `as_dict()` is what `--json` prints: these keys first, the same
    in every command, then the command's own."""

    command: Command = "run"
    exit_code: int = 0
    users: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    def common_dict(self) -> dict[str, Any]:
        return {"command": self.command, "exit_code": self.exit_code, "users": self.users,
                "failures": [f.as_dict() for f in self.failures]}

    def as_dict(self) -> dict[str, Any]:
        return self.common_dict()


@dataclass(kw_only=True)
class RunResult(CommandResult):
    """The summary of a run (or a verify, or a ledger's `status`); `as_dict()` is what `--json` prints."""

    grants: dict[str, int] = field(default_factory=dict)
    differences: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, Any] = field(default_factory=dict)
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
        return {**self.common_dict(), "grants": self.grants, "organizations": self.organizations,
                "identities": self.identities, "mfa": self.mfa,
                "differences": self.differences, "reports": self.reports, "state": self.state,
                **({"delta": self.delta} if self.delta is not None else {})}


@dataclass(kw_only=True)
class PlanResult(CommandResult):
    """What `plan` found, writing nothing; `as_dict()` is what `plan --json` prints.

    `users` counts `selected`, `will_import`, `held_back`, `will_fail`, `with_password_hash` and `stale_hash`
    (hashes older than the user's last password change: held back, or imported without a hash);
    `failures` are the users a run would not carry, with the reason; `problems` the input problems by
    kind (as in `RunResult.reports`); `import_files` the size in bytes of each import file a run would
    upload; `calls` the Management API calls a run would make by kind (and `total`); `minutes_at` how
    long those calls take at a sustained request rate ("2 req/s" -> minutes).
    """

    command: Command = "plan"
    problems: dict[str, list[dict[str, Any]]]
    import_files: list[int]
    roles_missing_in_target: list[str]
    apis_missing_in_target: list[str]
    calls: dict[str, int]
    minutes_at: dict[str, float]
    inventory: dict[str, Any] = field(default_factory=dict)
    """What users hold beside profile, hash and grants (`stages/inventory.holding_inventory`): per kind the users,
    items, `will_carry`, `cannot` by reason; MFA factors by type; and how many users cutover would keep in the
    source (`cutover.users_kept_in_source`) and which `--allow-loss` group would let them go."""
    not_carried_by_import: dict[str, Any] = field(default_factory=dict)
    """What no import can carry, by kind (users each, and what it means): never holds a user back."""
    delta: dict[str, Any] | None = None
    """`plan --refresh`: the counts a refresh would carry (`new`, `updated`, `deleted_in_source`, `password`)
    and `exceptions`, the changes it could not carry, named per user."""
    roles_to_create: list[dict[str, Any]] | None = None
    """With `--create-missing-roles`: each role a run would create in the target (`name`, `permissions`,
    `scopes_to_add` per API identifier, `apis_missing`); None (and not in --json) without the flag."""

    def as_dict(self) -> dict[str, Any]:
        return {**self.common_dict(), "problems": self.problems,
                "import_files": self.import_files, "roles_missing_in_target": self.roles_missing_in_target,
                "apis_missing_in_target": self.apis_missing_in_target, "calls": self.calls,
                "minutes_at": self.minutes_at, "inventory": self.inventory,
                "not_carried_by_import": self.not_carried_by_import,
                **({"delta": self.delta} if self.delta is not None else {}),
                **({"roles_to_create": self.roles_to_create} if self.roles_to_create is not None else {})}
