"""Protects camera RAW files (issue: RAW): a real Canon CR2 tagged through its embedded
preview at the sensor's size; DNG files written here with every EXIF orientation give
boxes on the object in the upright picture; a DNG without a usable preview goes through
LibRaw's processing; damaged RAW files are per-file errors; videos and audio are listed
as skipped, not failures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from autotags import Tagger, TagStore, scan
from autotags.tagging.results import Box
from helpers.camera_raw import write_dng

CR2 = Path("/usr/share/doc/rawtran/IMG_5952.CR2")  # Canon EOS 30D, Debian rawtran-doc
CR2_SIZE = (3504, 2336)


def autotags(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def overlap(first: Box, second: Box) -> float:
    """Intersection over union."""
    width = min(first.x2, second.x2) - max(first.x1, second.x1)
    height = min(first.y2, second.y2) - max(first.y1, second.y1)
    inter = max(width, 0) * max(height, 0)
    return inter / (first.width * first.height + second.width * second.height - inter)


def scaled(box: Box, factor: float) -> Box:
    return Box(box.x1 * factor, box.y1 * factor, box.x2 * factor, box.y2 * factor)


@pytest.fixture(scope="module")
def classifier_at_1() -> Tagger:
    # The CR2 is a landscape with masts: the classifier's surest guesses are weak ones.
    return Tagger("efficientnet-lite3", precision="f32", accuracy=1)


def test_a_real_cr2_is_tagged_through_its_preview(tmp_path, classifier_at_1):
    preview = tmp_path / "preview.jpg"
    extracted = subprocess.run(["exiftool", "-b", "-PreviewImage", str(CR2)], check=True,
                               capture_output=True).stdout
    preview.write_bytes(extracted)
    with Image.open(preview) as opened:
        assert opened.size == (1728, 1152)  # the largest embedded preview
    raw, alone = classifier_at_1.tag([CR2, preview])
    assert raw.ok and raw.source == "preview", raw.error
    assert (raw.width, raw.height) == CR2_SIZE
    assert raw.labels and raw.labels == alone.labels
    for from_raw, from_preview in zip(raw.tags, alone.tags, strict=True):
        assert from_raw.score == pytest.approx(from_preview.score, abs=1e-4)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_dng_boxes_land_on_the_object_in_the_upright_picture(tmp_path, photos, detector,
                                                             orientation):
    with Image.open(photos["dog"]) as upright:
        dng = write_dng(tmp_path / f"dog-{orientation}.dng", upright, orientation)
        width, height = upright.size
    reference = detector.tag_file(photos["dog"])
    result = detector.tag_file(dng)
    assert result.ok and result.source == "preview", result.error
    assert (result.width, result.height) == (2 * width, 2 * height)  # the sensor, upright
    for label in ("dog", "bicycle"):
        expected = next(t.box for t in reference.tags if t.label == label)
        found = next(t.box for t in result.tags if t.label == label)
        assert expected and found and overlap(found, scaled(expected, 2)) > 0.9, label


@pytest.mark.parametrize("preview", ["too small", "none"])
def test_a_dng_without_a_usable_preview_is_processed_from_its_raw_data(tmp_path, photos,
                                                                       detector, preview):
    with Image.open(photos["dog"]) as upright:
        dng = write_dng(tmp_path / "no-preview.dng", upright, 6, preview_size=(120, 160),
                        preview=preview != "none")
        width, height = upright.size
    result = detector.tag_file(dng)
    assert result.ok and result.source == "raw", result.error
    assert (result.width, result.height) == (2 * width, 2 * height)
    reference = detector.tag_file(photos["dog"])
    expected = next(t.box for t in reference.tags if t.label == "dog")
    found = next(t.box for t in result.tags if t.label == "dog")
    assert expected and found and overlap(found, scaled(expected, 2)) > 0.8


def test_damaged_raw_files_are_per_file_errors_and_the_scan_goes_on(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cut.cr2").write_bytes(CR2.read_bytes()[:200_000])
    with Image.open(photos["dog"]) as upright:
        whole = write_dng(tmp_path / "whole.dng", upright).read_bytes()
    (folder / "cut.dng").write_bytes(whole[:30_000])
    (folder / "noise.nef").write_bytes(bytes(range(256)) * 40)
    shutil.copy(photos["dog"], folder / "dog.jpg")
    report = scan(folder, db=tmp_path / "tags.sqlite3", model="ssd-mobilenet-v2")
    failed = {Path(f.path).name: f.error for f in report.failures}
    assert set(failed) == {"cut.cr2", "cut.dng", "noise.nef"}
    assert all("camera RAW" in error for error in failed.values())
    assert report.models["ssd-mobilenet-v2"].tagged == 1


def test_raw_files_are_tagged_and_videos_and_sound_skipped(tmp_path, photos):
    folder = tmp_path / "photos"
    (folder / "raw").mkdir(parents=True)
    shutil.copy(photos["dog"], folder / "dog.jpg")
    shutil.copy(CR2, folder / "raw" / "IMG_5952.CR2")
    with Image.open(photos["horses"]) as upright:
        write_dng(folder / "raw" / "horses.dng", upright, 8)
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    (folder / "voice.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(64))
    db = tmp_path / "tags.sqlite3"
    result = autotags("scan", folder, "--db", db, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["found"] == 3 and not report["failures"]
    assert sorted(Path(p).name for p in report["not_photos"]) == ["clip.mp4", "voice.m4a"]
    with TagStore(db, read_only=True) as store:
        assert store.image_info(folder / "raw" / "IMG_5952.CR2")["width"] == CR2_SIZE[0]
        assert "auto/horse" in {t.path for t in store.tags_of(folder / "raw" / "horses.dng")}
    text = autotags("scan", folder, "--db", db, "--mode", "all")
    assert "skipped, not a photo (2 video and audio files):" in text.stdout
    assert "\nfailed:" not in text.stdout and text.returncode == 0


def test_raw_files_without_a_telling_name_are_recognised_by_content(tmp_path, photos,
                                                                    detector):
    folder = tmp_path / "card"
    folder.mkdir()
    shutil.copy(CR2, folder / "IMG_5952")
    with Image.open(photos["dog"]) as upright:
        write_dng(folder / "DSC_0001", upright)
    plain = folder / "scan0001"  # an ordinary TIFF without a name: still libvips's
    Image.open(photos["dog"]).save(plain, format="TIFF")
    results = {Path(r.path).name: r for r in detector.tag(sorted(folder.iterdir()))}
    assert (results["IMG_5952"].source, results["IMG_5952"].width) == ("preview", CR2_SIZE[0])
    assert results["DSC_0001"].source == "preview" and "dog" in results["DSC_0001"].labels
    assert results["scan0001"].source == "image" and "dog" in results["scan0001"].labels
    report = scan(folder, db=tmp_path / "tags.sqlite3", model=detector)
    assert report.found == 3 and not report.failures
