"""MkDocs hooks (mkdocs.yml ``hooks:``): the benchmark results in the site, and links out of docs/.

The results files live in ``benchmarks/results/``, where ``make bench`` and friends write them
and where the README links them; the site shows them under ``benchmarks/results/`` as they
are at build time, with nothing copied into ``docs/``. The pages are also read on GitHub,
where a link such as ``../benchmarks/results/year.md`` or ``../include/...`` works: in the
site, links to results files go to their pages, and links to other files of the repository
(code, examples) become the file's path, since the site holds no source.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def on_files(files: Files, config: Any) -> Files:
    """Add every results page of ``benchmarks/results/`` to the site."""
    for path in sorted((REPO / RESULTS).glob("*.md")):
        uri = f"{RESULTS}/{path.name}"
        files.append(File.generated(config, uri, content=path.read_text(encoding="utf-8")))
    return files


def _repo_dir(src_uri: str) -> str:
    """Where a page lives in the repository: docs/... or benchmarks/results/."""
    folder = posixpath.dirname(src_uri)
    return folder if src_uri.startswith(f"{RESULTS}/") else posixpath.join("docs", folder)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Links written for the repository, made to work in the site."""
    src_uri = page.file.src_uri
    here = _repo_dir(src_uri)

    def fix(match: re.Match[str]) -> str:
        bang, text, target = match.groups()
        if re.match(r"^[a-z]+:|^#|^/", target):
            return match.group(0)
        path, sep, anchor = target.partition("#")
        in_repo = posixpath.normpath(posixpath.join(here, path))
        if in_repo.startswith("docs/"):
            site = in_repo.removeprefix("docs/")
        elif in_repo.startswith(f"{RESULTS}/") and in_repo.endswith(".md"):
            site = in_repo
        else:
            return text if text.strip("`") == in_repo else f"{text} (`{in_repo}`)"
        link = posixpath.relpath(site, posixpath.dirname(src_uri) or ".")
        return f"{bang}[{text}]({link}{sep}{anchor})"

    return LINK.sub(fix, markdown)
