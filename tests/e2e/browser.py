"""A real browser on the airloop page: Debian's headless Chromium, driven through chromedriver.

Logs into Airflow's UI as a user does, opens the airloop page from the nav and a
model_training run's airloop tab, and saves a screenshot of each.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.conftest import require_service

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 60


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium; fails in CI and skips elsewhere when `make browser` could not run."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            require_service("Chromium", f"{path} is missing: run `make browser` (as root)")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-proxy-server",
        "--window-size=1500,1100",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def log_in(driver: Any, base: str, user: str, password: str) -> None:
    """Airflow's login form, as a person fills it in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(f"{base}/")
    _wait(driver, ec.presence_of_element_located((By.CSS_SELECTOR, "input[name='username']")))
    driver.find_element(By.CSS_SELECTOR, "input[name='username']").send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[name='password']").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    _wait(driver, lambda d: "/auth/login" not in d.current_url and d.get_cookie("_token"))


def _frame_text(driver: Any, selector: str) -> str:
    """Switch into the plugin's iframe and return the text of an element once it is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.switch_to.default_content()
    frame = _wait(driver, ec.presence_of_element_located((By.TAG_NAME, "iframe")))
    driver.switch_to.frame(frame)
    element = _wait(driver, ec.presence_of_element_located((By.CSS_SELECTOR, selector)))
    return str(element.text)


def visit_airloop_page(driver: Any, base: str, shots: Path) -> dict[str, str]:
    """From the nav to the airloop page; what it shows, and a screenshot."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.switch_to.default_content()
    link = _wait(driver, ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href$='plugin/airloop']")))
    link.click()
    shown = {
        "champion": _frame_text(driver, "#champion"),
        "requests": _frame_text(driver, "#requests"),
        "promotions": _frame_text(driver, "#promotions"),
        "serving": _frame_text(driver, "#serving"),
        "url": driver.current_url,
    }
    driver.switch_to.default_content()
    shots.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shots / "airloop-page.png"))
    return shown


def visit_run_tab(driver: Any, base: str, run_id: str, shots: Path) -> dict[str, str]:
    """A model_training run's page, then its airloop tab: the version it made, and why."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.switch_to.default_content()
    driver.get(f"{base}/dags/model_training/runs/{quote(run_id, safe='')}")
    tab = _wait(
        driver, ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href$='plugin/airloop-run']"))
    )
    tab.click()
    shown = {
        "version": _frame_text(driver, "#version"),
        "decision": _frame_text(driver, "#decision"),
        "tasks": _frame_text(driver, "#tasks"),
    }
    driver.switch_to.default_content()
    driver.save_screenshot(str(shots / "airloop-run-tab.png"))
    return shown
