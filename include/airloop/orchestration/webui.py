"""The airloop page inside Airflow's UI: a FastAPI app the plugin mounts at ``/airloop``.

Airflow does not protect a plugin's app, so every route depends on Airflow's own security:
the logged-in user (the UI's ``_token`` cookie, or a bearer token) and, for a DAG run's tab,
read access to that DAG. An anonymous request gets 401, a forbidden one 403.

The app is built on its first request (:class:`LazyApp`): every Airflow process loads the
plugin (tasks too, for the listener), and only the api-server should pay for the security
imports and the page's stores.
"""

from __future__ import annotations

from typing import Any

URL_PREFIX = "/airloop"


def create_app() -> Any:
    """The page's routes, each behind Airflow's authentication."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse

    from airloop.lineage import page
    from airloop.settings import get_settings
    from airloop.usecase import UseCaseError, active_usecases, scoped, usecase_of_dag

    def stores(usecase: str | None) -> tuple[Any, Any]:
        """The settings and use case a page shows: ``?usecase=NAME``, else the first one."""
        settings = get_settings()
        running = active_usecases(settings)
        found = next((uc for uc, _ in running if uc.name == usecase), None)
        if usecase is not None and found is None:
            names = ", ".join(uc.name for uc, _ in running)
            raise HTTPException(404, f"no use case {usecase!r} here; this Airflow runs {names}")
        uc = found or running[0][0]
        return scoped(settings, uc), uc

    app = FastAPI(
        title="airloop",
        dependencies=[Depends(get_user)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    can_read_dags = [Depends(requires_access_dag("GET"))]
    can_read_run = [Depends(requires_access_dag("GET", DagAccessEntity.RUN))]

    @app.get("/", response_class=HTMLResponse, dependencies=can_read_dags)
    def overview(usecase: str | None = None) -> str:
        names = [uc.name for uc, _ in active_usecases(get_settings())]
        return page.overview(*stores(usecase), usecases=names)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=can_read_run)
    def run(dag_id: str, run_id: str) -> str:
        try:
            usecase = usecase_of_dag(dag_id, get_settings())
        except UseCaseError as exc:
            raise HTTPException(404, str(exc)) from None
        return page.run_page(*stores(usecase.name), dag_id, run_id)

    def found(html: str | None, missing: str) -> str:
        if html is None:
            raise HTTPException(404, missing)
        return html

    @app.get("/evidence/{event_id}", response_class=HTMLResponse, dependencies=can_read_dags)
    def evidence(event_id: int, usecase: str | None = None) -> str:
        return found(page.evidence_page(*stores(usecase), event_id), f"no decision {event_id}")

    @app.get("/report/{partition}", response_class=HTMLResponse, dependencies=can_read_dags)
    def report(partition: str, usecase: str | None = None) -> str:
        missing = f"no monitoring report for the interval {partition!r}"
        return found(page.report_page(*stores(usecase), partition), missing)

    return app


class LazyApp:
    """An ASGI app that builds the real one on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    def __repr__(self) -> str:
        return "airloop page (FastAPI)"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve the request with the app, built the first time."""
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


app = LazyApp()

EXTERNAL_VIEWS = [
    # The nav entry: the use case at a glance (relative href: works under a sub-path).
    {
        "name": "airloop",
        "href": "airloop/",
        "url_route": "airloop",
        "destination": "nav",
        "nav_top_level": True,
    },
    # A tab on every DAG run: its tasks' records, and its model and lineage or its report.
    {
        "name": "airloop",
        "href": "airloop/runs/{DAG_ID}/{RUN_ID}",
        "url_route": "airloop-run",
        "destination": "dag_run",
    },
]
