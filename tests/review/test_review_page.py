"""Protects the review page (issue: see what was found and put it right): a real
`autotags serve` over a store scanned from real photos, driven by a headless Chromium as a
person would use it, and its security rules against raw HTTP requests."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from autotags import TagStore
from helpers.review_server import (
    SCREENSHOTS,
    page_wait,
    reject_this_page,
    request,
    review_server,
)
from helpers.xmp_files import read_tags

DETECTOR = "ssd-mobilenet-v2"


def autotags(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def scanned(folder: Path, photos: dict[str, Path]) -> Path:
    """Real photos scanned with a detector (tags with boxes) into a new store."""
    folder.mkdir()
    for name in ("dog", "horses", "person", "kite", "eagle", "giraffe", "astronaut"):
        shutil.copy(photos[name], folder / photos[name].name)
    db = folder.parent / "tags.sqlite3"
    result = autotags("scan", folder, "--db", db, "--model", DETECTOR)
    assert result.returncode == 0, result.stderr
    return db


def shown(path: Path, db: Path) -> dict[str, object]:
    result = autotags("show", path, "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def rescan_replacing(folder: Path, db: Path) -> None:
    result = autotags("scan", folder, "--db", db, "--model", DETECTOR, "--mode", "all",
                      "--policy", "replace")
    assert result.returncode == 0, result.stderr


def box_name(label: str, score: float) -> str:
    return f"{label} {score * 100:.0f}%"


def wait_for_images(driver) -> None:
    page_wait(driver).until(lambda d: d.execute_script(
        "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"))


def screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wait_for_images(driver)
    assert driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


# ---- in the browser -------------------------------------------------------------------

def test_a_search_finds_the_photo_and_every_stored_box_has_its_name(tmp_path, photos,
                                                                     browser):
    folder = tmp_path / "photos"
    db = scanned(folder, photos)
    dog = folder / "dog.jpg"
    with TagStore(db) as store:
        expected = {box_name(t.path.rsplit("/", 1)[-1], b[4])
                    for t in store.tags_of(dog) for b in t.boxes}
    assert len(expected) >= 2  # the dog photo has several boxes (dog, bicycle, car)
    with review_server(db) as url:
        browser.get(url)
        assert "Tags" in browser.title
        search = browser.find_element(By.ID, "q")
        search.send_keys("dog", Keys.ENTER)  # from the keyboard
        page_wait(browser).until(lambda d: " for “" in d.find_element(
            By.TAG_NAME, "h1").text)
        assert browser.find_element(By.TAG_NAME, "h1").text == "1 photo for “dog”"
        screenshot(browser, "results")
        browser.find_element(By.CSS_SELECTOR, 'img[alt="dog.jpg"]').click()
        page_wait(browser).until(lambda d: d.find_element(By.TAG_NAME, "h1").text
                                         == "dog.jpg")
        boxes = browser.find_elements(By.CSS_SELECTOR, "g.box")
        assert {box.accessible_name for box in boxes} == expected
        assert {box.aria_role for box in boxes} == {"image"}
        buttons = {b.accessible_name for b in browser.find_elements(By.TAG_NAME, "button")}
        assert {"Reject dog", "Confirm dog", "Add tag"} <= buttons
        screenshot(browser, "photo")
        browser.get(url)
        screenshot(browser, "home")
        tree = [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".tree a")]
        assert {"auto", "animal", "dog", "person"} <= set(tree)


def test_a_tag_rejected_in_bulk_on_a_filtered_view_stays_rejected(tmp_path, photos, browser):
    folder = tmp_path / "photos"
    db = scanned(folder, photos)
    with TagStore(db) as store:
        doubtful = store.search("person", max_score=0.9)
        sure = set(store.search("person")) - set(doubtful)
    assert doubtful and sure  # kite.jpg's person is doubtful, person.jpg's is not
    with review_server(db) as url:
        browser.get(url + "results?q=person&max=90")
        photos_for = "photo" if len(doubtful) == 1 else "photos"
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith(
            f"{len(doubtful)} {photos_for} for “person”, up to 90%")
        notice = reject_this_page(browser, "person")
        assert notice == f"Rejected auto/person on {len(doubtful)} {photos_for}."
    for path in doubtful:
        info = shown(Path(path), db)
        assert "auto/person" in info["rejected"]
        assert "auto/person" not in {t["path"] for t in info["tags"]}
    rescan_replacing(folder, db)
    for path in doubtful:
        info = shown(Path(path), db)
        assert "auto/person" not in {t["path"] for t in info["tags"]}, path
    for path in sure:
        assert "auto/person" in {t["path"] for t in shown(Path(path), db)["tags"]}


def test_a_tag_confirmed_from_the_keyboard_survives_a_replace_rescan(tmp_path, photos,
                                                                      browser):
    folder = tmp_path / "photos"
    db = scanned(folder, photos)
    horses = folder / "horses.jpg"
    with TagStore(db) as store:
        image = next(m.image.id for m in store.find_images("horse")
                     if m.image.path == str(horses))
    with review_server(db) as url:
        browser.get(f"{url}image/{image}")
        body = browser.find_element(By.TAG_NAME, "body")
        for _ in range(60):  # Tab through the page to the button, as without a mouse
            body.send_keys(Keys.TAB) if _ == 0 else browser.switch_to.active_element.send_keys(
                Keys.TAB)
            if browser.switch_to.active_element.accessible_name == "Confirm horse":
                break
        else:
            pytest.fail("no 'Confirm horse' button reachable with Tab")
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        page_wait(browser).until(
            lambda d: d.find_element(By.CSS_SELECTOR, '[role="status"]').text
            == "Confirmed auto/horse.")
    rescan_replacing(folder, db)
    tags = {(t["path"], t["source"]) for t in shown(horses, db)["tags"]}
    assert ("auto/horse", "manual") in tags  # confirmed: no Replace scan drops it


def grid_names(driver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#grid .name")]


def test_the_least_sure_come_first_and_a_confirmed_tag_leaves_the_doubtful_view(
        tmp_path, photos, browser):
    """The doubtful view ("person, up to 90%") kept every photo whose tag had been
    confirmed, so it never emptied as a person worked through it; and results came only
    in folder order, the least sure scattered among the rest."""
    folder = tmp_path / "photos"
    db = scanned(folder, photos)
    with TagStore(db) as store:
        people = store.find_images("person")
    by_score = [Path(m.image.path).name for m in sorted(people, key=lambda m: m.score)]
    assert len(by_score) >= 3 and by_score != sorted(by_score)  # the order shows
    with review_server(db) as url:
        browser.get(url + "results?q=person")
        assert grid_names(browser) == sorted(by_score)
        Select(browser.find_element(By.CSS_SELECTOR, "form.order select")
               ).select_by_visible_text("least sure first")
        browser.find_element(By.XPATH, "//button[text()='Sort']").click()
        page_wait(browser).until(lambda d: "order=doubtful" in d.current_url)
        assert grid_names(browser) == by_score
        order = Select(browser.find_element(By.CSS_SELECTOR, "form.order select"))
        assert order.first_selected_option.text == "least sure first"
        browser.get(url + "results?q=person&max=90&order=doubtful")
        doubtful = grid_names(browser)
        assert doubtful == [name for name in by_score if name in doubtful] and len(doubtful) >= 2
        browser.find_element(By.CSS_SELECTOR, "#grid input[type=checkbox]").click()
        confirm = browser.find_element(By.CSS_SELECTOR, 'button[value="confirm"]')
        assert confirm.accessible_name == "Confirm person"
        confirm.click()
        notice = page_wait(browser).until(
            lambda d: d.find_element(By.CSS_SELECTOR, '[role="status"]'))
        assert notice.text == "Confirmed auto/person on 1 photo."
        assert "order=doubtful" in browser.current_url
        assert grid_names(browser) == doubtful[1:]  # what is left to check, in order
    confirmed = shown(folder / doubtful[0], db)
    assert ("auto/person", "manual") in {(t["path"], t["source"]) for t in confirmed["tags"]}


# ---- the rules of a server on someone's photo machine ---------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("served")
    db = scanned(root / "photos", photos)
    with review_server(db) as url:
        yield url, db, root / "photos"


def csrf_of(url: str, path: str) -> str:
    status, _, page = request(url, path)
    assert status == 200
    found = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1).decode()


@pytest.mark.parametrize("path", [
    "/image/../../etc/passwd", "/static/../../pyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/..%2F..%2Fpyproject.toml",
    "/static/%2Fetc%2Fpasswd", "/image/1%2F..%2F2/view", "/image/99999",
    "/image/99999/thumbnail", "/image/abc", "/image/-1/view", "/static/", "/etc/passwd"])
def test_no_path_from_a_request_reaches_the_disk(served, path):
    url, _, _ = served
    status, headers, content = request(url, path)
    assert status == 404, path
    assert headers["content-type"].startswith("text/html")
    assert b"Traceback" not in content and b"root:" not in content and b"[project]" not in content


def test_a_change_from_another_site_or_without_the_form_token_is_refused(served):
    url, db, _ = served
    with TagStore(db, read_only=True) as store:
        image = store.find_images("dog")[0].image
        before = store.tags_of(image.path)
    csrf = csrf_of(url, f"/image/{image.id}")
    here = url.rstrip("/")
    attempts = [
        ({"Origin": "http://evil.example"}, f"csrf={csrf}&action=reject&tag=auto/dog"),
        ({"Referer": "http://evil.example/page"}, f"csrf={csrf}&action=reject&tag=auto/dog"),
        ({}, f"csrf={csrf}&action=reject&tag=auto/dog"),  # neither Origin nor Referer
        ({"Origin": here}, "action=reject&tag=auto/dog"),  # no CSRF token
        ({"Origin": here}, "csrf=forged&action=reject&tag=auto/dog"),
    ]
    for headers, body in attempts:
        status, _, content = request(url, f"/image/{image.id}/tags", method="POST",
                                     body=body, headers=headers)
        assert status == 403, (headers, body)
        assert b"Traceback" not in content
    with TagStore(db, read_only=True) as store:
        assert store.tags_of(image.path) == before
    status, headers, _ = request(url, f"/image/{image.id}/tags", method="POST",
                                 body=f"csrf={csrf}&action=reject&tag=auto/dog",
                                 headers={"Origin": here})
    assert status == 303  # the same request from the page itself is accepted
    assert "auto/dog" in shown(Path(image.path), db)["rejected"]


def test_a_request_naming_another_host_is_refused(served):
    url, _, _ = served
    port = url.rsplit(":", 1)[1].strip("/")
    for host in ("evil.example", f"evil.example:{port}", f"192.168.1.2:{port}"):
        status, _, _ = request(url, "/", headers={"Host": host})
        assert status == 403, host  # a DNS-rebinding page names its own host
    assert request(url, "/", headers={"Host": f"localhost:{port}"})[0] == 200


def test_pages_set_a_policy_that_loads_nothing_from_elsewhere(served):
    url, _, _ = served
    _, headers, page = request(url, "/")
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert not re.search(rb'(src|href)="(https?:)?//', page)  # nothing from the internet


def test_a_photo_gone_or_broken_since_the_scan_gets_a_placeholder(served):
    url, db, _ = served
    with TagStore(db, read_only=True) as store:
        eagle = store.find_images("bird")[0].image
        giraffe = store.find_images("giraffe")[0].image
    Path(eagle.path).unlink()
    Path(giraffe.path).write_bytes(b"\xff\xd8\xff\xe0 not a JPEG any more")
    for image in (eagle, giraffe):
        for rendition in ("thumbnail", "view"):
            status, headers, _ = request(url, f"/image/{image.id}/{rendition}")
            assert status == 200 and headers["content-type"] == "image/svg+xml"
            assert headers["x-autotags-problem"]
    status, headers, _ = request(url, "/image/1/thumbnail")
    assert status in (200,) and headers["content-type"] in ("image/jpeg", "image/svg+xml")
    assert request(url, "/")[0] == 200  # and the server goes on


def test_read_only_shows_no_corrections_and_refuses_them(tmp_path, photos):
    db = scanned(tmp_path / "photos", photos)
    with TagStore(db, read_only=True) as store:
        image = store.find_images("dog")[0].image
    with review_server(db, "--read-only") as url:
        status, _, page = request(url, f"/image/{image.id}")
        assert status == 200 and b"read-only" in page
        assert b"<button name=\"action\"" not in page and b'name="csrf"' not in page
        status, _, _ = request(url, f"/image/{image.id}/tags", method="POST",
                               body="action=reject&tag=auto/dog",
                               headers={"Origin": url.rstrip("/")})
        assert status == 403
    assert "auto/dog" not in shown(Path(image.path), db)["rejected"]


ANY_ADDRESS_CLIENT = """
import json, subprocess, sys, re, http.client
child = subprocess.Popen([sys.executable, "-m", "autotags.cli", "serve", "--db", sys.argv[1],
                          "--host", "0.0.0.0", "--port", "0"], stdout=subprocess.PIPE, text=True)
