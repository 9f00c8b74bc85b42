"""The SQLite tag store on real database files."""

from __future__ import annotations

import sqlite3

import pytest

from autotags.collection.store import FileState, NewTag, StoreError, TagStore
from autotags.collection.store.database import SCHEMA_VERSION

STATE = FileState(size=100, mtime_ns=1)
SETTINGS = {"accuracy": 7}


def tags_by_source(store: TagStore, path: str) -> dict[str, dict[str, float | None]]:
    found: dict[str, dict[str, float | None]] = {}
    for tag in store.tags_of(path):
        found.setdefault(tag.source, {})[tag.path] = tag.confidence
    return found


def record(store: TagStore, path: str, model: str, tags: dict[str, float], *,
           replace: bool = True, error: str | None = None) -> None:
    with store.transaction():
        store.record_scan(path, model, STATE, SETTINGS, width=10, height=10,
                          tags=[NewTag(label, score) for label, score in tags.items()],
                          error=error, replace=replace)


# Existing state of the image before the scan under test: detector D made cat and dog,
# classifier C made tabby, a person tagged people/alice and 'cat' by hand.
EXISTING_D = {"cat": 0.9, "dog": 0.7}
EXISTING_C = {"tabby": 0.5}
MANUAL = ["people/alice", "cat"]


@pytest.mark.parametrize(("policy", "new_from_d", "expected_d"), [
    # Replace: D's old tags go, its new ones come; nothing else moves.
    ("replace", {"cat": 0.95, "bird": 0.8}, {"auto/cat": 0.95, "auto/bird": 0.8}),
    ("replace", {}, {}),
    ("replace", {"cat": 0.6}, {"auto/cat": 0.6}),
    # Update: D's old tags stay, new ones are added, a tag found again keeps its best score.
    ("update", {"cat": 0.95, "bird": 0.8}, {"auto/cat": 0.95, "auto/dog": 0.7, "auto/bird": 0.8}),
    ("update", {}, {"auto/cat": 0.9, "auto/dog": 0.7}),
    ("update", {"cat": 0.6}, {"auto/cat": 0.9, "auto/dog": 0.7}),
])
def test_update_and_replace_policies(tmp_path, policy, new_from_d, expected_d):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        record(store, "/photos/a.jpg", "D", EXISTING_D)
        record(store, "/photos/a.jpg", "C", EXISTING_C)
        for tag in MANUAL:
            store.add_manual_tag("/photos/a.jpg", tag)
        record(store, "/photos/b.jpg", "D", {"dog": 0.8})

        record(store, "/photos/a.jpg", "D", new_from_d, replace=policy == "replace")

        after = tags_by_source(store, "/photos/a.jpg")
        assert after.get("D", {}) == pytest.approx(expected_d)
        assert after["C"] == {"auto/tabby": 0.5}                    # other model untouched
        assert after["manual"] == {"people/alice": None, "cat": None}  # manual untouched
        assert tags_by_source(store, "/photos/b.jpg") == {"D": {"auto/dog": 0.8}}  # other image


