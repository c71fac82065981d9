"""The use cases one Airflow runs side by side, and the names that keep them apart.

``AIRLOOP_USECASES`` lists them (default: ``AIRLOOP_USECASE`` alone). The first keeps the plain
DAG ids (``feature_pipeline`` ...) and ``AIRLOOP_SERVING_PORT``, so an Airflow with one use case
looks as it always did; each next one has DAG ids ``<dag>__<name>`` and its service on the next
port. Everything else is named by the use case already: its Feast project, MLflow experiments and
registered model, its folders under the home, its Assets (``airloop://<name>/...``).
"""

from __future__ import annotations

from airloop.settings import Settings, get_settings
from airloop.usecase.base import UseCaseError
from airloop.usecase.model import UseCase, load_usecase

DAG_SEPARATOR = "__"


def active_usecases(settings: Settings) -> list[tuple[UseCase, str]]:
    """Each use case this Airflow runs and the reference (name or path) tasks pass for it."""
    loaded = [(load_usecase(ref), ref) for ref in settings.usecase_refs]
    for what, field in (("are named", "name:"), ("register the model", "training.model_name:")):
        values = [uc.name if field == "name:" else uc.training.model_name for uc, _ in loaded]
        twice = sorted({value for value in values if values.count(value) > 1})
        if twice:
            raise UseCaseError(
                f"AIRLOOP_USECASES: two use cases {what} {twice[0]!r}; it keeps their DAGs, stores"
                f" and models apart, so give each its own `{field}`"
            )
    return loaded


def scoped(settings: Settings, usecase: UseCase) -> Settings:
    """These settings acting for ``usecase``: its reference as ``usecase`` (so its serving port).

    With several use cases, one that is not among them is refused by name: its DAGs do not run.
    """
    if not settings.usecases:
        return settings
    for uc, ref in active_usecases(settings):
        if uc.name == usecase.name:
            return (
                settings
                if settings.usecase == ref
                else settings.model_copy(update={"usecase": ref})
            )
    raise UseCaseError(
        f"use case {usecase.name!r} is not among AIRLOOP_USECASES ({settings.usecases}):"
        " add it there, and restart airloop up, to run it beside the others"
    )


def primary_name(settings: Settings) -> str:
    """The name of the first use case, whose DAGs keep the plain ids."""
    return load_usecase(settings.usecase_refs[0]).name


def dag_id(dag: str, usecase: UseCase | str, settings: Settings) -> str:
    """A use case's DAG: ``dag`` for the first use case, ``<dag>__<name>`` for the others."""
    name = usecase if isinstance(usecase, str) else usecase.name
    return dag if name == primary_name(settings) else f"{dag}{DAG_SEPARATOR}{name}"


def usecase_of_dag(dag: str, settings: Settings) -> UseCase:
    """The use case a DAG id belongs to (see :func:`dag_id`)."""
    _, sep, name = dag.partition(DAG_SEPARATOR)
    for uc, _ in active_usecases(settings):
        if (sep and uc.name == name) or (not sep and uc.name == primary_name(settings)):
            return uc
    raise UseCaseError(f"no active use case runs the DAG {dag!r} (AIRLOOP_USECASES)")


def resolve(usecase: UseCase | str | None, settings: Settings | None) -> tuple[UseCase, Settings]:
    """The use case and settings a stage works with: given ones, else the active ones; the
    settings scoped to the use case (:func:`scoped`)."""
    settings = settings or get_settings()
    uc = usecase if isinstance(usecase, UseCase) else load_usecase(usecase or settings.usecase)
    return uc, scoped(settings, uc)
