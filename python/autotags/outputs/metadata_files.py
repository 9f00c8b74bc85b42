"""Reading and writing keyword fields in files with exiv2 (python-exiv2), the metadata
engine digiKam, darktable and Shotwell use.

A file is changed only by writing a complete new copy beside it, flushing it to disk
and renaming it over the old one: a process killed at any moment leaves the old file or
the new one. Everything in a file that is not a keyword field goes through exiv2
unchanged in meaning (other namespaces, darktable's history, ratings, labels).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..collection.files import glob_escape, read_regular
from ..errors import AutotagsError
from . import raw_metadata, xmp_packets
from .exiv2_library import (
    BUILT_IN_NAMESPACES,
    COMPLAINTS,
    exiv2_module,
    forget_namespaces,
)
from .file_replacement import replace_atomically
from .keyword_fields import (
    DUBLIN_CORE_SUBJECT,
    HIERARCHICAL_FIELDS,
    IPTC_KEYWORDS,
    FileKeywords,
)

log = logging.getLogger(__name__)

_OUR_IPTC_DATASETS = {(2, 25), (1, 90)}  # Keywords, and the character set they may need

# EXIF fields that say where other data lies in the file (offsets, and the blocks that
# hold the IPTC and XMP compared field by field): a rewrite moves them by nature.
_WHERE_DATA_LIVES = frozenset({
    "Exif.Image.ExifTag", "Exif.Image.GPSTag", "Exif.Photo.InteroperabilityTag",
    "Exif.Image.IPTCNAA", "Exif.Image.XMLPacket", "Exif.Image.ImageResources",
    "Exif.Image.StripOffsets", "Exif.Image.TileOffsets", "Exif.Image.SubIFDs",
    "Exif.Image.JPEGInterchangeFormat", "Exif.Thumbnail.JPEGInterchangeFormat",
    "Exif.Thumbnail.StripOffsets"})
_KEYWORD_KEYS = frozenset({*(h.key for h in HIERARCHICAL_FIELDS), DUBLIN_CORE_SUBJECT.key,
                           IPTC_KEYWORDS.key})
_NOT_COMPARED = _KEYWORD_KEYS | _WHERE_DATA_LIVES  # when a rewritten copy is read back

Target = Literal["sidecar", "embed"]
SidecarName = Literal["full", "base"]
TARGETS: tuple[Target, ...] = ("sidecar", "embed")
SIDECAR_NAMES: tuple[SidecarName, ...] = ("full", "base")
IPTC_KEYWORD_BYTES = 64  # IPTC IIM's limit for one keyword
# Files are rewritten in memory: a sidecar is small (darktable's longest histories are a
# few MB), a photo with embedded keywords at most this large.
MAX_SIDECAR_BYTES = 64 * 1024 * 1024
MAX_EMBED_BYTES = 2 * 1024 * 1024 * 1024
_EXTENDED_XMP = b"http://ns.adobe.com/xmp/extension/\0"  # JPEG segments exiv2 does not read
_IPTC_UTF8 = "\x1b%G"     # IPTC's way of saying its text is UTF-8


class MetadataError(AutotagsError, RuntimeError):
    """One file's metadata cannot be read or written; the message names the file."""


def sidecar_for(image: str, naming: SidecarName = "full") -> Path:
    """The sidecar of `image`: an existing one under either convention (``photo.jpg.xmp``
    as digiKam, darktable and Immich name it; ``photo.xmp`` as Lightroom does), else a
    new one named by `naming`. ``photo.xmp`` counts as this image's only when no other
    file in the folder has the same base name (a RAW+JPEG pair shares it in Lightroom)."""
    path = Path(image)
    full = [path.with_name(path.name + ext) for ext in (".xmp", ".XMP")]
    base = [path.with_suffix(ext) for ext in (".xmp", ".XMP")]
    existing_full = next((c for c in full if os.path.lexists(c)), None)
    if naming == "full" and existing_full:
        return existing_full
    existing_base = next((c for c in base if os.path.lexists(c)), None)
    if (existing_base or naming == "base") and not _shares_base_name(path):
        return existing_base or base[0]
    return existing_full or full[0]


def _shares_base_name(path: Path) -> bool:
    try:
        siblings = [p for p in path.parent.glob(glob_escape(path.stem) + ".*")
                    if p.suffix.lower() != ".xmp" and p.name != path.name]
    except OSError:
        return False
    return bool(siblings)


# Formats exiv2 rewrites without touching the image data, by what the file is, not its
# name, and whether they hold IPTC keywords too. RAW formats and HEIF are left alone:
# keywords go to a sidecar there.
_EMBEDDABLE_HAS_IPTC = {"jpeg": True, "tiff": True, "dng": True, "png": False, "webp": False}


