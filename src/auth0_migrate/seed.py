"""Seed a connection with realistic users through the Management API: the demo and the benchmark use it.

Users get names, metadata, unverified and blocked members, several hash algorithms, role
memberships and DIRECT permissions on a share of them. It speaks only the public API (import jobs,
roles, permissions), so it can seed a real development tenant as well as a local one.

Example::

    seeded = await seed_connection(client, "Legacy-DB", users=300)
    seeded.passwords["ada.lovelace.0@example.com"]   # the plaintext, for login checks
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

from .auth0 import jobs
from .auth0.client import TenantClient
from .auth0.paging import checkpoint_items, every, offset_items
from .errors import Conflict
from .formats.import_file import pack_files
from .passwords import make_credential
from .pool import run_pool

API_IDENTIFIER = "https://api.example.com/"
API_SCOPES = ("read:reports", "write:reports", "delete:reports", "read:billing", "write:billing", "admin:users")
ROLES = {"admin": ("read:reports", "write:reports", "delete:reports", "admin:users"),
         "editor": ("read:reports", "write:reports"),
         "billing": ("read:billing", "write:billing"),
         "viewer": ("read:reports",)}
FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Linus", "Frances",
         "Niklaus", "Hedy", "Dennis", "Katherine", "Tim", "Sophie", "John", "Annie", "Whitfield")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Perlman",
        "Torvalds", "Allen", "Wirth", "Lamarr", "Ritchie", "Johnson", "Berners-Lee", "Wilson", "McCarthy", "Easley",
        "Diffie")
OTHER_ALGORITHM_SHARE = 0.08
"""Most users have bcrypt cost 10, as Auth0 stores them; this share was imported with another algorithm."""
ALGORITHMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("bcrypt", {}), ("bcrypt", {"cost": 11}), ("argon2", {"memory_cost": 8192}), ("pbkdf2", {"iterations": 10000}),
    ("sha256", {"salt": "pepper", "salt_position": "suffix"}), ("md5", {}), ("hmac", {}), ("ldap", {}),
    ("scrypt", {"cost": 1024}), ("sha512", {}), ("sha1", {}),
)


@dataclass
class Seeded:
    connection_id: str
    users: int
    passwords: dict[str, str] = field(default_factory=dict)
    algorithms: dict[str, str] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    """The emails of the users created blocked (Auth0 refuses their logins)."""
    role_members: int = 0
    users_with_permissions: int = 0
    permissions: int = 0
    mfa_factors: dict[str, list[str]] = field(default_factory=dict)
    """Email -> the types of the MFA factors the user was imported with (`mfa_share`)."""


def credential_pool(rng: random.Random, size_per_algorithm: int = 3) -> list[tuple[str, str, dict[str, Any]]]:
    """(password, algorithm, credential) triples; users share them (hashing is what costs, not variety)."""
    pool = []
    for index, (algorithm, params) in enumerate(ALGORITHMS):
        for n in range(size_per_algorithm):
            password = f"Pw-{algorithm}-{index}-{n}-{rng.randrange(10**6)}!"
            pool.append((password, algorithm, make_credential(password, algorithm, **params)))
    return pool


def make_user(n: int, rng: random.Random, credential: dict[str, Any]) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first}.{last}.{n}@example.com".lower()
    user: dict[str, Any] = {
        "email": email, "email_verified": rng.random() > 0.25, "given_name": first, "family_name": last,
        "name": f"{first} {last}", "nickname": f"{first.lower()}{n}",
        "app_metadata": {"plan": rng.choice(["free", "pro", "team"]), "customer_id": f"cus_{n:08d}",
                         "flags": {"beta": rng.random() > 0.7}},
        "user_metadata": {"locale": rng.choice(["en-GB", "fr-FR", "de-DE", "ja-JP"]),
                          "preferences": {"newsletter": rng.random() > 0.5, "theme": rng.choice(["dark", "light"])},
                          "bio": "Seeded by auth0-migrate. " * rng.randint(1, 6)},
        **credential,
    }
    if rng.random() < 0.04:
        user["blocked"] = True
    if rng.random() < 0.2:
        user["phone_number"] = f"+4477009{n:05d}"[:16]
    return user


def mfa_factors(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """A user's MFA factors in the import's shape: a TOTP secret (32 Base32 characters), half also a phone and
    an email."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    factors: list[dict[str, Any]] = [{"totp": {"secret": "".join(rng.choice(alphabet) for _ in range(32))}}]
    if rng.random() < 0.5:
        factors += [{"phone": {"value": f"+4477008{n:05d}"[:16]}}, {"email": {"value": f"mfa.{n}@example.com"}}]
    return factors


