"""The online service: ``/v1/predict`` with in-process Feast lookups, MLflow's ``/invocations``,
health, readiness and Prometheus metrics.

Bad input never reaches the model and never gets a 500: each problem is a 4xx whose body
names the offending field and does not echo the input back (``errors``, ``guard``). The parts:
``schema`` (what a request may hold), ``predict`` (the prediction path), ``model`` (the hot-swapped
champion), ``prediction_log``, ``metrics``, ``openapi`` (the document, which declares every
answer: ``tests/integration/test_serving_contract.py`` holds the service to it).
"""

# No `from __future__ import annotations` here: FastAPI must see the request model built at
# run time from the use case as a real annotation, not a string.
import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from airloop.core.provenance import git_commit
from airloop.core.version import airloop_version
from airloop.serving.client import serving_token
from airloop.serving.errors import error_response, install_error_handlers, scoring_message
from airloop.serving.guard import GuardMiddleware
from airloop.serving.invocations import (
    CheckedModel,
    request_rules,
    scoring_media_type,
    table_as_sent,
)
from airloop.serving.metrics import Metrics
from airloop.serving.model import ModelHolder
from airloop.serving.openapi import install_openapi
from airloop.serving.predict import Predictor
from airloop.serving.prediction_log import PredictionLog
from airloop.serving.schema import (
    INVOCATIONS_RESPONSES,
    METRICS_RESPONSES,
    PREDICT_RESPONSES,
    READY_RESPONSES,
    RELOAD_RESPONSES,
    HealthAnswer,
    request_model,
)
from airloop.settings import Settings, get_settings
from airloop.usecase import UseCase, load_usecase


def create_app(
    settings: Settings | None = None,
    usecase: UseCase | None = None,
    poll_seconds: float = 5.0,
    token: str | None = None,
) -> FastAPI:
    """The service for a use case's champion; its routes are added by the functions below."""
    settings = settings or get_settings()
    usecase = usecase or load_usecase(settings.usecase)
    holder = ModelHolder(settings, usecase.training.model_name, poll_seconds=poll_seconds)
    predictor = Predictor(usecase=usecase, holder=holder, metrics=Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from airloop.features.store import bounded_lookups, feature_store, online_store_name

        predictor.store = feature_store(bounded_lookups(settings), usecase)
        predictor.store_name = online_store_name(settings)
        predictor.service = predictor.store.get_feature_service(usecase.feature_service.name)
        predictor.log = PredictionLog(settings.prediction_log_dir(usecase.name))
        holder.start()
        # Everything loaded so far lives as long as the service: keep it out of the GC's scans,
        # or each full collection walks Feast's, MLflow's and sklearn's objects mid-request.
        gc.collect()
        gc.freeze()
        yield
        holder.stop()
        predictor.log.close()

    app = FastAPI(title=f"airloop serving: {usecase.name}", lifespan=lifespan)
    app.state.predictor = predictor
    token = token if token is not None else serving_token(settings)
    install_error_handlers(app)
    add_probe_routes(app, predictor, settings)
    add_predict_route(app, predictor)
    add_invocations_route(app, predictor)
    install_openapi(app, lambda: holder.current, request_rules(usecase), token)
    app.add_middleware(
        GuardMiddleware,
        metrics=predictor.metrics,
        token=token,
        paths=[getattr(route, "path", "") for route in app.routes],
    )
    return app


def add_probe_routes(app: FastAPI, predictor: Predictor, settings: Settings) -> None:
    """``/health``, ``/ready``, ``/metrics`` and ``/admin/reload``."""
    holder, metrics = predictor.holder, predictor.metrics
    monitoring_metrics = settings.monitoring_metrics_file(predictor.usecase.name)

    alive = HealthAnswer(status="alive", version=airloop_version(), git_commit=git_commit())

    @app.get("/health")
    def health() -> HealthAnswer:
        return alive

    @app.get("/ready", response_model=None, responses=READY_RESPONSES)
    def ready() -> JSONResponse:
        model = holder.current
        online_error = predictor.online_store_ok()
        body = {
            "ready": model is not None and online_error is None,
            "model": {"name": holder.model_name, "version": model.version} if model else None,
            "online_store": online_error or "ok",
            "last_model_error": holder.last_error,
        }
        return JSONResponse(status_code=200 if body["ready"] else 503, content=body)

    @app.get("/metrics", response_class=PlainTextResponse, responses=METRICS_RESPONSES)
    def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        model = holder.current
        if model is not None:
            metrics.model_version.labels(holder.model_name).set(float(model.version))
        metrics.model_load_failures.set(holder.failed_loads)
        metrics.log_dropped.set(predictor.log.dropped if predictor.log else 0)
        text = metrics.exposition()
        # The monitoring DAG's latest figures, so one scrape target carries serving and drift.
        if monitoring_metrics.exists():
            text += monitoring_metrics.read_bytes()
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", response_model=None, responses=RELOAD_RESPONSES)
    def reload() -> dict[str, Any]:
        """Check the alias now instead of at the next poll (deploys call this)."""
        holder.refresh()
        model = holder.current
        return {
            "model": {"name": holder.model_name, "version": model.version} if model else None,
            "last_model_error": holder.last_error,
        }


def add_predict_route(app: FastAPI, predictor: Predictor) -> None:
    """``/v1/predict``, its body typed from the use case."""
    Body = request_model(predictor.usecase)

    # The answer is declared (PREDICT_RESPONSES), not validated on the way out: the hot path.
    @app.post("/v1/predict", response_model=None, responses=PREDICT_RESPONSES)
    def predict(body: Body) -> dict[str, Any]:  # type: ignore[valid-type]
        instances = [instance.model_dump() for instance in body.instances]  # type: ignore[attr-defined]
        return predictor.predict(instances, body.request_id)  # type: ignore[attr-defined]


def add_invocations_route(app: FastAPI, predictor: Predictor) -> None:
    """``/invocations``: MLflow's scoring protocol, answered by MLflow's own scoring code, with
    the use case's column checks (``invocations``: what is checked, and what is not)."""
    rules = request_rules(predictor.usecase)

    @app.post("/invocations", responses=INVOCATIONS_RESPONSES)
    async def invocations(request: Request) -> Response:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server

        model = predictor.serving_model()
        data = await request.body()
        content_type = scoring_media_type(request.headers.get("content-type", "application/json"))
        sent = await asyncio.to_thread(table_as_sent, data, content_type)
        checked = CheckedModel(model.pyfunc, model.input_columns, rules, sent)
        try:
            # Off the event loop, like MLflow's own server: concurrent requests keep parsing.
            result = await asyncio.to_thread(
                scoring_server.invocations,
                data,
                content_type,
                checked,
                model.pyfunc.metadata.get_input_schema(),
            )
        except Exception as exc:
            if checked.refusal is not None:  # the use case's checks, under MLflow's wrapping
                raise checked.refusal from None
            if isinstance(exc, MlflowException):
                return error_response(
                    400, "INVALID_PARAMETER_VALUE", scoring_message(exc, model.input_columns)
                )
            return error_response(
                400, "INVALID_PARAMETER_VALUE", "the input could not be parsed as a scoring request"
            )
        return Response(
            content=result.response, status_code=result.status, media_type=result.mimetype
        )
