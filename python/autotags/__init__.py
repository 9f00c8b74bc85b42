"""autotags: fast auto-tagging of photo collections with neural networks.

The public API::

    from autotags import Tagger
    for result in Tagger().tag(["holiday/beach.jpg"]):
        print(result.path, result.labels)
"""

from __future__ import annotations

import openvino  # noqa: F401  (loads libopenvino before the extension that links it)

from ._engine import ImageError, ModelError
from .collection.scanning import ScanInterrupted, ScanProgress, ScanReport, scan
from .collection.store import TagStore
from .models import install  # noqa: F401  (the module, as `autotags.install`)
from .models.catalogue import Catalogue, CatalogueError, ModelSpec, load_catalogue
from .models.install import InstallError
from .outputs.xmp import XmpWriter, import_keywords
from .tagging.results import Box, ImageTags, Tag
from .tagging.tagger import Tagger, TaggerError

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
    "XmpWriter",
    "__version__",
    "import_keywords",
    "load_catalogue",
    "scan",
]
