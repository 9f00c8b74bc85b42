"""Reading what autotags wrote with exiftool, an independent reader, and making the
sidecars other programs leave beside photos."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

KEYWORD_FIELDS = {
    "XMP-digiKam:TagsList": ("digiKam:TagsList", "Seq"),
    "XMP-microsoft:LastKeywordXMP": ("MicrosoftPhoto:LastKeywordXMP", "Bag"),
    "XMP-lr:HierarchicalSubject": ("lr:hierarchicalSubject", "Bag"),
    "XMP-dc:Subject": ("dc:subject", "Bag"),
}


def exiftool() -> str:
    path = shutil.which("exiftool")
    assert path, "exiftool (Debian libimage-exiftool-perl) is a test dependency"
    return path


def read_tags(path: Path) -> dict[str, object]:
    """exiftool's view of a file: group:tag -> value, lists always as lists."""
    out = subprocess.run([exiftool(), "-j", "-G1", "-struct", str(path)], check=True,
                         capture_output=True, text=True).stdout
    found = json.loads(out)[0]
    for key in [*KEYWORD_FIELDS, "IPTC:Keywords"]:
        if key in found and not isinstance(found[key], list):
            found[key] = [found[key]]
    return {k: v for k, v in found.items()
            if not k.startswith(("System:", "File:", "ExifTool:")) and k != "SourceFile"}


def containers(path: Path) -> dict[str, str]:
    """The RDF container (Seq or Bag) of each keyword field, from exiftool's verbose
    listing of the XMP tree."""
    out = subprocess.run([exiftool(), "-v2", str(path)], check=True, capture_output=True,
                         text=True).stdout
    found = {}
    for field, (element, _) in KEYWORD_FIELDS.items():
        match = re.search(re.escape(element) + r"/rdf:(\w+)/rdf:li", out)
        if match:
            found[field] = match.group(1)
    return found


def keyword_lists(path: Path) -> dict[str, list[str]]:
    tags = read_tags(path)
    return {field: list(tags.get(field, [])) for field in [*KEYWORD_FIELDS, "IPTC:Keywords"]}


def expected_lists(paths: list[str], *, iptc: bool = False) -> dict[str, list[str]]:
    leaves = [p.rsplit("/", 1)[-1] for p in paths]
    return {
        "XMP-digiKam:TagsList": list(paths),
        "XMP-microsoft:LastKeywordXMP": list(paths),
        "XMP-lr:HierarchicalSubject": [p.replace("/", "|") for p in paths],
        "XMP-dc:Subject": leaves,
        "IPTC:Keywords": leaves if iptc else [],
    }


def without_keywords(tags: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in tags.items() if k not in KEYWORD_FIELDS and k != "IPTC:Keywords"}


# A sidecar as darktable leaves it (edit history, rating, colour labels) after the user
# also gave keywords in digiKam (TagsList) and Lightroom (hierarchicalSubject).
DARKTABLE_SIDECAR = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="4"
   xmp:Label="Red"
   xmpMM:DerivedFrom="dog.jpg"
   darktable:import_timestamp="63850000000000000"
   darktable:xmp_version="5"
   darktable:raw_params="0"
   darktable:auto_presets_applied="1"
   darktable:history_end="2"
   darktable:iop_order_version="4">
   <darktable:colorlabels>
    <rdf:Seq>
     <rdf:li>0</rdf:li>
     <rdf:li>3</rdf:li>
    </rdf:Seq>
   </darktable:colorlabels>
   <darktable:history>
    <rdf:Seq>
     <rdf:li
      darktable:num="0"
      darktable:operation="exposure"
      darktable:enabled="1"
      darktable:modversion="6"
      darktable:params="0000000000000000cdcc4c3d00000000"
      darktable:multi_name=""
      darktable:multi_priority="0"
      darktable:blendop_version="11"
      darktable:blendop_params="gz12eJxjYIAACQYYOOHEgAZY0QVwggZ7CB6pfOygYtaVhIYGOwYYH8K3seXgAwAYBQlN"/>
     <rdf:li
      darktable:num="1"
      darktable:operation="sharpen"
      darktable:enabled="1"
      darktable:modversion="1"
      darktable:params="000000400000003f0000003f"
      darktable:multi_name=""
      darktable:multi_priority="0"
      darktable:blendop_version="11"
      darktable:blendop_params="gz12eJxjYIAACQYYOOHEgAZY0QVwggZ7CB6pfOygYtaVhIYGOwYYH8K3seXgAwAYBQlN"/>
    </rdf:Seq>
   </darktable:history>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Holiday</rdf:li>
     <rdf:li>Alice</rdf:li>
     <rdf:li>{user_flat}</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>Places|Holiday</rdf:li>
     <rdf:li>People|Alice</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
   <digiKam:TagsList>
    <rdf:Seq>
     <rdf:li>Places/Holiday</rdf:li>
     <rdf:li>People/Alice</rdf:li>
    </rdf:Seq>
   </digiKam:TagsList>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""
