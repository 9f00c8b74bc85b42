"""Protects tags in files (issue: XMP): the keyword fields every photo manager reads, read
back with exiftool; other tools' data kept through scans; embedding that never touches
pixels or tears a file; keywords people already have imported into the store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autotags import Tagger, TagStore, XmpWriter, scan
from autotags.outputs import metadata_files
from helpers.xmp_files import (
    DARKTABLE_SIDECAR,
    containers,
    expected_lists,
    keyword_lists,
    read_tags,
    without_keywords,
)

CR2 = Path("/usr/share/doc/rawtran/IMG_5952.CR2")


def autotags(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def folder(tmp_path):
    made = tmp_path / "photos"
    made.mkdir()
    return made


def stored_paths(db: Path, image: Path, style: str = "flat") -> list[str]:
    with TagStore(db, read_only=True) as store:
        return list(store.keywords_to_write(image, style).paths)  # type: ignore[arg-type]


def detector_at(accuracy: int) -> Tagger:
    return Tagger("ssd-mobilenet-v2", precision="f32", accuracy=accuracy)


def test_every_format_gets_the_fields_each_photo_manager_reads(folder, tmp_path, photos,
                                                               vips_cli, detector):
    """JPEG, PNG, TIFF, WebP embedded and in sidecars, HEIC and a camera RAW in sidecars:
    exiftool reads exactly the stored tags, TagsList as a Seq and the rest as Bags, and
    IPTC Keywords where the format has IPTC."""
    sidecars = folder / "sidecar"
    embedded = folder / "embedded"
    sidecars.mkdir()
    embedded.mkdir()
    for target in (sidecars, embedded):
        shutil.copy(photos["dog"], target / "dog.jpg")
        for extension in ("png", "tif", "webp"):
            subprocess.run([vips_cli, "copy", photos["dog"], target / f"dog.{extension}"],
                           check=True)
    subprocess.run([vips_cli, "copy", photos["dog"], sidecars / "dog.heic"], check=True)
    raw = sidecars / "IMG_5952.CR2"
    shutil.copy(CR2, raw)
    db = tmp_path / "tags.sqlite3"
    scan(folder, db=db, model=detector)
    with TagStore(db) as store:  # RAW files are tagged by hand here, not by a model
        store.add_manual_tag(raw, "auto/dog")
        store.add_manual_tag(raw, "People/Alice")
    raw_bytes = raw.read_bytes()

    with TagStore(db) as store:
        sidecar_writer, embed_writer = XmpWriter("sidecar"), XmpWriter("embed")
        sidecar_writer.write_all(store, sorted(map(str, sidecars.iterdir())))
        embed_writer.write_all(store, sorted(map(str, embedded.iterdir())))
    assert not sidecar_writer.report.failures and not embed_writer.report.failures

    for image in [*sidecars.iterdir(), *embedded.iterdir()]:
        if image.suffix == ".xmp":
            continue
        wanted = stored_paths(db, image)
        assert wanted, image
        file = image.with_name(image.name + ".xmp") if image.parent == sidecars else image
        has_iptc = image.parent == embedded and image.suffix in (".jpg", ".tif")
        assert keyword_lists(file) == expected_lists(wanted, iptc=has_iptc), image
        assert containers(file) == {
            "XMP-digiKam:TagsList": "Seq", "XMP-microsoft:LastKeywordXMP": "Bag",
            "XMP-lr:HierarchicalSubject": "Bag", "XMP-dc:Subject": "Bag"}, image
    assert stored_paths(db, raw) == ["auto/dog", "People/Alice"]
    assert raw.read_bytes() == raw_bytes
    assert sorted(p.name for p in sidecars.iterdir() if p.suffix != ".xmp") == sorted(
        p.name[:-4] for p in sidecars.iterdir() if p.suffix == ".xmp")


def test_a_camera_raw_cannot_be_embedded_into(folder, tmp_path):
    raw = folder / "IMG_5952.CR2"
    shutil.copy(CR2, raw)
    db = tmp_path / "tags.sqlite3"
    with TagStore(db) as store:
        store.add_manual_tag(raw, "auto/dog")
        writer = XmpWriter("embed")
        writer.write_all(store, [str(raw)])
    [failure] = writer.report.failures
    assert "CR2" in failure.error and "--xmp sidecar" in failure.error
    assert raw.read_bytes() == CR2.read_bytes()


def test_other_tools_data_survives_replace_and_update_rescans(folder, tmp_path, photos):
    """darktable's history, rating and colour labels and the user's own keywords in all
    three keyword fields stay; only the keywords below auto change."""
    low, high = detector_at(5), detector_at(9)
    image = folder / "dog.jpg"
    shutil.copy(photos["dog"], image)
    dropped = sorted({t.label for t in low.tag_file(image).tags}
                     - {t.label for t in high.tag_file(image).tags})
    assert len(dropped) >= 2, "the photo must lose tags between the two accuracies"
    users_word = dropped[0]  # the user typed a word that a model also finds
    sidecar = folder / "dog.jpg.xmp"
    sidecar.write_text(DARKTABLE_SIDECAR.replace("{user_flat}", users_word), encoding="utf-8")
    before = read_tags(sidecar)
    user_paths = ["Places/Holiday", "People/Alice"]
    db = tmp_path / "tags.sqlite3"

    def keywords_after(tagger: Tagger, policy: str) -> dict[str, list[str]]:
        scan(folder, db=db, model=tagger, mode="all", policy=policy,  # type: ignore[arg-type]
             outputs=[XmpWriter("sidecar", policy=policy)])  # type: ignore[arg-type]
        assert without_keywords(read_tags(sidecar)) == without_keywords(before)
        return keyword_lists(sidecar)

    def expected(auto: list[str], flat_extra: list[str]) -> dict[str, list[str]]:
        lists = expected_lists(user_paths + auto)
        lists["XMP-microsoft:LastKeywordXMP"] = auto  # the user had none there
        lists["XMP-dc:Subject"] = ["Holiday", "Alice", users_word] + [
            p.rsplit("/", 1)[-1] for p in auto if p.rsplit("/", 1)[-1] != users_word]
        lists["XMP-dc:Subject"] += [w for w in flat_extra if w not in lists["XMP-dc:Subject"]]
        return lists

    first = keywords_after(low, "replace")
    low_auto = stored_paths(db, image)
    assert {f"auto/{label}" for label in dropped} <= set(low_auto)
    assert first == expected(low_auto, [])

    replaced = keywords_after(high, "replace")
    high_auto = stored_paths(db, image)
    assert not {f"auto/{label}" for label in dropped} & set(high_auto)
    assert replaced == expected(high_auto, [])
    assert users_word in replaced["XMP-dc:Subject"]  # the user's own word stays
    assert dropped[1] not in replaced["XMP-dc:Subject"]  # autotags' own word goes

    updated = keywords_after(low, "update")
    assert set(updated["XMP-digiKam:TagsList"]) == set(user_paths + low_auto)
    assert updated["XMP-digiKam:TagsList"][:2] == user_paths


def test_rejected_tags_leave_the_file_and_manual_ones_arrive(folder, tmp_path, photos,
                                                             detector):
    image = folder / "dog.jpg"
    shutil.copy(photos["dog"], image)
    db = tmp_path / "tags.sqlite3"
    scan(folder, db=db, model=detector, outputs=[XmpWriter()])
    sidecar = folder / "dog.jpg.xmp"
    assert "auto/car" in keyword_lists(sidecar)["XMP-digiKam:TagsList"]
    with TagStore(db) as store:
        store.remove_manual_tag(image, "auto/car")
        store.add_manual_tag(image, "People/Bob")
    for policy in ("update", "replace"):  # the next scan writes what changed
        writer = XmpWriter(policy=policy)  # type: ignore[arg-type]
        scan(folder, db=db, model=detector, policy=policy,  # type: ignore[arg-type]
             outputs=[writer])
        lists = keyword_lists(sidecar)
        assert "auto/car" not in lists["XMP-digiKam:TagsList"]
        assert "car" not in lists["XMP-dc:Subject"]
        assert "People/Bob" in lists["XMP-digiKam:TagsList"]
        assert "Bob" in lists["XMP-dc:Subject"]
    assert writer.report.written == 0 and writer.report.unchanged == 0  # nothing changed


def test_hierarchical_paths_and_an_existing_sidecar_under_the_other_name(folder, tmp_path,
                                                                         photos, detector):
    image = folder / "dog.jpg"
    shutil.copy(photos["dog"], image)
    lightroom = folder / "dog.xmp"
    lightroom.write_text(DARKTABLE_SIDECAR.replace("{user_flat}", "pets"), encoding="utf-8")
    db = tmp_path / "tags.sqlite3"
    scan(folder, db=db, model=detector, outputs=[XmpWriter(tag_paths="hierarchical")])
    assert not (folder / "dog.jpg.xmp").exists()  # updated, not duplicated
    paths = keyword_lists(lightroom)["XMP-digiKam:TagsList"]
    assert "auto/animal/dog" in paths and "auto/vehicle/bicycle" in paths
    assert "auto/dog" not in paths
    other = folder / "horses.jpg"
    shutil.copy(photos["horses"], other)
    scan(folder, db=db, model=detector, outputs=[XmpWriter(sidecar_name="base")])
    assert (folder / "horses.xmp").exists() and not (folder / "horses.jpg.xmp").exists()


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_embedding_keeps_pixels_and_the_next_scan_does_no_inference(folder, tmp_path,
                                                                     photos, vips_cli):
    jpeg, png = folder / "dog.jpg", folder / "dog.png"
    shutil.copy(photos["dog"], jpeg)
    subprocess.run([vips_cli, "copy", photos["dog"], png], check=True)
    os.chmod(jpeg, 0o640)
    before = {p: pixels(p) for p in (jpeg, png)}
    db = tmp_path / "tags.sqlite3"
    writer = XmpWriter("embed")
    scan(folder, db=db, model="ssd-mobilenet-v2", outputs=[writer])
    assert writer.report.written == 2 and not writer.report.failures
    for path, decoded in before.items():
        assert np.array_equal(pixels(path), decoded), path
        assert keyword_lists(path)["XMP-digiKam:TagsList"] == stored_paths(db, path)
    assert os.stat(jpeg).st_mode & 0o777 == 0o640
    assert [p.name for p in folder.iterdir()] and not list(folder.glob(".*"))
    again = scan(folder, db=db, model="ssd-mobilenet-v2", outputs=[XmpWriter("embed")])
    assert again.inferred == 0 and again.skipped == 2


def test_a_write_that_fails_half_way_leaves_the_original(folder, tmp_path, photos,
                                                         monkeypatch):
    jpeg = folder / "dog.jpg"
    shutil.copy(photos["dog"], jpeg)
    original = jpeg.read_bytes()
    db = tmp_path / "tags.sqlite3"
    with TagStore(db) as store:
        store.add_manual_tag(jpeg, "auto/dog")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metadata_files.os, "fsync", disk_full)
    with TagStore(db) as store:
        writer = XmpWriter("embed")
        writer.write_all(store, [str(jpeg)])
    [failure] = writer.report.failures
    assert "No space left on device" in failure.error
    assert jpeg.read_bytes() == original
    assert sorted(p.name for p in folder.iterdir()) == ["dog.jpg"]


def test_a_process_killed_while_writing_leaves_a_whole_sidecar(folder, tmp_path):
    """A child process rewrites a sidecar as fast as it can, switching between two tag
    sets, and is killed: the sidecar is one of the two, complete."""
    image = folder / "photo.jpg"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(image)
    db = tmp_path / "tags.sqlite3"
    with TagStore(db) as store:
        store.add_manual_tag(image, "auto/dog")
    writer_code = f"""
