"""Lines of text in the store: Update/Replace, rejections, full-text search (FTS5 in a
real SQLite file), and the commands that show and find them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from autotags import TagStore
from autotags.collection.files import FileState
from autotags.collection.store import NewTag, NewTextLine
from helpers.photo_sources import DARKNET_DATA
from helpers.text_photos import OPENCV_PAGES
from helpers.xmp_files import read_tags

BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))
STATE = FileState(1, 1, None)


def store_reading(store, path, texts, *, replace=True, model="pp-ocrv4"):
    lines = [NewTextLine(text, 0.9, BOX) for text in texts]
    with store.transaction():
        store.record_scan(path, model, STATE, {"accuracy": 7}, width=10, height=10,
                          tags=[NewTag("text", 0.9, 1, None, ())], lines=lines,
                          replace=replace)


@pytest.fixture()
def store(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as opened:
        store_reading(opened, tmp_path / "station.jpg", ["Café am Bahnhof", "Gleis 7"])
        store_reading(opened, tmp_path / "party.jpg", ["Birthday party tonight"])
        yield opened


def test_all_words_any_word_case_accents_and_prefixes(store, tmp_path):
    station, party = str(tmp_path / "station.jpg"), str(tmp_path / "party.jpg")
    assert store.search(text=["cafe", "GLEIS"]) == [station]  # words on different lines
    assert store.search(text=["cafe", "birthday"]) == []
    assert store.search(text=["cafe", "birthday"], match_any=True) == [party, station]
    assert store.search(text=["bahn*"]) == [station]
    assert store.search(text=["bahn"]) == []
    assert store.search(text=['"party"', "AND", "NEAR("]) == []  # FTS5 syntax is just text


def test_replace_drops_a_models_earlier_lines_and_update_keeps_them(store, tmp_path):
    station = tmp_path / "station.jpg"
    store_reading(store, station, ["Gleis 8"], replace=False)
    assert [line.text for line in store.text_of(station)] == ["Café am Bahnhof", "Gleis 7",
                                                              "Gleis 8"]
    store_reading(store, station, ["Ausgang"])
    assert [line.text for line in store.text_of(station)] == ["Ausgang"]
    assert store.search(text=["cafe"]) == []
    assert store.search(text=["ausgang"]) == [str(station)]


def test_a_rejected_text_tag_takes_the_image_out_of_text_search(store, tmp_path):
    station = tmp_path / "station.jpg"
    store.remove_manual_tag(station, "auto/text")
    assert store.search(text=["gleis"]) == []
    assert store.text_of(station)  # the lines are kept; a confirmation brings them back
    store.add_manual_tag(station, "auto/text")
    assert store.search(text=["gleis"]) == [str(station)]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for source in (OPENCV_PAGES["imageTextN"], DARKNET_DATA / "dog.jpg"):
        shutil.copy(source, folder)
    db = folder.parent / "tags.sqlite3"
    done = autotags("scan", folder, "--db", db, "--model", "pp-ocrv4,ssd-mobilenet-v2",
                    "--xmp", "sidecar")
    assert done.returncode == 0, done.stderr
    return folder, db


def autotags(*arguments):
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, arguments)],
                          capture_output=True, text=True, timeout=600)


def test_search_text_finds_what_a_scan_read_and_combines_with_tags(scanned):
    folder, db = scanned
    page = str(folder / "imageTextN.png")
    found = autotags("search", "--db", db, "--text", "teaching", "Photograph*")
    assert found.returncode == 0 and found.stdout.split() == [page], found.stderr
    assert autotags("search", "--db", db, "text").stdout.split() == [page]  # auto/text
    nothing = autotags("search", "--db", db, "dog", "--text", "teaching")
    assert nothing.returncode == 1 and "no images match 'dog' and text 'teaching'" in nothing.stderr
    bare = autotags("search", "--db", db)
    assert bare.returncode == 2 and "Traceback" not in bare.stderr and "--text" in bare.stderr


def test_show_and_tag_list_the_lines_with_confidence_and_box(scanned):
    folder, db = scanned
    shown = json.loads(autotags("show", "--db", db, "--json", folder / "imageTextN.png").stdout)
    first = shown["text"][0]
    assert first["text"].startswith("technical details") and 0.6 < first["confidence"] <= 1
    assert len(first["box"]) == 4 and first["model"] == "pp-ocrv4"
    assert "technical details" in autotags("show", "--db", db, folder / "imageTextN.png").stdout
    tagged = json.loads(autotags("tag", "--model", "pp-ocrv4", "--json",
                                 folder / "imageTextN.png").stdout)
    assert tagged["text"][0]["text"] == first["text"] and len(tagged["text"][0]["box"]) == 4
    dog = json.loads(autotags("show", "--db", db, "--json", folder / "dog.jpg").stdout)
    assert dog["text"] == [] and "auto/text" not in [t["path"] for t in dog["tags"]]


def test_sidecars_get_the_text_tag_and_not_the_words(scanned):
    folder, _ = scanned
    tags = read_tags(folder / "imageTextN.png.xmp")
    keywords = json.dumps(tags)
    assert "auto/text" in keywords or "text" in tags.get("XMP-dc:Subject", [])
    assert "teaching" not in keywords and "technical" not in keywords
