"""The raw IPTC datasets of a JPEG or TIFF file, and the ICC profile and XMP packet of a
JPEG, read from its bytes.

exiv2 decodes IPTC values by type and encodes them again when it writes a file, which is
not always the same bytes: a time stored without its zone (``160830``) comes back as
``160830+0000``, a claim the file never made. Comparing the raw datasets of the old and
the new file is how a rewrite is held to keeping every dataset that is not a keyword,
byte for byte. Only the containers are parsed here (JPEG segments, Photoshop resources,
a TIFF's first directory); a file whose containers do not parse has no IPTC for this
module, and exiv2's own decoding decides what happens to it. The ICC profile is read
for the same reason: exiv2 keeps as much of it as its header declares, and drops the rest.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator

Dataset = tuple[int, int, bytes]  # record, dataset number, raw value

_PHOTOSHOP = b"Photoshop 3.0\0"
_IPTC_RESOURCE = 0x0404
_TIFF_IPTC_TAG = 33723
_ICC = b"ICC_PROFILE\0"
_XMP = b"http://ns.adobe.com/xap/1.0/\0"


def datasets(data: bytes) -> list[Dataset]:
    """The IPTC datasets of a JPEG or TIFF file, in file order; [] when it has none."""
    if data.startswith(b"\xff\xd8"):
        block = _jpeg_iptc(data)
    elif data[:4] in (b"II*\0", b"MM\0*"):
        block = _tiff_iptc(data)
    else:
        block = b""
    return _parse_iim(block)


def differences(before: bytes, after: bytes, ignored: set[tuple[int, int]]) -> int:
    """How many datasets other than `ignored` (record, dataset) pairs are not kept."""
    def kept(data: bytes) -> Counter[Dataset]:
        return Counter(d for d in datasets(data) if (d[0], d[1]) not in ignored)
    old, new = kept(before), kept(after)
    return sum((old - new).values()) + sum((new - old).values())


def jpeg_icc_profile(data: bytes) -> bytes:
    """The ICC profile of a JPEG as its APP2 segments hold it, chunks in their order."""
    chunks = [(segment[len(_ICC)], segment[len(_ICC) + 2:])
              for marker, segment in _jpeg_segments(data)
              if marker == 0xE2 and segment.startswith(_ICC) and len(segment) > len(_ICC) + 2]
    return b"".join(chunk for _, chunk in sorted(chunks, key=lambda c: c[0]))


def jpeg_xmp_packet(data: bytes) -> bytes:
    """The XMP packet of a JPEG's first XMP segment, as written (less the zero bytes
    some writers pad the segment with)."""
    return next((segment[len(_XMP):].rstrip(b"\0") for marker, segment in _jpeg_segments(data)
                 if marker == 0xE1 and segment.startswith(_XMP)), b"")


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of each segment before the image data."""
    position = 2
    while data.startswith(b"\xff\xd8") and position + 4 <= len(data) \
            and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata
            return
        (length,) = struct.unpack_from(">H", data, position + 2)
        yield marker, data[position + 4:position + 2 + length]
        position += 2 + length


def _jpeg_iptc(data: bytes) -> bytes:
    """The IPTC resource of the JPEG's Photoshop segments (one resource may continue
    over several APP13 segments)."""
    photoshop = b"".join(segment[len(_PHOTOSHOP):] for marker, segment in _jpeg_segments(data)
                         if marker == 0xED and segment.startswith(_PHOTOSHOP))
    return _photoshop_resource(photoshop, _IPTC_RESOURCE)


def _photoshop_resource(blob: bytes, wanted: int) -> bytes:
    position = 0
    while position + 12 <= len(blob) and blob[position:position + 4] == b"8BIM":
        (resource,) = struct.unpack_from(">H", blob, position + 4)
        name_length = blob[position + 6]
        position += 6 + name_length + 1 + (name_length + 1) % 2  # a padded Pascal string
        if position + 4 > len(blob):
            break
        (size,) = struct.unpack_from(">I", blob, position)
        value = blob[position + 4:position + 4 + size]
        if resource == wanted:
            return value
        position += 4 + size + size % 2
    return b""


def _tiff_iptc(data: bytes) -> bytes:
    order = "<" if data.startswith(b"II") else ">"
    (directory,) = struct.unpack_from(order + "I", data, 4)
    if directory + 2 > len(data):
        return b""
    (count,) = struct.unpack_from(order + "H", data, directory)
    for index in range(count):
        entry = directory + 2 + 12 * index
        if entry + 12 > len(data):
            break
        tag, kind, values, offset = struct.unpack_from(order + "HHII", data, entry)
        if tag == _TIFF_IPTC_TAG:
            size = values * {1: 1, 7: 1, 4: 4}.get(kind, 1)
            start = entry + 8 if size <= 4 else offset
            return data[start:start + size]
    return b""


def _parse_iim(block: bytes) -> list[Dataset]:
    found = []
    position = 0
    while position + 5 <= len(block) and block[position] == 0x1C:
        record, number = block[position + 1], block[position + 2]
        (length,) = struct.unpack_from(">H", block, position + 3)
        start = position + 5
        if length & 0x8000:  # an extended dataset: the length's length, then the length
            width = length & 0x7FFF
            length = int.from_bytes(block[start:start + width], "big")
            start += width
        found.append((record, number, block[start:start + length]))
        position = start + length
    return found
