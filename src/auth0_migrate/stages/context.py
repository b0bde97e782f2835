"""What every stage of a run is handed: the `Migration` (options, ledger, the two tenant clients, the reporter).

A `Migration` is this tool's run, one ledger from start to end; the word "job" is kept for Auth0's bulk
export and import jobs, which a migration starts several of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..formats.mfa_file import MfaSecrets
from ..ledger import HoldingKind, Ledger
from ..model import MigrationOptions, Reporter

if TYPE_CHECKING:  # a type only: a worker process (`workers.py`) imports the stages without the SDK
    from ..auth0.client import TenantClient


@dataclass
class Connection:
    id: str
    name: str


@dataclass
class Migration:
    """One migration of the users of `source_connection` into `target_connection`, as a run sees it."""

    options: MigrationOptions
    ledger: Ledger
    source: TenantClient
    target: TenantClient
    reporter: Reporter
    source_connection: Connection
    target_connection: Connection
    mfa_secrets: MfaSecrets | None = field(default=None, repr=False)
    """The `--mfa-secrets` file, read once when a stage first needs it (`stages.mfa.secrets`)."""

    @property
    def same_tenant(self) -> bool:
        return self.source is self.target

    @property
    def shared_ids(self) -> bool:
        """`--user-ids keep` in one tenant: each target user has its source copy's id until cutover deletes that
        copy, so its grants are written and verified after it. The ledger's answer (`Ledger.grants_after_cutover`,
        from the fingerprint), so the stages and the ledger's queries never disagree."""
        return self.ledger.grants_after_cutover

    @property
    def carried_until_cutover(self) -> tuple[HoldingKind, ...]:
        """Holdings that cutover lets through once `carried` (not yet `verified`): under shared ids they can be
        read back in the target only after the source copy is deleted. MFA factors come with the import; the
        shared id holds the organization memberships and roles already, and they are written again after the
        deletion (`organizations.reapply`)."""
        return ("mfa-factor", "organization", "organization-role") if self.shared_ids else ()
