"""The airloop plugin: the task-metadata listener and the airloop page in Airflow's UI.

Wiring only; the listener lives in ``airloop.orchestration.listener``, the page in
``airloop.orchestration.webui`` and ``airloop.lineage.page``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airloop.orchestration import listener, webui


class AirloopPlugin(AirflowPlugin):
    """Registers the listener, mounts the page at /airloop and adds it to the nav and runs."""

    name = "airloop"
    listeners = [listener]
    fastapi_apps = [{"app": webui.app, "url_prefix": webui.URL_PREFIX, "name": "airloop"}]
    external_views = webui.EXTERNAL_VIEWS