def test_failed_scan_keeps_existing_tags_and_records_why(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        record(store, "/photos/a.jpg", "D", {"cat": 0.9})
        record(store, "/photos/a.jpg", "D", {}, error="/photos/a.jpg: truncated")
        assert tags_by_source(store, "/photos/a.jpg") == {"D": {"auto/cat": 0.9}}
        [failure] = store.failures()
        assert (failure.path, failure.model, failure.error) == ("/photos/a.jpg", "D",
                                                                "/photos/a.jpg: truncated")


def test_search_matches_any_level_ignoring_case(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        record(store, "/p/cat.jpg", "D", {"cat": 0.9})
        record(store, "/p/dog.jpg", "D", {"dog": 0.9})
        store.add_manual_tag("/p/alice.jpg", "people/Alice")
        store.add_manual_tag("/p/pet.jpg", "pets/cat")
        assert store.search("cat") == ["/p/cat.jpg", "/p/pet.jpg"]
        assert store.search("CAT") == store.search("cat")
        assert store.search("auto/cat") == ["/p/cat.jpg"]
        assert store.search("alice") == ["/p/alice.jpg"]
        assert store.search("people") == ["/p/alice.jpg"]          # everything below
        assert store.search("auto") == ["/p/cat.jpg", "/p/dog.jpg"]
        assert store.search("horse") == []


def test_tag_tree_counts_images_below_each_tag(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        record(store, "/p/1.jpg", "D", {"cat": 0.9, "dog": 0.8})
        record(store, "/p/2.jpg", "D", {"cat": 0.7})
        store.add_manual_tag("/p/2.jpg", "people/bob")
        tree = {(n.path, n.depth): n.images for n in store.tag_tree()}
        assert tree == {("auto", 0): 2, ("auto/cat", 1): 2, ("auto/dog", 1): 1,
                        ("people", 0): 1, ("people/bob", 1): 1}


def test_searches_and_corrections_of_more_images_than_sqlite_takes_parameters(tmp_path):
    """One `?` per image id failed once a search matched more images than SQLite takes
    parameters: 999 before SQLite 3.32, as here on the connection itself."""
    with TagStore(tmp_path / "tags.sqlite3") as store:
        for number in range(40):
            record(store, f"/p/{number:02d}.jpg", "D", {"cat": 0.9, "dog": 0.5})
        store._db._sql.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 8)
        assert store.search("cat") == [f"/p/{number:02d}.jpg" for number in range(40)]
        matches = store.find_images(["cat", "dog"])
        assert [m.matched for m in matches] == [("auto/cat", "auto/dog")] * 40
        assert store.correct_machine_tag([m.image.id for m in matches], "auto/dog",
                                         confirm=False) == 40
        assert store.search("dog") == []


def test_a_manual_tag_below_auto_is_a_confirmation_that_scans_keep(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        store.add_manual_tag("/p/1.jpg", "auto/cat")
        with store.transaction():  # a Replace scan of the model that finds nothing
            store.record_scan("/p/1.jpg", "m", FileState(1, 1), {}, tags=[], replace=True)
        assert [(t.path, t.source) for t in store.tags_of("/p/1.jpg")] == [("auto/cat", "manual")]


@pytest.mark.parametrize("bad", ["", "/", "a//b", "  "])
def test_malformed_tag_names_are_refused(tmp_path, bad):
    store = TagStore(tmp_path / "tags.sqlite3")
    with pytest.raises(StoreError, match="invalid tag"):
        store.add_manual_tag("/p/1.jpg", bad)
    store.close()


def test_the_root_of_machine_tags_is_neither_confirmed_nor_rejected(tmp_path):
    """`tag-manual PHOTO auto` stored a confirmation of the root, which no model gives,
    and `untag PHOTO auto` a rejection of it, and both said it was done."""
    with TagStore(tmp_path / "tags.sqlite3") as store:
        record(store, "/p/a.jpg", "D", {"cat": 0.9})
        with pytest.raises(StoreError, match="root of the machine tags"):
            store.add_manual_tag("/p/a.jpg", "Auto")
        assert store.remove_manual_tag("/p/a.jpg", "auto") is False
        store.add_manual_tag("/p/a.jpg", "autos/vintage")  # a tag of one's own
        assert {t.path for t in store.tags_of("/p/a.jpg")} == {"auto/cat", "autos/vintage"}
        assert store.rejected_tags("/p/a.jpg") == []


def test_a_root_tag_stored_by_an_older_version_can_still_be_removed(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        record(store, "/p/a.jpg", "D", {"cat": 0.9})
        root = store._db.execute("SELECT id FROM tags WHERE name = 'auto'").fetchone()[0]
        with store.transaction():
            store._db.execute("INSERT INTO image_tags(image_id, tag_id, source) "
                              "SELECT id, ?, 'manual' FROM images", (root,))
        assert "auto" in {t.path for t in store.tags_of("/p/a.jpg")}
        assert store.remove_manual_tag("/p/a.jpg", "auto") is True
        assert {t.path for t in store.tags_of("/p/a.jpg")} == {"auto/cat"}
        assert store.rejected_tags("/p/a.jpg") == []


def test_remove_manual_tag(tmp_path):
    with TagStore(tmp_path / "tags.sqlite3") as store:
        store.add_manual_tag("/p/1.jpg", "people/bob")
        assert store.remove_manual_tag("/p/1.jpg", "people/bob")
        assert not store.remove_manual_tag("/p/1.jpg", "people/bob")
        assert store.search("bob") == []


def test_schema_is_versioned_and_newer_databases_are_refused(tmp_path):
    path = tmp_path / "tags.sqlite3"
    TagStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer autotags"):
        TagStore(path)


def test_an_older_schema_is_migrated_keeping_its_data(tmp_path):
    path = tmp_path / "tags.sqlite3"
    with TagStore(path) as store, store.transaction():
        store.record_scan(tmp_path / "a.jpg", "m", FileState(1, 1), {}, tags=[NewTag("cat", 0.9)])
    with sqlite3.connect(path) as db:  # as autotags 0.1 left it: schema 1
        db.execute("DROP TABLE in_flight")
        db.execute("ALTER TABLE image_tags DROP COLUMN category")
        db.execute("DROP TABLE rejections")
        db.execute("DROP TABLE tag_boxes")
        db.execute("DROP TABLE written_keywords")
        db.execute("DROP TABLE text_index")
        db.execute("DROP TABLE text_lines")
        db.execute("PRAGMA user_version = 1")
    db.close()
    with TagStore(path) as store:
        assert store.search("cat") == [str(tmp_path / "a.jpg")]
        assert store.in_flight() == {}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"x" * 5000)
    with pytest.raises(StoreError, match="cannot use it as a tag database"):
        TagStore(path)
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"  # and it was not overwritten


def test_queries_on_a_missing_database_say_so(tmp_path):
    with pytest.raises(StoreError, match="no such tag database"):
        TagStore(tmp_path / "nope.sqlite3", create=False)


def test_a_tags_confidence_is_the_surest_models_and_a_persons_word_is_certain(tmp_path):
    """"Up to 60%" listed a photo whose tag a person had confirmed, and one that another
    model was sure of; find_images now says how sure each match is."""
    with TagStore(tmp_path / "tags.sqlite3") as store:
        record(store, "/p/a.jpg", "D", {"dog": 0.4})
        record(store, "/p/b.jpg", "D", {"dog": 0.5})
        record(store, "/p/b.jpg", "C", {"dog": 0.9})
        record(store, "/p/c.jpg", "D", {"dog": 0.3})
        assert store.search("dog", max_score=0.6) == ["/p/a.jpg", "/p/c.jpg"]
        assert store.search("dog", min_score=0.8) == ["/p/b.jpg"]
        [a, _, _] = store.find_images("dog")
        store.correct_machine_tag([a.image.id], "auto/dog", confirm=True)
        assert store.search("dog", max_score=0.6) == ["/p/c.jpg"]
        assert store.search("dog", min_score=0.8) == ["/p/a.jpg", "/p/b.jpg"]
        scores = {m.image.path: m.score for m in store.find_images("dog")}
        assert scores == {"/p/a.jpg": None, "/p/b.jpg": pytest.approx(0.9),
                          "/p/c.jpg": pytest.approx(0.3)}
