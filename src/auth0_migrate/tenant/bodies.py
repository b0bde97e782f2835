"""The one request-body validator of the local tenant, with the OAS request schemas as its rules.

`Ctx.json_body()` checks every JSON body against the schema of its operation in
`data/request-bodies.json`: the OAS `application/json` request schemas of the operations the tenant
serves, `$ref`s resolved, plus a few errata where the tenant is stricter (listed in the file with
their reasons; made by `tests/support/vendor_request_bodies.py`). A handler then only checks what
no schema can say (a duplicated scope, a client that does not exist...).

The first problem found answers Auth0's 400 `invalid_body`, "Payload validation error: '<text>' on
property <path>.", with z-schema's texts (the validator Auth0's messages come from), for example
"Expected type string but found type integer", "Additional properties not allowed: a,b",
"Missing required property: name", "String is too long (129 chars), maximum 128",
"No enum match for: \"x\"", "Array is too short (0), minimum 1", "Value 0 is less than minimum 1".

Choices where Auth0 is silent:

- keywords are checked in one fixed order, the node's own before its children's: type, enum,
  additionalProperties, required, min/maxProperties, then each property in the body's order; an
  array's length before its items; a string's length, pattern, format; a number's bounds;
- a path is the property's, dotted and indexed (`permissions[0].permission_name`, `[2]` for an item
  of a top-level array); a problem of the whole body names no property;
- of the OAS formats only `email` is checked (validator.js isEmail, what z-schema's email format
  calls: `import_schema.is_valid_email`); Auth0's own formats (`client-id`, `strict-uri`, ...) are
  not documented and pass;
- `oneOf` passes when at least one branch passes (z-schema asks for exactly one; the OAS branches
  of the served operations never overlap), else "Data does not match any schemas from 'oneOf'";
- the schemas are read on the first body checked, so importing the tenant stays cheap.

Example::

    body = await ctx.json_body()      # 400 unless the body fits the operation's OAS schema
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any, Final

from ..import_schema import is_valid_email, json_type
from .errors import ApiError, body_error

DATA_FILE: Final = "data/request-bodies.json"


@functools.cache
def _operations() -> dict[str, Any]:
    text = resources.files("auth0_migrate.tenant").joinpath(DATA_FILE).read_text(encoding="utf-8")
    operations: dict[str, Any] = json.loads(text)["operations"]
    return operations


def schema_of(operation: str) -> dict[str, Any] | None:
    """The request-body schema of `operation` ('METHOD /api/v2/template'), None if it takes no JSON body."""
    return _operations().get(operation)


def check_body(operation: str, body: Any) -> None:
    """Raise Auth0's 400 for the first way `body` breaks the schema of `operation` (none: any JSON passes)."""
    schema = schema_of(operation)
    if schema is not None:
        check(schema, body)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fits_type(expected: str, value: Any) -> bool:
    found = json_type(value)
    return found == expected or (expected == "number" and found == "integer")


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # ECMAScript's `$` matches only at the very end; Python's also before a final newline.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


def check(schema: dict[str, Any], value: Any, path: str = "") -> None:
    """Raise `body_error` for the first problem of `value` against `schema` (see the module doc)."""
    where = path or None
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if value is None and "null" in allowed:
            return
        if not any(_fits_type(t, value) for t in allowed):
            expected = ",".join(t for t in allowed if t != "null")
            raise body_error(f"Expected type {expected} but found type {json_type(value)}", where)
    if "enum" in schema and value not in schema["enum"]:
        raise body_error(f"No enum match for: {json.dumps(value)}", where)
    if "oneOf" in schema:
        _check_one_of(schema["oneOf"], value, where)
    if isinstance(value, dict):
        _check_object(schema, value, path)
    elif isinstance(value, list):
        _check_array(schema, value, path)
    elif isinstance(value, str):
        _check_string(schema, value, where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise body_error(f"Value {value} is less than minimum {schema['minimum']}", where)
        if "maximum" in schema and value > schema["maximum"]:
            raise body_error(f"Value {value} is greater than maximum {schema['maximum']}", where)


def _check_one_of(branches: list[dict[str, Any]], value: Any, where: str | None) -> None:
    for branch in branches:
        try:
            check(branch, value)
        except ApiError:
            continue
        return
    raise body_error("Data does not match any schemas from 'oneOf'", where)


def _check_object(schema: dict[str, Any], value: dict[str, Any], path: str) -> None:
    where = path or None
    properties: dict[str, Any] = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        extra = [key for key in value if key not in properties]
        if extra:
            raise body_error(f"Additional properties not allowed: {','.join(extra)}", where)
    for key in schema.get("required", ()):
        if key not in value:
            raise body_error(f"Missing required property: {key}", where)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        raise body_error(f"Too few properties defined ({len(value)}), minimum {schema['minProperties']}", where)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise body_error(f"Too many properties defined ({len(value)}), maximum {schema['maxProperties']}", where)
    extra_schema = schema.get("additionalProperties")
    for key, item in value.items():
        sub = properties.get(key, extra_schema if isinstance(extra_schema, dict) else None)
        if sub is not None:
            check(sub, item, _join(path, key))


def _check_array(schema: dict[str, Any], value: list[Any], path: str) -> None:
    where = path or None
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise body_error(f"Array is too short ({len(value)}), minimum {schema['minItems']}", where)
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise body_error(f"Array is too long ({len(value)}), maximum {schema['maxItems']}", where)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            check(items, item, f"{path}[{i}]")


def _check_string(schema: dict[str, Any], value: str, where: str | None) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise body_error(f"String is too short ({len(value)} chars), minimum {schema['minLength']}", where)
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise body_error(f"String is too long ({len(value)} chars), maximum {schema['maxLength']}", where)
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        raise body_error(f"String does not match pattern {schema['pattern']}: {value}", where)
    if schema.get("format") == "email" and not is_valid_email(value):
        raise body_error(f"Object didn't pass validation for format email: {value}", where)
