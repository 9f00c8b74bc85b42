"""A mutation fuzzer for the metadata writer: real sidecars and the XMP, IPTC and EXIF of
real JPEG, TIFF and PNG files, damaged a few bytes at a time, then given keywords by the
real writer (XmpWriter over a real store) in child processes.

For each damaged file the writer either reports a per-file error and leaves the file
byte-identical, or writes it and exiftool, an independent reader, finds every field it
read before still there with the same value and every keyword that is not autotags' still
in its field. A child that crashes or hangs names the file it was writing.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .xmp_files import DARKTABLE_SIDECAR, KEYWORD_FIELDS, exiftool

CASES_PER_CHILD = 40
CHILD_SECONDS = 120
AUTO_TAGS = ("auto/dog", "auto/bicycle")
# Fields a rewrite changes by design: the serialiser's name, and what exiftool says
# about the file itself rather than its metadata.
IGNORED_FIELDS = {"XMP-x:XMPToolkit", "ExifTool:Warning", "ExifTool:Error", "SourceFile"}
IGNORED_GROUPS = ("System:", "File:", "ExifTool:", "Composite:")
MOVED_BY_A_REWRITE = ("Offsets", "Offset")  # where image data and thumbnails now lie
KEYWORD_KEYS = {*KEYWORD_FIELDS, "IPTC:Keywords"}
KEYWORD_NAMES = {key.split(":", 1)[1] for key in KEYWORD_KEYS}

WRITER = """
import json, sys
from autotags import TagStore, XmpWriter
store_path, target, *images = sys.argv[1:]
writer = XmpWriter(target)
with TagStore(store_path) as store:
    for image in images:
        print("start", image, flush=True)
        writer.write_all(store, [image])
print("failures", json.dumps([f.path for f in writer.report.failures]), flush=True)
"""


@dataclass(frozen=True)
class Seed:
    name: str        # file name of the damaged copy: photo.jpg, photo.jpg.xmp, ...
    target: str      # "sidecar" or "embed"
    content: bytes
    regions: list[tuple[int, int]]  # byte ranges that hold metadata: where damage goes


@dataclass
class Outcome:
    cases: int = 0
    written: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)


def make_seeds(photo: Path, workdir: Path, vips: str) -> list[Seed]:
    """A darktable sidecar, and JPEG, TIFF and PNG files holding XMP, IPTC and EXIF with
    other people's keywords, ratings and labels."""
    workdir.mkdir(parents=True, exist_ok=True)
    sidecar = DARKTABLE_SIDECAR.format(user_flat="Beach").encode()
    seeds = [Seed("photo.jpg.xmp", "sidecar", sidecar, [(0, len(sidecar))])]
    for extension in ("jpg", "tif", "png"):
        made = workdir / f"seed.{extension}"
        subprocess.run([vips, "copy", str(photo), str(made)], check=True)
        fields = ["-XMP-xmp:Rating=4", "-XMP-xmp:Label=Red", "-XMP-dc:Subject=Holiday",
                  "-XMP-dc:Subject=Alice", "-XMP-digiKam:TagsList=People/Alice",
                  "-XMP-digiKam:TagsList=auto/cat", "-XMP-dc:Subject=cat",
                  "-EXIF:Artist=A. Photographer", "-EXIF:ImageDescription=South Haven"]
        if extension != "png":
            fields += ["-IPTC:Keywords=Holiday", "-IPTC:Keywords=Alice", "-IPTC:By-line=Me",
                       "-IPTC:CodedCharacterSet=UTF8"]
        subprocess.run([exiftool(), "-q", "-m", "-overwrite_original", *fields, str(made)],
                       check=True)
        content = made.read_bytes()
        seeds.append(Seed(f"photo.{extension}", "embed", content, metadata_regions(content)))
    return seeds


def metadata_regions(content: bytes) -> list[tuple[int, int]]:
    """Where a file keeps XMP, IPTC and EXIF: the XMP packet, the IIM datasets, and the
    EXIF/TIFF directories (everything before the first image data of a TIFF)."""
    regions = []
    packet = re.search(rb"<x:xmpmeta.*?</x:xmpmeta>", content, re.S)
    if packet:
        regions.append(packet.span())
    iptc = re.search(rb"\x1c\x01Z.*?\x1c\x02\x78", content, re.S) or re.search(
        rb"\x1c\x02\x00\x00\x02", content)
    if iptc:
        regions.append((iptc.start(), min(len(content), iptc.end() + 200)))
    exif = content.find(b"Exif\0\0")
    if exif >= 0:
        regions.append((exif, min(len(content), exif + 400)))
    if content[:4] in (b"II*\0", b"MM\0*"):
        regions.append((0, min(len(content), 400)))
    return regions


