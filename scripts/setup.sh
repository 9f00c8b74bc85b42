#!/usr/bin/env bash
# Prepares a Debian/Ubuntu machine for autotags: system packages, a virtual
# environment in .venv, and the package built from this checkout.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   also the test tools and sample photos
# Safe to run again: it installs only what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AUTOTAGS_VENV:-$ROOT/.venv}"
WITH_TESTS=0
[[ "${1:-}" == "--test" ]] && WITH_TESTS=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Build: compiler, pkg-config, libvips and LibRaw headers. darknet ships real sample photos;
# libvips-tools gives the tests the `vips` command for making test images.
SYSTEM_PACKAGES=(g++ pkg-config libvips-dev libraw-dev python3-venv python3-dev darknet)
# The tests also make images with libvips' tools, fuzz with clang's libFuzzer, check the
# vocabulary against WordNet and search real fruit photos from OpenCV's examples.
# exiftool reads back the XMP autotags writes; rawtran-doc ships a real Canon CR2;
# digikam-data has digiKam's database schema (dbconfig.xml); the review page's tests drive
# Debian's Chromium headless through its chromedriver; the MariaDB tests start a private
# mariadbd from mariadb-server (no system service is used); the text reader's tests draw
# Chinese signs in WenQuanYi Micro Hei.
(( WITH_TESTS )) && SYSTEM_PACKAGES+=(libvips-tools fonts-wqy-microhei clang libclang-rt-14-dev wordnet-base
                                      opencv-doc libimage-exiftool-perl rawtran-doc
                                      digikam-data chromium chromium-driver mariadb-server)

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if (( ${#missing[@]} )); then
  say "installing system packages: ${missing[*]}"
  SUDO=()
  if (( EUID != 0 )); then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating the virtual environment $VENV"
  python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# The build requirements come from pyproject.toml, installed into the venv once so that
# rebuilding does not download OpenVINO again into a throw-away build environment.
mapfile -t build_requirements < <("$VENV/bin/python" -c '
import tomllib
print("\n".join(tomllib.load(open("'"$ROOT"'/pyproject.toml", "rb"))["build-system"]["requires"]))')
say "installing build tools"
"${PIP[@]}" install "${build_requirements[@]}" cmake ninja

if (( WITH_TESTS )); then
  # The ImageNet ids the vocabulary generator reads (a wheel: nothing in it runs).
  "${PIP[@]}" download --no-deps -d "$ROOT/build/inputs" "timm==1.0.31"
fi

say "building and installing autotags"
# Extras: xmp (python-exiv2, for XMP sidecars and embedded keywords), cluster (Dask),
# web (the review page, autotags serve), mariadb (digiKam on MariaDB/MySQL).
target="$ROOT[xmp,cluster,web,mariadb]"
(( WITH_TESTS )) && target="$ROOT[xmp,cluster,web,mariadb,test]"
"${PIP[@]}" install --no-build-isolation "$target"
say "autotags is installed in $VENV (activate it with: source $VENV/bin/activate)"
