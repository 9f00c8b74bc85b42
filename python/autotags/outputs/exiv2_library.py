"""python-exiv2, loaded once and set up so that a partial read can be told from a whole
one: exiv2's warnings are listened to, and its process-wide namespace registry is put
back to the built-in namespaces before each file."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import AutotagsError


class MissingLibraryError(AutotagsError, RuntimeError):
    """python-exiv2 is not installed."""


def require_exiv2() -> None:
    """Raises :class:`MissingLibraryError` unless python-exiv2 can be used."""
    exiv2_module()


@functools.cache
def exiv2_module() -> Any:
    try:
        import exiv2
    except ImportError:
        raise MissingLibraryError(
            "writing and reading XMP needs python-exiv2: pip install 'autotags[xmp]'") from None
    # exiv2 reports metadata it could not decode only as a warning, and then hands over
    # what it did decode as if it were all: its warnings are how a partial read is told
    # from a whole one. python-exiv2 sends them to this logger.
    exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.warn)
    library_log = logging.getLogger("exiv2")
    library_log.propagate = False
    library_log.addHandler(COMPLAINTS)
    BUILT_IN_NAMESPACES.update(exiv2.XmpProperties.registeredNamespaces())
    return exiv2


# exiv2 registers the namespaces a file declares in one registry for the whole process,
# also over its own: one sidecar that binds `dc:` to a mistyped URI would send every
# later file's dc:subject there. Each file is read from the built-in registry, and one
# that rebinds a built-in prefix is refused.
BUILT_IN_NAMESPACES: dict[str, str] = {}


def forget_namespaces(exiv2: Any) -> None:
    """Back to the built-in namespaces, in exiv2's registry and in the XMP toolkit's
    beneath it (which keeps its own, and can be left unusable by a damaged file)."""
    exiv2.XmpProperties.unregisterNs()
    exiv2.XmpParser.terminate()
    exiv2.XmpParser.initialize()


class Complaints(logging.Handler):
    """exiv2's warnings and errors while one file is read or written."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._heard = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        heard = getattr(self._heard, "messages", None)
        if heard is not None:
            heard.append(record.getMessage().strip())

    @contextlib.contextmanager
    def listening(self) -> Iterator[list[str]]:
        self._heard.messages = []
        try:
            yield self._heard.messages
        finally:
            self._heard.messages = None


COMPLAINTS = Complaints()
