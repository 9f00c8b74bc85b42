"""Real photos with text drawn on them by libvips' `text` (Pango), in several fonts,
sizes, angles and colours, and word-level recall of what a text model read."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter

from .photo_sources import DARKNET_DATA, OPENCV_DATA, skimage_data

# The words of opencv-doc's imageTextN.png (and of imageTextR.png, the same page turned).
OPENCV_PAGE_TEXT = """technical details are too complex to cover in the book itself. In teaching
our courses, we have found it useful for the students to attempt a number of small implementation
projects, which often build on one another, in order to get them used to working with real-world
images and the challenges that these present. The students are then asked to choose an individual
topic for each of their small-group, final projects. (Sometimes these projects even turn into
conference papers!) The exercises at the end of each chapter contain numerous suggestions for
smaller mid-term projects, as well as more open-ended problems whose solutions are still active
research topics. Wherever possible, I encourage students to try their algorithms on their own
personal photographs, since this better motivates them, often leads to creative variants on the
problems, and better acquaints them with the variety and complexity of real-world imagery. In
formulating and solving computer vision problems, I have often found it useful to draw
inspiration from three high-level approaches:"""
OPENCV_PAGES = {"imageTextN": OPENCV_DATA / "imageTextN.png",
                "imageTextR": OPENCV_DATA / "imageTextR.png"}


@dataclass(frozen=True)
class DrawnLine:
    text: str
    font: str                      # Pango font description, e.g. "DejaVu Sans Bold 40"
    at: tuple[int, int]            # top-left corner of the text before turning it
    angle: float = 0               # degrees, counter-clockwise
    colour: tuple[int, int, int] = (255, 255, 255)


# Real photos with text drawn on them: several fonts, sizes, angles and colours, one of
# them camera-sized (12 MP) with text standing upright.
DRAWN = {
    "horses": (DARKNET_DATA / "horses.jpg", None, [
        DrawnLine("Bahnhof Hauptbahnhof Bern", "DejaVu Sans Bold 36", (40, 30)),
        DrawnLine("Gleis 7 Abfahrt 14:35", "DejaVu Serif 30", (60, 420), angle=8,
                  colour=(255, 230, 0))]),
    "coffee": (skimage_data() / "coffee.png", None, [
        DrawnLine("INVOICE number 4711", "DejaVu Sans Mono Bold 30", (30, 20),
                  colour=(20, 20, 20)),
        DrawnLine("Birthday party tonight", "DejaVu Sans Condensed Bold 34", (120, 250),
                  angle=-12, colour=(0, 60, 200))]),
    "giraffe": (DARKNET_DATA / "giraffe.jpg", (4032, 3024), [
        DrawnLine("Restaurant Goldener Hirsch", "DejaVu Serif Bold 150", (300, 250)),
        DrawnLine("Open daily from noon", "DejaVu Sans 120", (3700, 600), angle=90,
                  colour=(250, 40, 40))]),
}


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped: what word-level recall counts."""
    return re.findall(r"[0-9a-zà-ÿ]+(?:-[0-9a-zà-ÿ]+)*", text.lower())


def recall(expected: str, read: list[str]) -> float:
    """The share of the expected words among the words read: each found as a word of its
    own, as `search --text` finds it (a word run into its neighbour is not found)."""
    found = set(words(" ".join(read)))
    wanted = words(expected)
    return sum(word in found for word in wanted) / len(wanted)


def draw_text(photo: Path, target: Path, lines: list[DrawnLine], vips_cli: str, *,
              size: tuple[int, int] | None = None) -> Path:
    """`photo` (resized to `size` if given) with `lines` drawn on it, saved as JPEG."""
    with Image.open(photo) as source:
        canvas = source.convert("RGB")
    if size is not None:
        canvas = canvas.resize(size, Image.Resampling.LANCZOS)
    for number, line in enumerate(lines):
        mask_file = target.with_name(f"{target.stem}-line{number}.png")
        subprocess.run([vips_cli, "text", str(mask_file), line.text, "--font", line.font],
                       check=True)
        with Image.open(mask_file) as mask:
            turned = mask.convert("L").rotate(line.angle, expand=True,
                                              resample=Image.Resampling.BICUBIC)
        # A dark (or light) band behind the letters, as on signs, so that any photo
        # behind them leaves the text readable.
        band = Image.new("RGB", turned.size, tuple(255 - c for c in line.colour))
        band_mask = turned.point(lambda value: 150 if value else 0)
        band_mask = band_mask.filter(ImageFilter.MaxFilter(15))
        canvas.paste(band, line.at, band_mask)
        canvas.paste(Image.new("RGB", turned.size, line.colour), line.at, turned)
        mask_file.unlink()
    canvas.save(target, quality=92)
    return target

