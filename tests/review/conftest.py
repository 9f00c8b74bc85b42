"""What the review page's tests share: a headless Chromium per test."""

from __future__ import annotations

import pytest

from helpers.review_server import chromium


@pytest.fixture()
def browser():
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()  # type: ignore[attr-defined]
