"""Protects other people's bytes in metadata (issue: hardening): keyword replacement that
crashed on JPEGs with several IPTC keywords, XMP that exiv2 cannot decode (never
rewritten: a per-file error, the file byte-identical), temporary copies that a killed
run leaves (removed by the next run, never one still being written) and names near the
file system's limit, and sidecars that are FIFOs or links to devices (never opened to
read without end). Every input is made here, in code."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from autotags import TagStore
from autotags.outputs import file_replacement
from helpers.xmp_files import (
    DARKTABLE_SIDECAR,
    exiftool,
    keyword_lists,
    read_tags,
    without_keywords,
)


def autotags(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def tagged(tmp_path, photos):
    """A folder with a copy of dog.jpg that the store tags auto/dog (by hand: no model
    is needed to write keywords), and the store."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = folder / "dog.jpg"
    shutil.copy(photos["dog"], photo)
    db = tmp_path / "tags.sqlite3"
    with TagStore(db) as store:
        store.add_manual_tag(photo, "auto/dog")
    return photo, db


def other_fields(path: Path) -> dict[str, object]:
    """exiftool's view of everything but the keywords and the name of the program that
    serialised the XMP (x:xmptk), which names its writer by design."""
    return {k: v for k, v in without_keywords(read_tags(path)).items()
            if k != "XMP-x:XMPToolkit"}


def with_iptc_keywords(photo: Path, *keywords: str) -> None:
    subprocess.run([exiftool(), "-q", "-overwrite_original", "-codedcharacterset=utf8",
                    *(f"-IPTC:Keywords={k}" for k in keywords), str(photo)], check=True)


def test_embedding_into_a_jpeg_with_several_iptc_keywords(tagged, photos, tmp_path):
    """The replacement erased IPTC datums while iterating them and crashed (SIGSEGV) on
    any JPEG with two or more keywords; Debian's kite.jpg is one."""
    photo, db = tagged
    with_iptc_keywords(photo, "beach", "holiday", "Alice")
    kite = photo.with_name("kite.jpg")
    shutil.copy(photos["kite"], kite)
    with TagStore(db) as store:
        store.add_manual_tag(kite, "auto/kite")
    before = {p: other_fields(p) for p in (photo, kite)}
    kite_keywords = keyword_lists(kite)["IPTC:Keywords"]
    assert len(kite_keywords) >= 2

    result = autotags("xmp", "write", photo.parent, "--xmp", "embed", "--db", db)
    assert result.returncode == 0, result.stderr
    assert "2 image files written" in result.stdout
    assert keyword_lists(photo)["IPTC:Keywords"] == ["beach", "holiday", "Alice", "dog"]
    assert keyword_lists(kite)["IPTC:Keywords"] == [*kite_keywords, "kite"]
    for path, fields in before.items():
        assert other_fields(path) == fields
    again = autotags("xmp", "write", photo.parent, "--xmp", "embed", "--db", db)
    assert again.returncode == 0 and "2 already up to date" in again.stdout


LATIN_1_PACKET = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    b'xmp:Rating="4"><dc:subject><rdf:Bag><rdf:li>Caf\xe9</rdf:li><rdf:li>Alice</rdf:li>'
    b'</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
ENTITY_PACKET = DARKTABLE_SIDECAR.format(user_flat="&holiday;").replace(
    "<x:xmpmeta", '<!DOCTYPE x [<!ENTITY holiday "Holiday">]>\n<x:xmpmeta', 1).encode()
UNDECODABLE = {"latin-1 byte": LATIN_1_PACKET, "entity declaration": ENTITY_PACKET}


