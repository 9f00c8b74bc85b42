"""The build's own checks, run as CMake configuration (no compilation)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pybind11
import pytest

SOURCE = Path(__file__).resolve().parents[2]


def configure(build: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["cmake", "-S", str(SOURCE), "-B", str(build), f"-DPython_EXECUTABLE={sys.executable}",
         f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **environment})


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_missing_libvips_stops_configuration_naming_the_package(tmp_path):
    empty = tmp_path / "no-pkgconfig"
    empty.mkdir()
    completed = configure(tmp_path / "build", PKG_CONFIG_LIBDIR=str(empty), PKG_CONFIG_PATH="")
    assert completed.returncode != 0
    assert "vips-cpp" in completed.stderr
    assert "apt-get install libvips-dev" in completed.stderr


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_configuration_finds_openvino_from_the_wheel_and_libvips(tmp_path):
    completed = configure(tmp_path / "build")
    assert completed.returncode == 0, completed.stderr
    cache = (tmp_path / "build" / "CMakeCache.txt").read_text()
    assert "site-packages/openvino/cmake" in cache or "openvino/cmake" in cache
