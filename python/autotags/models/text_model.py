"""The files of an installed text model beside its detector (``model.xml``): the line
recogniser, the line-orientation classifier and the recogniser's character list, which
PP-OCR keeps in the ONNX file's metadata and the engine reads as a plain file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AutotagsError

RECOGNISER_FILE = "recogniser.xml"
ORIENTATION_FILE = "orientation.xml"
CHARACTERS_FILE = "characters.txt"
_CHARACTER_METADATA = ("framework", "character")


class TextModelError(AutotagsError, ValueError):
    """The files do not make a text model: no character list, or one the engine cannot use."""


@dataclass(frozen=True)
class TextModelFiles:
    recogniser: Path
    orientation: Path
    characters: Path

    @classmethod
    def beside(cls, detector: Path) -> TextModelFiles:
        folder = detector.parent
        return cls(folder / RECOGNISER_FILE, folder / ORIENTATION_FILE, folder / CHARACTERS_FILE)

    def complete(self) -> bool:
        return all(path.is_file() for path in (self.recogniser, self.recogniser.with_suffix(".bin"),
                                                self.orientation, self.characters))

    def read_characters(self) -> list[str]:
        """One character per line; a line of its own may be a space or punctuation, so
        nothing but the line break is stripped."""
        return self.characters.read_text(encoding="utf-8").split("\n")[:-1]


def character_list(recogniser: Any, name: str) -> list[str]:
    """The characters PP-OCR stores in the recogniser's metadata, one per line."""
    try:
        text = str(recogniser.get_rt_info(list(_CHARACTER_METADATA)).astype(str))
    except RuntimeError as error:
        raise TextModelError(f"{name}: the recogniser has no character list in its metadata "
                             "(PP-OCR keeps it under 'character')") from error
    characters = text.splitlines()
    if not characters:
        raise TextModelError(f"{name}: the recogniser's character list is empty")
    return characters


def save_text_model(files: list[Path], detector_xml: Path) -> None:
    """Detector, recogniser and orientation classifier (`files`, in that order) as IR
    beside each other, with the recogniser's characters."""
    import openvino as ov

    from .model_files import read_model

    if len(files) != 3:
        raise TextModelError("a text model is made of three files: the detector, the "
                             "recogniser and the line-orientation classifier")
    target = TextModelFiles.beside(detector_xml)
    recogniser = read_model(files[1])
    characters = character_list(recogniser, files[1].name)
    target.characters.write_text("".join(c + "\n" for c in characters), encoding="utf-8")
    for source, path in ((files[0], detector_xml), (files[1], target.recogniser),
                         (files[2], target.orientation)):
        model = recogniser if source is files[1] else read_model(source)
        ov.save_model(model, str(path), compress_to_fp16=False)
