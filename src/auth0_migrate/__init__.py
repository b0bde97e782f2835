"""auth0-migrate: move the users of one Auth0 database connection into another."""

__version__ = "0.1.0"
