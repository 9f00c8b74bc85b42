"""Outputs: getting stored tags to the programs people browse photos with (XMP sidecars
and embedded metadata, digiKam's database). They read the tag store; nothing below
them reads them."""
