"""Swagger UI in a real browser: Authorize with an access token, then "Try it out" on GET /me.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) against the real app served on
a loopback port. The screenshot is left in ``test-artifacts/swagger-me.png``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.conftest import make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Debian's paths; elsewhere (e.g. a runner with Google Chrome) point these variables at the pair.
CHROMIUM = Path(os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
ARTIFACTS = Path("test-artifacts")
EMAIL = "swagger.user@example.com"
PASSWORD = "swagger-ui browser test 4e1b"
WAIT = 20  # seconds; Swagger UI parses a 100 KB document before it renders


@pytest.fixture(scope="module")
def base_url(app: Flask, signing_key_pem: str) -> Iterator[str]:
    """The real app on a loopback port, served by werkzeug in a thread."""
    served = make_app(signing_key_pem, RATELIMIT_ENABLED=False)
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="swagger-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install Chromium with `{INSTALL}` "
            "(or set CHROMIUM_BINARY and CHROMEDRIVER to a browser and its matching driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1600",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def access_token(base_url: str) -> str:
    registered = requests.post(
        f"{base_url}/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}, timeout=10
    )
    assert registered.status_code == 201, registered.text
    login = requests.post(
        f"{base_url}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def visible(driver: WebDriver, css: str, within: Any = None) -> WebElement:
    root = within or driver
    return WebDriverWait(driver, WAIT).until(
        lambda _: next(
            (e for e in root.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None
        )
    )


def click(driver: WebDriver, element: WebElement) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    WebDriverWait(driver, WAIT).until(ec.element_to_be_clickable(element))
    element.click()


def authorize(driver: WebDriver, token: str) -> None:
    click(driver, visible(driver, "button.authorize"))
    dialog = visible(driver, ".dialog-ux .modal-ux")
    container = next(
        c
        for c in dialog.find_elements(By.CSS_SELECTOR, ".auth-container")
        if "bearerAuth" in c.text
    )
    container.find_element(By.CSS_SELECTOR, "input").send_keys(token)
    click(driver, container.find_element(By.CSS_SELECTOR, "button.authorize"))
    WebDriverWait(driver, WAIT).until(lambda _: "Logout" in container.text)
    click(driver, dialog.find_element(By.CSS_SELECTOR, "button.btn-done, .close-modal"))
    WebDriverWait(driver, WAIT).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, ".dialog-ux .modal-ux")
    )


def operation(driver: WebDriver, method: str, path: str) -> WebElement:
    for block in driver.find_elements(By.CSS_SELECTOR, f".opblock.opblock-{method}"):
        summary = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path")
        if summary.text.replace("\u200b", "") == path:
            return block
    raise AssertionError(f"{method.upper()} {path} is not on the page")


def test_authorize_then_try_get_me(base_url: str, browser: WebDriver) -> None:
    token = access_token(base_url)
    browser.get(f"{base_url}/apidocs/")
    visible(browser, ".swagger-ui .information-container .title")
    authorize(browser, token)

    me = operation(browser, "get", "/api/v1/auth/me")
    click(browser, me.find_element(By.CSS_SELECTOR, ".opblock-summary"))
    click(browser, visible(browser, "button.try-out__btn", within=me))
    click(browser, visible(browser, "button.execute", within=me))
    live = visible(browser, ".live-responses-table", within=me)
    status = visible(browser, "tbody .response-col_status", within=live)
    body = live.find_element(By.CSS_SELECTOR, "tbody .response-col_description pre")
    WebDriverWait(browser, WAIT).until(lambda _: status.text.strip())

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", live)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "swagger-me.png"))
    assert status.text.strip() == "200", body.text
    assert EMAIL in body.text
    request_url = live.find_element(By.XPATH, "preceding::div[contains(@class,'request-url')][1]")
    assert f"{base_url}/api/v1/auth/me" in request_url.text

    # Everything the page loaded came from this service (no CDN, no web fonts).
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and all(url.startswith(base_url) for url in loaded), loaded
    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == [], problems
