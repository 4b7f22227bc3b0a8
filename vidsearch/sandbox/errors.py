"""API errors as the sandbox sends them.

Handlers raise ``ApiFailure``; the server turns it into a JSON response. Two body shapes exist:

- flat ``{"code", "message", "docs_url"}``: the general API error format (TL docs, the SDK's
  ``FlatErrorResponse``, the OpenAPI ``genericError``); the default;
- nested ``{"error": {"code", "message", "details"}}``: the OpenAPI file's ``ErrorResponse`` for the
  embed-v2 paths (``--error-style nested``).

The SDK types every error body as ``Any``, so it accepts both.
"""

from __future__ import annotations

from typing import Any

DOCS_URL = "https://docs.twelvelabs.io/api-reference/error-codes"


class ApiFailure(Exception):  # noqa: N818  (an HTTP answer, not a bug)
    """An error answer: HTTP status, API code and message, optional extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or {}

    def body(self, style: str) -> dict[str, Any]:
        """The JSON body in ``style`` (``flat`` or ``nested``)."""
        if style == "nested":
            inner: dict[str, Any] = {"code": self.code, "message": self.message}
            if self.details:
                inner["details"] = self.details
            return {"error": inner}
        return {"code": self.code, "message": self.message, "docs_url": DOCS_URL}


def invalid(message: str, code: str = "parameter_invalid") -> ApiFailure:
    """A 400 with ``code`` (``parameter_invalid`` unless told)."""
    return ApiFailure(400, code, message)


def missing(name: str) -> ApiFailure:
    """A 400 for a required parameter that was not sent."""
    message = f"The {name} parameter is required but was not provided."
    return ApiFailure(400, "parameter_not_provided", message)


def not_found(task_id: str) -> ApiFailure:
    """A 404 for an unknown task id."""
    return ApiFailure(404, "resource_not_exist", f"The embedding task {task_id} does not exist.")


def unauthorized() -> ApiFailure:
    """A 401 for a missing or rejected ``x-api-key``."""
    message = "The API key you provided is not valid. Check the key and try again."
    return ApiFailure(401, "api_key_invalid", message)
