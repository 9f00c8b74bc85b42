"""The SQLite tag store: images, the tag tree, and which model or person tagged what.

:class:`TagStore` is the face; behind it each module keeps one part: the file and its
schema (:mod:`.database`), the tag tree, the scans' bookkeeping, people's corrections,
the record of what outputs wrote (:mod:`.keyword_ledger`) and search.
"""

from ..files import FileState
from .browsing import ImageMatch, ImageRecord
from .corrections import split_added_tag
from .database import StoreError
from .keyword_ledger import KeywordEntry, KeywordLedger
from .records import (
    AUTO_ROOT,
    IMPORTED_SOURCE,
    MANUAL_SOURCE,
    Failure,
    KeywordsToWrite,
    NewTag,
    NewTextLine,
    ScanRecord,
    ScanSummary,
    StoredTag,
    StoredTextLine,
    TagNode,
    WrittenKeywords,
)
from .tag_store import TagStore
from .tag_tree import split_tag_path
from .text_lines import full_text_query

__all__ = [
    "AUTO_ROOT",
    "IMPORTED_SOURCE",
    "MANUAL_SOURCE",
    "Failure",
    "FileState",
    "ImageMatch",
    "ImageRecord",
    "KeywordEntry",
    "KeywordLedger",
    "KeywordsToWrite",
    "NewTag",
    "NewTextLine",
    "ScanRecord",
    "ScanSummary",
    "StoreError",
    "StoredTag",
    "StoredTextLine",
    "TagNode",
    "TagStore",
    "WrittenKeywords",
    "full_text_query",
    "split_added_tag",
    "split_tag_path",
]
