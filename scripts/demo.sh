#!/usr/bin/env bash
# One command from a fresh Debian machine to tagged photos: sets everything up,
# installs the default models and tags the sample photos.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
AUTOTAGS="${AUTOTAGS_VENV:-$ROOT/.venv}/bin/autotags"
SAMPLES=/usr/share/darknet/data

"$AUTOTAGS" models install
echo
echo "Objects found in the sample photos ($SAMPLES):"
"$AUTOTAGS" tag "$SAMPLES"/*.jpg
echo
echo "What the classifier thinks each photo shows:"
"$AUTOTAGS" tag --model efficientnet-lite3 "$SAMPLES"/*.jpg
