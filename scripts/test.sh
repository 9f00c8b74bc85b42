#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite (what CI runs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --test
PYTHON="${AUTOTAGS_VENV:-$ROOT/.venv}/bin/python"
cd "$ROOT"
"$PYTHON" -m ruff check .
"$PYTHON" -m mypy python/autotags
# Run from the tests folder against the installed package, not the source tree.
"$PYTHON" -m pytest "$@"
# The engine-level tests again, on an engine built with ASan + UBSan, then a bounded
# fuzz run of decoding (longer: AUTOTAGS_FUZZ_SECONDS=1800 scripts/test.sh).
"$ROOT/scripts/sanitize.sh"
"$ROOT/scripts/fuzz.sh" "${AUTOTAGS_FUZZ_SECONDS:-60}"
