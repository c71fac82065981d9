"""Stages run by the airloop image in a sibling container, through the Docker provider (C5).

The container gets the worker's own settings at run time, as private environment (never in the
DAG, in rendered fields or in the UI), the shared root mounted at the same path as on the
worker (Feast's registry records the offline store's files by absolute path), and the host's
network. It runs the same stage function through ``airloop stage <name>``, which
prints the stage's record on a line of its own; the task returns that record, so XCom holds
exactly what the local task would have returned.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator

from airloop.core.records import RESULT_LINE
from airloop.settings import Settings


class StageInContainer(DockerOperator):
    """``airloop stage ...`` in the training image, with the worker's settings and shared root."""

    def __init__(self, *, settings: Settings, stage: list[str], **kwargs: Any) -> None:
        from docker.types import Mount

        if not settings.training_image:
            raise ValueError("a stage in a container needs AIRLOOP_TRAINING_IMAGE")
        source = settings.container_shared_source or str(settings.shared)
        self.stage = stage[0]
        kwargs.setdefault("task_id", stage[0].replace("-", "_"))
        super().__init__(
            image=settings.training_image,
            command=["airloop", "stage", *stage],
            network_mode="host",
            mounts=[
                Mount(
                    target=str(settings.shared),
                    source=source,
                    type="bind" if source.startswith("/") else "volume",
                )
            ],
            mount_tmp_dir=False,
            auto_remove="success",
            xcom_all=True,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        """Run the container with this worker's settings; return the record it printed."""
        from airflow.sdk.log import mask_secret

        from airloop.settings import get_settings

        settings = get_settings()
        for secret in secrets_of(settings):
            mask_secret(secret)
        env = settings.environment()
        for name in ("AIRLOOP_HOME", "AIRLOOP_DAGS_FOLDER", "AIRLOOP_CONTAINER_SHARED_SOURCE"):
            env.pop(name, None)  # the image's own
        self._private_environment = {**env, **settings.thread_env()}
        lines = super().execute(context) or []
        results = [line for line in lines if line.startswith(RESULT_LINE)]
        if not results:
            raise ValueError(f"`airloop stage {self.stage}` printed no result line")
        return json.loads(results[-1].removeprefix(RESULT_LINE))


def secrets_of(settings: Settings) -> list[str]:
    """The secrets among the settings (and the passwords inside URLs), to mask in task logs."""
    from urllib.parse import urlsplit

    from pydantic import SecretStr

    found = []
    for _, value in settings:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
            found.append(value)
        if isinstance(value, str) and "://" in value and urlsplit(value).password:
            found.append(str(urlsplit(value).password))
        if isinstance(value, str) and "password=" in value:
            found.append(value.split("password=", 1)[1].split(",", 1)[0])
    return [s for s in found if s]
