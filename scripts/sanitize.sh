#!/usr/bin/env bash
# Runs the engine-level tests (decoding, bad inputs, output decoders, NMS, the pipeline)
# against an engine built with AddressSanitizer + UndefinedBehaviorSanitizer. The
# sanitized package is assembled in build/sanitize/site and used through PYTHONPATH;
# the installed one is not touched.
#   scripts/sanitize.sh [PYTEST ARGS...]     (after scripts/setup.sh --test)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AUTOTAGS_VENV:-$ROOT/.venv}"
PYTHON="$VENV/bin/python"
BUILD="$ROOT/build/sanitize"
SITE="$BUILD/site"

"$VENV/bin/cmake" -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUTOTAGS_SANITIZE=ON \
  -DPython_EXECUTABLE="$PYTHON" -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" >/dev/null
"$VENV/bin/cmake" --build "$BUILD" --target _engine >/dev/null
rm -rf "$SITE"
"$VENV/bin/cmake" --install "$BUILD" --prefix "$SITE" >/dev/null
cp -r "$ROOT/python/autotags/." "$SITE/autotags/"

openvino_libs="$("$PYTHON" -c 'import os, openvino; print(os.path.join(os.path.dirname(openvino.__file__), "libs"))')"
ENGINE_TESTS=(tests/engine)
(( $# )) && ENGINE_TESTS=("$@")
# The libvips tools the tests run (vips, vipsheader) hang with ASan preloaded: they get
# wrappers that drop it. Only Python processes run with the sanitizers.
TOOLS="$BUILD/tools"
mkdir -p "$TOOLS"
for tool in /usr/bin/vips*; do
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$tool" >"$TOOLS/${tool##*/}"
  chmod +x "$TOOLS/${tool##*/}"
done
cd "$ROOT"
# pytest captures standard error, so reports go to files, printed below if any.
REPORTS="$BUILD/reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
status=0
# ASan must come first in the process, with libstdc++ (Python does not link it) so that
# C++ exceptions are intercepted; Python's own allocations are not leaks of ours.
# OpenVINO's TBB dlopens with RTLD_DEEPBIND, which ASan refuses: a shim drops the flag.
gcc -shared -fPIC -o "$BUILD/no_deep_bind.so" "$ROOT/cpp/sanitize/no_deep_bind.c" -ldl
# libvips' vector paths are machine code that liborc writes at run time into executable
# mappings: nothing ASan can check, and under its memory layout an allocation failure
# there aborts the process. VIPS_NOVECTOR keeps libvips on its C paths for this run.
LD_PRELOAD="$BUILD/no_deep_bind.so $(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" \
LD_LIBRARY_PATH="$openvino_libs" PATH="$TOOLS:$PATH" PYTHONPATH="$SITE" VIPS_NOVECTOR=1 \
ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0:log_path=$REPORTS/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$REPORTS/ubsan" \
  "$PYTHON" -m pytest -q -p no:cacheprovider "${ENGINE_TESTS[@]}" || status=$?
if compgen -G "$REPORTS/*" >/dev/null; then
  cat "$REPORTS"/*
  exit 1
fi
exit "$status"
