"""The documentation: generated references that match the code, a README that stays a front door.

The reference pages under docs/reference/ named "generated" are written from the code by
docs/gen_reference.py (`make docs-reference`); a page that differs from what the code says now
is a reference that drifted. The site itself is built with `mkdocs build --strict` in
`make lint` (broken links, missing anchors, pages outside the navigation) and opened in a
browser by tests/e2e/test_docs_site.py.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import yaml

from tests.conftest import REPO

DOCS = REPO / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_references_match_the_code(tmp_path: Path) -> None:
    written = _generator().write(tmp_path)
    assert {p.name for p in written} == {"cli.md", "dags.md", "settings.md", "usecase.md"}
    stale = [
        p.name
        for p in written
        if not (DOCS / "reference" / p.name).is_file()
        or (DOCS / "reference" / p.name).read_text(encoding="utf-8")
        != p.read_text(encoding="utf-8")
    ]
    assert stale == [], f"docs/reference/{stale} differ from the code: run `make docs-reference`"


def test_generated_references_are_deterministic_and_hold_no_local_path(tmp_path: Path) -> None:
    generator = _generator()
    first = {p.name: p.read_text() for p in generator.write(tmp_path / "a")}
    second = {p.name: p.read_text() for p in generator.write(tmp_path / "b")}
    assert first == second
    for name, text in first.items():
        for local in (str(REPO), str(Path.home()), "/tmp/"):
            assert local not in text, f"{name} holds the local path {local}"


def test_the_references_name_every_setting_command_and_field() -> None:
    from airloop.settings import Settings
    from airloop.usecase import UseCase

    settings = (DOCS / "reference" / "settings.md").read_text()
    missing = [n for n in Settings.model_fields if f"`AIRLOOP_{n.upper()}`" not in settings]
    assert missing == []
    usecase = (DOCS / "reference" / "usecase.md").read_text()
    assert [f for f in UseCase.model_fields if f"| `{f}` |" not in usecase] == []
    cli = (DOCS / "reference" / "cli.md").read_text()
    for command in ("demo", "init", "backfill", "lineage", "rollback", "stage"):
        assert f"## `airloop {command}" in cli


def test_the_readme_is_a_front_door() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250, "the README is a front door: move detail to docs/"
    for diary in ("that afternoon", "that night", "that evening", "earlier that", "this morning"):
        assert diary not in readme, f"the README says {diary!r}: figures are the latest run's"
    for command in ("make demo", "make test", "make setup"):
        assert command in readme


def test_every_relative_link_of_the_readme_resolves() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert targets
    broken = [t for t in targets if "://" not in t and not (REPO / t).exists()]
    assert broken == []


def test_the_site_builds_offline_without_fonts_or_network_plugins() -> None:
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    assert config["theme"]["name"] == "material"
    assert config["theme"]["font"] == "false", "theme.font: false, or browsers ask Google Fonts"
    plugins = config.get("plugins") or []
    names = [p if isinstance(p, str) else next(iter(p)) for p in plugins]
    assert not {"privacy", "social", "git-revision-date-localized"} & set(names)
    assert config["strict"] == "true"
    # With strict, a warning fails the build: a page outside the nav is one.
    assert config["validation"]["omitted_files"] == "warn"
