"""A tiny FastAPI app wired like the serving API (its error handlers, its guard, an echoing
predict route), for the serving API's unit tests: no model, no stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from airloop.serving.errors import install_error_handlers
from airloop.serving.guard import GuardMiddleware
from airloop.serving.metrics import Metrics

TOKEN = "s3cret-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
FLIGHT: dict[str, Any] = {
    "origin": "JFK",
    "carrier": "AA",
    "route": "JFK-LAX",
    "service": "AA_1_JFK",
    "dest": "LAX",
    "tailnum": "N12345",
    "distance": 2475.0,
    "hour": 9,
    "month": 3,
}


def with_body(route: Callable[..., Any], body_model: type[BaseModel]) -> Callable[..., Any]:
    """The route with its ``body`` typed by the model (annotations here are strings, see PEP 563)."""
    route.__annotations__["body"] = body_model
    return route


def serving_app(
    body_model: type[BaseModel], token: str | None = TOKEN
) -> tuple[TestClient, Metrics, list[int]]:
    """A tiny app wired like the service: error handlers, the guard, an echoing predict route.

    Returns the client, the metrics and a list holding the batch size of each request the
    predict route actually received.
    """
    app = FastAPI()
    install_error_handlers(app)
    metrics = Metrics()
    received: list[int] = []

    def predict(body: Any) -> dict[str, Any]:
        received.append(len(body.instances))
        return {"instances": len(body.instances)}

    app.post("/v1/predict")(with_body(predict, body_model))

    @app.post("/admin/reload")
    def reload() -> dict[str, str]:
        return {"reloaded": "yes"}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/boom")
    def boom() -> dict[str, str]:
        raise RuntimeError("a bug")

    @app.post("/echo-size")
    async def echo_size(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    paths = [getattr(route, "path", "") for route in app.routes]
    app.add_middleware(GuardMiddleware, metrics=metrics, token=token, paths=paths)
    return TestClient(app, raise_server_exceptions=False), metrics, received