_SPECIAL = [b"<", b">", b"&", b"\"", b"\0", b"\xff", b"\xe9", b"\xc3", b"]]>", b"<!--",
            b"&amp;", b"<!DOCTYPE x>", b"\x1c\x02\x19", b"\xff\xff\xff\xff"]


def mutate(seed: Seed, rng: random.Random) -> bytes:
    """One to four changes, mostly one: a file damaged everywhere is refused at once, and
    the writer's other path, keeping what it cannot see, needs files that still parse."""
    data = bytearray(seed.content)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
        start, end = rng.choice(seed.regions)
        end = min(end, len(data))
        if end <= start:
            continue
        at = rng.randrange(start, end)
        operation = rng.choice((0, 0, 1, 2, 3, 3, 4))
        if operation == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif operation == 1:
            data[at:at] = rng.choice(_SPECIAL)
        elif operation == 2:
            del data[at:at + rng.randint(1, 16)]
        elif operation == 3:
            data[at] = rng.randrange(256)
        else:
            length = rng.randint(1, 32)
            data[at:at] = data[at:at + length]
    return bytes(data)


def run(seeds: list[Seed], photo: Path, workdir: Path, seconds: float, seed: int = 0
        ) -> Outcome:
    """Damaged copies through the writer for `seconds`, checked one by one."""
    rng = random.Random(seed)
    outcome = Outcome()
    deadline = time.monotonic() + seconds
    batch = 0
    while time.monotonic() < deadline:
        for target in ("sidecar", "embed"):
            chosen = [s for s in seeds if s.target == target]
            folder = workdir / f"batch-{batch}"
            batch += 1
            cases = list(_write_cases(folder, chosen, photo, rng))
            _check_batch(folder, target, cases, outcome)
            shutil.rmtree(folder)
    return outcome


@dataclass(frozen=True)
class Case:
    image: Path        # what the store knows
    damaged: Path      # the file the writer changes: the image or its sidecar
    before: bytes


def _write_cases(folder: Path, seeds: list[Seed], photo: Path, rng: random.Random
                 ) -> Iterator[Case]:
    folder.mkdir(parents=True)
    for index in range(CASES_PER_CHILD):
        seed = rng.choice(seeds)
        case = folder / f"{index:03d}"
        case.mkdir()
        damaged = case / seed.name
        content = mutate(seed, rng)
        damaged.write_bytes(content)
        image = damaged
        if seed.target == "sidecar":
            image = case / "photo.jpg"
            shutil.copy(photo, image)
        yield Case(image, damaged, content)


def _check_batch(folder: Path, target: str, cases: list[Case], outcome: Outcome) -> None:
    from autotags import TagStore

    store = folder / "tags.sqlite3"
    with TagStore(store) as tags:
        for case in cases:
            for path in AUTO_TAGS:
                tags.add_manual_tag(case.image, path)
    before = _exiftool(c.damaged for c in cases)
    failures, crashed = _run_writer(store, target, [c.image for c in cases])
    if crashed:
        outcome.problems.append(crashed)
    after = _exiftool(c.damaged for c in cases)
    for case in cases:
        outcome.cases += 1
        if os.fspath(case.image) in failures:
            outcome.refused += 1
            if case.damaged.read_bytes() != case.before:
                outcome.problems.append(f"{_keep(case, folder.parent)}: refused, but changed")
            continue
        outcome.written += 1
        if _lost(before.get(os.fspath(case.damaged), {}),
                 after.get(os.fspath(case.damaged), {})):
            kept = _keep(case, folder.parent)
            # Read again one file at a time: exiftool's reading of one damaged file has
            # been seen to depend on the files read before it in the same call.
            problem = _lost(_exiftool(iter([kept]))[os.fspath(kept)],
                            _exiftool(iter([case.damaged]))[os.fspath(case.damaged)])
            if problem:
                outcome.problems.append(f"{kept}: {problem}")