from autotags import TagStore, XmpWriter
store = TagStore({str(db)!r})
flip = False
while True:
    if flip:
        store.remove_manual_tag({str(image)!r}, "People/Carol")
    else:
        store.add_manual_tag({str(image)!r}, "People/Carol")
    XmpWriter().write_all(store, [{str(image)!r}])
    flip = not flip
"""
    sidecar = folder / "photo.jpg.xmp"
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", writer_code])
        deadline = time.monotonic() + 60
        while not sidecar.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        child.wait()
        paths = keyword_lists(sidecar)["XMP-digiKam:TagsList"]
        assert paths in (["auto/dog"], ["auto/dog", "People/Carol"])


def test_bad_sidecars_and_read_only_files_are_per_file_errors(folder, tmp_path, photos,
                                                              detector):
    for name in ("corrupt", "readonly", "fine"):
        shutil.copy(photos["dog"], folder / f"{name}.jpg")
    corrupt = folder / "corrupt.jpg.xmp"
    corrupt.write_bytes(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF unclosed")
    readonly = folder / "readonly.jpg.xmp"
    readonly.write_text(DARKTABLE_SIDECAR.replace("{user_flat}", "x"), encoding="utf-8")
    readonly.chmod(0o444)
    saved = {p: p.read_bytes() for p in (corrupt, readonly)}
    db = tmp_path / "tags.sqlite3"
    writer = XmpWriter()
    report = scan(folder, db=db, model=detector, outputs=[writer])
    assert report.found == 3
    failed = {Path(f.path).name: f.error for f in writer.report.failures}
    assert set(failed) == {"corrupt.jpg", "readonly.jpg"}
    assert "cannot be read" in failed["corrupt.jpg"]
    assert "read-only" in failed["readonly.jpg"]
    assert {p: p.read_bytes() for p in saved} == saved
    assert "auto/dog" in keyword_lists(folder / "fine.jpg.xmp")["XMP-digiKam:TagsList"]


def test_a_read_only_folder_is_a_per_file_error(folder, tmp_path, photos):
    """A real EACCES: when the tests run as root, the writer runs without the capability
    that lets root write into any folder."""
    image = folder / "dog.jpg"
    shutil.copy(photos["dog"], image)
    db = tmp_path / "tags.sqlite3"
    with TagStore(db) as store:
        store.add_manual_tag(image, "auto/dog")
    code = (f"from autotags import TagStore, XmpWriter\n"
            f"writer = XmpWriter()\n"
            f"writer.write_all(TagStore({str(db)!r}), [{str(image)!r}])\n"
            f"print(writer.report.failures[0].error)")
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        without = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={without}", f"--bounding-set={without}", *command]
    folder.chmod(0o555)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "Permission denied" in result.stdout and str(image) in result.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["dog.jpg"]


def test_existing_keywords_are_imported_and_searchable(folder, tmp_path, photos):
    sidecar_image, embedded_image, plain = (folder / n for n in ("a.jpg", "b.jpg", "c.jpg"))
    for image in (sidecar_image, embedded_image, plain):
        shutil.copy(photos["dog"], image)
    (folder / "a.jpg.xmp").write_text(DARKTABLE_SIDECAR.replace("{user_flat}", "x"),
                                      encoding="utf-8")
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-IPTC:Keywords=Lighthouse",
                    "-IPTC:Keywords=Seaside", "-XMP-digiKam:TagsList=auto/boat",
                    str(embedded_image)], check=True)
    db = tmp_path / "tags.sqlite3"
    result = autotags("xmp", "read", folder, "--db", db)
    assert result.returncode == 0, result.stderr
    assert "3 tags imported from 2 files" in result.stdout
    for term, expected in (("Alice", "a.jpg"), ("Holiday", "a.jpg"), ("boat", "b.jpg")):
        found = autotags("search", term, "--db", db)
        assert [Path(p).name for p in found.stdout.split()] == [expected], term
    with TagStore(db, read_only=True) as store:
        sources = {(t.path, t.source) for t in store.tags_of(embedded_image)}
    assert sources == {("auto/boat", "xmp")}


def test_the_command_line_writes_sidecars_during_a_scan_and_on_its_own(folder, tmp_path,
                                                                      photos):
    shutil.copy(photos["dog"], folder / "dog.jpg")
    db = tmp_path / "tags.sqlite3"
    result = autotags("scan", folder, "--db", db, "--xmp", "sidecar")
    assert result.returncode == 0, result.stderr
    assert "xmp: 1 sidecars written, 0 already up to date, 0 failed" in result.stdout
    (folder / "dog.jpg.xmp").unlink()
    result = autotags("xmp", "write", folder, "--db", db, "--tag-paths", "hierarchical")
    assert result.returncode == 0, result.stderr
    assert "auto/animal/dog" in keyword_lists(folder / "dog.jpg.xmp")["XMP-digiKam:TagsList"]
    result = autotags("xmp", "write", folder, "--db", db, "--xmp", "bogus")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_other_peoples_values_are_kept_exactly_as_written(folder, tmp_path, photos, detector):
    """A Lightroom keyword whose name holds a '/' is one level, not two: it stays as it is."""
    image = folder / "dog.jpg"
    shutil.copy(photos["dog"], image)
    sidecar = folder / "dog.jpg.xmp"
    sidecar.write_text(DARKTABLE_SIDECAR.replace("Places|Holiday", "Events|AC/DC concert")
                       .replace("{user_flat}", "AC/DC concert"),
                       encoding="utf-8")
    scan(folder, db=tmp_path / "tags.sqlite3", model=detector, outputs=[XmpWriter()])
    lists = keyword_lists(sidecar)
    assert lists["XMP-lr:HierarchicalSubject"][:2] == ["Events|AC/DC concert", "People|Alice"]
    assert "auto|dog" in lists["XMP-lr:HierarchicalSubject"]
    assert "AC/DC concert" in lists["XMP-dc:Subject"]


def test_a_sidecar_that_is_a_link_stays_a_link(folder, tmp_path, photos, detector):
    image = folder / "dog.jpg"
    shutil.copy(photos["dog"], image)
    elsewhere = tmp_path / "sidecars"
    elsewhere.mkdir()
    target = elsewhere / "dog.jpg.xmp"
    target.write_text(DARKTABLE_SIDECAR.replace("{user_flat}", "pets"), encoding="utf-8")
    (folder / "dog.jpg.xmp").symlink_to(target)
    scan(folder, db=tmp_path / "tags.sqlite3", model=detector, outputs=[XmpWriter()])
    assert (folder / "dog.jpg.xmp").is_symlink()
    assert "auto/dog" in keyword_lists(target)["XMP-digiKam:TagsList"]


def test_old_latin_1_iptc_keywords_are_read_and_kept(folder, tmp_path, photos):
    """IPTC text without a UTF-8 marker is ISO 8859-1, as older cameras and programs
    wrote it."""
    image = folder / "old.jpg"
    shutil.copy(photos["dog"], image)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-charset", "iptc=Latin",
                    "-IPTC:Keywords=café", "-IPTC:CodedCharacterSet=", str(image)], check=True)
    db = tmp_path / "tags.sqlite3"
    result = autotags("xmp", "read", image, "--db", db)
    assert result.returncode == 0, result.stderr
    assert autotags("search", "café", "--db", db).stdout.split() == [str(image)]
    with TagStore(db) as store:
        store.add_manual_tag(image, "auto/dog")
        writer = XmpWriter("embed")
        writer.write_all(store, [str(image)])
    assert not writer.report.failures
    assert keyword_lists(image)["IPTC:Keywords"] == ["café", "dog"]


def test_a_photo_where_the_model_finds_nothing_loses_old_auto_keywords(folder, tmp_path,
                                                                      detector):
    """Replace as in digiKam: another tagger's auto keywords go even when the model now
    finds nothing; the user's stay."""
    image = folder / "grey.jpg"
    Image.new("RGB", (640, 480), (128, 128, 128)).save(image)
    sidecar = folder / "grey.jpg.xmp"
    sidecar.write_text(DARKTABLE_SIDECAR.replace("{user_flat}", "cat").replace(
        "<rdf:li>People/Alice</rdf:li>", "<rdf:li>People/Alice</rdf:li><rdf:li>auto/cat</rdf:li>"),
        encoding="utf-8")
    db = tmp_path / "tags.sqlite3"
    report = scan(folder, db=db, model=detector, outputs=[XmpWriter()])
    assert report.models[detector.model_name].tagged == 1
    lists = keyword_lists(sidecar)
    assert lists["XMP-digiKam:TagsList"] == ["Places/Holiday", "People/Alice"]
    assert lists["XMP-dc:Subject"] == ["Holiday", "Alice"]  # 'cat' stood for auto/cat
    untouched = folder / "empty.jpg"
    Image.new("RGB", (640, 480), (90, 90, 90)).save(untouched)
    scan(folder, db=db, model=detector, outputs=[XmpWriter()])
    assert not (folder / "empty.jpg.xmp").exists()  # no empty sidecars
