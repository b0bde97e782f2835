"""pytest plugin: every JSON body a test receives from the local Auth0 tenant is checked against
Auth0's Management API OpenAPI spec (see ``tests/support/oas.py``).

The 2 lines ``tests/conftest.py`` (owned by whoever writes the tenant fixtures) needs::

    pytest_plugins = ["tests.support.oas_plugin"]            # 1: at module level of the ROOT conftest

    def http(app, oas_wrap):                                  # 2: wrap each client that talks to the tenant
        with oas_wrap(TestClient(app, base_url=BASE_URL)) as client:
            yield client

(ad hoc, without a conftest: ``python -m pytest -p tests.support.oas_plugin``).  An SDK built on that
client (``Auth0(..., httpx_client=http)``) is then covered too.  Other ways to wrap::

    @pytest.fixture(scope="session")            # any scope works
    def tenant_client(oas_wrap):
        transport = oas_wrap(httpx.ASGITransport(app))   # or httpx.HTTPTransport / AsyncHTTPTransport
        return httpx.AsyncClient(transport=transport, base_url="https://tenant.test")

``oas_wrap(inner)`` returns a :class:`~tests.support.oas.ValidatingTransport` for an
``httpx.AsyncBaseTransport``, a :class:`~tests.support.oas.ValidatingSyncTransport` for an
``httpx.BaseTransport`` (a :class:`~tests.support.oas.ValidatingDualTransport` for one that is both,
like ``httpx.MockTransport``).  Given an ``httpx.Client``/``AsyncClient`` -- e.g. a
``starlette.testclient.TestClient`` built on httpx -- it wraps that client's transport in place and
returns the client (note: starlette's TestClient is built on ``httpx2`` instead when that package is
installed; this module supports ``httpx`` only).

Fixtures:

``oas_spec`` (session)
    The loaded :class:`~tests.support.oas.OpenAPISpec` (YAML parsed once per spec version, then a
    pickle in ``<repo>/.cache``).
``oas_wrap`` (session)
    The wrapping callable above.  Problems go to whichever test is running when the response arrives,
    so a session- or module-scoped client is fine.
``oas_problems`` (function, autouse)
    The list of problems recorded for the current test.  If it is non-empty when the test body
    returns, the test FAILS with the list; problems recorded later (during fixture teardown) make the
    teardown error.  A test that provokes bad bodies on purpose can inspect and ``.clear()`` it.

Problems recorded while no test is running (e.g. while a session fixture tears down) are printed in
the terminal summary and make the session exit non-zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.oas import OpenAPISpec, wrap_transport

# The collector of the test currently running (None between tests), and problems seen outside tests.
_current: list[str] | None = None
_orphans: list[str] = []
# id(collector) -> how many of its problems the call-phase check already reported
_reported: dict[int, int] = {}


def _sink(problem: str) -> None:
    (_current if _current is not None else _orphans).append(problem)


def _format(problems: list[str]) -> str:
    return "responses from the local Auth0 tenant do not match the Management API spec:\n  " + "\n  ".join(
        problems
    )


@pytest.fixture(scope="session")
def oas_spec() -> OpenAPISpec:
    return OpenAPISpec.load()


@pytest.fixture(scope="session")
def oas_wrap(oas_spec: OpenAPISpec) -> Callable[[Any], Any]:
    def wrap(inner: Any) -> Any:
        return wrap_transport(inner, oas_spec, sink=_sink)

    return wrap


@pytest.fixture(autouse=True)
def oas_problems() -> Iterator[list[str]]:
    global _current
    # Higher-scoped fixtures (e.g. a session tenant) are set up for this test before this fixture
    # runs; whatever they recorded belongs to this test.
    problems: list[str] = list(_orphans)
    _orphans.clear()
    _current = problems
    try:
        yield problems
    finally:
        reported = _reported.pop(id(problems), 0)
        _current = None
    late = problems[reported:]
    if late:
        pytest.fail(_format(late), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        result = yield
    except BaseException:
        problems = _collector(item)
        if problems:
            item.add_report_section("call", "oas", _format(problems))
            _reported[id(problems)] = len(problems)
        raise
    problems = _collector(item)
    if problems:
        _reported[id(problems)] = len(problems)
        pytest.fail(_format(problems), pytrace=False)
    return result


def _collector(item: pytest.Item) -> list[str] | None:
    funcargs = getattr(item, "funcargs", None) or {}
    value = funcargs.get("oas_problems")
    return value if isinstance(value, list) else None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _orphans:
        terminalreporter.section("OpenAPI problems outside any test", red=True)
        for line in _orphans:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _orphans and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