@dataclass
class OpenedFile:
    image: Any               # exiv2.Image, opened from `data`
    data: bytes              # keeps the memory exiv2 reads alive


def read_keywords(path: Path, target: Target) -> tuple[FileKeywords, OpenedFile | None]:
    """The keyword fields of a sidecar (``target="sidecar"``; a missing one is empty) or
    of an image's embedded metadata, and the opened file to write back into. A file
    whose metadata exiv2 cannot decode completely is refused: rewriting it would drop
    what was not understood."""
    exiv2 = exiv2_module()
    try:
        data = read_regular(path, MAX_SIDECAR_BYTES if target == "sidecar" else
                            MAX_EMBED_BYTES)
    except FileNotFoundError:
        if target == "embed":
            raise MetadataError(f"{path}: no such file") from None
        if os.path.islink(path):
            raise MetadataError(f"{path}: a link to a file that does not exist; it was left "
                                "as it was") from None
        return FileKeywords(), None
    except OSError as error:
        raise MetadataError(f"{path}: cannot read it: {error.strerror}; it was left as it "
                            "was") from None
    if target == "sidecar" and not data.strip():
        return FileKeywords(), None  # an empty sidecar: write a fresh one in its place
    noun = "sidecar" if target == "sidecar" else "metadata"
    image = _decoded(exiv2, data, f"{path}: the {noun}")
    icc = raw_metadata.jpeg_icc_profile(data)
    if icc and (not image.iccProfileDefined() or bytes(image.iccProfile().data()) != icc):
        raise MetadataError(f"{path}: the ICC profile is not as long as it says it is, and "
                            "exiv2 would cut it to its stated size; it was left as it was")
    kind = _type_name(exiv2, image.imageType())
    label = _TYPE_LABELS.get(kind, kind.upper())
    if target == "sidecar" and kind != "xmp":
        raise MetadataError(f"{path}: not an XMP sidecar (it holds {label} data); it was "
                            "left as it was")
    if target == "embed" and kind not in _EMBEDDABLE_HAS_IPTC:
        raise MetadataError(f"{path}: autotags does not embed keywords in {label} files, "
                            "which exiv2 cannot rewrite safely; use --xmp sidecar")
    if target == "embed" and _EXTENDED_XMP in data:
        raise MetadataError(f"{path}: the metadata holds Extended XMP, which exiv2 cannot "
                            "rewrite; it was left as it was (use --xmp sidecar)")
    has_iptc = target == "embed" and _EMBEDDABLE_HAS_IPTC[kind]
    if has_iptc:
        _check_iptc_keywords(path, data)
    return _keywords_of(exiv2, image, has_iptc), OpenedFile(image, data)


def _check_iptc_keywords(path: Path, data: bytes) -> None:
    """A keyword that is not the UTF-8 its file declares would be written back as a
    guess at what it meant: refused instead."""
    found = raw_metadata.datasets(data)
    if (1, 90, _IPTC_UTF8.encode()) not in found:
        return  # ISO 8859-1, which any byte is: read as such and kept (see _iptc_text)
    for record, number, value in found:
        if (record, number) == (2, 25):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise MetadataError(
                    f"{path}: the IPTC keyword {value.decode('latin-1')!r} is not UTF-8 as the "
                    "file says; it was left as it was") from None


def _decoded(exiv2: Any, data: bytes, what: str) -> Any:
    """An exiv2 image of `data` with its metadata read, or :class:`MetadataError` when
    exiv2 fails, says or shows that it could not decode all of it (`what` names it in the
    message)."""
    forget_namespaces(exiv2)
    with _exiv2_step(exiv2, f"{what} cannot be read", f"{what} cannot be fully decoded"):
        image = exiv2.ImageFactory.open(data)
        image.readMetadata()
    _check_namespaces(exiv2, what)
    # The packet as the file has it: exiv2's copy of it is already normalised.
    packet = data if image.imageType() == exiv2.ImageType.xmp else (
        raw_metadata.jpeg_xmp_packet(data) or image.xmpPacket())
    missing = xmp_packets.missing_value(packet, _xmp_texts(image)) if packet.strip() else None
    if missing:
        raise MetadataError(f"{what} holds {missing}, which exiv2 would drop; it was left as "
                            "it was")
    return image


@contextlib.contextmanager
def _exiv2_step(exiv2: Any, failed: str, partly: str) -> Iterator[None]:
    """An exiv2 call whose exception (`failed`) or warnings (`partly`: it went on with
    less than all) become :class:`MetadataError`."""
    with COMPLAINTS.listening() as complaints:
        try:
            yield
        except exiv2.Exiv2Error as error:
            raise MetadataError(f"{failed} ({_reason(error)}); it was left as it was") from None
    if complaints:
        raise MetadataError(f"{partly} ({complaints[0].rstrip('.')}); it was left as it was")


