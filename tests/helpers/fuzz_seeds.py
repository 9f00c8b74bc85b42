"""Seeds for the decode fuzzer: one small file of every format and variant the tests
make (baseline, progressive and EXIF-rotated JPEG, CMYK and grey JPEG, PNG in RGB, grey +
alpha, 16-bit, palette and interlaced, TIFF, WebP, GIF, PNM, a libvips native file, a
DNG-like TIFF, DNGs with and without a usable preview). Made from a real photo at fuzz
time, never committed.

    cd tests && python -m helpers.fuzz_seeds FOLDER
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from .camera_raw import write_dng

PHOTO = Path("/usr/share/darknet/data/dog.jpg")  # Debian's darknet package


def make_seeds(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    base = Image.open(PHOTO).convert("RGB").resize((64, 48))
    pil_variants = {
        "baseline.jpg": (base, {"quality": 80}),
        "progressive.jpg": (base, {"quality": 80, "progressive": True}),
        "grey.jpg": (base.convert("L"), {}),
        "cmyk.jpg": (base.convert("CMYK"), {}),
        "rgb.png": (base, {}),
        "grey-alpha.png": (base.convert("LA"), {}),
        "palette.png": (base.convert("P"), {}),
        "rgba.png": (base.convert("RGBA"), {}),
        "rgb.tif": (base, {}),
        "rgb.webp": (base, {"quality": 60}),
        "anim.gif": (base.convert("P"), {}),
        "rgb.ppm": (base, {}),
        "grey.pgm": (base.convert("L"), {}),
    }
    for name, (image, options) in pil_variants.items():
        image.save(folder / name, **options)
    base.resize((8, 6)).save(folder / "tiny.ppm")  # few bytes: header fields get mutated
    rotated = Image.Exif()
    rotated[0x0112] = 6
    base.save(folder / "rotated.jpg", exif=rotated)
    write_dng(folder / "preview.dng", base, 6)  # camera RAW through its preview
    write_dng(folder / "raw-only.dng", base.resize((16, 12)), 3, preview_size=(4, 3))
    vips = shutil.which("vips")
    if vips:  # formats only libvips writes
        rgb = str(folder / "rgb.png")
        for target, command in {
            "interlaced.png": ["pngsave", rgb, "{}", "--interlace"],
            "rgb16.png": ["colourspace", rgb, "{}", "rgb16"],
            "native.v": ["copy", str(folder / "tiny.ppm"), "{}"],
            "tiled.tif": ["tiffsave", rgb, "{}", "--tile", "--pyramid"],
        }.items():
            subprocess.run([vips, *(a.format(folder / target) for a in command)], check=True)
    return sorted(folder.iterdir())


if __name__ == "__main__":
    made = make_seeds(Path(sys.argv[1]))
    print(f"{len(made)} seeds in {sys.argv[1]}")
