"""A second reading of an XMP packet, with Python's own XML parser, to find what exiv2
read without a word of complaint and still left out (a value it could not place, or
read otherwise): a file whose packet holds a value exiv2 did not decode is not
rewritten, as the rewrite would drop it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator

_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Attributes that are RDF's grammar or the packet's wrapping, not values.
_NOT_VALUES = {f"{_RDF}about", f"{_RDF}parseType", _XML_LANG, "{adobe:ns:meta/}xmptk"}
_XML_SPACES = str.maketrans("\t\n\r", "   ")


def missing_value(packet: str | bytes, decoded: Iterable[str]) -> str | None:
    """The first value of `packet` that is not among `decoded` (exiv2's values, as text),
    described for a person; None when exiv2 has every one."""
    if isinstance(packet, str):
        packet = packet.encode("utf-8", "surrogateescape")
    try:
        root = ElementTree.fromstring(packet.strip().removeprefix(b"\xef\xbb\xbf"))
    except ElementTree.ParseError as error:
        return f"the XMP is not well-formed XML ({error})"
    known = {_normalised(value) for value in decoded}
    for element, value in _values(root):
        if _normalised(value) not in known:
            return f"the value {value[:40]!r} of {_name(element)}"
    return None


def _values(root: ElementTree.Element) -> Iterator[tuple[ElementTree.Element, str]]:
    """Every value the packet states: attribute values and the text of elements without
    children. An empty list item (``<rdf:li/>``, as some cameras leave dc:creator) states
    nothing and is not counted; exiv2 drops it."""
    for element in root.iter():
        for name, value in element.attrib.items():
            if name not in _NOT_VALUES and not name.startswith(f"{_RDF}resource"):
                yield element, value
        if len(element):
            continue
        if (element.text or "").strip():
            yield element, element.text or ""


def _name(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _normalised(value: str) -> str:
    """As XML means it: line breaks and tabs in attributes are spaces; surrounding
    white space of element text is layout."""
    return value.translate(_XML_SPACES).strip()
