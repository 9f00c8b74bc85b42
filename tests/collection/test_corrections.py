"""Protects corrections that stick and boxes that are kept (issue: vocabulary): a machine
tag a person rejects never comes back, whatever the scan mode or policy and after the
file is edited; a confirmed one survives Replace; every instance's box and score
round-trip through the store exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from autotags import Tagger, TagStore, scan


@pytest.fixture()
def dog_photo(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos["dog"], folder / "dog.jpg")
    return folder / "dog.jpg"


def machine_tags(db, photo):
    with TagStore(db, read_only=True) as store:
        return {t.path for t in store.tags_of(photo)}


def test_a_rejected_tag_never_comes_back(dog_photo, tmp_path, detector):
    db = tmp_path / "tags.sqlite3"
    scan(dog_photo, db=db, model=detector)
    assert "auto/car" in machine_tags(db, dog_photo)
    with TagStore(db) as store:
        assert store.remove_manual_tag(dog_photo, "auto/car")
        assert store.rejected_tags(dog_photo) == ["auto/car"]
    for policy in ("replace", "update"):
        scan(dog_photo, db=db, model=detector, mode="all", policy=policy)
        assert "auto/car" not in machine_tags(db, dog_photo), policy
    Image.open(dog_photo).save(dog_photo, quality=90)  # edited: a new scan runs
    assert scan(dog_photo, db=db, model=detector).inferred == 1
    tags = machine_tags(db, dog_photo)
    assert "auto/car" not in tags and "auto/dog" in tags
    with TagStore(db, read_only=True) as store:
        assert store.search("car") == []


def test_a_confirmed_tag_survives_replace_and_lifts_a_rejection(dog_photo, tmp_path, detector):
    db = tmp_path / "tags.sqlite3"
    scan(dog_photo, db=db, model=detector)
    with TagStore(db) as store:
        store.remove_manual_tag(dog_photo, "auto/car")
        store.add_manual_tag(dog_photo, "auto/car")  # "yes, there is a car"
        assert store.rejected_tags(dog_photo) == []
    strict = Tagger("ssd-mobilenet-v2", accuracy=10, precision="f32")  # drops the car (65%)
    scan(dog_photo, db=db, model=strict, mode="all", policy="replace")
    with TagStore(db, read_only=True) as store:
        sources = {t.source for t in store.tags_of(dog_photo) if t.path == "auto/car"}
        assert sources == {"manual"}
        assert store.search("vehicle") == [str(dog_photo)]  # the confirmation keeps its category


def test_untag_and_show_on_the_command_line(dog_photo, tmp_path, detector):
    db = tmp_path / "tags.sqlite3"
    scan(dog_photo, db=db, model=detector)
    run = [sys.executable, "-m", "autotags.cli"]
    assert subprocess.run([*run, "untag", dog_photo, "auto/car", "--db", db]).returncode == 0
    shown = subprocess.run([*run, "show", dog_photo, "--db", db], capture_output=True,
                           text=True).stdout
    assert "rejected: auto/car" in shown and "at (" in shown
    data = json.loads(subprocess.run([*run, "show", "--json", dog_photo, "--db", db],
                                     capture_output=True, text=True).stdout)
    assert data["rejected"] == ["auto/car"]
    assert all(len(box) == 5 for tag in data["tags"] for box in tag["boxes"])


def test_boxes_and_scores_round_trip_exactly(dog_photo, tmp_path, detector, classifier):
    db = tmp_path / "tags.sqlite3"
    scan(dog_photo, db=db, model=[detector, classifier])
    expected: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for tagger in (detector, classifier):
        for tag in tagger.tag_file(dog_photo).tags:
            box = () if tag.box is None else ((tag.box.x1, tag.box.y1, tag.box.x2, tag.box.y2,
                                               tag.score),)
            expected.setdefault((f"auto/{tag.label}", tagger.model_name), []).extend(box)
    with TagStore(db, read_only=True) as store:
        stored = {(t.path, t.source): sorted(t.boxes) for t in store.tags_of(dog_photo)}
    assert stored == {key: sorted(boxes) for key, boxes in expected.items()}
    assert any(stored.values()) and not stored[("auto/malamute", "efficientnet-lite3")]
