"""autotags: fast auto-tagging of photo collections with neural networks.

The public API::

    from autotags import Tagger
    for result in Tagger().tag(["holiday/beach.jpg"]):
        print(result.path, result.labels)
"""

from __future__ import annotations

import openvino  # noqa: F401  (loads libopenvino before the extension that links it)

from ._engine import ImageError, ModelError
from .collection.cluster import ClusterError
from .collection.reports import ScanInterrupted, ScanProgress, ScanReport
from .collection.scan_lock import ScanBusyError
from .collection.scanning import scan
from .collection.store import StoreError, TagStore
from .errors import AutotagsError, SettingsError
from .models import install  # noqa: F401  (the module, as `autotags.install`)
from .models.catalogue import Catalogue, CatalogueError, ModelSpec, load_catalogue
from .models.install import InstallError
from .outputs.base import OutputWriter
from .outputs.digikam import DigikamWriter
from .outputs.digikam_database import DigikamDatabase
from .outputs.digikam_settings import DigikamError
from .outputs.exiv2_library import MissingLibraryError
from .outputs.metadata_files import MetadataError
from .outputs.xmp import XmpWriter, import_keywords
from .tagging.results import Box, ImageTags, Tag
from .tagging.tagger import Tagger, TaggerError

__version__ = "0.1.0"

__all__ = [
    "AutotagsError",
    "Box",
    "Catalogue",
    "CatalogueError",
    "ClusterError",
    "DigikamDatabase",
    "DigikamError",
    "DigikamWriter",
    "ImageError",
    "ImageTags",
    "InstallError",
    "MetadataError",
    "MissingLibraryError",
    "ModelError",
    "ModelSpec",
    "OutputWriter",
    "ScanBusyError",
    "ScanInterrupted",
    "ScanProgress",
    "ScanReport",
    "SettingsError",
    "StoreError",
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
