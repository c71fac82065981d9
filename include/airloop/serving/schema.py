"""What a caller sends to ``/v1/predict``: typed from the use case, strict about everything else.

A prediction names the entity keys (the service looks up their online features) and the
request-time model inputs; ``event_id`` and ``event_time`` are optional and logged with the
prediction, so the label that arrives later can be joined to it. The use case's calendar
features are computed from ``event_time`` (default: now), never sent.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
)

from airloop.usecase import UseCase

MAX_BATCH = 1000
EVENT_ID_FIELD, EVENT_TIME_FIELD = "event_id", "event_time"
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]

# RFC 3339's date-time, as JSON Schema's "date-time" format means it (pydantic alone also takes
# "12" or 12 as seconds since 1970, and a space for the "T").
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def rfc3339_text(value: Any, parse: ValidatorFunctionWrapHandler) -> Any:
    """An ``event_time`` as the OpenAPI document declares it: RFC 3339 text with an offset.
    Pydantic's own refusals (no offset, not a date) come first, with their own words."""
    if value is not None and not isinstance(value, str):
        raise ValueError("must be text: an RFC 3339 date-time, e.g. 2013-01-01T05:00:00Z")
    parsed = parse(value)
    if value is not None and not RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2013-01-01T05:00:00Z")
    return parsed


EventTime = Annotated[AwareDatetime, WrapValidator(rfc3339_text)]


def whole_float_as_int(value: Any) -> Any:
    """12.0 is the integer 12, as JSON Schema says and as ``/invocations`` takes it (MLflow's
    signatures record numbers as doubles); 12.5, "12" and true stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class FieldRule:
    """What a request field may hold, from the events source's declaration of its column.

    ``kind``: string, number, integer or bool. ``minimum``, ``maximum`` and ``values`` (a
    declared range or value set) only when the column is strict: a column that declares
    ``mostly`` below 1 admits values outside its rules in the data, so a request may carry
    them too. ``/v1/predict`` and ``/invocations`` both check requests by these rules.
    """

    kind: str
    nullable: bool
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] | None = None


def field_rule(usecase: UseCase, name: str) -> FieldRule:
    """The rule of a request field (a column the use case does not declare: a string)."""
    spec = usecase.sources[usecase.events.source].column(name)
    if spec is None:
        return FieldRule(kind="string", nullable=False)
    kind = spec.type if spec.type in ("number", "integer", "bool") else "string"
    strict = spec.mostly == 1.0
    return FieldRule(
        kind=kind,
        nullable=spec.nullable,
        minimum=spec.min if strict and kind in ("number", "integer") else None,
        maximum=spec.max if strict and kind in ("number", "integer") else None,
        values=tuple(spec.values) if strict and spec.type == "string" and spec.values else None,
    )


def _field_type(usecase: UseCase, name: str) -> Any:
    """The field's type, with the source's declared range or value set when it is strict (a
    value outside them is refused with a 422)."""
    rule = field_rule(usecase, name)
    base: Any = {"string": StrictStr, "integer": StrictInt, "bool": StrictBool}.get(rule.kind)
    if rule.minimum is not None or rule.maximum is not None:
        # On each member of a union, not on the union, and before a validator: pydantic
        # writes bounds it cannot place as unknown keys (``ge``), and the OpenAPI document
        # lost the range.
        bounds = Field(ge=rule.minimum, le=rule.maximum)
        if rule.kind == "number":
            base = Annotated[FiniteFloat, bounds] | Annotated[StrictInt, bounds]
        else:
            base = Annotated[base, bounds]
    elif rule.kind == "number":
        base = FiniteFloat | StrictInt
    elif rule.values:
        base = Literal[rule.values]
    if rule.kind == "integer":
        base = Annotated[base, BeforeValidator(whole_float_as_int)]
    return (base | None, None) if rule.nullable else (base, ...)


def request_model(usecase: UseCase) -> type[BaseModel]:
    """The body of ``/v1/predict``: up to MAX_BATCH instances, each typed from the use case."""
    fields: dict[str, Any] = {name: _field_type(usecase, name) for name in usecase.request_keys}
    fields[EVENT_ID_FIELD] = (StrictStr | None, None)
    fields[EVENT_TIME_FIELD] = (EventTime | None, None)
    example = usecase.events.example
    config = ConfigDict(extra="forbid")
    if example is not None:  # shown on the API page (/docs) as the instance to try
        config["json_schema_extra"] = {"examples": [example]}
    instance = create_model(f"{usecase.name}_instance", __config__=config, **fields)
    return create_model(
        f"{usecase.name}_predict_request",
        __config__=ConfigDict(extra="forbid"),
        instances=(list[instance], Field(min_length=1, max_length=MAX_BATCH)),
        request_id=(StrictStr | None, None),
    )


# -- what the service answers (declared in its OpenAPI, shown on /docs) -------------------------


class FieldProblem(BaseModel):
    """One field a request got wrong, by dotted path (``instances.0.distance``)."""

    field: str
    problem: str


class ErrorBody(BaseModel):
    """An answer other than success: MLflow's error shape plus the offending fields."""

    error_code: str
    message: str
    fields: list[FieldProblem] | None = None


