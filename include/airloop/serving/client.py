"""The serving API as its callers see it: deploys, the CLI and the demo's replay client."""

from __future__ import annotations

from typing import Any

from airloop.core.http import HttpError, request_json
from airloop.settings import Settings


def call_service(
    settings: Settings, method: str, path: str, body: Any = None, timeout: float = 30.0
) -> Any:
    """One call to the service at ``settings.serving_url``, with its token when one is set."""
    return request_json(
        method, settings.serving_url + path, body, token=serving_token(settings), timeout=timeout
    )


def serving_token(settings: Settings) -> str | None:
    """The bearer token the service requires, if one is set."""
    return settings.serving_token.get_secret_value() if settings.serving_token else None


def service_alive(settings: Settings) -> bool:
    """Whether the service answers its liveness probe now."""
    try:
        return call_service(settings, "GET", "/health", timeout=3).get("status") == "alive"
    except (OSError, HttpError, ValueError):
        return False


def reload_champion(settings: Settings) -> dict[str, Any]:
    """Ask the service to check the champion alias now; its model and last load error."""
    answer: dict[str, Any] = call_service(settings, "POST", "/admin/reload")
    return answer
