"""Validate the local Auth0 tenant's responses against Auth0's Management API OpenAPI spec.

The spec is Auth0's ``management-api-oas.yml`` (OpenAPI 3.1, so its schemas are JSON Schema 2020-12),
vendored in the repo as ``tests/support/data/management-api-oas.json.gz`` (annotations dropped, every
schema kept; source, date and how to refresh it in ``tests/support/data/README.md``), so a plain clone
is all the suite needs: see :func:`default_spec_path`.  The environment variable ``AUTH0_OAS_PATH``
overrides the location (a ``.yml``/``.yaml``, ``.json`` or either gzipped).

What is checked (:meth:`OpenAPISpec.validate_response`), for requests under ``/api/v2``:

* the operation (method + path template) exists in the spec;
* the status code is declared for it (or the operation has a ``default`` / ``4XX``-style response);
* a declared ``application/json`` body is present and validates against its schema
  (``$ref`` to ``#/components/schemas/...`` resolved through a ``referencing`` registry holding the
  whole spec; formats are annotations only, as 2020-12 specifies by default);
* a 2xx/3xx status for which the spec declares no body gets no JSON body;
* **error bodies**: the spec declares *no* content for any 4xx/5xx response (not one of its ~1,740
  declared error responses has a ``content``), so the Management API's real error shape ``{"statusCode", "error",
  "message", "errorCode"?}`` is checked with the hand-written :data:`MGMT_ERROR_SCHEMA` instead,
  including that ``statusCode`` equals the HTTP status.

``/oauth/token`` (Authentication API, not in this spec) is checked against :data:`TOKEN_RESPONSE_SCHEMA`
and :data:`OAUTH_ERROR_SCHEMA`.  Other paths (e.g. an export-file download URL) are not validated.

Non-JSON bodies (gzip downloads, empty 204s) are ignored, except that a non-JSON response where the
spec promises JSON, or a non-JSON error response, is reported.

Where the spec itself is wrong, :data:`KNOWN_SPEC_ERRATA` documents why and the check is relaxed
(never skipped silently).

The spec's lists of *error* statuses are incomplete: real Auth0 answers some 4xx the spec does not
declare for the operation (e.g. 404 from ``POST /roles/{id}/permissions`` for an unknown API,
auth0-cli issue #348).  :data:`UNDECLARED_ERROR_STATUSES` lists each such (method, template, status)
with the reason it is accepted.  Only the "status not declared" problem is waived for those; the body
must still be a JSON Auth0 error (:data:`MGMT_ERROR_SCHEMA`, ``statusCode`` equal to the status).  Any
other undeclared status is reported -- extend the table (with a reason) rather than filtering problems
out in a test.

Paths are matched as sent, still percent-encoded: the transports pass ``request.url.raw_path`` (query
stripped), and :meth:`OpenAPISpec.find_operation` splits on ``/`` before decoding each segment, so an
id holding an encoded slash -- e.g. an API identifier that is a URL,
``/resource-servers/https%3A%2F%2Fapi.example.com%2F`` -- is one ``{id}`` segment.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "KNOWN_SPEC_ERRATA",
    "ERRATA_RELAXED_SCHEMAS",
    "UNDECLARED_ERROR_STATUSES",
    "MGMT_ERROR_SCHEMA",
    "OAUTH_ERROR_SCHEMA",
    "TOKEN_RESPONSE_SCHEMA",
    "Operation",
    "OpenAPISpec",
    "ValidatingDualTransport",
    "ValidatingSyncTransport",
    "ValidatingTransport",
    "default_spec_path",
    "vendored_spec_path",
    "repo_root",
    "wrap_transport",
]

API_PREFIX = "/api/v2"
TOKEN_PATH = "/oauth/token"
SPEC_URI = "urn:auth0:management-api-oas"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# --------------------------------------------------------------------------------------------------
# Known errors in the spec.
#
# Key: (METHOD, path template exactly as in the spec, status as a string).
# Value: why the spec is wrong.  The validator does not apply the spec's schema for these; it applies
# ERRATA_RELAXED_SCHEMAS[key] if present, otherwise it only checks that a JSON body parses.  So the
# table is the single place that says what is *not* checked strictly, and why.
# --------------------------------------------------------------------------------------------------
KNOWN_SPEC_ERRATA: dict[tuple[str, str, str], str] = {
    ("GET", "/roles/{id}/users", "200"): (
        "ListRoleUsersResponseContent is a oneOf of [array of RoleUser, offset page {start,limit,total,users}"
        ", checkpoint page {next,users}] where both object shapes have only optional properties. A checkpoint"
        " page without `next` -- which is exactly how Auth0 marks the LAST checkpoint page (`from`/`take`"
        " pagination: 'keep passing next until it is absent') -- and any page of {users:[...]} alone matches"
        " BOTH object branches, so oneOf rejects a correct body. Relaxed: the same three shapes under anyOf."
    ),
    ("GET", "/connections", "200"): (
        "Same defect as GET /roles/{id}/users: ListConnectionsResponseContent is a oneOf of [array, offset"
        " page {start,limit,total,connections}, checkpoint page {next,connections}] with no required"
        " properties, so the last checkpoint page {connections:[...]} (no `next`) is 'valid under each of'"
        " two branches and oneOf fails. Relaxed: the same three shapes under anyOf (items still checked as"
        " ConnectionForList)."
    ),
    ("GET", "/client-grants", "200"): (
        "Same defect as GET /roles/{id}/users: ListClientGrantResponseContent is a oneOf of [array, offset page"
        " {start,limit,total,client_grants}, checkpoint page {next,client_grants}] with no required properties,"
        " so the last checkpoint page {client_grants:[...]} (no `next`) is 'valid under each of' two branches."
        " Relaxed: the same three shapes under anyOf."
    ),
    ("GET", "/organizations", "200"): (
        "Same defect as GET /roles/{id}/users: ListOrganizationsResponseContent is a oneOf of [array, offset"
        " page {start,limit,total,organizations}, checkpoint page {next,organizations}] with no required"
        " properties, so the last checkpoint page (no `next`) is 'valid under each of' two branches."
        " Relaxed: the same three shapes under anyOf."
    ),
    ("GET", "/organizations/{id}/members", "200"): (
        "Same defect as GET /roles/{id}/users: ListOrganizationMembersResponseContent is a oneOf of [array,"
        " offset page {start,limit,total,members}, checkpoint page {next,members}] with no required"
        " properties, so the last checkpoint page (no `next`) is 'valid under each of' two branches."
        " Relaxed: the same three shapes under anyOf (members still checked as OrganizationMember)."
    ),
    ("GET", "/jobs/{id}/errors", "204"): (
        "The spec gives the 204 'no errors were found' response an application/json body (the same oneOf as"
        " the 200). HTTP 204 No Content cannot carry a body (RFC 9110 s15.3.5); Auth0 sends none and"
        " auth0-python 6.x returns None for it. Relaxed: the body must be empty."
    ),
}

_ROLE_USER_REF = {"$ref": f"{SPEC_URI}#/components/schemas/RoleUser"}
ERRATA_RELAXED_SCHEMAS: dict[tuple[str, str, str], dict[str, Any] | None] = {
    ("GET", "/organizations", "200"): {
        "anyOf": [
            {"type": "array", "items": {"$ref": f"{SPEC_URI}#/components/schemas/Organization"}},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListOrganizationsOffsetPaginatedResponseContent"},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListOrganizationsPaginatedResponseContent"},
        ]
    },
    ("GET", "/organizations/{id}/members", "200"): {
        "anyOf": [
            {"type": "array", "items": {"$ref": f"{SPEC_URI}#/components/schemas/OrganizationMember"}},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListOrganizationMembersOffsetPaginatedResponseContent"},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListOrganizationMembersPaginatedResponseContent"},
        ]
    },
    ("GET", "/roles/{id}/users", "200"): {
        "anyOf": [
            {"type": "array", "items": _ROLE_USER_REF},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListRoleUsersOffsetPaginatedResponseContent"},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListRoleUsersPaginatedResponseContent"},
        ]
    },
    ("GET", "/connections", "200"): {
        "anyOf": [
            {"type": "array", "items": {"$ref": f"{SPEC_URI}#/components/schemas/ConnectionForList"}},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListConnectionsOffsetPaginatedResponseContent"},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListConnectionsCheckpointPaginatedResponseContent"},
        ]
    },
    ("GET", "/client-grants", "200"): {
        "anyOf": [
            {"type": "array", "items": {"$ref": f"{SPEC_URI}#/components/schemas/ClientGrantResponseContent"}},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListClientGrantOffsetPaginatedResponseContent"},
            {"$ref": f"{SPEC_URI}#/components/schemas/ListClientGrantPaginatedResponseContent"},
        ]
    },
    # None = "no body allowed"
    ("GET", "/jobs/{id}/errors", "204"): None,
}

# --------------------------------------------------------------------------------------------------
# Error statuses Auth0 answers that the spec does not declare for the operation.
#
# Key: (METHOD, path template exactly as in the spec, status as a string), always a 4xx/5xx.
# Value: when Auth0 answers it.  The "status not declared" problem is waived for these; the body is
# still checked against MGMT_ERROR_SCHEMA.  tests/unit/test_oas.py checks that every key names a real
# operation whose responses do NOT list the status (so an entry goes stale loudly once the spec
# catches up).
# --------------------------------------------------------------------------------------------------
UNDECLARED_ERROR_STATUSES: dict[tuple[str, str, str], str] = {
    ("PATCH", "/resource-servers/{id}", "404"): (
        "Unknown API id ('The resource server does not exist', errorCode inexistent_resource_server)."
        " The spec declares 404 for GET /resource-servers/{id} but not for the PATCH of the same resource."
    ),
    ("PATCH", "/roles/{id}", "404"): (
        "Unknown role id (errorCode inexistent_role), as GET and DELETE /roles/{id} declare; the PATCH"
        " lists no 404."
    ),
    ("PATCH", "/roles/{id}", "409"): (
        "Renaming a role to the name of another role: the same 'The role already exists.' conflict that"
        " POST /roles declares as 409."
    ),
    ("POST", "/roles/{id}/permissions", "404"): (
        "A permission of an API (resource_server_identifier) that does not exist: 404 'The resource server"
        " does not exist: ...' (auth0-cli issue #348 shows Auth0 answering it); also an unknown role id."
    ),
    ("DELETE", "/roles/{id}/permissions", "404"): (
        "Unknown role id (errorCode inexistent_role), as GET /roles/{id}/permissions declares; the DELETE"
        " lists no 404."
    ),
    ("POST", "/users/{id}/permissions", "404"): (
        "Unknown user ('The user does not exist.', errorCode inexistent_user) -- declared only for GET"
        " /users/{id}/permissions, answered by every /users/{id} endpoint -- and a permission of an unknown"
        " API (inexistent_resource_server, auth0-cli issue #348)."
    ),
    ("DELETE", "/users/{id}/permissions", "404"): (
        "Unknown user (errorCode inexistent_user), as GET /users/{id}/permissions declares; the DELETE"
        " lists no 404."
    ),
    ("GET", "/users/{id}/roles", "404"): (
        "Unknown user (errorCode inexistent_user), as every /users/{id} endpoint answers; the spec lists"
        " no 404 for the user-roles endpoints."
    ),
    ("POST", "/users/{id}/roles", "404"): (
        "Unknown user (errorCode inexistent_user), as every /users/{id} endpoint answers."
    ),
    ("DELETE", "/users/{id}/roles", "404"): (
        "Unknown user (errorCode inexistent_user), as every /users/{id} endpoint answers."
    ),
    ("GET", "/users/{id}/roles", "400"): (
        "Invalid query string (e.g. per_page above 100: errorCode invalid_query_string). Every other paged"
        " list, GET /users/{id}/permissions included, declares this 400; GET /users/{id}/roles does not."
    ),
    ("DELETE", "/users/{id}/roles", "400"): (
        "Invalid body or a role id that does not exist, the same 400 that POST /users/{id}/roles declares;"
        " the DELETE lists no 400."
    ),
}

# Management API error body, e.g. {"statusCode":404,"error":"Not Found","message":"The user does not
# exist.","errorCode":"inexistent_user"}.  `errorCode` is absent from some errors (e.g. the 429 "There
# are 2 active import users jobs ..." quoted in the reference notes), so it is optional.
MGMT_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["statusCode", "error", "message"],
    "properties": {
        "statusCode": {"type": "integer"},
        "error": {"type": "string", "minLength": 1},
        "message": {"type": "string"},
        "errorCode": {"type": "string", "minLength": 1},
        "attributes": {"type": "object"},
    },
    "additionalProperties": False,
}

# Authentication API POST /oauth/token (client credentials) success body:
# {"access_token":"eyJ...","expires_in":86400,"scope":"read:users ...","token_type":"Bearer"}
TOKEN_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string", "minLength": 1},
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer", "minimum": 1},
        "scope": {"type": "string"},
        "id_token": {"type": "string"},
        "refresh_token": {"type": "string"},
    },
    "additionalProperties": False,
}

# Authentication API error body: {"error":"access_denied","error_description":"Unauthorized"}
OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {
        "error": {"type": "string", "minLength": 1},
        "error_description": {"type": "string"},
        "error_uri": {"type": "string"},
    },
    "additionalProperties": False,
}
TOKEN_STATUSES = {200, 400, 401, 403, 429, 500, 503}


# --------------------------------------------------------------------------------------------------
# Locating and loading the spec
# --------------------------------------------------------------------------------------------------
def repo_root() -> Path:
    """The repo checkout: this file is <repo>/tests/support/oas.py."""
    return Path(__file__).resolve().parents[2]


def vendored_spec_path() -> Path:
    """The spec shipped with the tests (see tests/support/data/README.md)."""
    return repo_root() / "tests" / "support" / "data" / "management-api-oas.json.gz"


def default_spec_path() -> Path:
    env = os.environ.get("AUTH0_OAS_PATH")
    if env:
        return Path(env)
    return vendored_spec_path()


def _yaml_loader() -> type:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mt = content_type.split(";", 1)[0].strip().lower()
    return mt == "application/json" or mt.endswith("+json")


def _pointer_fragment(*segments: str) -> str:
    """A URI fragment holding a JSON pointer to ``segments`` (escaped for both pointer and URI)."""
    out = []
    for seg in segments:
        seg = seg.replace("~", "~0").replace("/", "~1")
        out.append(quote(seg, safe="~"))
    return "#/" + "/".join(out)


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str  # as in the spec, without the /api/v2 prefix
    spec: dict[str, Any] = field(repr=False, compare=False)
    path_params: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def operation_id(self) -> str | None:
        return self.spec.get("operationId")


@dataclass
class _Route:
    template: str
    segments: tuple[str | re.Pattern[str], ...]  # literal str or compiled pattern for a {param} segment
    names: tuple[tuple[str, ...], ...]
    methods: dict[str, dict[str, Any]]

    def match(self, parts: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        if len(parts) != len(self.segments):
            return None
        score: list[int] = []
        params: dict[str, str] = {}
        for part, seg, names in zip(parts, self.segments, self.names, strict=False):
            if isinstance(seg, str):
                if part != seg:
                    return None
                score.append(1)
            else:
                m = seg.fullmatch(part)
                if m is None or part == "":
                    return None
                params.update(zip(names, m.groups(), strict=False))
                score.append(0)
        return tuple(score), params


BODY_MEMO_BYTES = 4096
"""Bodies up to this size have their check remembered (see :meth:`OpenAPISpec._body_check`)."""
BODY_MEMO_ENTRIES = 20_000
"""Remembered checks kept at most (then forgotten all at once): a few tens of MB at worst."""


class OpenAPISpec:
    """The parsed spec plus a path router and cached validators.  Use :meth:`load`."""

    #: filled in by load(): ("yaml" | "cache", seconds)
    load_info: tuple[str, float]

    def __init__(self, document: dict[str, Any], source: str = "<memory>") -> None:
        self.document = document
        self.source = source
        self.load_info = ("memory", 0.0)
        self._routes = self._build_routes(document.get("paths") or {})
        # The routes that can match a path, by (segment count, first segment; None for a {param}), with
        # their place in the spec: matched in spec order, as if every route were tried.
        self._by_shape: dict[tuple[int, str | None], list[tuple[int, _Route]]] = {}
        for index, route in enumerate(self._routes):
            first = route.segments[0] if isinstance(route.segments[0], str) else None
            self._by_shape.setdefault((len(route.segments), first), []).append((index, route))
        self._registry: Registry = Registry().with_resource(
            SPEC_URI, Resource(contents=document, specification=DRAFT202012)
        )
        self._validators: dict[Any, Draft202012Validator] = {}
        self._body_memo: dict[tuple[Any, bytes], tuple[str | None, str | None]] = {}

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
             ) -> OpenAPISpec:
        """Load the spec: JSON directly; YAML parsed once and cached as a pickle keyed by the file's sha1.

        A ``.gz`` file is decompressed first.  The YAML cache lives in ``<repo>/.cache`` (gitignored)
        unless ``cache_dir`` is given.  A corrupt or unwritable cache is ignored (the YAML is parsed again).
        """
        t0 = time.perf_counter()
        spec_path = Path(path) if path is not None else default_spec_path()
        raw = spec_path.read_bytes()
        name = spec_path.name
        if name.endswith(".gz"):
            raw, name = gzip.decompress(raw), name[:-3]
        if name.endswith(".json"):
            spec = cls(json.loads(raw), source=str(spec_path))
            spec.load_info = ("json", time.perf_counter() - t0)
            return spec
        digest = hashlib.sha1(raw).hexdigest()
        cdir = Path(cache_dir) if cache_dir is not None else repo_root() / ".cache"
        cache_file = cdir / f"oas-{digest}.pickle"
        document = None
        how = "cache"
        try:
            with cache_file.open("rb") as fh:
                document = pickle.load(fh)
        except FileNotFoundError:
            pass
        except Exception:  # corrupt / incompatible pickle: re-parse
            document = None
        if not isinstance(document, dict):
            how = "yaml"
            document = yaml.load(raw, Loader=_yaml_loader())  # noqa: S506 - a safe loader
            try:
                cdir.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=cache_file.name, suffix=".tmp", dir=cdir)
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(document, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.chmod(tmp, 0o644)
                os.replace(tmp, cache_file)  # atomic: safe with parallel test sessions
            except OSError:
                pass
        spec = cls(document, source=str(spec_path))
        spec.load_info = (how, time.perf_counter() - t0)
        return spec

    # ---- routing -------------------------------------------------------------------------------
    @staticmethod
    def _build_routes(paths: dict[str, Any]) -> list[_Route]:
        routes = []
        for template, item in paths.items():
            segs: list[str | re.Pattern[str]] = []
            names: list[tuple[str, ...]] = []
            for seg in template.strip("/").split("/"):
                params = re.findall(r"\{([^}]+)\}", seg)
                if not params:
                    segs.append(seg)
                    names.append(())
                else:
                    segs.append(re.compile(_segment_regex(seg)))
                    names.append(tuple(params))
            methods = {m.upper(): op for m, op in item.items() if m in HTTP_METHODS and isinstance(op, dict)}
            routes.append(_Route(template, tuple(segs), tuple(names), methods))
        return routes

    def find_operation(self, method: str, path: str) -> Operation | None:
        """Match a concrete request path (with or without the ``/api/v2`` prefix, query ignored,
        segments URL-decoded after splitting) to the most specific template defining ``method``.

        Pass the raw path as sent (``request.url.raw_path``), not an already-decoded one: decoding
        first would turn the ``%2F`` inside an id into segment separators.

        Specificity: templates are compared segment by segment from the left, a literal segment
        beating a ``{param}`` -- so ``/jobs/users-imports`` wins over ``/jobs/{id}``.
        """
        method = method.upper()
        rel = self._relative_path(path)
        parts = [unquote(p) for p in rel.strip("/").split("/")]
        best: tuple[tuple[int, ...], _Route, dict[str, str]] | None = None
        candidates = self._by_shape.get((len(parts), parts[0]), [])
        if (len(parts), None) in self._by_shape:
            candidates = sorted(candidates + self._by_shape[(len(parts), None)], key=lambda found: found[0])
        for _, route in candidates:
            if method not in route.methods:
                continue
            hit = route.match(parts)
            if hit is None:
                continue
            score, params = hit
            if best is None or score > best[0]:
                best = (score, route, params)
        if best is None:
            return None
        _, route, params = best
        return Operation(method, route.template, route.methods[method], params)

    @staticmethod
    def _relative_path(path: str) -> str:
        path = urlsplit(path).path if "://" in path or "?" in path else path
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            path = path[len(API_PREFIX):]
        return path or "/"

    # ---- validation ----------------------------------------------------------------------------
    def _validator(self, key: Any, schema: dict[str, Any]) -> Draft202012Validator:
        v = self._validators.get(key)
        if v is None:
            v = Draft202012Validator(schema, registry=self._registry)
            self._validators[key] = v
        return v

    @staticmethod
    def _first_error(validator: Draft202012Validator, instance: Any) -> str | None:
        errors = list(validator.iter_errors(instance))
        if not errors:
            return None
        err = best_match(errors)
        where = err.json_path
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{where}: {_short(err.message)}{more}"

    def _body_check(self, key: Any, body_bytes: bytes | None) -> tuple[str | None, str | None]:
        """(why the body is not JSON, the first schema error) of a JSON body against the validator ``key``.

        The answer is a function of the bytes and the schema alone, and the same small body comes back
        thousands of times a run (an empty page, a role's permissions, the same 404), so for bodies up to
        :data:`BODY_MEMO_BYTES` it is remembered, by the exact bytes: a body is checked the same, only once.
        """
        body = body_bytes or b""
        memo = len(body) <= BODY_MEMO_BYTES
        if memo and (key, body) in self._body_memo:
            return self._body_memo[(key, body)]
        try:
            instance = json.loads(body)
        except ValueError as exc:
            found: tuple[str | None, str | None] = (f"body is not valid JSON ({exc})", None)
        else:
            found = (None, self._first_error(self._validators[key], instance))
        if memo:
            if len(self._body_memo) >= BODY_MEMO_ENTRIES:
                self._body_memo.clear()
            self._body_memo[(key, body)] = found
        return found

    def validate_response(self, method: str, path: str, status: int, content_type: str | None,
                          body_bytes: bytes | None, injected_fault: bool = False) -> list[str]:
        """Problems with one response, as strings (empty list = conforms).

        ``injected_fault`` marks an answer the tenant's fault switches made on purpose (header
        ``x-injected-fault``): real tenants answer 5xx and 429 on endpoints whose spec does not
        declare them, so an undeclared status is accepted there; its body is still checked against
        Auth0's error shape.

        An undeclared error status listed in :data:`UNDECLARED_ERROR_STATUSES` is accepted the same
        way (body still checked).

        ``path`` should be the raw, still percent-encoded path (see :meth:`find_operation`).
        ``body_bytes`` is the decoded body; it is only looked at when ``content_type`` is JSON, so a
        caller may pass ``None``/``b""`` for a non-JSON response it did not buffer.
        """
        method = method.upper()
        rel = urlsplit(path).path if ("?" in path or "://" in path) else path
        if rel.rstrip("/") == TOKEN_PATH:
            return self._validate_token(method, status, content_type, body_bytes, injected_fault)
        if not (rel == API_PREFIX or rel.startswith(API_PREFIX + "/")):
            return []  # not the Management API (e.g. an export download URL): nothing to check

        op = self.find_operation(method, rel)
        if op is None:
            return [f"no operation {method} {self._relative_path(rel)} in the Management API spec"]
        st = str(status)
        is_json = _is_json_media_type(content_type)
        erratum_key = (method, op.template, st)

        def parse() -> tuple[Any, str | None]:
            try:
                return json.loads(body_bytes or b""), None
            except ValueError as exc:
                return None, f"body is not valid JSON ({exc})"

        if erratum_key in KNOWN_SPEC_ERRATA:
            relaxed = ERRATA_RELAXED_SCHEMAS.get(erratum_key, {})
            tag = f"[{op.template} {st}, see KNOWN_SPEC_ERRATA]"
            if relaxed is None:  # no body allowed
                if is_json and body_bytes:
                    return [f"{tag} expected no body, got {len(body_bytes)} bytes"]
                return []
            if not is_json:
                return [f"{tag} expected a JSON body, got content-type {content_type!r}"]
            self._validator(("errata", erratum_key), relaxed)
            err, msg = self._body_check(("errata", erratum_key), body_bytes)
            if err:
                return [err]
            return [f"[{op.template} {st}, relaxed per KNOWN_SPEC_ERRATA] {msg}"] if msg else []

        responses: dict[str, Any] = op.spec.get("responses") or {}
        response_key = next((k for k in (st, f"{st[0]}XX", f"{st[0]}xx", "default") if k in responses), None)
        response = responses.get(response_key) if response_key else None
        problems: list[str] = []
        waived = injected_fault and status >= 429  # a fault the tenant injected on purpose
        waived = waived or (status >= 400 and erratum_key in UNDECLARED_ERROR_STATUSES)
        if response is None and not waived:
            declared = ", ".join(sorted(responses))
            problems.append(f"status {st} not declared for {method} {op.template} (declared: {declared})")
        response_fragment = _pointer_fragment("paths", op.template, method.lower(), "responses",
                                              str(response_key))
        if response is not None and "$ref" in response:  # components/responses (unused by today's spec)
            response_fragment = response["$ref"]
            response = self._deref(response["$ref"])

        content: dict[str, Any] = (response or {}).get("content") or {}
        json_media = next((mt for mt in content if _is_json_media_type(mt)), None)

        if status >= 400 and (response is None or not json_media):
            # The spec never describes error bodies; check Auth0's real error shape.
            if not is_json:
                problems.append(f"{st} error body is not JSON (content-type {content_type!r}); "
                                "Auth0 errors are {statusCode,error,message,errorCode}")
                return problems
            if ("mgmt-error", status) not in self._validators:
                schema = dict(MGMT_ERROR_SCHEMA)
                schema["properties"] = dict(schema["properties"], statusCode={"const": status})
                self._validator(("mgmt-error", status), schema)
            err, msg = self._body_check(("mgmt-error", status), body_bytes)
            if err:
                return problems + [err]
            if msg:
                problems.append(f"error body does not match the Auth0 error shape: {msg}")
            return problems

        if response is None:
            return problems

        if json_media is None:
            if content and not is_json:
                return problems  # some other declared media type (e.g. text/event-stream)
            if is_json and body_bytes and body_bytes.strip():
                problems.append(f"spec declares no body for {method} {op.template} {st}, "
                                f"got {len(body_bytes)} bytes of JSON")
            return problems

        if not is_json:
            problems.append(f"spec declares an {json_media} body for {st}; response content-type is "
                            f"{content_type!r}")
            return problems
        schema_key = ("op", method, op.template, st, json_media)
        if schema_key not in self._validators:
            media = content[json_media] or {}
            if "schema" not in media:
                _, err = parse()
                return problems + [err] if err else problems
            fragment = response_fragment + _pointer_fragment("content", json_media, "schema")[1:]
            self._validator(schema_key, {"$ref": SPEC_URI + fragment})
        err, msg = self._body_check(schema_key, body_bytes)
        if err:
            return problems + [err]
        if msg:
            problems.append(msg)
        return problems

    def _deref(self, ref: str) -> dict[str, Any]:
        node: Any = self.document
        for seg in ref.lstrip("#/").split("/"):
            node = node[unquote(seg).replace("~1", "/").replace("~0", "~")]
        return node

    def _validate_token(self, method: str, status: int, content_type: str | None,
                        body_bytes: bytes | None, injected_fault: bool = False) -> list[str]:
        if method != "POST":
            return [f"{method} {TOKEN_PATH}: the token endpoint only takes POST"]
        problems = []
        if status not in TOKEN_STATUSES and not (injected_fault and status >= 429):
            problems.append(f"status {status} not expected from POST {TOKEN_PATH}")
        if not _is_json_media_type(content_type):
            return problems + [f"{TOKEN_PATH} body must be JSON, got content-type {content_type!r}"]
        try:
            instance = json.loads(body_bytes or b"")
        except ValueError as exc:
            return problems + [f"body is not valid JSON ({exc})"]
        if status == 200:
            key, schema = "token-ok", TOKEN_RESPONSE_SCHEMA
        else:
            key, schema = "token-error", OAUTH_ERROR_SCHEMA
        msg = self._first_error(self._validator(key, schema), instance)
        if msg:
            problems.append(msg)
        return problems


def _segment_regex(seg: str) -> str:
    out = []
    for piece in re.split(r"(\{[^}]+\})", seg):
        if piece.startswith("{") and piece.endswith("}"):
            out.append("(.+)")  # matched against one already-split (then decoded) segment
        elif piece:
            out.append(re.escape(piece))
    return "".join(out)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------
# httpx transports
# --------------------------------------------------------------------------------------------------
Sink = Callable[[str], None]


def _raw_path(request: httpx.Request) -> str:
    """The request's path as sent, still percent-encoded, without the query string.

    ``request.url.path`` is already decoded, so an encoded ``/`` inside an id (an API identifier that
    is a URL) would split the segment; the matcher decodes each segment itself after splitting.
    """
    return request.url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")


def _wants_validation(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/") or path.rstrip("/") == TOKEN_PATH


class _ValidatingBase:
    """Shared logic.  Only JSON responses under ``/api/v2`` and ``/oauth/token`` are buffered (to
    validate them); everything else -- e.g. a gzip export download -- is returned untouched, still
    streaming.  A non-JSON Management API response is still checked for *whether* JSON was due."""

    def __init__(self, inner: Any, spec: OpenAPISpec, sink: Sink | list[str] | None = None) -> None:
        self.inner = inner
        self.spec = spec
        self.problems: list[str] = []
        self._sink: Sink | None = sink.append if isinstance(sink, list) else sink

    def _record(self, request: httpx.Request, status: int, problems: Iterable[str]) -> None:
        path = request.url.raw_path.decode("ascii", "replace")
        for p in problems:
            line = f"{request.method} {path} -> {status}: {p}"
            self.problems.append(line)
            if self._sink is not None:
                self._sink(line)

    def _check_unbuffered(self, request: httpx.Request, response: httpx.Response) -> bool:
        """Validate what can be validated without the body; True if the body must be buffered."""
        path = _raw_path(request)
        if not _wants_validation(path):
            return False
        ct = response.headers.get("content-type")
        if _is_json_media_type(ct):
            return True
        self._record(request, response.status_code,
                     self.spec.validate_response(request.method, path, response.status_code, ct, None,
                                                 _injected(response)))
        return False

    def _check_buffered(self, request: httpx.Request, response: httpx.Response, raw: bytes) -> httpx.Response:
        """Validate the buffered raw (still content-encoded) body; return an equivalent response."""
        new = httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(raw),
            extensions=response.extensions,
        )
        view = httpx.Response(status_code=response.status_code, headers=response.headers,
                              stream=httpx.ByteStream(raw))
        try:
            body = view.read()  # applies Content-Encoding, like the client will
        except httpx.DecodingError:
            body = raw
        self._record(request, response.status_code,
                     self.spec.validate_response(request.method, _raw_path(request), response.status_code,
                                                 response.headers.get("content-type"), body, _injected(response)))
        return new

    # async side ------------------------------------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self._check_unbuffered(request, response):
            return response
        try:  # iterate the transport stream itself: raw bytes, still content-encoded
            raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        finally:
            await response.aclose()
        return self._check_buffered(request, response, raw)

    async def __aenter__(self):  # noqa: ANN204
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.inner.__aexit__(*exc_info)

    async def aclose(self) -> None:
        await self.inner.aclose()

    # sync side -------------------------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self._check_unbuffered(request, response):
            return response
        try:
            raw = b"".join(response.stream)  # type: ignore[arg-type]
        finally:
            response.close()
        return self._check_buffered(request, response, raw)

    def __enter__(self):  # noqa: ANN204
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.inner.__exit__(*exc_info)

    def close(self) -> None:
        self.inner.close()


class ValidatingTransport(_ValidatingBase, httpx.AsyncBaseTransport):
    """Async transport wrapper: forwards each request to ``inner``, validates the response against the
    spec, appends problems (``"METHOD /raw/path -> STATUS: first error"``) to ``.problems`` and to the
    optional ``sink`` (a list or a callable), and returns an equivalent response."""

    def __init__(self, inner: httpx.AsyncBaseTransport, spec: OpenAPISpec,
                 sink: Sink | list[str] | None = None) -> None:
        super().__init__(inner, spec, sink)


class ValidatingSyncTransport(_ValidatingBase, httpx.BaseTransport):
    """Sync twin of :class:`ValidatingTransport`, for an ``httpx.BaseTransport``."""

    def __init__(self, inner: httpx.BaseTransport, spec: OpenAPISpec,
                 sink: Sink | list[str] | None = None) -> None:
        super().__init__(inner, spec, sink)


class ValidatingDualTransport(_ValidatingBase, httpx.BaseTransport, httpx.AsyncBaseTransport):
    """For an inner transport that is both sync and async (e.g. ``httpx.MockTransport``)."""


def wrap_transport(inner: Any, spec: OpenAPISpec, sink: Sink | list[str] | None = None) -> Any:
    """Wrap an httpx transport -- or, in place, the transport of an ``httpx.Client``/``AsyncClient``
    (e.g. a ``starlette.testclient.TestClient``) -- and return what was passed in wrapped."""
    if isinstance(inner, (httpx.Client, httpx.AsyncClient)):
        client = inner
        # httpx has no public setter; _transport is the client's default transport (httpx 0.28)
        client._transport = wrap_transport(client._transport, spec, sink)  # noqa: SLF001
        return client
    is_sync = isinstance(inner, httpx.BaseTransport)
    is_async = isinstance(inner, httpx.AsyncBaseTransport)
    if is_sync and is_async:
        return ValidatingDualTransport(inner, spec, sink)
    if is_async:
        return ValidatingTransport(inner, spec, sink)
    if is_sync:
        return ValidatingSyncTransport(inner, spec, sink)
    raise TypeError(f"expected an httpx transport or client, got {type(inner).__name__}")


def _injected(response: httpx.Response) -> bool:
    return response.headers.get("x-injected-fault") == "true"