class Prediction(BaseModel):
    """One instance's answer, and how old each feature view's values were at its event."""

    score: float
    prediction: int | None = Field(default=None, description="classification: score >= 0.5")
    features_as_of: dict[str, str | None] = Field(
        description="per feature view, when its served values were computed (None: no row)"
    )
    feature_age_seconds: dict[str, float | None] = Field(
        description="per feature view, the age of its values at event_time (or now, without"
        " one); negative: computed after the event"
    )
    stale_views: list[str] = Field(
        description="views whose values were as old as their expected freshness or older"
        " (served flagged, or missing with serving.stale: missing)"
    )
    future_views: list[str] = Field(
        description="views whose values were computed after event_time (served only with"
        " serving.past_events: flag; else the request is refused with a 422)"
    )
    missing_features: list[str]


class ModelRef(BaseModel):
    """The registered model and version that answered."""

    name: str
    version: str


class PredictAnswer(BaseModel):
    """The answer of ``/v1/predict``: one prediction per instance, in order."""

    request_id: str
    model: ModelRef
    predictions: list[Prediction]


class InvocationsAnswer(BaseModel):
    """The answer of ``/invocations``, as MLflow's scoring server gives it."""

    predictions: list[Any]


def error(description: str, **extra: Any) -> dict[str, Any]:
    """An error answer as the OpenAPI declares it."""
    return {"model": ErrorBody, "description": description, **extra}


class HealthAnswer(BaseModel):
    """``/health``: the process answers, and which airloop it runs."""

    status: Literal["alive"]
    version: str = Field(description="airloop's version (pyproject.toml's, as installed)")
    git_commit: str = Field(
        description="the commit the code comes from (with +dirty for local changes; in the"
        " image, the one it was built from), or unknown"
    )


class ReadyAnswer(BaseModel):
    """``/ready``: whether the service can answer predictions, and what it is waiting for."""

    ready: bool
    model: ModelRef | None
    online_store: str = Field(description='"ok", or what the online store answered')
    last_model_error: str | None


class ReloadAnswer(BaseModel):
    """``/admin/reload``: the model serving after the check, and the last load error."""

    model: ModelRef | None
    last_model_error: str | None


UNAUTHORIZED = error(
    "no valid bearer token (only when the service has one); the answer says no more",
    headers={"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
)
# What the guard answers to any POST before the route sees it (``guard``).
POST_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("the Content-Length header is not a number"),
    401: UNAUTHORIZED,
    413: error("the body is over the size limit"),
}
RELOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ReloadAnswer, "description": "the model serving after the check"},
    **POST_ERRORS,
}
READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ReadyAnswer, "description": "a model is loaded and the online store answers"},
    503: {"model": ReadyAnswer, "description": "not ready: the body says which part is not"},
}
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus' text exposition format (version 0.0.4 or 1.0.0)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PredictAnswer, "description": "one prediction per instance"},
    **POST_ERRORS,
    400: error("the body is not valid JSON, or the Content-Length header is not a number"),
    415: error("the body is not application/json"),
    422: error(
        "a field does not match the use case's declaration (named in fields), or an event_time"
        " is earlier than the online features' as-of time (EVENT_BEFORE_ONLINE_FEATURES:"
        " score it with batch scoring)"
    ),
    503: error("no model loaded yet, or the online store did not answer (named)"),
}
INVOCATIONS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": InvocationsAnswer, "description": "MLflow's scoring answer"},
    **POST_ERRORS,
    400: error(
        "the input is not a scoring request MLflow can parse, does not match the model's"
        " signature, has a column that is not an input of the model, or a request field that"
        " breaks the use case's declaration (named in fields); or the Content-Length header is"
        " not a number"
    ),
    415: error("the body is neither application/json nor text/csv (nor Parquet) in UTF-8"),
    503: error("no model loaded yet"),
}
