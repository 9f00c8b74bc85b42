#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite (what CI runs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --test
PYTHON="${AUTOTAGS_VENV:-$ROOT/.venv}/bin/python"
cd "$ROOT"
"$PYTHON" -m ruff check .
# Run from the tests folder against the installed package, not the source tree.
"$PYTHON" -m pytest "$@"
