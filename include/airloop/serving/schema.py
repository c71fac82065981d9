"""What a caller sends to ``/v1/predict``: typed from the use case, strict about everything else.

A prediction names the entity keys (the service looks up their online features) and the
request-time model inputs; ``event_id`` and ``event_time`` are optional and logged with the
prediction, so the label that arrives later can be joined to it. The use case's calendar
features are computed from ``event_time`` (default: now), never sent.
"""

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr, create_model

from airloop.usecase import UseCase

MAX_BATCH = 1000
EVENT_ID_FIELD, EVENT_TIME_FIELD = "event_id", "event_time"
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]


def _field_type(usecase: UseCase, name: str) -> Any:
    """The field's type, with the source's declared range or value set when it is strict.

    A column that declares ``mostly`` below 1 admits values outside its rules in the data, so
    a request may carry them too; a strict declaration (the default) refuses them with a 422.
    """
    spec = usecase.sources[usecase.events.source].column(name)
    kind = spec.type if spec is not None else "string"
    base: Any = {
        "string": StrictStr,
        "number": FiniteFloat | StrictInt,
        "integer": StrictInt,
        "bool": bool,
    }.get(kind, StrictStr)
    if spec is not None and spec.mostly == 1.0:
        if kind in ("number", "integer") and spec.bounds is not None:
            base = Annotated[base, Field(ge=spec.min, le=spec.max)]
        elif kind == "string" and spec.values:
            base = Literal[tuple(spec.values)]
    nullable = spec.nullable if spec is not None else False
    return (base | None, None) if nullable else (base, ...)


def request_model(usecase: UseCase) -> type[BaseModel]:
    """The body of ``/v1/predict``: up to MAX_BATCH instances, each typed from the use case."""
    fields: dict[str, Any] = {name: _field_type(usecase, name) for name in usecase.request_keys}
    fields[EVENT_ID_FIELD] = (StrictStr | None, None)
    fields[EVENT_TIME_FIELD] = (AwareDatetime | None, None)
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
