"""The online service: `/v1/predict` with in-process Feast lookups, MLflow's `/invocations`,
health, readiness and Prometheus metrics.

Bad input never reaches the model and never gets a 500: each problem is a 4xx whose body
names the offending field and does not echo the input back.
"""

# No `from __future__ import annotations` here: FastAPI must see the request model built at
# run time from the use case as a real annotation, not a string.
import asyncio
import gc
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    create_model,
)

from airloop.monitoring.monitor import metrics_file
from airloop.serving.model import LoadedModel, ModelHolder
from airloop.serving.prediction_log import PredictionLog
from airloop.serving.traffic import request_fields
from airloop.settings import Settings, get_settings
from airloop.usecase import UseCase, load_usecase

log = logging.getLogger(__name__)
MAX_BATCH = 1000
MAX_BODY_BYTES = 2_000_000
_TYPE_TAGS = {"float", "int", "str", "bool", "none", "list", "dict"}
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
EVENT_ID_FIELD, EVENT_TIME_FIELD = "event_id", "event_time"


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


def _field_type(usecase: UseCase, name: str) -> Any:
    spec = usecase.sources[usecase.events.source].column(name)
    kind = spec.type if spec is not None else "string"
    base: Any = {
        "string": StrictStr,
        "number": FiniteFloat | StrictInt,
        "integer": StrictInt,
        "bool": bool,
    }.get(kind, StrictStr)
    nullable = spec.nullable if spec is not None else False
    return (base | None, None) if nullable else (base, ...)


def request_model(usecase: UseCase) -> type[BaseModel]:
    """The body of one prediction: entity keys and request-time fields, typed from the use case."""
    fields: dict[str, Any] = {name: _field_type(usecase, name) for name in request_fields(usecase)}
    # Optional correlation fields: logged with the prediction so labels can be joined later.
    fields[EVENT_ID_FIELD] = (StrictStr | None, None)
    fields[EVENT_TIME_FIELD] = (AwareDatetime | None, None)
    instance = create_model(
        f"{usecase.name}_instance", __config__=ConfigDict(extra="forbid"), **fields
    )
    return create_model(
        f"{usecase.name}_predict_request",
        __config__=ConfigDict(extra="forbid"),
        instances=(list[instance], Field(min_length=1, max_length=MAX_BATCH)),
        request_id=(StrictStr | None, None),
    )