@pytest.mark.parametrize("packet", UNDECODABLE.values(), ids=UNDECODABLE.keys())
def test_a_sidecar_exiv2_cannot_decode_is_left_byte_identical(tagged, packet):
    """exiv2 handed such a packet over as empty: autotags wrote a fresh sidecar over it
    and the user's keywords, rating and history were gone."""
    photo, db = tagged
    sidecar = photo.with_name("dog.jpg.xmp")
    sidecar.write_bytes(packet)
    for command in (("xmp", "write", photo.parent), ("scan", photo.parent, "--xmp", "sidecar")):
        result = autotags(*command, "--db", db)
        assert result.returncode == 1, result.stderr
        assert "cannot be fully decoded" in result.stdout and "left as it was" in result.stdout
        assert "Traceback" not in result.stderr
        assert sidecar.read_bytes() == packet


def jpeg_with_xmp(photo: Path, packet: bytes) -> None:
    """An APP1 XMP segment right after the JPEG's start marker."""
    payload = b"http://ns.adobe.com/xap/1.0/\0" + packet
    data = photo.read_bytes()
    photo.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
                      + data[2:])


def test_embedded_xmp_exiv2_cannot_decode_is_left_byte_identical(tagged):
    photo, db = tagged
    jpeg_with_xmp(photo, LATIN_1_PACKET)
    before = digest(photo)
    result = autotags("xmp", "write", photo, "--xmp", "embed", "--db", db)
    assert result.returncode == 1 and "cannot be fully decoded" in result.stdout
    assert digest(photo) == before


def test_extended_xmp_is_not_rewritten(tagged):
    """exiv2 reads only the standard XMP segment of a JPEG: a file that continues its
    XMP in extension segments would be left with orphaned halves."""
    photo, db = tagged
    data = photo.read_bytes()
    payload = b"http://ns.adobe.com/xmp/extension/\0" + b"0" * 32 + b"\0\0\0\x10\0\0\0\0<x/>"
    photo.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
                      + data[2:])
    before = digest(photo)
    result = autotags("xmp", "write", photo, "--xmp", "embed", "--db", db)
    assert result.returncode == 1 and "Extended XMP" in result.stdout
    assert digest(photo) == before


def temporary_copies(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".autotags-"))


KILLED_WRITER = """
import os, sys, time
from autotags.cli import main
real_replace = os.replace
def stall(source, target):  # the copy is complete and flushed: the moment to be killed
    print("written", flush=True)
    time.sleep(600)
os.replace = stall
sys.exit(main(sys.argv[1:]))
"""


def test_a_copy_left_by_a_killed_embed_is_removed_by_the_next_run(tagged):
    photo, db = tagged
    before = digest(photo)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, "xmp", "write", photo, "--xmp", "embed",
         "--db", db], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline() == "written\n"
    assert len(temporary_copies(photo.parent)) == 1
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=60)
    assert digest(photo) == before and len(temporary_copies(photo.parent)) == 1

    result = autotags("xmp", "write", photo, "--xmp", "embed", "--db", db)
    assert result.returncode == 0, result.stderr
    assert temporary_copies(photo.parent) == []
    assert keyword_lists(photo)["XMP-dc:Subject"] == ["dog"]


def test_a_copy_still_being_written_is_left_alone(tagged):
    """Two runs in one folder: the second removes nothing the first is writing."""
    photo, _ = tagged
    folder = photo.parent
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from autotags.outputs.file_replacement import replace_atomically\n"
         "from pathlib import Path\n"
         "import os\n"
         "os.replace = lambda *a: (print('written', flush=True), time.sleep(600))\n"
         "replace_atomically(Path(sys.argv[1]), b'new')\n", folder / "other.jpg.xmp"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "written\n"
        copies = temporary_copies(folder)
        assert len(copies) == 1
        file_replacement.remove_abandoned_copies.cache_clear()
        file_replacement.remove_abandoned_copies(folder)
        assert temporary_copies(folder) == copies
    finally:
        writer.kill()
        writer.wait(timeout=60)


