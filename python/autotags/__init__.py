"""autotags: fast auto-tagging of photo collections with neural networks.

The public API::

    from autotags import Tagger
    for result in Tagger().tag(["holiday/beach.jpg"]):
        print(result.path, result.labels)
"""

from __future__ import annotations

import openvino  # noqa: F401  (loads libopenvino before the extension that links it)

from ._engine import ImageError, ModelError
from .catalogue import Catalogue, CatalogueError, ModelSpec, load_catalogue
from .install import InstallError
from .results import Box, ImageTags, Tag
from .scanning import ScanInterrupted, ScanProgress, ScanReport, scan
from .store import TagStore
from .tagger import Tagger, TaggerError

__version__ = "0.1.0"

__all__ = [
    "Box",
    "Catalogue",
    "CatalogueError",
    "ImageError",
    "ImageTags",
    "InstallError",
    "ModelError",
    "ModelSpec",
    "ScanInterrupted",
    "ScanProgress",
    "ScanReport",
    "Tag",
    "TagStore",
    "Tagger",
    "TaggerError",
    "__version__",
    "load_catalogue",
    "scan",
]
