"""Make the tenant's request-body schemas (``src/auth0_migrate/tenant/data/request-bodies.json``).

Run ``python -m tests.support.vendor_request_bodies`` after refreshing the vendored OAS
(``tests/support/data/management-api-oas.json.gz``, see its README for source and date). For every
operation the local tenant serves with a JSON body, the ``application/json`` request schema of the
OAS is written out with its ``$ref``s resolved and only the keywords ``tenant/bodies.py`` evaluates,
then ``ERRATA`` (the tenant's rules where it is stricter than the OAS, each with its reason) are
merged over it. ``tests/unit/test_request_bodies.py`` checks that the packaged file is what this
module makes, so the two cannot drift apart.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OAS = ROOT / "tests" / "support" / "data" / "management-api-oas.json.gz"
OUT = ROOT / "src" / "auth0_migrate" / "tenant" / "data" / "request-bodies.json"

KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
                      "minLength", "maxLength", "pattern", "enum", "minimum", "maximum", "format",
                      "minProperties", "maxProperties", "oneOf"})

ERRATA: dict[str, tuple[str, dict[str, Any]]] = {
    # operation -> (why, JSON merge patch over the OAS schema)
    "POST /api/v2/roles": ("a role needs a non-empty name (an empty one cannot be told apart in the Dashboard)",
                           {"properties": {"name": {"minLength": 1}}}),
    "PATCH /api/v2/roles/{id}": ("the same rule when a role is renamed",
                                 {"properties": {"name": {"minLength": 1}}}),
    "POST /api/v2/roles/{id}/users": ("an empty `users` list assigns nothing; refused like the other grant lists",
                                      {"properties": {"users": {"minItems": 1, "items": {"minLength": 1}}}}),
    "PATCH /api/v2/connections/{id}/clients": ("at most 50 clients per call (the tenant's bound; Auth0 states none)",
                                               {"maxItems": 50}),
    "POST /api/v2/users": ("a picture is a non-empty string (Auth0's `strict-uri` format is not documented)",
                           {"properties": {"picture": {"minLength": 1}}}),
    "PATCH /api/v2/users/{id}": ("Auth0 refuses unknown properties of a user update ('Additional properties not"
                                 " allowed'), whatever the OAS says; a picture as on create",
                                 {"additionalProperties": False, "properties": {"picture": {"minLength": 1}}}),
    "POST /api/v2/client-grants": ("`client_id` is optional only for `default_for`, which the tenant does not model",
                                   {"required": ["audience", "client_id"]}),
}


def _resolve(node: Any, schemas: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                raise ValueError(f"recursive schema {name}")
            return _resolve(schemas[name], schemas, (*seen, name))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties":
                out[key] = {prop: _resolve(sub, schemas, seen) for prop, sub in value.items()}
            elif key in KEYWORDS:
                out[key] = _resolve(value, schemas, seen) if key in ("items", "oneOf", "additionalProperties") \
                    else value
        return out
    if isinstance(node, list):
        return [_resolve(item, schemas, seen) for item in node]
    return node


def _merge(base: Any, patch: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return patch
    return {**base, **{key: _merge(base.get(key), value) for key, value in patch.items()}}


def build() -> dict[str, Any]:
    from auth0_migrate.tenant.app import ROUTERS

    spec = json.loads(gzip.decompress(OAS.read_bytes()))
    schemas = spec["components"]["schemas"]
    operations: dict[str, Any] = {}
    for router in ROUTERS:
        for ep in router.endpoints:
            if not ep.api:
                continue
            path = ep.path.removeprefix("/api/v2").replace(":path}", "}")
            body = spec["paths"][path][ep.method.lower()].get("requestBody")
            schema = (body or {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                continue
            resolved = _resolve(schema, schemas)
            if ep.name in ERRATA:
                resolved = _merge(resolved, ERRATA[ep.name][1])
            operations[ep.name] = resolved
    return {
        "source": "Auth0 Management API OAS (tests/support/data/management-api-oas.json.gz, see its README),"
                  " request bodies of the operations the local tenant serves, made by"
                  " tests/support/vendor_request_bodies.py on 2026-12-02",
        "errata": {name: why for name, (why, _) in ERRATA.items()},
        "operations": operations,
    }


def render() -> str:
    return json.dumps(build(), indent=None, separators=(",", ":"), sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
