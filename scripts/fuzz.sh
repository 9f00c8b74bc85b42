#!/usr/bin/env bash
# Builds the decode fuzzer (clang, libFuzzer, AddressSanitizer, UBSan) and runs it for
# SECONDS (default 60) from seeds of every image format the tests make. A crash leaves
# its input in build/fuzz/ and fails the run.
#   scripts/fuzz.sh [SECONDS]     (after scripts/setup.sh --test)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AUTOTAGS_VENV:-$ROOT/.venv}"
SECONDS_TO_RUN="${1:-60}"
BUILD="$ROOT/build/fuzz"

"$VENV/bin/cmake" -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUTOTAGS_FUZZ=ON \
  -DPython_EXECUTABLE="$VENV/bin/python" -Dpybind11_DIR="$("$VENV/bin/python" -m pybind11 --cmakedir)" \
  >/dev/null
"$VENV/bin/cmake" --build "$BUILD" --target decode_fuzzer >/dev/null
(cd "$ROOT/tests" && "$VENV/bin/python" -m helpers.fuzz_seeds "$BUILD/seeds")
mkdir -p "$BUILD/corpus"
AUTOTAGS_FUZZ_SCRATCH="$(mktemp -d)"
export AUTOTAGS_FUZZ_SCRATCH
trap 'rm -rf "$AUTOTAGS_FUZZ_SCRATCH"' EXIT
# libvips and GLib keep caches for the life of the process: not leaks of ours.
ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$BUILD/decode_fuzzer" "$BUILD/corpus" "$BUILD/seeds" -max_total_time="$SECONDS_TO_RUN" \
  -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$BUILD/" 2>&1 \
  | { grep -E "DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|deadly|crash-|oom-" || true; }
