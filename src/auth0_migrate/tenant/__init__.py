"""The local tenant: Auth0's Management API (the parts a connection migration uses) on this machine."""

from .app import Tenant, create_app
from .config import TenantConfig

__all__ = ["Tenant", "TenantConfig", "create_app"]