def _check_namespaces(exiv2: Any, what: str) -> None:
    try:
        registered = exiv2.XmpProperties.registeredNamespaces()
    except exiv2.Exiv2Error as error:
        raise MetadataError(f"{what} declares namespaces exiv2 cannot hold ({_reason(error)}); "
                            "it was left as it was") from None
    rebound = sorted(p for p, uri in BUILT_IN_NAMESPACES.items() if registered.get(p) != uri)
    if rebound:
        raise MetadataError(f"{what} binds the prefix {rebound[0]}: to the namespace "
                            f"{registered.get(rebound[0])!r}, not its own; it was left as it "
                            "was")


def _xmp_texts(image: Any) -> Iterator[str]:
    """Every value exiv2 decoded from the XMP, each item of a list apart."""
    for datum in image.xmpData():
        kind, value = datum.typeName(), datum.value()
        if kind in ("XmpBag", "XmpSeq", "XmpAlt"):
            yield from (value.toString(i) for i in range(value.count()))
        elif kind == "LangAlt":
            yield from value.values()
        else:
            yield datum.toString()


def read_existing_keywords(image: str) -> FileKeywords:
    """Keywords a user already has for `image`: its sidecar's if it has any, else the
    ones embedded in it (sidecars win, as in Immich and digiKam)."""
    sidecar = sidecar_for(image)
    if os.path.lexists(sidecar):
        keywords, _ = read_keywords(sidecar, "sidecar")
        if keywords.paths():
            return keywords
    exiv2 = exiv2_module()
    try:
        data = read_regular(image, MAX_EMBED_BYTES)
    except OSError as error:
        raise MetadataError(f"{image}: cannot read it: {error.strerror}") from None
    forget_namespaces(exiv2)
    with COMPLAINTS.listening():  # reading only: what exiv2 did decode is worth having
        try:
            opened = exiv2.ImageFactory.open(data)
            opened.readMetadata()
        except exiv2.Exiv2Error as error:
            if error.args and error.args[0] == exiv2.ErrorCode.kerFileContainsUnknownImageType:
                return FileKeywords()  # a format without metadata fields (PNM, ...)
            raise MetadataError(f"{image}: its metadata cannot be read ({_reason(error)})"
                                ) from None
    return _keywords_of(exiv2, opened, True)


def _type_name(exiv2: Any, image_type: int) -> str:
    """exiv2's name of a file type ('jpeg', 'cr2', 'bmff'), or 'other'."""
    try:
        return str(exiv2.ImageType(image_type).name)
    except ValueError:
        return "other"


_TYPE_LABELS = {"bmff": "HEIF/AVIF/CR3", "other": "such"}


def _reason(error: Exception) -> str:
    return str(error.args[-1]) if error.args else str(error)


def _keywords_of(exiv2: Any, image: Any, has_iptc: bool) -> FileKeywords:
    xmp = image.xmpData()
    hierarchical = {}
    for hierarchy in HIERARCHICAL_FIELDS:
        hierarchical[hierarchy.key] = _xmp_list(exiv2, xmp, hierarchy.key)
    iptc = None
    if has_iptc:
        iptc = tuple(_iptc_text(datum.toString()) for datum in image.iptcData()
                     if datum.key() == IPTC_KEYWORDS.key)
    return FileKeywords(hierarchical, _xmp_list(exiv2, xmp, DUBLIN_CORE_SUBJECT.key), iptc)


def _iptc_text(value: str) -> str:
    """IPTC text is UTF-8 only when the file says so; older files hold ISO 8859-1, which
    python-exiv2 hands over as undecodable bytes."""
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _xmp_list(exiv2: Any, xmp: Any, key: str) -> tuple[str, ...]:
    found = xmp.findKey(exiv2.XmpKey(key))
    if found == xmp.end():
        return ()
    value = found.value()
    return tuple(value.toString(i) for i in range(value.count()))