async def ensure_connection(client: TenantClient, name: str) -> str:
    """The id of database connection `name`, created when missing and enabled for the tool's own client.

    Auth0 imports users only into a connection enabled for at least one application, and a connection
    created through the API is enabled for none; `PATCH /connections/{id}/clients` (Auth0's way since
    `enabled_clients` on the connection was deprecated) enables it for the client we are.
    """
    connections = await every(checkpoint_items(client, "list connections", client.sdk.connections.list, name=name))
    connection_id = next((str(item.id) for item in connections if item.name == name), None)
    if connection_id is None:
        created = await client.call(f"create connection {name}", client.sdk.connections.create, name=name,
                                    strategy="auth0")
        connection_id = str(created.id)
        await client.call(f"enable connection {name} for {client.credentials.client_id}",
                          client.sdk.connections.clients.update, connection_id,
                          request=[{"client_id": client.credentials.client_id, "status": True}])
    return connection_id


async def disable_connection_for_clients(client: TenantClient, name: str) -> list[str]:
    """Disable connection `name` for every application enabled for it (what an owner does once the applications
    log in through the target connection); the client ids it was enabled for."""
    connections = await every(checkpoint_items(client, "list connections", client.sdk.connections.list, name=name))
    connection_id = next(str(item.id) for item in connections if item.name == name)
    enabled = [str(c.client_id) for c in await every(checkpoint_items(
        client, f"list the applications enabled for {name}", client.sdk.connections.clients.get, connection_id,
        take=100, include_totals=None))]
    if enabled:
        await client.call(f"disable connection {name}", client.sdk.connections.clients.update, connection_id,
                          request=[{"client_id": c, "status": False} for c in enabled])
    return enabled


async def ensure_api_and_roles(client: TenantClient) -> dict[str, str]:
    """The example API with its scopes and the example roles; returns role name -> id."""
    with contextlib.suppress(Conflict):  # it exists already
        await client.call("create API", client.sdk.resource_servers.create, name="Example API",
                          identifier=API_IDENTIFIER, scopes=[{"value": s, "description": s} for s in API_SCOPES])
    ids = {r.name: str(r.id) async for r in offset_items(client, "list roles", client.sdk.roles.list)}
    for name, scopes in ROLES.items():
        if name in ids:
            continue
        role = await client.call(f"create role {name}", client.sdk.roles.create, name=name, description=f"{name} role")
        ids[name] = str(role.id)
        await client.call(f"give role {name} permissions", client.sdk.roles.permissions.add, ids[name],
                          permissions=[{"resource_server_identifier": API_IDENTIFIER, "permission_name": s}
                                       for s in scopes])
    return ids


async def seed_connection(client: TenantClient, connection: str, *, users: int, seed: int = 7,
                          permission_share: float = 0.4, role_share: float = 0.5,
                          pool: list[tuple[str, str, dict[str, Any]]] | None = None,
                          mfa_share: float = 0.0) -> Seeded:
    """Create `users` users in `connection` (created if missing) with roles and DIRECT permissions.

    `mfa_share` of them are imported enrolled in MFA (`mfa_factors`: a TOTP secret, some a phone and an
    email too), drawn from their own random sequence so that the other users are the same whatever it is.
    """
    rng = random.Random(seed)
    mfa_rng = random.Random(seed + 1)
    connection_id = await ensure_connection(client, connection)
    roles = await ensure_api_and_roles(client)
    pool = pool or credential_pool(rng)
    seeded = Seeded(connection_id=connection_id, users=users)
    records = []
    plain = [entry for entry in pool if entry[1] == "bcrypt" and "password_hash" in entry[2]]
    other = [entry for entry in pool if entry not in plain]
    for n in range(users):
        choice = other if other and rng.random() < OTHER_ALGORITHM_SHARE else plain
        password, algorithm, credential = choice[n % len(choice)]
        user = make_user(n, rng, credential)
        if user.get("blocked") and choice is other:
            user.pop("blocked")  # a blocked user could not have logged in to be re-hashed; keep the demo whole
        if mfa_share and mfa_rng.random() < mfa_share:
            user["mfa_factors"] = mfa_factors(n, mfa_rng)
            seeded.mfa_factors[user["email"]] = [next(iter(f)) for f in user["mfa_factors"]]
        seeded.passwords[user["email"]] = password
        seeded.algorithms[user["email"]] = algorithm
        if user.get("blocked"):
            seeded.blocked.add(user["email"])
        records.append((user["email"], user))
    slots = asyncio.Semaphore(2)

    async def import_file(body: bytes, index: int) -> None:
        async with slots:
            job_id = await jobs.submit_import(client, connection_id, body, f"seed-{index}")
            state = await jobs.wait_for_job(client, job_id, first_poll=0.2)
            if state.status != "completed" or (state.summary or {}).get("failed"):
                raise RuntimeError(f"seeding import job {job_id} ended {state.status} {state.summary}")

    await asyncio.gather(*(import_file(f.body, i) for i, f in enumerate(pack_files(records))))
    ids = await _ids_by_email(client, connection_id)
    emails = sorted(ids)
    role_ids = list(roles.values())
    members: dict[str, list[str]] = {r: [] for r in role_ids}
    for email in emails:
        if rng.random() < role_share:
            for role in rng.sample(role_ids, rng.randint(1, 2)):
                members[role].append(ids[email])
    for role, user_ids in members.items():
        for start in range(0, len(user_ids), 100):
            await client.call("assign role", client.sdk.roles.users.assign, role, users=user_ids[start:start + 100])
        seeded.role_members += len(user_ids)
    grants = []
    for email in emails:
        if rng.random() < permission_share:
            scopes = rng.sample(API_SCOPES, rng.randint(1, 3))
            grants.append((ids[email], [{"resource_server_identifier": API_IDENTIFIER, "permission_name": s}
                                        for s in scopes]))
            seeded.permissions += len(scopes)
    seeded.users_with_permissions = len(grants)

    async def grant(item: tuple[str, list[dict[str, str]]]) -> None:
        await client.call("grant permissions", client.sdk.users.permissions.create, item[0], permissions=item[1])

    await run_pool(grants, grant)
    return seeded


