"""The review page in headless Chromium: a person approves one held order and
overrides another, and sees both orders change; the override is journaled
with who and why."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from orderloom.actors import Decision
from orderloom.actors.order import _messages as m
from orderloom.cli._desk_web import desk_app
from orderloom.runtime.ops import Tokens

from ..desk import ALICE, TOKENS, live_desk, wait_until

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 60.0


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; skipped without it, except under CI=true where it must be there."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} missing (CI=true: the browser test must run)")
        pytest.skip(f"{CHROMIUM} or {CHROMEDRIVER} missing")
    return CHROMIUM


def _driver(profile: str) -> WebDriver:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def _section(driver: WebDriver, order_id: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, f'section.case[data-order="{order_id}"]')


def _order_field(driver: WebDriver, order_id: str, field: str) -> str:
    cell = _section(driver, order_id).find_element(
        By.CSS_SELECTOR, f'dl.order dd[data-field="{field}"]')
    return str(cell.get_attribute("textContent"))


def _status_is(order_id: str, status: str) -> Any:
    def check(driver: WebDriver) -> bool:
        found = driver.find_elements(By.CSS_SELECTOR, f'section.case[data-order="{order_id}"]')
        return bool(found) and found[0].get_attribute("data-status") == status
    return check


def _after_reload(check: Any) -> Any:
    """A wait condition that reloads the page first (the page does not poll)."""
    def reloaded(driver: WebDriver) -> bool:
        driver.refresh()
        return bool(check(driver))
    return reloaded


def _browse(base: str) -> dict[str, str]:
    """What a person does on the page; returns what the page shows at the end."""
    with tempfile.TemporaryDirectory() as profile:
        driver = _driver(profile)
        try:
            # A reload between finding an element and reading it is retried.
            wait = WebDriverWait(driver, WAIT, ignored_exceptions=(
                StaleElementReferenceException, NoSuchElementException))
            driver.get(f"{base}/desk/?token={ALICE}")  # logs in: cookie, then the bare page
            wait.until(_status_is("f1", "open"))
            wait.until(_status_is("f2", "open"))
            assert "token=" not in driver.current_url
            assert driver.find_element(By.ID, "principal").text == "alice"

            approve = _section(driver, "f1").find_element(By.CSS_SELECTOR, "form.approve")
            approve.find_element(By.NAME, "why").send_keys("card reported stolen")
            approve.find_element(By.CSS_SELECTOR, "button").click()
            wait.until(_status_is("f1", "decided"))

            override = _section(driver, "f2").find_element(By.CSS_SELECTOR, "form.override")
            Select(override.find_element(By.NAME, "decision")).select_by_value("release")
            override.find_element(By.NAME, "why").send_keys("regular customer, verified by phone")
            override.find_element(By.CSS_SELECTOR, "button").click()
            wait.until(_status_is("f2", "decided"))

            wait.until(_after_reload(lambda d: _order_field(d, "f1", "lifecycle") == "canceled"))
            wait.until(_after_reload(
                lambda d: _order_field(d, "f2", "lifecycle") not in ("on_hold", "canceled")))
            f2 = _section(driver, "f2")
            hold_id = str(f2.get_attribute("data-case"))
            return {"f1": _order_field(driver, "f1", "lifecycle"),
                    "f2": _order_field(driver, "f2", "lifecycle"),
                    "f2_hold": _order_field(driver, "f2", f"hold {hold_id}"),
                    "f2_decided": str(f2.find_element(
                        By.CSS_SELECTOR, 'dd[data-field="decided"]').get_attribute("textContent"))}
        finally:
            driver.quit()


def test_a_person_approves_one_held_order_and_overrides_another(chromium: Path) -> None:
    """Both orders leave their hold as decided; the override's who and why are in the journal."""
    async def main() -> dict[str, Any]:
        async with live_desk() as (kernel, store):
            app = desk_app(kernel, ("fraud",), Tokens(TOKENS))
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                await wait_until(lambda: server.started, "the HTTP server to start")
                try:
                    shown = await anyio.to_thread.run_sync(_browse, f"http://127.0.0.1:{port}")
                finally:
                    server.should_exit = True
            sock.close()
            journal = [r.event for r in store.journal("order/f2")]
            return {"shown": shown,
                    "released": [(e.released_by, e.decision, e.note) for e in journal
                                 if isinstance(e, m.HoldReleased)]}

    seen = anyio.run(main)
    shown = seen["shown"]
    assert shown["f1"] == "canceled" and shown["f2"] not in ("on_hold", "canceled")
    assert "release by alice: regular customer, verified by phone" in shown["f2_hold"]
    assert shown["f2_decided"] == "release by alice: regular customer, verified by phone"
    assert seen["released"] == [
        ("alice", Decision.RELEASE, "regular customer, verified by phone")]