def _set_keywords(exiv2: Any, image: Any, keywords: FileKeywords) -> None:
    xmp = image.xmpData()
    for hierarchy in HIERARCHICAL_FIELDS:
        _set_xmp_list(exiv2, xmp, hierarchy.key, keywords.hierarchical.get(hierarchy.key, ()),
                      hierarchy.container)
    _set_xmp_list(exiv2, xmp, DUBLIN_CORE_SUBJECT.key, keywords.subject, "bag")
    image.setXmpData(xmp)
    if keywords.iptc is not None:
        iptc = image.iptcData()
        # One at a time, holding no datum across an erase: erasing moves the others.
        key = exiv2.IptcKey(IPTC_KEYWORDS.key)
        while (found := iptc.findKey(key)) != iptc.end():
            iptc.erase(found)
        for name in keywords.iptc:
            if len(name.encode()) <= IPTC_KEYWORD_BYTES:
                iptc.add(exiv2.IptcKey(IPTC_KEYWORDS.key), exiv2.StringValue(name))
        if any(not name.isascii() for name in keywords.iptc):
            iptc["Iptc.Envelope.CharacterSet"] = _IPTC_UTF8
        image.setIptcData(iptc)


def _set_xmp_list(exiv2: Any, xmp: Any, key: str, values: tuple[str, ...] | list[str],
                  container: str) -> None:
    found = xmp.findKey(exiv2.XmpKey(key))
    if found != xmp.end():
        xmp.erase(found)
    if not values:
        return
    array = exiv2.XmpArrayValue(exiv2.TypeId.xmpSeq if container == "seq" else exiv2.TypeId.xmpBag)
    for value in values:
        array.read(value)
    xmp.add(exiv2.XmpKey(key), array)


def write_keywords(path: Path, opened: OpenedFile | None, keywords: FileKeywords) -> None:
    """Puts `keywords` into the file at `path` (a new sidecar when `opened` is None)
    through a complete copy renamed over it, keeping its permissions."""
    exiv2 = exiv2_module()
    if _read_only(path):
        raise MetadataError(f"{path}: the file is read-only; it was left as it was")
    failed = f"{path}: cannot write the keywords"
    with _exiv2_step(exiv2, failed, failed):
        if opened is None:
            forget_namespaces(exiv2)
        image = opened.image if opened else exiv2.ImageFactory.create(exiv2.ImageType.xmp)
        others = _other_fields(image)
        if opened and keywords.iptc is not None:
            _keep_raw_iptc_values(exiv2, image, opened.data)
        _set_keywords(exiv2, image, keywords)
        image.writeMetadata()
        io = image.io()
        content = bytes(io.mmap())
        io.munmap()
    _check_kept(exiv2, path, others, content)
    if opened and raw_metadata.differences(opened.data, content, _OUR_IPTC_DATASETS):
        raise MetadataError(f"{path}: exiv2 would change IPTC fields other than the keywords; "
                            "it was left as it was (use --xmp sidecar)")
    try:
        replace_atomically(path, content)
    except OSError as error:
        raise MetadataError(f"{path}: cannot write it: {error.strerror}; "
                            "it was left as it was") from None


def _keep_raw_iptc_values(exiv2: Any, image: Any, data: bytes) -> None:
    """Dates and times go back as the file had them: exiv2 would write its own form of
    them (a time without a zone gains ``+0000``)."""
    raw: dict[tuple[int, int], list[bytes]] = {}
    for record, number, value in raw_metadata.datasets(data):
        raw.setdefault((record, number), []).append(value)
    seen: Counter[tuple[int, int]] = Counter()
    for datum in image.iptcData():
        where = (datum.record(), datum.tag())
        index, seen[where] = seen[where], seen[where] + 1
        values = raw.get(where, [])
        if datum.typeName() in ("Date", "Time") and index < len(values) \
                and values[index].isascii():
            datum.setValue(exiv2.StringValue(values[index].decode("ascii")))


def _check_kept(exiv2: Any, path: Path, others: Counter[tuple[str, str]],
                content: bytes) -> None:
    """The new copy, read back before it replaces anything, must hold every field the
    old one had that is not a keyword field (`others`), with the same value."""
    copy = _decoded(exiv2, content, f"{path}: the new copy")
    lost = sorted(others - _other_fields(copy))
    if lost:
        raise MetadataError(f"{path}: exiv2 would not keep {lost[0][0]} (and {len(lost) - 1} "
                            "more fields) as they were; the file was left as it was")


def _other_fields(image: Any) -> Counter[tuple[str, str]]:
    """EXIF, XMP and IPTC fields other than the keyword fields, as (key, text) pairs;
    IPTC repeats a key for each value."""
    return Counter((datum.key(), datum.toString())
                   for data in (image.exifData(), image.xmpData(), image.iptcData())
                   for datum in data
                   if datum.key().split("[", 1)[0] not in _NOT_COMPARED)


def _read_only(path: Path) -> bool:
    """Marked read-only (no write permission for anyone counts too: root could write
    it, but its owner said not to) or not writable by this user."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return not mode & 0o222 or not os.access(path, os.W_OK)


