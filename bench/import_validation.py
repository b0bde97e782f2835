"""Per-file time of the two import validators: the tool's `import_schema` and the tenant's own.

    python -m bench.import_validation [--repeat N]

Two files of about 470 KB (the 500 KB limit, less the multipart envelope): 1,000 users in the
plain one of tests/tenant/test_jobs_import.py (bcrypt password_hash, small metadata), 850 in the mixed
one (four custom_password_hash algorithms, MFA factors, nested metadata). Each is parsed and every
user validated, best of N runs (wall and CPU time); the tenant's first call (jsonschema import and schema compile) is
timed apart.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

BCRYPT_10 = "$2b$10$tK/RKhK3iOhhGjlUpS17uOcO2oQS4pnTP2qZo8QDjnqigKJ40uV4m"
HASHES: tuple[dict[str, Any], ...] = (
    {"algorithm": "argon2", "hash": {"value": "$argon2id$v=19$m=65536,t=2,p=1$cQg+cdOSwWypFCR9D2cWtg$"
                                              "pdz+QZYgOIKZ1cR92VIgKTnTyiO2v7OFBJks7EvP0mU"}},
    {"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha256$i=100000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$"
                                              "kw9TDMjfjc8KYUQiZtYwwlfcCQ63JuRSekUCOSjPlPg"}},
    {"algorithm": "sha256", "hash": {"value": "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
                                     "encoding": "hex"}, "salt": {"value": "pepper", "position": "suffix"}},
    {"algorithm": "scrypt", "hash": {"value": "097f6197e1b41538f723e32aa7a68e8d", "encoding": "hex"},
     "salt": {"value": "abc"}, "keylen": 16, "cost": 4096},
)


def plain_users(count: int = 1000) -> list[dict[str, Any]]:
    return [{"email": f"user{i:04d}@example.com", "email_verified": True, "user_id": f"legacy-{i:04d}",
             "username": f"user{i:04d}", "given_name": "Given", "family_name": "Family", "name": f"User {i}",
             "password_hash": BCRYPT_10, "app_metadata": {"plan": "gold", "region": "eu", "n": i},
             "user_metadata": {"lang": "en", "theme": "dark", "bio": "x" * 90}} for i in range(count)]


def mixed_users(count: int = 1000) -> list[dict[str, Any]]:
    return [{"email": f"mixed{i:04d}@example.com", "email_verified": i % 2 == 0, "user_id": f"m-{i:04d}",
             "name": f"Mixed {i}", "custom_password_hash": HASHES[i % len(HASHES)],
             "app_metadata": {"roles": ["reader", "writer"], "org": {"id": i, "tags": [{"k": "v"}]}},
             "user_metadata": {"prefs": {"theme": "dark", "langs": ["en", "fr"]}},
             "mfa_factors": [{"totp": {"secret": "JBSWY3DPEHPK3PNP"}}, {"phone": {"value": "+15551234567"}}]}
            for i in range(count)]


def best(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The least wall time and the least CPU time of ``repeat`` runs (CPU time: the machine may be shared)."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(prog="python -m bench.import_validation")
    args.add_argument("--repeat", type=int, default=5)
    repeat = args.parse_args(argv).repeat

    began, cpu = time.perf_counter(), time.process_time()
    from auth0_migrate.tenant import import_validation as tenant

    tenant.validate_user({"email": "warm@example.com"})
    print(f"tenant validator, first call (jsonschema import + schema compile): "
          f"{(time.perf_counter() - began) * 1000:.0f} ms wall / {(time.process_time() - cpu) * 1000:.0f} ms CPU")
    from auth0_migrate import import_schema as tool

    for label, users in (("plain", plain_users()), ("mixed", mixed_users(850))):
        data = json.dumps(users).encode()

        def tool_file(data: bytes = data) -> None:
            parsed, _ = tool.validate_import_file(data)
            assert parsed is not None and not any(tool.validate_import_user(u) for u in parsed)

        def tenant_file(data: bytes = data) -> None:
            parsed, _ = tenant.parse_import_file(data)
            assert parsed is not None and not any(tenant.validate_user(u) for u in parsed)

        (fast, fast_cpu), (own, own_cpu) = best(tool_file, repeat), best(tenant_file, repeat)
        print(f"{label}: {len(data):,} bytes, {len(users)} users, per file: tool {fast * 1000:.1f} ms wall"
              f" / {fast_cpu * 1000:.1f} ms CPU, tenant {own * 1000:.1f} ms wall / {own_cpu * 1000:.1f} ms CPU"
              f" ({own_cpu / fast_cpu:.1f}x CPU)")


if __name__ == "__main__":
    main()