@pytest.mark.parametrize("target", ["sidecar", "embed"])
def test_a_name_near_the_file_systems_limit_can_be_written(tmp_path, photos, target):
    """The temporary copy's name was the target's plus 20 bytes: a photo named with 229
    or more bytes could not get a sidecar, 232 or more could not be embedded into."""
    folder = tmp_path / "photos"
    folder.mkdir()
    longest = 255 - len(".xmp") if target == "sidecar" else 255
    photo = folder / ("d" * (longest - len(".jpg")) + ".jpg")
    shutil.copy(photos["dog"], photo)
    db = tmp_path / "tags.sqlite3"
    with TagStore(db) as store:
        store.add_manual_tag(photo, "auto/dog")
    result = autotags("xmp", "write", folder, "--xmp", target, "--db", db)
    assert result.returncode == 0, result.stdout + result.stderr
    written = photo.with_name(photo.name + ".xmp") if target == "sidecar" else photo
    assert keyword_lists(written)["XMP-dc:Subject"] == ["dog"]
    assert temporary_copies(folder) == []


def test_a_sidecar_that_is_a_fifo_or_a_device_is_never_read(tagged):
    """A FIFO named photo.jpg.xmp hung `xmp write`, `xmp read` and `scan --xmp` for good;
    a link to /dev/zero was read into memory without end."""
    photo, db = tagged
    sidecar = photo.with_name("dog.jpg.xmp")
    os.mkfifo(sidecar)
    commands = [("xmp", "write", photo.parent), ("xmp", "read", photo.parent),
                ("scan", photo.parent, "--xmp", "sidecar")]
    for command in commands:
        result = autotags(*command, "--db", db, timeout=120)
        assert result.returncode == 1, (command, result.stderr)
        assert "not a regular file but a FIFO" in result.stdout, command
    assert sidecar.is_fifo()
    sidecar.unlink()
    sidecar.symlink_to("/dev/zero")
    for command in commands:
        result = autotags(*command, "--db", db, timeout=120)
        assert result.returncode == 1, (command, result.stderr)
        assert "not a regular file but a character device" in result.stdout, command
    assert os.readlink(sidecar) == "/dev/zero"


def test_a_link_to_a_missing_sidecar_is_not_followed_into_a_new_file(tagged, tmp_path):
    photo, db = tagged
    sidecar = photo.with_name("dog.jpg.xmp")
    elsewhere = tmp_path / "elsewhere" / "dog.xmp"
    sidecar.symlink_to(elsewhere)
    result = autotags("xmp", "write", photo.parent, "--db", db)
    assert result.returncode == 1 and "a link to a file that does not exist" in result.stdout
    assert not elsewhere.parent.exists() and sidecar.is_symlink()


def test_a_fifo_named_on_the_command_line_is_reported_not_opened(tagged, tmp_path):
    """The engine refused it, then fingerprinting opened it and the scan hung."""
    photo, db = tagged
    fifo = tmp_path / "stream.jpg"
    os.mkfifo(fifo)
    result = autotags("scan", fifo, photo, "--db", db, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"{fifo}: not a regular file but a FIFO" in result.stdout
    assert "1 images found" in result.stdout
    result = autotags("tag", fifo, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"{fifo}: error: not a regular file but a FIFO; not read" in result.stdout


def test_a_fifo_or_device_named_like_a_photo_in_a_folder_is_reported_not_opened(tagged):
    """A walk passed over them without a word, so a photo the user expected stayed
    untagged and the scan said that every file was handled."""
    photo, db = tagged
    os.mkfifo(photo.with_name("stream.jpg"))
    photo.with_name("zero.png").symlink_to("/dev/zero")
    os.mkfifo(photo.with_name("pipe.sock"))  # not named like a photo: none of our business
    result = autotags("scan", photo.parent, "--db", db, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"{photo.parent}/stream.jpg: not a regular file but a FIFO" in result.stdout
    assert f"{photo.parent}/zero.png: not a regular file but a character device" in result.stdout
    assert "pipe.sock" not in result.stdout
    assert "1 images found" in result.stdout and "2 paths could not be read" in result.stdout
