#!/usr/bin/env bash
# One command from a fresh Debian machine to tagged photos: sets everything up,
# installs the default models and tags the sample photos.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
AUTOTAGS="${AUTOTAGS_VENV:-$ROOT/.venv}/bin/autotags"
SAMPLES=/usr/share/darknet/data
DB="${AUTOTAGS_DB:-$ROOT/demo-tags.sqlite3}"

"$AUTOTAGS" models install
echo
echo "Objects found in the sample photos ($SAMPLES):"
"$AUTOTAGS" tag "$SAMPLES"/*.jpg
echo
echo "What the classifier thinks each photo shows:"
"$AUTOTAGS" tag --model efficientnet-lite3 "$SAMPLES"/*.jpg
echo
echo "Scanning them into a searchable tag database ($DB):"
rm -f "$DB"
"$AUTOTAGS" scan "$SAMPLES"/*.jpg --db "$DB" --model ssd-mobilenet-v2,efficientnet-lite3 || true
echo
echo "autotags search horse:"
"$AUTOTAGS" search horse --db "$DB"
echo
echo "autotags search animal (every label below the category, from either model):"
"$AUTOTAGS" search animal --db "$DB"
echo
"$AUTOTAGS" tags --db "$DB"
echo
PHOTOS_COPY="$ROOT/build/demo-photos"
echo "Tags for other photo managers: XMP sidecars beside a copy of two photos ($PHOTOS_COPY):"
rm -rf "$PHOTOS_COPY" && mkdir -p "$PHOTOS_COPY"
cp "$SAMPLES"/dog.jpg "$SAMPLES"/horses.jpg "$PHOTOS_COPY"/
"$AUTOTAGS" scan "$PHOTOS_COPY" --db "$DB" --xmp sidecar --tag-paths hierarchical
echo "$PHOTOS_COPY/dog.jpg.xmp, as digiKam, darktable, Lightroom and Immich read it:"
"${AUTOTAGS_VENV:-$ROOT/.venv}/bin/python" - "$PHOTOS_COPY/dog.jpg.xmp" <<'PYTHON'
import sys
import exiv2
sidecar = exiv2.ImageFactory.open(sys.argv[1])
sidecar.readMetadata()
for datum in sidecar.xmpData():
    print(f"  {datum.key():36} {datum.toString()}")
PYTHON
echo
echo "To see the photos with their boxes, and correct tags in bulk, in a browser on this machine:"
echo "  $AUTOTAGS serve --db $DB      (then open the address it prints; Ctrl-C stops it)"
