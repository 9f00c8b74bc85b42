"""A real `autotags serve` in a child process, and a headless Chromium to look at it."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SCREENSHOTS = Path(os.environ.get("AUTOTAGS_SCREENSHOTS",
                                  Path(__file__).resolve().parents[2] / "build" / "screenshots"))


@contextlib.contextmanager
def review_server(db: Path, *options: str, prefix: tuple[str, ...] = ()
                  ) -> Iterator[str]:
    """Yields the URL the server printed; stops it with Ctrl-C (SIGINT) afterwards and
    checks that it stopped cleanly."""
    child = subprocess.Popen(
        [*prefix, sys.executable, "-m", "autotags.cli", "serve", "--db", str(db), "--port", "0",
         *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        found = re.search(r"at (http://\S+)", line)
        assert found, f"no URL in {line!r}: {child.stderr.read() if child.stderr else ''}"
        yield found.group(1)
    finally:
        child.send_signal(signal.SIGINT)
        _, errors = child.communicate(timeout=30)
        assert child.returncode == 0, errors
        assert "Traceback" not in errors, errors


def request(url: str, path: str, *, method: str = "GET", body: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent exactly as given (no client normalisation)."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    sent = {"Host": where.netloc, **(headers or {})}
    if body is not None:
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    content = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, content


def chromium() -> object:
    """Debian's Chromium, headless, through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "the review tests need Debian's chromium and chromium-driver"
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def page_wait(driver: Any, seconds: float = 30) -> Any:
    """A wait for the page to show something. An element read just as the browser moves
    to the next page goes stale; the wait reads it again instead of failing."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, seconds, ignored_exceptions=ignored)


def reject_this_page(driver: Any, tag: str) -> str:
    """On a results page: select the page's photos, check that the bulk button is named
    "Reject `tag`", press it, and return the notice the next page shows."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "select-page").click()
    reject = driver.find_element(By.CSS_SELECTOR, 'button[value="reject"]')
    assert reject.accessible_name == f"Reject {tag}"
    reject.click()
    notice = page_wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, '[role="status"]'))
    return str(notice.text)
