"""The review page and text in photos: found by their words, each line outlined with its
accessible name, and taken out of text search in bulk, in a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from autotags import TagStore
from helpers.review_server import SCREENSHOTS, page_wait, reject_this_page, review_server
from helpers.text_photos import DRAWN, draw_text


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[Path, Path]:
    """Photos with text drawn on them and one without, scanned with a detector and the
    text model together."""
    folder = tmp_path_factory.mktemp("text-review") / "photos"
    folder.mkdir()
    vips_cli = shutil.which("vips")
    assert vips_cli, "the vips command (Debian libvips-tools) is a test dependency"
    for name in ("horses", "coffee"):
        photo, size, lines = DRAWN[name]
        draw_text(photo, folder / f"{name}.jpg", lines, vips_cli, size=size)
    shutil.copy(DRAWN["giraffe"][0], folder / "plain-giraffe.jpg")
    db = folder.parent / "tags.sqlite3"
    result = subprocess.run([sys.executable, "-m", "autotags.cli", "scan", str(folder), "--db",
                             str(db), "--model", "ssd-mobilenet-v2,pp-ocrv4"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return folder, db


def heading(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text  # type: ignore[no-any-return]


def test_words_find_the_photo_and_every_line_read_is_outlined_and_listed(scanned, browser):
    folder, db = scanned
    horses = folder / "horses.jpg"
    with TagStore(db) as store:
        lines = store.text_of(horses)
    assert len(lines) >= 2
    with review_server(db) as url:
        browser.get(url)
        words = browser.find_element(By.CSS_SELECTOR, 'input[name="text"]')
        assert words.accessible_name == "Words in the photo"
        words.send_keys("hauptbahnhof", Keys.ENTER)
        page_wait(browser).until(lambda d: "with the words" in heading(d))
        assert heading(browser) == "1 photo with the words “hauptbahnhof”"
        browser.find_element(By.CSS_SELECTOR, 'img[alt="horses.jpg"]').click()
        page_wait(browser).until(lambda d: heading(d) == "horses.jpg")
        outlined = {g.accessible_name for g in browser.find_elements(By.CSS_SELECTOR, "g.line")}
        assert outlined == {f"text “{line.text}” {line.confidence * 100:.0f}%" for line in lines}
        listed = [q.text for q in browser.find_elements(By.CSS_SELECTOR, "ol.lines q")]
        assert listed == [line.text for line in lines]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOTS / "photo-with-text.png"))


def test_words_and_tag_terms_together_and_a_photo_without_text(scanned, browser):
    db = scanned[1]
    with review_server(db) as url:
        browser.get(url + "results?q=horse&text=gleis")
        assert heading(browser) == "1 photo for “horse” with the words “gleis”"
        browser.get(url + "results?q=giraffe&text=gleis")
        assert heading(browser) == "0 photos for “giraffe” with the words “gleis”"
        browser.get(url + "results?q=giraffe")
        browser.find_element(By.CSS_SELECTOR, 'img[alt="plain-giraffe.jpg"]').click()
        page_wait(browser).until(lambda d: heading(d) == "plain-giraffe.jpg")
        assert browser.find_elements(By.CSS_SELECTOR, "g.line, ol.lines") == []


def test_text_rejected_in_bulk_leaves_text_search(scanned, browser):
    folder, db = scanned
    with review_server(db) as url:
        browser.get(url + "results?text=birthday")
        assert heading(browser) == "1 photo with the words “birthday”"
        assert reject_this_page(browser, "text") == "Rejected auto/text on 1 photo."
    with TagStore(db) as store:
        assert store.search(text=["birthday"]) == []
        assert store.search(text=["hauptbahnhof"]) == [str(folder / "horses.jpg")]
        assert "auto/text" in store.rejected_tags(folder / "coffee.jpg")
