"""What every stage of a run is handed: options, ledger, the two tenant clients, the reporter."""

from __future__ import annotations

from dataclasses import dataclass

from ..auth0.client import TenantClient
from ..ledger import Ledger
from ..model import MigrationOptions, Reporter


@dataclass
class Connection:
    id: str
    name: str


@dataclass
class Job:
    options: MigrationOptions
    ledger: Ledger
    source: TenantClient
    target: TenantClient
    reporter: Reporter
    source_connection: Connection
    target_connection: Connection

    @property
    def same_tenant(self) -> bool:
        return self.source is self.target
