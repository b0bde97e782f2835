"""The local tenant: Auth0's Management API (the parts a connection migration uses) on this machine."""

from .app import create_app
from .config import TenantConfig
from .state import Tenant

__all__ = ["Tenant", "TenantConfig", "create_app"]
