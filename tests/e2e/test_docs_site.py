"""The documentation site as a reader opens it: built --strict, served, read in Chromium.

`mkdocs build --strict` writes the site into a temporary folder; a plain HTTP server bound to
127.0.0.1 on a free port serves it; headless Chromium opens the home page and the generated
command-line reference, and each shows its title and its first heading.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.browser import chromium

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert (out / "index.html").is_file() and (out / "reference" / "cli" / "index.html").is_file()
    return out


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_site_asks_no_font_server(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert pages
    assert [p for p in pages if "fonts.googleapis.com" in p.read_text(encoding="utf-8")] == []


def test_home_and_cli_reference_open_in_a_browser(served: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium() as driver:
        driver.get(f"{served}/")
        heading = WebDriverWait(driver, 30).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "article h1"))
        )
        assert heading.text.strip().startswith("airloop")
        assert driver.title.startswith("airloop")
        nav = driver.find_element(By.CSS_SELECTOR, "nav.md-nav").get_attribute("textContent")
        for section in ("Getting started", "Concepts", "How-to guides", "Reference", "Benchmarks"):
            assert section in nav

        driver.get(f"{served}/reference/cli/")
        heading = WebDriverWait(driver, 30).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "article h1"))
        )
        assert heading.text.strip().startswith("Command line")
        assert driver.title.startswith("Command line - airloop")
        commands = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "article h2")]
        assert any(text.startswith("airloop demo") for text in commands), commands
