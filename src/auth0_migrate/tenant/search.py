"""User search for `GET /api/v2/users?q=...&search_engine=v3`: a Lucene subset compiled to SQL.

What is understood (Auth0's v3 query syntax, reference §5 and the user-search docs):

* terms `field:value`, `field:"quoted value"`, a bare `value` (matched against the normalized
  fields email, name, given_name, family_name, nickname, username and user_id, never metadata);
* a trailing `*` wildcard (`email:jane*`), `field:*` (has a value), `_exists_:field`,
  `_missing_:field`;
* ranges `field:[a TO b]`, `{a TO b}`, mixed brackets, `*` for an open end (numbers, dates);
* `AND`, `OR`, `NOT`, `&&`, `||`, `!`, `+`/`-` prefixes, parentheses, `field:(a OR b)`;
  adjacent clauses without an operator are OR'ed (Lucene's default operator).
* Values of email, name, given_name, family_name and nickname match case-insensitively; every other
  field (metadata included) is case-sensitive. `app_metadata.a.b` reaches nested objects and, as
  Auth0 does, looks through arrays (`app_metadata.roles:admin`, `user_metadata.addresses.city:x`).
  Range and wildcard searches on `user_metadata` are refused, as Auth0 refuses them.

Everything runs in SQLite: indexed columns (`user_id`, `email`, `username`, the connection) are
compared directly (a prefix becomes an index range), and profile fields are read from the JSON
column with `json_each`, so no row is parsed in Python. A few Python functions are registered on
the store's connection for Unicode lower-casing and array-path matching.

Search lag: a user is visible to search once `now >= users.visible_at` AND
`now >= users.created_at + faults.search_lag`. Writers that know better (an import job) set
`visible_at`; the fault switch applies to every user at query time, so turning it on hides users
created in the last `search_lag` seconds, whoever created them.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError
from .store import Store

# Fields Auth0 matches case-insensitively (reference §5).
CASE_INSENSITIVE = frozenset({"email", "name", "given_name", "family_name", "nickname"})
# Normalized fields a bare term (no field name) is matched against.
BARE_TERM_FIELDS = ("email", "name", "given_name", "family_name", "nickname", "username", "user_id")
# Columns of `users` searched directly.
COLUMNS = {"user_id": "u.user_id", "email": "u.email", "username": "u.username",
           "phone_number": "u.phone_number"}
EPOCH_COLUMNS = {"created_at": "u.created_at", "updated_at": "u.updated_at"}
SORT_PATTERN = re.compile(r"^([a-zA-Z0-9_.]+):(1|-1)$")
_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_MAX_CHAR = "\U0010ffff"


def query_error(detail: str) -> ApiError:
    return ApiError(400, f"Query validation error: '{detail}' on property q "
                         "(Query in Lucene query string syntax).", "invalid_query_string")


# --- the query tree -----------------------------------------------------------------------------

@dataclass
class Term:
    field: str | None
    kind: str  # "exact" | "prefix" | "exists" | "missing" | "range"
    value: str = ""
    low: str | None = None
    high: str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True


@dataclass
class Not:
    node: Any


@dataclass
class BoolOp:
    op: str  # "AND" | "OR"
    nodes: list[Any] = field(default_factory=list)


# --- tokenizer ----------------------------------------------------------------------------------

@dataclass
class _Tok:
    kind: str  # "(" ")" "AND" "OR" "NOT" "+" "-" "TERM" "FIELDGROUP"
    text: str = ""
    field: str | None = None
    quoted: bool = False
    range: tuple[str, str, bool, bool] | None = None


class _Lexer:
    def __init__(self, q: str) -> None:
        self.q = q
        self.i = 0

    def error(self, detail: str) -> ApiError:
        return query_error(f"{detail} at position {self.i}")

    def tokens(self) -> list[_Tok]:
        out: list[_Tok] = []
        q = self.q
        while True:
            while self.i < len(q) and q[self.i].isspace():
                self.i += 1
            if self.i >= len(q):
                return out
            c = q[self.i]
            if c in "()":
                out.append(_Tok(c))
                self.i += 1
                continue
            if q.startswith("&&", self.i):
                out.append(_Tok("AND"))
                self.i += 2
                continue
            if q.startswith("||", self.i):
                out.append(_Tok("OR"))
                self.i += 2
                continue
            if c in "+-!" and self.i + 1 < len(q) and not q[self.i + 1].isspace():
                out.append(_Tok("NOT" if c in "-!" else "+"))
                self.i += 1
                continue
            word_end = self._word_end(self.i)
            word = q[self.i:word_end]
            if word in ("AND", "OR", "NOT"):
                out.append(_Tok(word))
                self.i = word_end
                continue
            out.append(self._term())

    def _word_end(self, i: int) -> int:
        q = self.q
        while i < len(q) and not q[i].isspace() and q[i] not in "()":
            if q[i] == "\\":
                i += 1
            i += 1
        return min(i, len(q))

    def _term(self) -> _Tok:
        q = self.q
        m = _FIELD_RE.match(q, self.i)
        name: str | None = None
        if m and m.end() < len(q) and q[m.end()] == ":":
            name = m.group(0)
            self.i = m.end() + 1
            if self.i >= len(q) or q[self.i].isspace():
                raise self.error(f"missing value for field {name}")
            if q[self.i] == "(":
                return _Tok("FIELDGROUP", field=name)
        c = q[self.i]
        if c == '"':
            return _Tok("TERM", self._quoted(), field=name, quoted=True)
        if c in "[{":
            return _Tok("TERM", field=name, range=self._range())
        end = self._word_end(self.i)
        raw = q[self.i:end]
        self.i = end
        if raw == "":
            raise self.error("empty term")
        return _Tok("TERM", raw, field=name)

    def _quoted(self) -> str:
        q = self.q
        self.i += 1
        out = []
        while self.i < len(q):
            c = q[self.i]
            if c == "\\" and self.i + 1 < len(q):
                out.append(q[self.i + 1])
                self.i += 2
                continue
            if c == '"':
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise self.error("unterminated quoted string")

    def _range(self) -> tuple[str, str, bool, bool]:
        q = self.q
        low_incl = q[self.i] == "["
        close = min((j for j in (q.find("]", self.i), q.find("}", self.i)) if j != -1), default=-1)
        if close == -1:
            raise self.error("unterminated range")
        body = q[self.i + 1:close]
        parts = body.split(" TO ")
        if len(parts) != 2:
            raise self.error("a range is [low TO high]")
        low, high = (p.strip().strip('"') for p in parts)
        if not low or not high:
            raise self.error("a range needs two bounds")
        high_incl = q[close] == "]"
        self.i = close + 1
        return low, high, low_incl, high_incl


# --- parser -------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.or_expr(None)
        if self.peek() is not None:
            raise query_error(f"unexpected '{self.peek().kind}'")  # type: ignore[union-attr]
        return node

    def or_expr(self, default_field: str | None) -> Any:
        nodes = [self.and_expr(default_field)]
        while (tok := self.peek()) is not None and tok.kind != ")":
            if tok.kind == "OR":
                self.take()
            nodes.append(self.and_expr(default_field))
        return nodes[0] if len(nodes) == 1 else BoolOp("OR", nodes)

    def and_expr(self, default_field: str | None) -> Any:
        nodes = [self.unary(default_field)]
        while (tok := self.peek()) is not None and tok.kind == "AND":
            self.take()
            nodes.append(self.unary(default_field))
        return nodes[0] if len(nodes) == 1 else BoolOp("AND", nodes)

    def unary(self, default_field: str | None) -> Any:
        tok = self.peek()
        if tok is None:
            raise query_error("the query ends where a term was expected")
        if tok.kind == "NOT":
            self.take()
            return Not(self.unary(default_field))
        if tok.kind == "+":
            self.take()
            return self.unary(default_field)
        return self.primary(default_field)

    def primary(self, default_field: str | None) -> Any:
        tok = self.take()
        if tok.kind in ("(", "FIELDGROUP"):
            inner_field = tok.field if tok.kind == "FIELDGROUP" else default_field
            if tok.kind == "FIELDGROUP":
                nxt = self.take()  # the "(" after "field:"
                assert nxt.kind == "("
            node = self.or_expr(inner_field)
            if self.peek() is None or self.take().kind != ")":
                raise query_error("missing ')'")
            return node
        if tok.kind != "TERM":
            raise query_error(f"unexpected '{tok.kind}'")
        return _make_term(tok, tok.field or default_field)


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw)


def _make_term(tok: _Tok, name: str | None) -> Term:
    if name in ("_exists_", "_missing_"):
        target = _unescape(tok.text)
        if not _FIELD_RE.fullmatch(target or ""):
            raise query_error(f"{name} needs a field name")
        return Term(target, "exists" if name == "_exists_" else "missing")
    if tok.range is not None:
        if name is None:
            raise query_error("a range needs a field")
        low, high, li, hi = tok.range
        if name.startswith("user_metadata."):
            raise query_error("range searches are not available on user_metadata fields")
        return Term(name, "range", low=None if low == "*" else low, high=None if high == "*" else high,
                    low_inclusive=li, high_inclusive=hi)
    if tok.quoted:
        return Term(name, "exact", tok.text)
    raw = tok.text
    if raw == "*":
        return Term(name, "exists") if name else Term(None, "all")
    # An unescaped `*` is a wildcard; only a trailing one is supported.
    body, star = raw, False
    if raw.endswith("*") and not raw.endswith("\\*"):
        body, star = raw[:-1], True
    if re.search(r"(?<!\\)[*?]", body):
        raise query_error("only a trailing '*' wildcard is supported")
    value = _unescape(body)
    if star:
        if name is not None and name.startswith("user_metadata."):
            raise query_error("wildcard searches are not available on user_metadata fields")
        return Term(name, "prefix", value)
    return Term(name, "exact", value)


def parse(q: str) -> Any:
    """The query tree of `q`, or Auth0's 400 for what this subset cannot read."""
    if len(q) > 4096:
        raise ApiError(414, "Query string too long", "query_too_long")  # Auth0 answers long q with 414
    tokens = _Lexer(q).tokens()
    if not tokens:
        return None
    return _Parser(tokens).parse()


