"""Auth0's error answers as exceptions: the Management API's and the Authentication API's shapes."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """An Auth0 Management API error answer: `{"statusCode","error","message","errorCode"}`."""

    def __init__(self, status: int, message: str, error_code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "statusCode": self.status,
            "error": HTTPStatus(self.status).phrase,
            "message": self.message,
        }
        if self.error_code:
            body["errorCode"] = self.error_code
        return body


class OAuthError(Exception):
    """An Authentication API error answer: `{"error","error_description"}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def not_found(what: str = "The user does not exist.", code: str = "inexistent_user") -> ApiError:
    return ApiError(404, what, code)


def query_error(name: str, detail: str) -> ApiError:
    return ApiError(400, f"Query validation error: '{detail}' on property {name}.", "invalid_query_string")


def body_error(detail: str, prop: str | None = None) -> ApiError:
    where = f" on property {prop}" if prop else ""
    return ApiError(400, f"Payload validation error: '{detail}'{where}.", "invalid_body")
