"""``airloop init --ci``: the pipeline of a use case in its team's own repository.

Written beside the use case: ``.github/workflows/airloop-<name>.yml`` at the top of the
repository (checked by the same linters as airloop's own workflow: actionlint and zizmor), and
a ``Dockerfile`` in the use case's folder for the image way of shipping it. On a pull request
that touches the folder, the use case is checked and ``airloop ci`` compares the change's model
with the base's on the same rows; on a push to main, the use case reaches the team's Airflow in
one of the two ways teams ship DAGs: an image rebuilt from the team's airloop image with the use
case in it, or the folder synced to where the Airflow reads its use cases.
"""

from __future__ import annotations

from pathlib import Path

from airloop.core.files import write_text
from airloop.core.git import toplevel

# actions/checkout, pinned by commit as airloop's own workflow pins it.
CHECKOUT = "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0"
IMAGE_HOME = "/opt/airloop/usecases"  # where the image way puts use cases in the image

WORKFLOW = """\
# The pipeline of the airloop use case "{name}", written by `airloop init --ci`.
#
# On a pull request that changes {folder}/: the use case is checked (`airloop check`), then
# `airloop ci` trains the change's model and the base's on the same recent window and compares
# them on the same rows with the use case's gate; its report is the job's summary, and the job
# fails when the gate refuses the change or the serving contract breaks.
# On a push to main: the use case is deployed to your Airflow, the way the repository variable
# AIRLOOP_DEPLOY says:
#   image   an image built FROM your airloop image with the use case in it ({folder}/Dockerfile),
#           pushed to vars.AIRLOOP_REGISTRY (secrets REGISTRY_USER, REGISTRY_PASSWORD); your
#           Airflow's deployment runs that image (its tag: the commit)
#   folder  the folder synced by a self-hosted runner that mounts vars.AIRLOOP_USECASE_DIR,
#           where your Airflow's AIRLOOP_USECASES points; the dag-processor picks it up
# Every check runs in the airloop image your team pins: the repository variable AIRLOOP_IMAGE
# (e.g. registry.example.com/airloop:{version}, or pinned by digest: …/airloop@sha256:…).
name: airloop {name}

on:
  pull_request:
    paths: ["{folder}/**", ".github/workflows/airloop-{name}.yml"]
  push:
    branches: [main]
    paths: ["{folder}/**"]
  workflow_dispatch:

permissions:
  contents: read

concurrency:
  group: airloop-{name}-${{{{ github.ref }}}}
  cancel-in-progress: true

env:
  AIRLOOP_USECASE: {folder}/usecase.yaml

jobs:
  check:
    name: the use case, and airloop ci on pull requests
    runs-on: ubuntu-24.04
    timeout-minutes: 45
    container:
      # The team pins it in the variable, best by digest (…/airloop@sha256:…): zizmor cannot see it.
      image: ${{{{ vars.AIRLOOP_IMAGE }}}} # zizmor: ignore[unpinned-images]
    steps:
      - uses: {checkout}
        with:
          persist-credentials: false
          fetch-depth: 0 # the base branch: the merge base and the base's use case
      - name: the use case is valid
        run: airloop check
      - name: the change's model against the base's, on the same rows
        if: github.event_name == 'pull_request'
        env:
          BASE_REF: ${{{{ github.base_ref }}}}
        run: |
          git config --global --add safe.directory "$GITHUB_WORKSPACE"
          airloop ci --base "origin/${{BASE_REF}}" --skip-unaffected --work "$RUNNER_TEMP/airloop-ci"

  deploy-image:
    name: deploy as an image
    needs: check
    if: github.event_name == 'push' && vars.AIRLOOP_DEPLOY == 'image'
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    steps:
      - uses: {checkout}
        with:
          persist-credentials: false
      - name: log in to the registry
        env:
          REGISTRY: ${{{{ vars.AIRLOOP_REGISTRY }}}}
          REGISTRY_USER: ${{{{ secrets.REGISTRY_USER }}}}
          REGISTRY_PASSWORD: ${{{{ secrets.REGISTRY_PASSWORD }}}}
        run: printf '%s' "$REGISTRY_PASSWORD" | docker login "$REGISTRY" --username "$REGISTRY_USER" --password-stdin
      - name: build the image with the use case, push it
        env:
          BASE_IMAGE: ${{{{ vars.AIRLOOP_IMAGE }}}}
          REGISTRY: ${{{{ vars.AIRLOOP_REGISTRY }}}}
          COMMIT: ${{{{ github.sha }}}}
        run: |
          image="${{REGISTRY}}/airloop-{name}:${{COMMIT}}"
          docker build --build-arg "BASE_IMAGE=${{BASE_IMAGE}}" -f {folder}/Dockerfile -t "$image" .
          docker push "$image"
          echo "pushed $image: point your Airflow's deployment at it" >> "$GITHUB_STEP_SUMMARY"

  deploy-folder:
    name: deploy as a synced folder
    needs: check
    if: github.event_name == 'push' && vars.AIRLOOP_DEPLOY == 'folder'
    runs-on: [self-hosted, linux] # a runner that mounts AIRLOOP_USECASE_DIR
    timeout-minutes: 10
    steps:
      - uses: {checkout}
        with:
          persist-credentials: false
      - name: sync the use case to where the Airflow reads it
        env:
          TARGET: ${{{{ vars.AIRLOOP_USECASE_DIR }}}}
        run: |
          mkdir -p "${{TARGET}}/{name}"
          rsync -a --delete --exclude Dockerfile "{folder}/" "${{TARGET}}/{name}/"
          echo "synced {folder}/ to ${{TARGET}}/{name}/" >> "$GITHUB_STEP_SUMMARY"
"""

DOCKERFILE = """\
# The use case "{name}" in your team's airloop image, for the image way of deploying it
# (.github/workflows/airloop-{name}.yml builds it on a push to main). BASE_IMAGE: the airloop
# image your team pins. With several use cases, set AIRLOOP_USECASES in the deployment instead.
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY --chown=airloop {folder}/ {image_home}/{name}/
ENV AIRLOOP_USECASE={image_home}/{name}/usecase.yaml
"""


def repository_root(folder: Path) -> Path:
    """The top of the git checkout holding ``folder``; the folder's parent outside one (the
    workflow goes where the repository's top will be)."""
    return toplevel(folder) or folder.resolve().parent


def render_workflow(name: str, folder: str, version: str) -> str:
    """The workflow for the use case ``name`` in ``folder`` (relative to the repository's top)."""
    return WORKFLOW.format(name=name, folder=folder, version=version, checkout=CHECKOUT)


def render_dockerfile(name: str, folder: str) -> str:
    """The Dockerfile of the image way: the team's airloop image with the use case in it."""
    return DOCKERFILE.format(name=name, folder=folder, image_home=IMAGE_HOME)


def write_workflow(name: str, folder: Path, version: str) -> list[Path]:
    """The workflow at the repository's top and the Dockerfile in the folder; their paths."""
    root = repository_root(folder)
    relative = folder.resolve().relative_to(root.resolve()).as_posix()
    return [
        write_text(
            root / ".github" / "workflows" / f"airloop-{name}.yml",
            render_workflow(name, relative, version),
        ),
        write_text(folder / "Dockerfile", render_dockerfile(name, relative)),
    ]
