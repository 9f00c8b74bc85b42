"""Protects search that finds what people mean (issue: vocabulary): the table made from
WordNet and COCO's super-categories is reproducible, every label of every built-in model
has a category, and on real photos scanned with the detector and the classifier,
categories, other names and several terms find the right images."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autotags import TagStore, load_catalogue, scan
from autotags.vocabulary.hierarchy import tag_path, vocabulary
from helpers.photo_sources import OPENCV_DATA

ROOT = Path(__file__).resolve().parents[2]
WORDNET = Path("/usr/share/wordnet/data.noun")           # Debian wordnet-base
TIMM_WHEEL = ROOT / "build" / "inputs" / "timm-1.0.31-py3-none-any.whl"  # setup.sh --test


def test_the_table_is_made_again_byte_for_byte(tmp_path):
    assert WORDNET.is_file() and TIMM_WHEEL.is_file(), "run scripts/setup.sh --test"
    with zipfile.ZipFile(TIMM_WHEEL) as wheel:
        ids = tmp_path / "imagenet_synsets.txt"
        ids.write_bytes(wheel.read("timm/data/_info/imagenet_synsets.txt"))
    made = tmp_path / "vocabulary.tsv"
    subprocess.run([sys.executable, str(ROOT / "models" / "make_vocabulary.py"), "--wordnet",
                    str(WORDNET), "--imagenet-ids", str(ids), "--output", str(made)], check=True)
    assert made.read_bytes() == (ROOT / "models" / "vocabulary.tsv").read_bytes()


def test_every_label_of_every_built_in_model_has_a_category():
    known = vocabulary()
    for spec in load_catalogue(with_user_models=False).models.values():
        if spec.kind == "text":
            continue  # its one label, auto/text, says a photo has text: no object category
        name = known.vocabulary_of(spec.labels)
        assert name is not None, spec.name
        for label in spec.labels:
            entry = known.entry(name, label)
            assert entry is not None and entry.category, (spec.name, label)
    assert 30 <= len(known.categories) <= 80


def test_one_hierarchy_for_every_model():
    known = vocabulary()
    assert known.entry("coco", "dog").category == known.entry("imagenet", "malamute").category \
        == "animal/dog"
    assert known.entry("imagenet", "kite").category == "animal/bird"  # the bird of prey
    assert known.entry("coco", "kite").category == "sports equipment"
    assert "motorbike" in known.entry("coco", "motorcycle").other_names
    assert tag_path("malamute", "animal/dog", "hierarchical") == "auto/animal/dog/malamute"
    assert tag_path("dog", "animal/dog", "hierarchical") == "auto/animal/dog"
    assert tag_path("malamute", "animal/dog", "flat") == "auto/malamute"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, photos, detector, classifier):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("cat", "dog", "horses", "eagle", "giraffe", "person", "coffee", "kite"):
        shutil.copy(photos[name], folder / photos[name].name)
    shutil.copy(OPENCV_DATA / "fruits.jpg", folder / "fruits.jpg")
    db = tmp_path_factory.mktemp("db") / "tags.sqlite3"
    scan([folder], db=db, model=[detector, classifier])
    breeds = tmp_path_factory.mktemp("db") / "classifier-only.sqlite3"
    scan([folder / "dog.jpg"], db=breeds, model=classifier)
    return folder, db, breeds


def names(paths):
    return {Path(p).stem for p in paths}


def test_categories_find_what_people_mean(scanned):
    folder, db, breeds = scanned
    with TagStore(breeds, read_only=True) as store:
        assert [t.path for t in store.tags_of(folder / "dog.jpg")] == ["auto/malamute"]
        assert names(store.search("dog")) == {"dog"}  # through the breed alone
    with TagStore(db, read_only=True) as store:
        assert {"chelsea", "dog", "horses", "eagle", "giraffe"} <= names(store.search("animal"))
        assert "coffee" not in names(store.search("animal"))
        assert names(store.search("fruit")) == {"fruits"}
        assert names(store.search("bird")) >= {"eagle"}


def test_other_names_whole_words_and_several_terms(scanned):
    _, db, _ = scanned
    with TagStore(db, read_only=True) as store:
        people = names(store.search("person"))
        dogs = names(store.search("dog"))
        assert names(store.search(["dog", "person"])) == dogs & people
        assert names(store.search(["dog", "person"], match_any=True)) == dogs | people
        assert names(store.search("HORSE")) == names(store.search("horse"))
        assert names(store.search("hors")) == set()  # whole words only
        assert names(store.search("fruit", min_score=0.99)) == set()


def test_ball_and_motorbike_find_their_tags(tmp_path):
    from autotags.collection.store import FileState, NewTag

    with TagStore(tmp_path / "tags.sqlite3") as store, store.transaction():
        for name, label, category in (("game", "sports ball", "sports equipment/ball"),
                                      ("match", "soccer ball", "sports equipment/ball"),
                                      ("ride", "motorcycle", "vehicle/motorcycle"),
                                      ("lunch", "hot dog", "food/dish")):
            store.record_scan(tmp_path / f"{name}.jpg", "m", FileState(1, 1), {},
                              tags=[NewTag(label, 0.9, 1, category)])
    with TagStore(tmp_path / "tags.sqlite3", read_only=True) as store:
        assert names(store.search("ball")) == {"game", "match"}
        assert names(store.search("motorbike")) == {"ride"}
        assert names(store.search("dog")) == set()   # a hot dog is no dog
        assert names(store.search("hot dog")) == {"lunch"}


def test_search_on_the_command_line(scanned):
    _, db, _ = scanned
    run = [sys.executable, "-m", "autotags.cli", "search", "--db", str(db)]
    found = subprocess.run([*run, "dog", "person", "--any"], capture_output=True, text=True)
    assert found.returncode == 0 and "dog.jpg" in found.stdout
    nothing = subprocess.run([*run, "submarine"], capture_output=True, text=True)
    assert (nothing.returncode, nothing.stdout) == (1, "")
    assert nothing.stderr.strip() == "autotags: no images match 'submarine'"
