"""Make the vendored OAS (``tests/support/data/management-api-oas.json.gz``) from Auth0's YAML spec.

Run ``python -m tests.support.vendor_oas PATH/TO/management-api-oas.yml`` to regenerate it (see
``tests/support/data/README.md`` for where the YAML comes from). The result is the whole spec --
every path, operation, response and schema -- as compact JSON, less what no check reads:

* ``description`` and ``summary`` strings, ``example``/``examples`` and ``x-*`` extensions, all
  annotations that JSON Schema 2020-12 and OpenAPI validation ignore;
* except a response's own ``description`` (``responses.403.description``): it is short, and it is
  where Auth0 writes which scopes a 403 expects (``tests/unit/test_scopes.py`` reads it);
* never a key of a name map (``properties``, ``schemas``, ``paths``, ``responses``...), so a property
  that happens to be called ``description`` or ``example`` stays.

The gzip is written with a zero mtime, so the same YAML always gives the same bytes.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent / "data" / "management-api-oas.json.gz"

# Objects whose keys are names (of properties, schemas, paths, statuses, media types...), not keywords.
NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "schemas", "paths", "responses",
                       "content", "headers", "securitySchemes", "variables", "dependentSchemas", "mapping",
                       "parameters", "requestBodies", "links", "callbacks", "encoding", "scopes"})
ANNOTATIONS = frozenset({"description", "summary", "example", "examples"})


def reduce(node: Any, parent_key: str | None = None, response: bool = False) -> Any:
    """The spec without annotations (see the module docstring); `response` marks a response object."""
    if isinstance(node, dict):
        is_name_map = parent_key in NAME_MAPS
        keep = {"description"} if response else set()
        return {key: reduce(value, key, response=parent_key == "responses") for key, value in node.items()
                if is_name_map or key in keep
                or not (key in ANNOTATIONS or (isinstance(key, str) and key.startswith("x-")))}
    if isinstance(node, list):
        return [reduce(item) for item in node]
    return node


def vendor(source: Path, out: Path = OUT) -> int:
    document = yaml.load(source.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    data = json.dumps(reduce(document), separators=(",", ":"), ensure_ascii=False).encode()
    out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    return out.stat().st_size


if __name__ == "__main__":
    print(vendor(Path(sys.argv[1])), "bytes written to", OUT)
