"""Every failure of the SDK leaves `TenantClient.call` as one of our errors, naming the operation.

A proxy or captive portal that answers 200 with an HTML page is what the SDK reports as an `ApiError`
with a success status (the body is not JSON); it must not pass as an Auth0 answer or leak its text.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from auth0.management.core.api_error import ApiError as SdkApiError

from auth0_migrate.auth0.client import TenantClient, TenantCredentials
from auth0_migrate.errors import UnexpectedAnswerError

PAGE = b"<html><body>Sign in to the hotel wifi, guest 4711</body></html>"


def _proxy(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/oauth/token":
        return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 86400})
    if request.url.path.endswith("/roles"):
        return httpx.Response(200, content=PAGE, headers={"content-type": "text/html"})
    # Says gzip, is not: httpx fails while decoding, before the SDK sees a byte.
    return httpx.Response(200, content=PAGE, headers={"content-type": "application/json", "content-encoding": "gzip"})


def _call(operation: str, fn: str = "roles") -> BaseException:
    async def go() -> BaseException:
        client = TenantClient(TenantCredentials("https://tenant.example", "id", "secret"),
                              transport=httpx.MockTransport(_proxy))
        try:
            if fn == "roles":
                await client.call(operation, client.sdk.roles.list)
            else:
                await client.call(operation, client.sdk.users.get, "auth0|1")
        except Exception as exc:  # noqa: BLE001 - the test looks at what came out
            return exc
        finally:
            await client.aclose()
        pytest.fail("the call did not fail")
    return asyncio.run(go())


def test_a_success_status_with_a_body_that_is_not_json_is_an_unexpected_answer() -> None:
    error = _call("list roles")
    assert isinstance(error, UnexpectedAnswerError), repr(error)
    assert str(error) == "list roles: the answer (HTTP 200) is not JSON; the SDK could not read it"
    assert error.status == 200 and error.operation == "list roles" and error.exit_code == 1
    assert isinstance(error.__cause__, SdkApiError)
    assert "wifi" not in str(error)



def test_an_answer_whose_encoding_cannot_be_decoded_is_an_unexpected_answer() -> None:
    error = _call("read a user", fn="user")
    assert isinstance(error, UnexpectedAnswerError), repr(error)
    assert str(error) == "read a user: the answer's content encoding could not be decoded"
    assert isinstance(error.__cause__, httpx.DecodingError)
