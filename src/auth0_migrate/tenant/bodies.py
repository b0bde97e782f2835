"""Request-body checks shared by the route modules, in Auth0's "Payload validation error" wording.

Each check raises `http.body_error` (400 `invalid_body`) with z-schema's text for the first problem
found, `on property <path>` naming where.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..import_schema import json_type
from .http import body_error


def check_object(value: Any, allowed: Iterable[str], required: Sequence[str] = (),
                  prop: str | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise body_error(f"Expected type object but found type {json_type(value)}", prop)
    extra = [k for k in value if k not in allowed]
    if extra:
        raise body_error(f"Additional properties not allowed: {','.join(extra)}", prop)
    for key in required:
        if key not in value:
            raise body_error(f"Missing required property: {key}", prop)
    return value


def check_string(value: Any, prop: str, min_len: int = 0, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise body_error(f"Expected type string but found type {json_type(value)}", prop)
    if len(value) < min_len:
        raise body_error(f"String is too short ({len(value)} chars), minimum {min_len}", prop)
    if max_len is not None and len(value) > max_len:
        raise body_error(f"String is too long ({len(value)} chars), maximum {max_len}", prop)
    return value


def check_array(value: Any, prop: str, min_items: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise body_error(f"Expected type array but found type {json_type(value)}", prop)
    if len(value) < min_items:
        raise body_error(f"Array is too short ({len(value)}), minimum {min_items}", prop)
    return value
