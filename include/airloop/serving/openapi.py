"""The service's OpenAPI document, made to tell the truth about every answer it gives.

FastAPI writes most of it from the routes; this adds what it cannot see:

- ``/invocations``' request bodies: MLflow's scoring protocol in the forms the service accepts
  (JSON with ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``; CSV with a
  header; Parquet), each typed from the serving model's signature and the use case's request fields. The
  model can change under a running service, so this part is written from the model serving
  when the document is asked for, and ``/openapi.json`` is never cached across a swap;
- the bearer token, declared only when the service has one (``/health``, ``/ready`` and
  ``/metrics`` stay open to probes and scrapers: they take no input and show no data).

The document is checked against the running service by schemathesis, all checks, every
endpoint (``tests/integration/test_serving_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from airloop.serving.model import LoadedModel
from airloop.serving.schema import FieldRule

CSV = "text/csv"
JSON = "application/json"
PARQUET = "application/vnd.apache.parquet"  # MLflow's scoring server takes it, a table like CSV
SECURITY_SCHEME = "bearer"
PARAMS = {
    "type": "object",
    "description": "MLflow's inference parameters (ignored by a model that declares none)",
}
# MLflow's column types, as JSON Schema types (a value may be null: MLflow reads it as missing).
JSON_TYPES = {
    "double": "number",
    "float": "number",
    "long": "integer",
    "integer": "integer",
    "boolean": "boolean",
    "string": "string",
}


def column_schema(mlflow_type: str, rule: FieldRule | None) -> dict[str, Any]:
    """What ``/invocations`` accepts in one column: a request field by its rule (as
    ``/v1/predict`` checks it), any other input by its type in the model's signature."""
    if rule is None:
        return {"type": [JSON_TYPES.get(mlflow_type, "string"), "null"]}
    kind = {"number": "number", "integer": "integer", "bool": "boolean"}.get(rule.kind, "string")
    schema: dict[str, Any] = {"type": [kind, "null"] if rule.nullable else kind}
    if rule.minimum is not None:
        schema["minimum"] = rule.minimum
    if rule.maximum is not None:
        schema["maximum"] = rule.maximum
    if rule.values is not None:
        schema["enum"] = [*rule.values, None] if rule.nullable else list(rule.values)
    return schema


def signature_columns(model: LoadedModel) -> list[tuple[str, str, bool]]:
    """The model's input columns: name, MLflow type, required."""
    schema = model.pyfunc.metadata.get_input_schema()
    if schema is None:
        return [(name, "string", True) for name in model.input_columns]
    return [
        (
            str(spec.name),
            str(getattr(spec.type, "name", spec.type)),
            bool(getattr(spec, "required", True)),
        )
        for spec in schema.inputs
    ]


def record_schema(model: LoadedModel, rules: dict[str, FieldRule]) -> dict[str, Any]:
    """One row: the model's inputs by name, required as the signature (or a rule) says."""
    columns = signature_columns(model)
    required = [
        name
        for name, _, needed in columns
        if needed or (name in rules and not rules[name].nullable)
    ]
    return {
        "type": "object",
        "properties": {name: column_schema(kind, rules.get(name)) for name, kind, _ in columns},
        "required": required,
        "additionalProperties": False,
    }


def split_schema(model: LoadedModel, rules: dict[str, FieldRule]) -> dict[str, Any]:
    """``dataframe_split`` as the service documents it: every input column, in the signature's
    order, and rows of values in that order (a subset of the columns, where the signature
    allows, is accepted too; this form names them all)."""
    columns = signature_columns(model)
    return {
        "type": "object",
        "properties": {
            "columns": {"const": [name for name, _, _ in columns]},
            "data": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "array",
                    "prefixItems": [
                        column_schema(kind, rules.get(name)) for name, kind, _ in columns
                    ],
                    "items": False,
                    "minItems": len(columns),
                },
            },
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
    }


def invocations_body(model: LoadedModel | None, rules: dict[str, FieldRule]) -> dict[str, Any]:
    """The request body of ``/invocations`` for the model serving now (or, with none yet, the
    protocol's shape without columns)."""
    if model is None:
        rows: dict[str, Any] = {"type": "array", "items": {"type": "object"}, "minItems": 1}
        split: dict[str, Any] = {"type": "object"}
    else:
        rows = {"type": "array", "items": record_schema(model, rules), "minItems": 1}
        split = split_schema(model, rules)
    forms = {
        "dataframe_split": split,
        "dataframe_records": rows,
        "instances": rows,
        "inputs": rows,
    }
    return {
        "required": True,
        "description": "MLflow's scoring protocol: one of its JSON forms, or a table of the same"
        " rows as CSV (with a header row) or Parquet",
        "content": {
            JSON: {
                "schema": {
                    "oneOf": [
                        {
                            "title": key,
                            "type": "object",
                            "properties": {key: form, "params": PARAMS},
                            "required": [key],
                            "additionalProperties": False,
                        }
                        for key, form in forms.items()
                    ]
                }
            },
            CSV: {"schema": rows},
            PARQUET: {"schema": rows},
        },
    }


def install_openapi(
    app: FastAPI,
    current_model: Callable[[], LoadedModel | None],
    rules: dict[str, FieldRule],
    token: str | None,
) -> None:
    """Write ``app``'s document from its routes, then add what the routes do not say."""

    def document() -> dict[str, Any]:
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
        operations = doc["paths"]
        operations["/invocations"]["post"]["requestBody"] = invocations_body(current_model(), rules)
        if token:
            doc.setdefault("components", {})["securitySchemes"] = {
                SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}
            }
            for path in operations.values():
                if "post" in path:
                    path["post"]["security"] = [{SECURITY_SCHEME: []}]
        return doc

    app.openapi = document  # type: ignore[method-assign]
