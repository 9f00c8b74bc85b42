"""Reading and writing keyword fields in files with exiv2 (python-exiv2), the metadata
engine digiKam, darktable and Shotwell use.

A file is changed only by writing a complete new copy beside it, flushing it to disk
and renaming it over the old one: a process killed at any moment leaves the old file or
the new one. Everything in a file that is not a keyword field goes through exiv2
unchanged in meaning (other namespaces, darktable's history, ratings, labels).
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .keyword_fields import (
    DUBLIN_CORE_SUBJECT,
    HIERARCHICAL_FIELDS,
    IPTC_KEYWORDS,
    FileKeywords,
)

Target = Literal["sidecar", "embed"]
SidecarName = Literal["full", "base"]
TARGETS: tuple[Target, ...] = ("sidecar", "embed")
SIDECAR_NAMES: tuple[SidecarName, ...] = ("full", "base")
IPTC_KEYWORD_BYTES = 64  # IPTC IIM's limit for one keyword
_IPTC_UTF8 = "\x1b%G"     # IPTC's way of saying its text is UTF-8


class MetadataError(RuntimeError):
    """One file's metadata cannot be read or written; the message names the file."""


class MissingLibraryError(RuntimeError):
    """python-exiv2 is not installed."""


def require_exiv2() -> None:
    """Raises :class:`MissingLibraryError` unless python-exiv2 can be used."""
    _exiv2()


def _exiv2() -> Any:
    try:
        import exiv2
    except ImportError:
        raise MissingLibraryError(
            "writing and reading XMP needs python-exiv2: pip install 'autotags[xmp]'") from None
    exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)  # failures arrive as exceptions
    return exiv2


def sidecar_for(image: str, naming: SidecarName = "full") -> Path:
    """The sidecar of `image`: an existing one under either convention (``photo.jpg.xmp``
    as digiKam, darktable and Immich name it; ``photo.xmp`` as Lightroom does), else a
    new one named by `naming`. ``photo.xmp`` counts as this image's only when no other
    file in the folder has the same base name (a RAW+JPEG pair shares it in Lightroom)."""
    path = Path(image)
    full = [path.with_name(path.name + ext) for ext in (".xmp", ".XMP")]
    base = [path.with_suffix(ext) for ext in (".xmp", ".XMP")]
    existing_full = next((c for c in full if c.is_file()), None)
    if naming == "full" and existing_full:
        return existing_full
    existing_base = next((c for c in base if c.is_file()), None)
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


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


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
    of an image's embedded metadata, and the opened file to write back into."""
    exiv2 = _exiv2()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if target == "embed":
            raise MetadataError(f"{path}: no such file") from None
        return FileKeywords(), None
    except OSError as error:
        raise MetadataError(f"{path}: cannot read it: {error.strerror}") from None
    if target == "sidecar" and not data.strip():
        return FileKeywords(), None  # an empty sidecar: write a fresh one in its place
    try:
        image = exiv2.ImageFactory.open(data)
        image.readMetadata()
    except exiv2.Exiv2Error as error:
        kind = "sidecar" if target == "sidecar" else "metadata"
        raise MetadataError(f"{path}: the {kind} cannot be read ({_reason(error)}); "
                            "it was left as it was") from None
    kind = _type_name(exiv2, image.imageType())
    label = _TYPE_LABELS.get(kind, kind.upper())
    if target == "sidecar" and kind != "xmp":
        raise MetadataError(f"{path}: not an XMP sidecar (it holds {label} data); it was "
                            "left as it was")
    if target == "embed" and kind not in _EMBEDDABLE_HAS_IPTC:
        raise MetadataError(f"{path}: autotags does not embed keywords in {label} files, "
                            "which exiv2 cannot rewrite safely; use --xmp sidecar")
    has_iptc = target == "embed" and _EMBEDDABLE_HAS_IPTC[kind]
    return _keywords_of(exiv2, image, has_iptc), OpenedFile(image, data)


def read_existing_keywords(image: str) -> FileKeywords:
    """Keywords a user already has for `image`: its sidecar's if it has any, else the
    ones embedded in it (sidecars win, as in Immich and digiKam)."""
    sidecar = sidecar_for(image)
    if sidecar.exists():
        keywords, _ = read_keywords(sidecar, "sidecar")
        if keywords.paths():
            return keywords
    exiv2 = _exiv2()
    try:
        opened = exiv2.ImageFactory.open(image)
        opened.readMetadata()
    except exiv2.Exiv2Error as error:
        if error.args and error.args[0] == exiv2.ErrorCode.kerFileContainsUnknownImageType:
            return FileKeywords()  # a format without metadata fields (PNM, ...)
        raise MetadataError(f"{image}: its metadata cannot be read ({_reason(error)})") from None
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
        for datum in [d for d in iptc if d.key() == IPTC_KEYWORDS.key]:
            iptc.erase(iptc.findKey(exiv2.IptcKey(datum.key())))
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
    exiv2 = _exiv2()
    if _read_only(path):
        raise MetadataError(f"{path}: the file is read-only; it was left as it was")
    try:
        image = opened.image if opened else exiv2.ImageFactory.create(exiv2.ImageType.xmp)
        _set_keywords(exiv2, image, keywords)
        image.writeMetadata()
        io = image.io()
        content = bytes(io.mmap())
        io.munmap()
    except exiv2.Exiv2Error as error:
        raise MetadataError(f"{path}: cannot write the keywords ({_reason(error)}); "
                            "it was left as it was") from None
    try:
        replace_atomically(path, content)
    except OSError as error:
        raise MetadataError(f"{path}: cannot write it: {error.strerror}; "
                            "it was left as it was") from None


def _read_only(path: Path) -> bool:
    """Marked read-only (no write permission for anyone counts too: root could write
    it, but its owner said not to) or not writable by this user."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return not mode & 0o222 or not os.access(path, os.W_OK)


def replace_atomically(path: Path, content: bytes) -> None:
    """Writes `content` to a hidden temporary file in the same folder, flushes it, and
    renames it over `path` (keeping the old file's permissions and owner). A symbolic
    link stays a link: the file it points to is the one replaced."""
    path = Path(os.path.realpath(path))
    try:
        old = path.stat()
        mode = stat.S_IMODE(old.st_mode)
    except FileNotFoundError:
        old = None
        mode = 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".autotags-tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fchmod(out.fileno(), mode)
            if old is not None:
                with contextlib.suppress(OSError):  # only root may give files away
                    os.fchown(out.fileno(), old.st_uid, old.st_gid)
            os.fsync(out.fileno())
        # Flushed before the rename: after a crash the name holds the old bytes or
        # the new ones, never a file whose data had not reached the disk.
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@functools.cache
def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment,
    for every thread)."""
    with contextlib.suppress(OSError, StopIteration, ValueError), \
            open("/proc/self/status", encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    return 0o022
