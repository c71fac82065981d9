"""Auth, size and content-type checks, and request metrics, as plain ASGI middleware.

Starlette's ``@app.middleware("http")`` wraps every response in a stream and costs
milliseconds per request; this does the same checks without touching the body.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from typing import Any

from fastapi.responses import JSONResponse

from airloop.serving.errors import ApiError, error_response
from airloop.serving.metrics import Metrics

MAX_BODY_BYTES = 2_000_000
OTHER_PATHS = "other"  # the metrics label of paths the app does not serve


class GuardMiddleware:
    """Refuses unauthenticated, oversized or mistyped POSTs; counts and times every request.

    Requests are counted by route (``paths``, the app's own), every other path under one
    label, so a scanner cannot create a metric series per URL. A body is limited by its
    ``Content-Length`` and, for chunked bodies, by the bytes actually received.
    """

    def __init__(
        self, app: Any, metrics: Metrics, token: str | None, paths: Iterable[str] = ()
    ) -> None:
        self.app, self.metrics, self.token = app, metrics, token
        self.paths = frozenset(paths)
        self.credentials = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Refuse or pass the request on; count it by endpoint and status, and time it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        endpoint = scope["path"] if scope["path"] in self.paths else OTHER_PATHS
        status = {"code": 500}

        async def record_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = self.refuse(scope) if scope["method"] == "POST" else None
            if refusal is not None:
                await refusal(scope, receive, record_status)
            else:
                await self.app(scope, limited(receive), record_status)
        finally:
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    def refuse(self, scope: Any) -> JSONResponse | None:
        """The answer to a POST that must not reach the app, or None to let it through."""
        if not self.authorized(scope):
            return unauthorized()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length") or "0"
        if not length.isdigit():
            return error_response(400, "INVALID_CONTENT_LENGTH", "Content-Length is not a number")
        if int(length) > MAX_BODY_BYTES:
            return error_response(
                413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes"
            )
        if scope["path"] == "/v1/predict" and not headers.get("content-type", "").startswith(
            "application/json"
        ):
            return error_response(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
        return None

    def authorized(self, scope: Any) -> bool:
        """Whether the request carries the token (or the service has none), compared in
        constant time: a byte-by-byte comparison would tell a caller, by its timing, how much
        of a guess was right."""
        if self.credentials is None:
            return True
        given = [v for k, v in scope["headers"] if k.lower() == b"authorization"]
        return len(given) == 1 and hmac.compare_digest(given[0], self.credentials)


def unauthorized() -> JSONResponse:
    """The same 401 for a missing and a wrong token: it says nothing about which it was."""
    response = error_response(401, "UNAUTHENTICATED", "a valid bearer token is required")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def limited(receive: Any) -> Any:
    """``receive`` that refuses a body (chunked, without Content-Length) over MAX_BODY_BYTES."""
    received = 0

    async def receive_within_limit() -> Any:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes")
        return message

    return receive_within_limit