class Metrics:
    """Prometheus metrics in a registry of the app's own (no global state between apps)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "airloop_requests_total",
            "Requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "airloop_request_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.model_version = Gauge(
            "airloop_model_version",
            "Version of the model being served",
            ["model"],
            registry=self.registry,
        )
        self.model_load_failures = Gauge(
            "airloop_model_load_failures", "Failed model loads since start", registry=self.registry
        )
        self.scores = Histogram(
            "airloop_prediction_score",
            "Distribution of predicted scores",
            buckets=[i / 10 for i in range(11)],
            registry=self.registry,
        )
        self.missing = Counter(
            "airloop_missing_features_total",
            "Online features missing at prediction time",
            ["feature"],
            registry=self.registry,
        )
        self.log_dropped = Gauge(
            "airloop_prediction_log_dropped",
            "Prediction log records dropped (buffer full)",
            registry=self.registry,
        )


def create_app(
    settings: Settings | None = None,
    usecase: UseCase | None = None,
    poll_seconds: float = 5.0,
    token: str | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    usecase = usecase or load_usecase(settings.usecase)
    token = token if token is not None else settings.serving_token
    holder = ModelHolder(settings, usecase.training.model_name, poll_seconds=poll_seconds)
    metrics = Metrics()
    Body = request_model(usecase)
    keys = list(dict.fromkeys(usecase.entity(v.entity).join_key for v in usecase.service_views))
    state: dict[str, Any] = {}
    monitoring_metrics = metrics_file(settings, usecase)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from airloop.features.store import feature_store

        state["store"] = feature_store(settings, usecase)
        state["service"] = state["store"].get_feature_service(usecase.feature_service.name)
        state["log"] = PredictionLog(settings.home / "predictions" / usecase.name)
        holder.start()
        # Everything loaded so far lives as long as the service: keep it out of the GC's scans,
        # or each full collection walks Feast's, MLflow's and sklearn's objects mid-request.
        gc.collect()
        gc.freeze()
        yield
        holder.stop()
        state["log"].close()

    app = FastAPI(title=f"airloop serving: {usecase.name}", lifespan=lifespan)
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.runtime = state

    def error(
        status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> JSONResponse:
        body: dict[str, Any] = {"error_code": code, "message": message}
        if fields:
            body["fields"] = fields
        return JSONResponse(status_code=status, content=body)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.fields)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems: list[dict[str, str]] = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return error(400, "MALFORMED_JSON", "the body is not valid JSON")
            parts = [str(p) for p in err.get("loc", ()) if p != "body" and str(p) not in _TYPE_TAGS]
            field = ".".join(parts) or "(body)"
            if not any(p["field"] == field for p in problems):
                problems.append({"field": field, "problem": err.get("msg", "invalid")})
        return error(
            422, "INVALID_PARAMETER_VALUE", "the request does not match the schema", problems
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error(500, "INTERNAL_ERROR", "internal error; see the service log")

    app.add_middleware(GuardMiddleware, metrics=metrics, token=token, error=error)

    def serving_model() -> LoadedModel:
        model = holder.current
        if model is None:
            raise ApiError(503, "MODEL_NOT_READY", holder.last_error or "no model loaded yet")
        return model

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        model = holder.current
        online_ok, online_error = True, None
        try:
            state["store"].get_online_features(
                features=state["service"],
                entity_rows=[dict.fromkeys(keys, "__probe__")],
                full_feature_names=True,
            )
        except Exception as exc:
            online_ok, online_error = False, f"{type(exc).__name__}: {exc}"
        body = {
            "ready": model is not None and online_ok,
            "model": {"name": holder.model_name, "version": model.version} if model else None,
            "online_store": "ok" if online_ok else online_error,
            "last_model_error": holder.last_error,
        }
        return JSONResponse(status_code=200 if body["ready"] else 503, content=body)

    @app.get("/metrics")
    def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        model = holder.current
        if model is not None:
            metrics.model_version.labels(holder.model_name).set(float(model.version))
        metrics.model_load_failures.set(holder.failed_loads)
        metrics.log_dropped.set(state["log"].dropped if "log" in state else 0)
        text = generate_latest(metrics.registry)
        # The monitoring DAG's latest figures, so one scrape target carries serving and drift.
        if monitoring_metrics.exists():
            text += monitoring_metrics.read_bytes()
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/predict")
    def predict(body: Body) -> dict[str, Any]:  # type: ignore[valid-type]
        model = serving_model()
        rows = [instance.model_dump() for instance in body.instances]  # type: ignore[attr-defined]
        events = [(row.pop(EVENT_ID_FIELD), row.pop(EVENT_TIME_FIELD)) for row in rows]
        entity_rows = [{k: row.get(k) for k in keys} for row in rows]
        # Feast cannot look up a missing key; an unknown one simply finds no features.
        lookup_rows = [
            {k: ("__missing__" if v is None else v) for k, v in row.items()} for row in entity_rows
        ]
        online = (
            state["store"]
            .get_online_features(
                features=state["service"], entity_rows=lookup_rows, full_feature_names=True
            )
            .to_dict(include_event_timestamps=True)
        )
        data, missing_by_row = _model_inputs(model, rows, online)
        for problems in missing_by_row:
            for column in problems:
                metrics.missing.labels(column).inc()
        frame = pd.DataFrame(data, columns=model.input_columns)
        scores = _score(model, usecase, frame)
        as_of = _feature_times(online, len(rows))
        now = datetime.now(UTC).isoformat()
        request_id = body.request_id or uuid.uuid4().hex  # type: ignore[attr-defined]
        predictions = []
        for i in range(len(rows)):
            score = float(scores[i])
            metrics.scores.observe(score)
            item: dict[str, Any] = {
                "score": score,
                "features_as_of": as_of[i],
                "missing_features": missing_by_row[i],
            }
            if usecase.task == "classification":
                item["prediction"] = int(score >= 0.5)
            predictions.append(item)
            state["log"].append(
                {
                    "request_id": request_id,
                    "index": i,
                    "time": now,
                    "event_id": events[i][0],
                    "event_time": events[i][1].astimezone(UTC).isoformat() if events[i][1] else now,
                    "entities": entity_rows[i],
                    "features": {c: _plain(data[c][i]) for c in model.input_columns},
                    "model": holder.model_name,
                    "model_version": model.version,
                    "score": score,
                }
            )
        return {
            "request_id": request_id,
            "model": {"name": holder.model_name, "version": model.version},
            "predictions": predictions,
        }

    @app.post("/admin/reload")
    def reload() -> dict[str, Any]:
        """Check the alias now instead of at the next poll (deploys call this)."""
        holder.refresh()
        model = holder.current
        return {
            "model": {"name": holder.model_name, "version": model.version} if model else None,
            "last_model_error": holder.last_error,
        }

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server

        model = serving_model()
        data = await request.body()
        content_type = request.headers.get("content-type", "application/json")
        try:
            # Off the event loop, like MLflow's own server: concurrent requests keep parsing.
            result = await asyncio.to_thread(
                scoring_server.invocations,
                data,
                content_type,
                model.pyfunc,
                model.pyfunc.metadata.get_input_schema(),
            )
        except MlflowException as exc:
            return error(400, "INVALID_PARAMETER_VALUE", _scoring_message(exc, model))
        except Exception:
            return error(
                400, "INVALID_PARAMETER_VALUE", "the input could not be parsed as a scoring request"
            )
        return Response(
            content=result.response, status_code=result.status, media_type=result.mimetype
        )

    return app


class GuardMiddleware:
    """Auth, size and content-type checks, and request metrics, as plain ASGI.

    Starlette's ``@app.middleware("http")`` wraps every response in a stream and costs
    milliseconds per request; this does the same checks without touching the body.
    """

    def __init__(self, app: Any, metrics: Metrics, token: str | None, error: Any) -> None:
        self.app, self.metrics, self.token, self.error = app, metrics, token, error

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        status = {"code": 500}

        async def record_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        refusal = self.refuse(scope) if scope["method"] == "POST" else None
        if refusal is not None:
            await refusal(scope, receive, record_status)
        else:
            await self.app(scope, receive, record_status)
        self.metrics.requests.labels(path, str(status["code"])).inc()
        self.metrics.latency.labels(path).observe(time.perf_counter() - started)

    def refuse(self, scope: Any) -> JSONResponse | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return self.error(401, "UNAUTHENTICATED", "a valid bearer token is required")
        if int(headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return self.error(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes")
        if scope["path"] == "/v1/predict" and not headers.get("content-type", "").startswith(
            "application/json"
        ):
            return self.error(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
        return None


def _model_inputs(
    model: LoadedModel, rows: list[dict[str, Any]], online: dict[str, list[Any]]
) -> tuple[dict[str, Any], list[list[str]]]:
    """Column arrays for the model (numbers as float64, as at training) and, per row, what was missing.

    Built straight from the request and the online response: no per-cell pandas access on
    the request path.
    """
    n = len(rows)
    data: dict[str, Any] = {}
    missing_by_row: list[list[str]] = [[] for _ in range(n)]
    for column in model.input_columns:
        if column in rows[0]:
            values = [row[column] for row in rows]
        elif column in online:
            values = online[column]
        else:
            values = [None] * n
        if column in model.numeric_columns:
            try:
                array = np.array([np.nan if v is None else v for v in values], dtype="float64")
            except (TypeError, ValueError):
                array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy("float64")
            for index in np.flatnonzero(np.isnan(array)).tolist():
                missing_by_row[index].append(column)
        else:
            array = np.array(values, dtype=object)
            for position, value in enumerate(values):
                if value is None:
                    missing_by_row[position].append(column)
        data[column] = array
    return data, missing_by_row


def _score(model: LoadedModel, usecase: UseCase, frame: pd.DataFrame) -> Any:
    if usecase.task == "classification":
        return model.raw.predict_proba(frame)[:, 1]
    return model.raw.predict(frame)


def _feature_times(online: dict[str, list[Any]], n: int) -> list[dict[str, str | None]]:
    """Per feature view, the timestamp of the row that was served (its freshness)."""
    out: list[dict[str, str | None]] = [{} for _ in range(n)]
    for column, values in online.items():
        parts = column.split("__")
        if len(parts) != 3 or parts[2] != "ts":
            continue
        for i, value in enumerate(values):
            stamp = (
                datetime.fromtimestamp(value, UTC).isoformat()
                if isinstance(value, int) and value > 0
                else None
            )
            if stamp:
                out[i][parts[0]] = max(stamp, out[i].get(parts[0]) or "")
            else:
                out[i].setdefault(parts[0], None)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _scoring_message(exc: Exception, model: LoadedModel) -> str:
    """MLflow's own messages quote the input; say what was wrong without echoing it."""
    text = str(exc)
    for marker in ("Error: ", "error: "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    text = text.split("\n")[0][:300]
    if "Failed to predict data" in text or "{" in text:
        text = "the input does not match the model signature"
    return f"{text} (expected columns: {', '.join(model.input_columns)})"