async def _ids_by_email(client: TenantClient, connection_id: str) -> dict[str, str]:
    _, path = await jobs.export_connection(client, connection_id, ("user_id", "email"))
    import os

    try:
        return {r["email"]: r["user_id"] for _, r, _ in jobs.iter_export_file(path) if r}
    finally:
        os.unlink(path)


@dataclass
class SeededOrganizations:
    ids: dict[str, str] = field(default_factory=dict)
    """organization name -> id."""
    members: dict[str, list[str]] = field(default_factory=dict)
    """organization name -> member user ids."""
    roles: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(organization name, user id) -> organization role names."""


async def seed_organizations(client: TenantClient, user_ids: list[str], *, names: tuple[str, ...] = ("acme", "globex"),
                             connection_ids: tuple[str, ...] = (), member_share: float = 0.5,
                             role_share: float = 0.5, seed: int = 7) -> SeededOrganizations:
    """Organizations (created when missing, with `connection_ids` enabled), members among `user_ids`, and
    organization roles among the example roles (`ensure_api_and_roles`), through the Management API."""
    rng = random.Random(seed)
    roles = await ensure_api_and_roles(client)
    seeded = SeededOrganizations()
    existing = {str(o.id): str(o.name) async for o in checkpoint_items(client, "list organizations",
                                                                      client.sdk.organizations.list)}
    for name in names:
        org_id = next((i for i, n in existing.items() if n == name), None)
        if org_id is None:
            created = await client.call(f"create organization {name}", client.sdk.organizations.create, name=name,
                                        display_name=name.title())
            org_id = str(created.id)
        seeded.ids[name] = org_id
        for connection_id in connection_ids:
            await client.call(f"enable {connection_id} on {name}", client.sdk.organizations.enabled_connections.add,
                              org_id, connection_id=connection_id)
        members = [u for u in user_ids if rng.random() < member_share]
        seeded.members[name] = members
        for start in range(0, len(members), 100):
            await client.call(f"add members to {name}", client.sdk.organizations.members.create, org_id,
                              members=members[start:start + 100])
        for user_id in members:
            if rng.random() < role_share:
                picked = rng.sample(sorted(roles), rng.randint(1, 2))
                await client.call(f"give {user_id} roles in {name}", client.sdk.organizations.members.roles.assign,
                                  org_id, user_id, roles=[roles[r] for r in picked])
                seeded.roles[(name, user_id)] = sorted(picked)
    return seeded


async def link_accounts(client: TenantClient, primary_id: str, secondary_id: str,
                        connection_id: str | None = None) -> None:
    """Link `secondary_id` to `primary_id` server-side, as Auth0's account linking does (the secondary stops
    being a user and becomes an identity of the primary); `connection_id` for a database secondary."""
    provider = secondary_id.split("|", 1)[0]
    body: dict[str, Any] = {"provider": provider, "user_id": secondary_id}
    if connection_id:
        body["connection_id"] = connection_id
    await client.call(f"link {secondary_id} to {primary_id}", client.sdk.users.identities.link, primary_id, **body)
