"""Errors as the service answers them: a 4xx that names the field, never a stack trace or an echo."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
HTTP_CODES = {
    400: "MALFORMED_BODY",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
}
_TYPE_TAGS = {"float", "int", "str", "bool", "none", "list", "dict"}


class ApiError(Exception):
    """An answer other than success, with its status, a code and a message for the caller."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


def error_response(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> JSONResponse:
    """MLflow's error shape (``error_code``, ``message``), plus the offending ``fields``."""
    body: dict[str, Any] = {"error_code": code, "message": message}
    if fields:
        body["fields"] = fields
    return JSONResponse(status_code=status, content=body)


def is_type_tag(part: str) -> bool:
    """A location part pydantic adds for a member of a union (``float``,
    ``constrained-float``, ``function-before[...]``), not a field of the request."""
    return part in _TYPE_TAGS or part.startswith(("constrained-", "function-"))


def validation_problems(exc: RequestValidationError) -> JSONResponse:
    """The fields a request got wrong, by dotted path and problem, without their values."""
    problems: list[dict[str, str]] = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return error_response(400, "MALFORMED_JSON", "the body is not valid JSON")
        parts = [str(p) for p in err.get("loc", ()) if p != "body" and not is_type_tag(str(p))]
        field = ".".join(parts) or "(body)"
        if not any(p["field"] == field for p in problems):
            problems.append({"field": field, "problem": err.get("msg", "invalid")})
    return error_response(
        422, "INVALID_PARAMETER_VALUE", "the request does not match the schema", problems
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can raise becomes one of these answers."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own answers (an unreadable body, an unknown path, a method the route
        # does not take), in the service's error shape, with their headers (Allow).
        response = error_response(
            exc.status_code,
            HTTP_CODES.get(exc.status_code, "HTTP_ERROR"),
            exc.detail if isinstance(exc.detail, str) else "the request was refused",
        )
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problems(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, "INTERNAL_ERROR", "internal error; see the service log")


def scoring_message(exc: Exception, input_columns: list[str]) -> str:
    """MLflow's own messages quote the input; say what was wrong without echoing it."""
    text = str(exc)
    for marker in ("Error: ", "error: "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    text = text.split("\n")[0][:300]
    if "Failed to predict data" in text or "{" in text:
        text = "the input does not match the model signature"
    return f"{text} (expected columns: {', '.join(input_columns)})"