line = child.stdout.readline()
url = re.search(r"at (http://\\S+)", line).group(1)
port = int(re.search(r":(\\d+)/", url).group(1))
token = url.split("token=", 1)[1]
def get(path, cookie=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    r = c.getresponse(); r.read()
    return r.status, r.getheader("Set-Cookie") or "", r.getheader("Location") or ""
answers = {"url": url, "without": get("/")[0], "wrong": get("/?token=wrong")[0]}
status, cookie, location = get("/?token=" + token)
answers.update(first=status, location=location,
               after=get("/", cookie.split(";", 1)[0])[0])
child.send_signal(2); child.wait(30)
print(json.dumps(answers))
"""


def test_any_address_but_loopback_needs_the_token(tmp_path, photos):
    """Served on every address, but in a network namespace of its own, where the only
    network is loopback: nothing of the test reaches beyond this machine."""
    db = scanned(tmp_path / "photos", photos)
    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare keeps this test on loopback"
    command = [unshare, "--net", "--map-root-user", "sh", "-c",
               'ip link set lo up 2>/dev/null; exec "$0" "$@"', sys.executable, "-c",
               ANY_ADDRESS_CLIENT, str(db)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert "?token=" in answers["url"] and answers["url"].startswith("http://0.0.0.0:")
    assert answers["without"] == 403 and answers["wrong"] == 403
    assert answers["first"] == 303 and "token" not in answers["location"]
    assert answers["after"] == 200  # the cookie carries it from then on


def test_bad_requests_and_a_client_gone_mid_image_leave_the_server_serving(served):
    url, _, _ = served
    for path in ("/results?q=dog&min=abc", "/results?q=dog&max=150", "/results?q=dog&page=0",
                 "/results?q=%22unclosed"):
        status, _, content = request(url, path)
        assert status in (200, 400), path  # an unclosed quote is read as plain words
        assert b"Traceback" not in content
    assert request(url, "/results?q=dog&min=abc")[0] == 400
    status, _, content = request(url, "/results?q=dog&order=random")
    assert status == 400 and b"order must be one of path, doubtful, surest" in content
    where = urlsplit(url)
    for _ in range(5):  # ask for a screen-sized copy and hang up before the answer
        with socket.create_connection((where.hostname, where.port)) as client:
            client.sendall(f"GET /image/1/view HTTP/1.1\r\nHost: {where.netloc}\r\n\r\n"
                           .encode())
    time.sleep(0.5)
    assert request(url, "/image/1/view")[0] == 200


def test_an_edited_photo_gets_a_new_thumbnail(served):
    url, db, _ = served
    with TagStore(db, read_only=True) as store:
        image = store.find_images("horse")[0].image
    _, _, before = request(url, f"/image/{image.id}/thumbnail")
    flipped = Image.open(image.path).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    flipped.save(image.path, "JPEG", quality=90)
    _, headers, after = request(url, f"/image/{image.id}/thumbnail")
    assert headers["content-type"] == "image/jpeg" and after != before
    assert request(url, f"/image/{image.id}/thumbnail")[2] == after  # cached under its state


def test_serve_with_xmp_writes_a_corrected_photos_sidecar_at_once(tmp_path, photos):
    db = scanned(tmp_path / "photos", photos)
    dog = tmp_path / "photos" / "dog.jpg"
    with TagStore(db, read_only=True) as store:
        image = store.find_images("dog")[0].image
    with review_server(db, "--xmp", "sidecar") as url:
        csrf = csrf_of(url, f"/image/{image.id}")
        status, _, _ = request(url, f"/image/{image.id}/tags", method="POST",
                               body=f"csrf={csrf}&action=add&tag=people/alice",
                               headers={"Origin": url.rstrip("/")})
        assert status == 303
    tags = read_tags(dog.with_name("dog.jpg.xmp"))
    assert {"people/alice", "auto/dog"} <= set(tags["XMP-digiKam:TagsList"])  # exiftool reads it


def test_a_bulk_change_without_terms_or_with_a_manual_tag_is_a_bad_request(served):
    url, db, _ = served
    here = url.rstrip("/")
    with TagStore(db, read_only=True) as store:
        horses = store.find_images("horse")
        before = {m.image.id: store.tags_of(m.image.path) for m in horses}
    csrf = csrf_of(url, f"/image/{horses[0].image.id}")  # one token for every page
    for body in (f"csrf={csrf}&action=reject&tag=auto/dog&scope=all&q=",
                 f"csrf={csrf}&action=reject&tag=people/alice&scope=selected&image=1",
                 f"csrf={csrf}&action=delete&tag=auto/dog&image=1",
                 f"csrf={csrf}&action=reject&tag=auto/dog&image=abc"):
        status, _, content = request(url, "/bulk", method="POST", body=body,
                                     headers={"Origin": here})
        assert status == 400, body
        assert b"Traceback" not in content and b"internal error" not in content
    with TagStore(db, read_only=True) as store:
        assert {i: store.tags_of(store.image(i).path) for i in before} == before


def test_a_photo_whose_name_is_not_utf8_is_shown_and_served(tmp_path, photos):
    """Old cameras' cards have Latin-1 names; the store keeps their bytes, the page shows
    them with the replacement character and serves the file by its id."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos["dog"], os.fsencode(str(folder)) + b"/caf\xe9.jpg")
    db = folder.parent / "tags.sqlite3"
    assert autotags("scan", folder, "--db", db, "--model", DETECTOR).returncode == 0
    with TagStore(db, read_only=True) as store:
        [match] = store.find_images("dog")
    with review_server(db) as url:
        status, _, page = request(url, "/results?q=dog")
        assert status == 200 and "caf\ufffd.jpg".encode() in page
        assert request(url, f"/image/{match.image.id}")[0] == 200
        status, headers, _ = request(url, f"/image/{match.image.id}/thumbnail")
        assert status == 200 and headers["content-type"] == "image/jpeg"
