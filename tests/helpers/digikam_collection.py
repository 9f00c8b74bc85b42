"""digiKam databases made the way digiKam makes them: its own DDL, indices and triggers
from the dbconfig.xml of Debian's digikam-data package, then albums, images and tags put in
as digiKam would."""

from __future__ import annotations

import shutil
import sqlite3
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

DBCONFIG = Path("/usr/share/digikam/database/dbconfig.xml")
INTERNAL_TAGS = "_Digikam_Internal_Tags_"


def create_database(path: Path, version: int = 17) -> sqlite3.Connection:
    """An empty core database: the QSQLITE actions CreateDB, CreateIndices and
    CreateTriggers, each in one transaction as digiKam runs them, plus the columns the
    schema versions 16 and 17 added."""
    assert DBCONFIG.is_file(), "dbconfig.xml (Debian digikam-data) is a test dependency"
    root = ElementTree.parse(DBCONFIG).getroot()
    sqlite_config = next(d for d in root.iter("database") if d.get("name") == "QSQLITE")
    actions = {a.get("name"): a for a in sqlite_config.iter("dbaction")}
    db = sqlite3.connect(path, isolation_level=None)
    for name in ("CreateDB", "CreateIndices", "CreateTriggers"):
        db.execute("BEGIN")
        for statement in actions[name].findall("statement"):
            db.execute(statement.text or "")
        db.execute("COMMIT")
    if version >= 16:
        db.execute("ALTER TABLE AlbumRoots ADD COLUMN caseSensitivity INTEGER")
    if version >= 17:
        db.execute("ALTER TABLE ImageInformation ADD COLUMN timeZone TEXT")
    db.execute("INSERT INTO Settings(keyword, value) VALUES ('DBVersion', ?)", (str(version),))
    return db


def add_tag(db: sqlite3.Connection, path: str, *, internal: bool = False) -> int:
    """A tag path created level by level, as digiKam's TagsCache does."""
    parent = 0
    for name in path.split("/"):
        row = db.execute("SELECT id FROM Tags WHERE pid = ? AND name = ?",
                         (parent, name)).fetchone()
        if row is None:
            row = (db.execute("INSERT INTO Tags(pid, name) VALUES (?, ?)",
                              (parent, name)).lastrowid,)
            if internal:
                db.execute("INSERT INTO TagProperties(tagid, property, value) "
                           "VALUES (?, 'internalTag', NULL)", (row[0],))
        parent = row[0]
    return parent


@dataclass
class DigikamCollection:
    database: Path
    root: Path
    images: dict[str, int] = field(default_factory=dict)  # file name -> Images.id
    paths: dict[str, Path] = field(default_factory=dict)


def make_collection(tmp_path: Path, photos: dict[str, Path], *, version: int = 17,
                    names: tuple[str, ...] = ("dog", "horses", "person", "eagle"),
                    copies: int = 1) -> DigikamCollection:
    """A collection in tmp_path/Pictures with two albums; the first image carries a manual
    tag, an internal colour label and digiKam's own older auto tag `auto/cat`. A trashed
    image, a video and an album root on a volume that is not mounted are there too."""
    root = tmp_path / "Pictures"
    (root / "2021").mkdir(parents=True)
    database = root / "digikam4.db"
    db = create_database(database, version)
    made = DigikamCollection(database, root)
    db.execute("BEGIN")
    hardwired = db.execute(
        "INSERT INTO AlbumRoots(label, status, type, identifier, specificPath) "
        "VALUES ('Pictures', 0, 1, ?, '/')", (f"volumeid:?path={root}",)).lastrowid
    db.execute("INSERT INTO AlbumRoots(label, status, type, identifier, specificPath) "
               "VALUES ('USB disk', 0, 2, 'volumeid:?uuid=0000-not-mounted', '/photos')")
    top = db.execute("INSERT INTO Albums(albumRoot, relativePath, date) VALUES (?, '/', "
                     "'2021-06-01')", (hardwired,)).lastrowid
    year = db.execute("INSERT INTO Albums(albumRoot, relativePath, date) VALUES (?, '/2021', "
                      "'2021-06-01')", (hardwired,)).lastrowid
    index = 0
    for copy in range(copies):
        for name in names:
            album, folder = (top, root) if index % 2 == 0 else (year, root / "2021")
            file_name = f"{name}-{copy}.jpg" if copies > 1 else f"{name}.jpg"
            shutil.copy(photos[name], folder / file_name)
            made.paths[file_name] = folder / file_name
            made.images[file_name] = db.execute(
                "INSERT INTO Images(album, name, status, category, modificationDate, fileSize, "
                "uniqueHash) VALUES (?, ?, 1, 1, '2021-06-01T12:00:00', ?, ?)",
                (album, file_name, (folder / file_name).stat().st_size,
                 f"hash{index}")).lastrowid
            index += 1
    shutil.copy(photos["cat"], root / "trashed.png")
    db.execute("INSERT INTO Images(album, name, status, category) VALUES (?, 'trashed.png', "
               "3, 1)", (top,))
    (root / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    db.execute("INSERT INTO Images(album, name, status, category) VALUES (?, 'clip.mp4', 1, 2)",
               (top,))
    first = next(iter(made.images.values()))
    for path, internal in (("People/Alice", False), (f"{INTERNAL_TAGS}/Color Label Red", True),
                           ("auto/cat", False)):
        db.execute("INSERT INTO ImageTags(imageid, tagid) VALUES (?, ?)",
                   (first, add_tag(db, path, internal=internal)))
    add_tag(db, f"{INTERNAL_TAGS}/Scanned for Faces", internal=True)
    db.execute("COMMIT")
    db.close()
    return made


def tag_paths_of(database: Path, image: int) -> set[str]:
    with sqlite3.connect(database) as db:
        ids = [r[0] for r in db.execute("SELECT tagid FROM ImageTags WHERE imageid = ?",
                                        (image,))]
        return {tag_path(db, tag) for tag in ids}


def tag_path(db: sqlite3.Connection, tag: int) -> str:
    names = []
    while tag:
        pid, name = db.execute("SELECT pid, name FROM Tags WHERE id = ?", (tag,)).fetchone()
        names.append(name)
        tag = pid
    return "/".join(reversed(names))


def rows_outside_auto(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row about tags that are not below `auto`, to compare before and after."""
    with sqlite3.connect(database) as db:
        auto = db.execute("SELECT id FROM Tags WHERE pid = 0 AND name = 'auto'").fetchone()
        below = {r[0] for r in db.execute("SELECT id FROM TagsTree WHERE pid = ?",
                                          (auto[0] if auto else -1,))}
        below |= {auto[0]} if auto else set()

        def outside(query: str) -> list[tuple[object, ...]]:
            return [r for r in db.execute(query) if r[0] not in below]

        return {
            "Tags": outside("SELECT id, pid, name, icon, iconkde FROM Tags ORDER BY id"),
            "TagsTree": outside("SELECT id, pid FROM TagsTree ORDER BY id, pid"),
            "TagProperties": outside("SELECT tagid, property, value FROM TagProperties "
                                     "ORDER BY rowid"),
            "ImageTags": sorted(r[::-1] for r in db.execute(
                "SELECT imageid, tagid FROM ImageTags") if r[1] not in below),
        }
