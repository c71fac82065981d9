"""Feast objects for ``feature_repo/``: the ``feast`` CLI sees what airloop registers."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from airloop.settings import get_settings
from airloop.usecase import load_usecase


@cache
def _definitions() -> dict[str, list[Any]]:
    """Built once per process: Feast rejects two distinct objects with the same name."""
    from airloop.features.store import definitions

    settings = get_settings()
    return definitions(settings, load_usecase(settings.usecase))


def repo_objects(kind: str) -> dict[str, Any]:
    """One kind of the active use case's Feast objects (entities, feature_views, ...) by name."""
    return {obj.name: obj for obj in _definitions()[kind]}


def feast_cli_env() -> dict[str, str]:
    """The variables ``feature_repo/feature_store.yaml`` reads: the profile's registry and stores
    (SQLite as Feast's stock store, whose tables airloop's batched one writes alike).

    Feast expands variables in the file before parsing it, and YAML reads JSON, so each
    variable holds its part of the configuration as JSON.
    """
    from airloop.features.store import ONLINE_SQLITE, store_config

    settings = get_settings()
    usecase = load_usecase(settings.usecase)
    config = store_config(settings)
    online = config["online_store"]
    if online["type"] == ONLINE_SQLITE:
        # Feast's own SQLite store, same tables: `feast apply` shows its plan only for that one.
        online = {**online, "type": "sqlite"}
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    return {
        **settings.environment(),
        "AIRLOOP_FEAST_PROJECT": usecase.name,
        "AIRLOOP_FEAST_REGISTRY_CONFIG": json.dumps(config["registry"]),
        "AIRLOOP_FEAST_OFFLINE_STORE_CONFIG": json.dumps(config["offline_store"]),
        "AIRLOOP_FEAST_ONLINE_STORE_CONFIG": json.dumps(online),
    }