def _keep(case: Case, workdir: Path) -> Path:
    """The damaged file as it was before the writer, for a person to look at."""
    kept = workdir / "problems" / f"{case.damaged.parent.parent.name}-{case.damaged.parent.name}"
    kept.mkdir(parents=True, exist_ok=True)
    (kept / case.damaged.name).write_bytes(case.before)
    shutil.copy(case.damaged, kept / (case.damaged.name + ".after"))
    return kept / case.damaged.name


def _run_writer(store: Path, target: str, images: list[Path]) -> tuple[set[str], str]:
    try:
        child = subprocess.run([sys.executable, "-c", WRITER, os.fspath(store), target,
                                *map(os.fspath, images)], capture_output=True, text=True,
                               timeout=CHILD_SECONDS)
    except subprocess.TimeoutExpired as expired:
        started = [line for line in (expired.stdout or b"").decode().splitlines()
                   if line.startswith("start ")]
        return set(), f"{started[-1][6:] if started else images[0]}: the writer hung"
    lines = child.stdout.splitlines()
    if child.returncode != 0 or not lines or not lines[-1].startswith("failures "):
        started = [line[6:] for line in lines if line.startswith("start ")]
        return set(), (f"{started[-1] if started else images[0]}: the writer died "
                       f"(status {child.returncode}): {child.stderr[-500:]}")
    return set(json.loads(lines[-1][len("failures "):])), ""


def _exiftool(paths: Iterator[Path]) -> dict[str, dict[str, object]]:
    names = [os.fspath(p) for p in paths]
    out = subprocess.run([exiftool(), "-j", "-G1", "-struct", "-m", *names],
                         capture_output=True).stdout
    # Damaged text need not be UTF-8; before and after are decoded the same way.
    entries = json.loads(out.decode("utf-8", "replace") or "[]")
    return {entry["SourceFile"]: entry for entry in entries}


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _contains(after: object, before: object) -> bool:
    """Everything `before` holds is in `after`: the same scalars, every key of a
    structure, every item of a list (exiv2 may read more of a damaged list than exiftool
    did, never less)."""
    if isinstance(before, dict):
        return isinstance(after, dict) and all(
            key in after and _contains(after[key], value) for key, value in before.items())
    if isinstance(before, list):  # an empty item states nothing, and exiv2 drops it
        return all(any(_contains(item, wanted) for item in _as_list(after))
                   for wanted in before if wanted != "")
    return after == before or _normalised(after) == _normalised(before)


def _normalised(value: object) -> str:
    """A value as XML means it: a tab or line break in an attribute is a space (exiftool
    keeps the raw character, a conforming parser does not)."""
    return str(value).translate(_XML_SPACES)


_XML_SPACES = str.maketrans("\t\n\r", "   ")


def _leaves(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield _normalised(value)


def _is_keyword_field(key: str) -> bool:
    """The keyword fields, also under a namespace a damaged file declared for them."""
    return key in KEYWORD_KEYS or key.rsplit(":", 1)[-1] in KEYWORD_NAMES


def _lost(before: dict[str, object], after: dict[str, object]) -> str:
    """What exiftool read before and does not read after, or ''. A field exiftool read
    under another name before (a damaged namespace that exiv2 read as its own) must have
    its values somewhere after."""
    values_after = set(_leaves({k: v for k, v in after.items() if k not in IGNORED_FIELDS}))
    for key, value in before.items():
        if key in IGNORED_FIELDS or key.startswith(IGNORED_GROUPS) or key.endswith(
                MOVED_BY_A_REWRITE):
            continue
        if _is_keyword_field(key):
            theirs = [k for k in _as_list(value) if not str(k).startswith("auto")]
            missing = [k for k in theirs if k not in _as_list(after.get(key, []))
                       and _normalised(k) not in values_after]
            if missing:
                return f"{key} lost {missing[0]!r}"
        elif key in after:
            if isinstance(value, str) and "<rdf:" in value:
                continue  # exiftool gave up on the structure (raw XML); exiv2 read it
            if not _contains(after[key], value):
                return f"{key} was {value!r}, is {after[key]!r}"
        else:
            missing = [leaf for leaf in _leaves(value) if leaf not in values_after]
            if missing:
                return f"{key} is gone, and with it {missing[0]!r}"
    return ""