# --- SQL ----------------------------------------------------------------------------------------

def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _strip_indexes(path: Any) -> Any:
    """`$."m".a[0].b` -> `$.m.a.b`: a json_tree path with array levels and label quotes removed."""
    return re.sub(r"\[\d+\]", "", path).replace('"', "") if isinstance(path, str) else path


def ensure_functions(store: Store) -> None:
    """Register the SQL functions search needs on the store's connection (once per store)."""
    if getattr(store, "_search_functions", False):
        return
    with store.lock:
        store.conn.create_function("a0_lower", 1, _lower, deterministic=True)
        store.conn.create_function("a0_path", 1, _strip_indexes, deterministic=True)
        store._search_functions = True  # type: ignore[attr-defined]


def _json_path(name: str) -> str:
    return "$" + "".join(f'."{part}"' for part in name.split("."))


# The JSON value of a json_each/json_tree row as text, the way Lucene sees it ('true', '5', 'x').
_JTEXT = "(CASE {t}.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST({t}.value AS TEXT) END)"


def _parse_date(value: str) -> float:
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        raise query_error(f"'{value}' is not a date") from None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


class _Compiler:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def p(self, value: Any) -> str:
        """A named placeholder for `value` (named, so SQL can be assembled in any order)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def node(self, node: Any) -> str:
        if isinstance(node, BoolOp):
            joiner = f" {node.op} "
            return "(" + joiner.join(self.node(n) for n in node.nodes) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.node(node.node)})"
        return self.term(node)

    def term(self, t: Term) -> str:
        if t.kind == "all":
            return "1"
        if t.field is None:
            return "(" + " OR ".join(self.term(Term(f, t.kind, t.value)) for f in BARE_TERM_FIELDS) + ")"
        name = t.field
        if name == "identities.connection":
            return self.connection(t)
        if name in ("identities.user_id",):
            return self.identity_user_id(t)
        if name == "identities.provider":
            return self.constant("auth0", t)
        if name == "identities.isSocial":
            return self.constant("false", t)
        if name == "email.domain":
            return self.text_expr("substr(u.email, instr(u.email, '@') + 1)", t, lowered=True, column=False)
        if name in EPOCH_COLUMNS:
            return self.epoch(EPOCH_COLUMNS[name], t)
        if name in COLUMNS:
            return self.text_expr(COLUMNS[name], t, lowered=(name == "email"), column=True)
        return self.json(name, t)

    # -- helpers for one text expression (a column or a derived string)

    def text_expr(self, expr: str, t: Term, *, lowered: bool, column: bool) -> str:
        """`expr` holds text already lower-cased when `lowered` (emails are stored lower-cased)."""
        if t.kind == "exists":
            return f"({expr} IS NOT NULL AND {expr} != '')"
        if t.kind == "missing":
            return f"({expr} IS NULL OR {expr} = '')"
        value = t.value.lower() if lowered else t.value
        if t.kind == "exact":
            return f"{expr} = {self.p(value)}"
        if t.kind == "prefix":
            if column:  # an index range
                return f"({expr} >= {self.p(value)} AND {expr} < {self.p(value + _MAX_CHAR)})"
            return f"substr({expr}, 1, {self.p(len(value))}) = {self.p(value)}"
        if t.kind == "range":
            parts = []
            if t.low is not None:
                low = t.low.lower() if lowered else t.low
                parts.append(f"{expr} {'>=' if t.low_inclusive else '>'} {self.p(low)}")
            if t.high is not None:
                parts.append(f"{expr} {'<=' if t.high_inclusive else '<'} "
                             f"{self.p(t.high.lower() if lowered else t.high)}")
            return "(" + (" AND ".join(parts) or "1") + ")"
        raise query_error(f"unsupported term on {t.field}")

    def connection(self, t: Term) -> str:
        if t.kind in ("exists",):
            return "1"
        if t.kind == "missing":
            return "0"
        inner = self.text_expr("c2.name", t, lowered=False, column=True)
        return f"u.connection_id IN (SELECT c2.id FROM connections c2 WHERE {inner})"

    def identity_user_id(self, t: Term) -> str:
        if t.kind == "exact":
            return f"u.user_id = {self.p('auth0|' + t.value)}"
        if t.kind == "prefix":
            prefixed = Term(t.field, "prefix", "auth0|" + t.value)
            return self.text_expr("u.user_id", prefixed, lowered=False, column=True)
        return self.text_expr("substr(u.user_id, instr(u.user_id, '|') + 1)", t, lowered=False, column=False)

    def constant(self, actual: str, t: Term) -> str:
        if t.kind == "exists":
            return "1"
        if t.kind == "missing":
            return "0"
        if t.kind == "exact":
            return "1" if t.value == actual else "0"
        if t.kind == "prefix":
            return "1" if actual.startswith(t.value) else "0"
        return "0"

    def epoch(self, column: str, t: Term) -> str:
        if t.kind == "exists":
            return "1"
        if t.kind == "missing":
            return "0"
        if t.kind == "exact":
            start = _parse_date(t.value)
            span = 86400.0 if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t.value.strip()) else 0.001
            return f"({column} >= {self.p(start)} AND {column} < {self.p(start + span)})"
        if t.kind == "range":
            parts = []
            if t.low is not None:
                parts.append(f"{column} {'>=' if t.low_inclusive else '>'} {self.p(_parse_date(t.low))}")
            if t.high is not None:
                high = _parse_date(t.high)
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t.high.strip()) and t.high_inclusive:
                    parts.append(f"{column} < {self.p(high + 86400.0)}")  # the whole last day
                else:
                    parts.append(f"{column} {'<=' if t.high_inclusive else '<'} {self.p(high)}")
            return "(" + (" AND ".join(parts) or "1") + ")"
        raise query_error(f"wildcard searches are not available on {t.field}")

    def json(self, name: str, t: Term) -> str:
        root = name.split(".", 1)[0]
        path = _json_path(name)
        if t.kind in ("exists", "missing"):
            found = (f"EXISTS (SELECT 1 FROM json_each(u.profile, {self.p(path)}) j "
                     f"WHERE j.type != 'null' AND NOT (j.type = 'text' AND j.value = ''))")
            return found if t.kind == "exists" else f"(NOT {found})"
        cond = self.json_condition(name, t, "j")
        # json_each over a scalar gives one row (key NULL), over an array its items (integer keys);
        # an object's members are not matched by a term on the object itself.
        direct = (f"EXISTS (SELECT 1 FROM json_each(u.profile, {self.p(path)}) j "
                  f"WHERE (j.key IS NULL OR typeof(j.key) = 'integer') AND {cond})")
        parts = name.split(".")
        if root not in ("app_metadata", "user_metadata") or len(parts) < 3:
            return direct
        # Look through arrays on the way (user_metadata.addresses.city), only for users that have one.
        guards = " OR ".join(f"json_type(u.profile, {self.p(_json_path('.'.join(parts[:k])))}) = 'array'"
                             for k in range(2, len(parts)))
        tree_cond = self.json_condition(name, t, "t")
        tree = self.p(_json_path(root))
        through = (f"(({guards}) AND EXISTS (SELECT 1 FROM json_tree(u.profile, {tree}) t "
                   f"WHERE t.atom IS NOT NULL AND a0_path(t.fullkey) = {self.p(path.replace(chr(34), ''))} "
                   f"AND {tree_cond}))")
        return f"({direct} OR {through})"

    def json_condition(self, name: str, t: Term, alias: str) -> str:
        text = _JTEXT.format(t=alias)
        if name in CASE_INSENSITIVE:
            value = t.value.lower()
            # SQLite's lower() folds ASCII only, but is far cheaper than a Python call per row; an
            # ASCII search value can only equal text whose other characters fold to nothing ASCII.
            text = f"lower({text})" if value.isascii() else f"a0_lower({text})"
        else:
            value = t.value
        scalar = f"{alias}.type NOT IN ('object', 'array', 'null')"
        if t.kind == "exact":
            return f"({scalar} AND {text} = {self.p(value)})"
        if t.kind == "prefix":
            return f"({scalar} AND substr({text}, 1, {self.p(len(value))}) = {self.p(value)})"
        if t.kind == "range":
            low_n = _number(t.low) if t.low is not None else None
            high_n = _number(t.high) if t.high is not None else None
            numeric = (t.low is None or low_n is not None) and (t.high is None or high_n is not None)
            parts = [scalar]
            if numeric:
                parts.append(f"{alias}.type IN ('integer', 'real')")
                if low_n is not None:
                    parts.append(f"{alias}.value {'>=' if t.low_inclusive else '>'} {self.p(low_n)}")
                if high_n is not None:
                    parts.append(f"{alias}.value {'<=' if t.high_inclusive else '<'} {self.p(high_n)}")
            else:  # dates as ISO strings compare as text
                if t.low is not None:
                    parts.append(f"{text} {'>=' if t.low_inclusive else '>'} {self.p(t.low)}")
                if t.high is not None:
                    high = t.high + ("T23:59:59.999Z" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t.high) else "")
                    parts.append(f"{text} {'<=' if t.high_inclusive else '<'} {self.p(high)}")
            return "(" + " AND ".join(parts) + ")"
        raise query_error(f"unsupported term on {name}")


def compile_query(q: str | None) -> tuple[str, dict[str, Any]]:
    """A SQL condition over `users u` and its named parameters; `1` for an empty query."""
    tree = parse(q) if q and q.strip() else None
    if tree is None:
        return "1", {}
    compiler = _Compiler()
    return compiler.node(tree), compiler.params


def sort_clause(sort: str | None) -> str:
    if not sort:
        return "u.pk"
    m = SORT_PATTERN.match(sort)
    if not m:
        raise ApiError(400, "Query validation error: 'String does not match pattern "
                            "^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$' on property sort (Field to sort by. "
                            "Use field:order where order is 1 for ascending and -1 for descending. "
                            "e.g. created_at:1).", "invalid_query_string")
    name, order = m.group(1), "ASC" if m.group(2) == "1" else "DESC"
    if name in EPOCH_COLUMNS:
        expr = EPOCH_COLUMNS[name]
    elif name in COLUMNS:
        expr = COLUMNS[name]
    else:
        expr = f"json_extract(u.profile, '{_json_path(name)}')"
    return f"{expr} {order}, u.pk {order}"


@dataclass
class SearchResult:
    rows: list[sqlite3.Row]
    total: int
    hidden: int = 0
    """Users matching `q` that the search lag kept out (counted only when a lag applies)."""


def search_users(store: Store, *, q: str | None, now: float, lag: float, offset: int, limit: int,
                 sort: str | None = None, connection_name: str | None = None,
                 want_total: bool = True) -> SearchResult:
    """Users visible to search that match `q`, as rows with `conn_name`, and the real total."""
    ensure_functions(store)
    cond, params = compile_query(q)
    matches = f"({cond})"
    params = {**params, "now": now, "seen_before": now - lag}
    if connection_name is not None:
        matches += " AND u.connection_id IN (SELECT id FROM connections WHERE name = :v1_connection)"
        params["v1_connection"] = connection_name
    visible = "u.visible_at <= :now AND u.created_at <= :seen_before"
    where = f"{matches} AND {visible}"
    hidden = 0
    if lag > 0 or store.one("SELECT 1 FROM users WHERE visible_at > ? LIMIT 1", (now,)) is not None:
        # Only the lag hides users (an import sets `visible_at` ahead by the lag): count them for the tests.
        hidden = store.row(f"SELECT COUNT(*) FROM users u WHERE {matches} AND NOT ({visible})", params)[0]
    order = sort_clause(sort)
    rows: list[sqlite3.Row] = []
    if limit > 0:
        rows = store.query(f"SELECT u.*, c.name AS conn_name FROM users u"
                           f" JOIN connections c ON c.id = u.connection_id"
                           f" WHERE {where} ORDER BY {order} LIMIT :limit OFFSET :offset",
                           {**params, "limit": limit, "offset": offset})
    total = 0
    if want_total:
        total = store.row(f"SELECT COUNT(*) FROM users u WHERE {where}", params)[0]
    return SearchResult(rows, total, hidden)
