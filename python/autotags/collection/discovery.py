"""Finding the image files below the paths a user gives."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .._engine import camera_raw_extensions, is_camera_raw
from .files import FileState, canonical_path, kind_of, open_regular

log = logging.getLogger(__name__)

# Camera RAW files (CR2, NEF, ARW, DNG, ...), read by the engine through LibRaw.
RAW_EXTENSIONS = frozenset(camera_raw_extensions)
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp", ".gif", ".heic",
    ".heif", ".hif", ".avif", ".jxl", ".jp2", ".j2k", ".bmp", ".pnm", ".ppm", ".pgm",
}) | RAW_EXTENSIONS
# Videos and sound beside the photos: counted and listed as skipped, never opened.
VIDEO_AND_AUDIO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".mpg", ".mpeg",
    ".3gp", ".wmv", ".flv", ".mp3", ".wav", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma",
    ".aif", ".aiff",
})
# Files that sit beside photos but are never images: not even worth opening.
NOT_IMAGE_EXTENSIONS = frozenset({
    ".xmp", ".txt", ".json", ".xml", ".db", ".ini", ".thm", ".pp3", ".dop", ".pdf", ".zip",
    ".html", ".css", ".js", ".py", ".sqlite3", ".sqlite",
})
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*", b"BM",
               b"\xff\x0a", b"\x00\x00\x00\x0cJXL ", b"\x00\x00\x00\x0cjP  ")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


@dataclass(frozen=True)
class FoundFile:
    path: str
    state: FileState


@dataclass(frozen=True)
class WalkProblem:
    path: str
    reason: str


@dataclass
class Discovery:
    files: list[FoundFile] = field(default_factory=list)
    problems: list[WalkProblem] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)      # roots that were walked
    vanished: list[str] = field(default_factory=list)     # given files that are gone
    not_photos: list[str] = field(default_factory=list)   # videos and audio, skipped


def looks_like_image(path: str) -> bool:
    """Sniff the first bytes of a file whose name says nothing."""
    try:
        with open_regular(path) as handle:
            head = handle.read(16)
    except OSError:
        return False
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return True
    return is_camera_raw(os.fsencode(path))  # the engine's own test: RAF, ORF, CR3, ...


def is_video_or_audio(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_AND_AUDIO_EXTENSIONS


def _named_like_a_photo(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _not_regular(path: str, info: os.stat_result) -> WalkProblem:
    # Reported, never opened: a FIFO would hang the scan and a device would never end.
    return WalkProblem(path, f"not a regular file but {kind_of(info.st_mode)}; not read")


def _wanted(name: str, path: str) -> bool:
    if _named_like_a_photo(name):
        return True
    extension = os.path.splitext(name)[1].lower()
    if extension in NOT_IMAGE_EXTENSIONS:
        return False
    return looks_like_image(path)


def _state(info: os.stat_result) -> FileState:
    return FileState(size=info.st_size, mtime_ns=info.st_mtime_ns)


def discover(paths: Iterable[str | os.PathLike[str]]) -> Discovery:
    """Image files below `paths`, each once, sorted within each folder.

    Paths are canonical (see :func:`canonical_path`). Hidden files and folders (name
    starting with '.') are skipped; symbolic links are followed, but a folder is never
    entered twice, so link loops end. Files named explicitly are always taken, whatever
    their name, if they are regular files. A FIFO or device named explicitly, or named like a
    photo in a folder, is reported and never opened. Folders that cannot be read are
    reported, not fatal.
    """
    found = Discovery()
    seen_files: set[str] = set()
    seen_folders: set[tuple[int, int]] = set()

    def add(path: str, info: os.stat_result) -> None:
        canonical = canonical_path(path)
        if canonical not in seen_files:
            seen_files.add(canonical)
            found.files.append(FoundFile(canonical, _state(info)))

    def listing(folder: str) -> Iterator[os.DirEntry[str]]:
        """The visible entries of a folder not entered before, by name."""
        try:
            identity = os.stat(folder)
            key = (identity.st_dev, identity.st_ino)
            if key in seen_folders:
                return iter(())
            seen_folders.add(key)
            with os.scandir(folder) as entries:
                visible = sorted((e for e in entries if not e.name.startswith(".")),
                                 key=lambda entry: entry.name)
        except OSError as error:
            found.problems.append(WalkProblem(folder, f"cannot read folder: {error.strerror}"))
            return iter(())
        return iter(visible)

    def walk(root: str) -> None:
        # Depth first with a stack of listings, not recursion: a tree of any depth ends.
        stack = [listing(root)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            try:
                info = entry.stat()  # follows symbolic links
            except OSError as error:
                found.problems.append(WalkProblem(entry.path, error.strerror or str(error)))
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(listing(entry.path))
            elif not stat.S_ISREG(info.st_mode) and _named_like_a_photo(entry.name):
                found.problems.append(_not_regular(entry.path, info))
            elif stat.S_ISREG(info.st_mode) and is_video_or_audio(entry.name):
                found.not_photos.append(canonical_path(entry.path))
            elif stat.S_ISREG(info.st_mode) and _wanted(entry.name, entry.path):
                add(entry.path, info)

    for given in paths:
        path = canonical_path(given)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            found.vanished.append(path)
            found.problems.append(WalkProblem(path, "no such file or folder"))
            continue
        except OSError as error:
            found.problems.append(WalkProblem(path, error.strerror or str(error)))
            continue
        if stat.S_ISDIR(info.st_mode):
            found.folders.append(path)
            walk(path)
        elif not stat.S_ISREG(info.st_mode):
            found.problems.append(_not_regular(path, info))
        elif is_video_or_audio(path):
            found.not_photos.append(path)
        else:
            add(path, info)
    return found
