"""Feast feature views of the active airloop use case (`AIRLOOP_USECASE`), built from its YAML."""

from airloop.features.repo import repo_objects

globals().update(repo_objects("feature_views"))
