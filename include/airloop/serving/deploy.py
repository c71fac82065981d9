"""Deploy in (D): the running service takes the new champion, then a smoke test on held-out rows.

The service's answers on the test slice must equal the registered model's answers computed
in-process. Anything else rolls the champion back to ``previous`` and fails the run with why.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from airloop.registry.models import rollback
from airloop.settings import Settings
from airloop.tracking import configure
from airloop.training.dataset import load_training_set, split_by_time
from airloop.training.models import model_inputs
from airloop.usecase import UseCase


class DeployError(RuntimeError):
    """The service did not take or did not reproduce the new champion; it was rolled back."""


def call_service(
    settings: Settings, method: str, path: str, body: Any = None, timeout: float = 30.0
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(settings.serving_url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if settings.serving_token:
        req.add_header("Authorization", f"Bearer {settings.serving_token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def service_alive(settings: Settings) -> bool:
    try:
        return call_service(settings, "GET", "/health", timeout=3).get("status") == "alive"
    except (OSError, urllib.error.URLError, ValueError):
        return False


def deploy(
    settings: Settings,
    usecase: UseCase,
    promotion: dict[str, Any],
    training_set: dict[str, Any],
    rows: int = 50,
) -> dict[str, Any]:
    """Make the service serve the promoted version and prove it answers like the registry's copy."""
    client = configure(settings)
    name = usecase.training.model_name
    if not promotion.get("promoted"):
        return {"deployed": False, "reason": "not promoted: the serving champion is unchanged"}
    version = str(promotion["champion"])
    if not service_alive(settings):
        note = f"skipped: no service at {settings.serving_url}; it loads v{version} when it starts"
        client.set_model_version_tag(name, version, "airloop.deploy", note)
        return {"deployed": False, "reason": note}
    try:
        served = _wait_for_version(settings, version)
        frame = load_training_set(training_set["uri"])
        _, _, test = split_by_time(
            frame, usecase.training.validation_fraction, usecase.training.test_fraction
        )
        import mlflow

        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        columns = model.metadata.get_input_schema().input_names()
        sample = model_inputs(test.head(rows), columns)
        expected = [_plain(v) for v in model.predict(sample)]
        payload = json.loads(sample.to_json(orient="split", index=False))
        answer = call_service(settings, "POST", "/invocations", {"dataframe_split": payload})[
            "predictions"
        ]
        if [_plain(v) for v in answer] != expected:
            raise DeployError(
                f"the service's answers on {len(sample)} held-out rows differ from v{version}'s"
            )
    except Exception as exc:
        reason = f"deploy of v{version} failed: {exc}"
        try:
            rolled = rollback(settings, usecase, reason, who="model_training deploy")
            call_service(settings, "POST", "/admin/reload")
            reason += f"; champion rolled back to v{rolled['to']}"
        except Exception as rb_exc:
            reason += f"; rollback impossible: {rb_exc}"
        client.set_model_version_tag(name, version, "airloop.deploy", reason)
        raise DeployError(reason) from exc
    client.set_model_version_tag(
        name,
        version,
        "airloop.deploy",
        f"ok: {settings.serving_url} serves v{served}, smoke test {len(sample)} rows",
    )
    return {
        "deployed": True,
        "version": version,
        "url": settings.serving_url,
        "smoke_test_rows": len(sample),
    }


def _wait_for_version(settings: Settings, version: str, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = call_service(settings, "POST", "/admin/reload")
        if state.get("model") and str(state["model"]["version"]) == version:
            return version
        if state.get("last_model_error"):
            raise DeployError(state["last_model_error"])
        time.sleep(1.0)
    raise DeployError(f"the service did not load v{version} within {timeout:.0f}s")


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    return round(value, 9) if isinstance(value, float) else value
