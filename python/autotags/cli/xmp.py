"""Tags in the files other programs read: `xmp write`, `xmp read`, and the options
with which `scan` writes them too."""

from __future__ import annotations

import argparse
import logging

from ..collection.discovery import discover
from ..collection.policy import POLICIES
from ..collection.store import Failure
from ..errors import SettingsError
from ..outputs.exiv2_library import require_exiv2
from ..outputs.metadata_files import SIDECAR_NAMES, TARGETS
from ..outputs.xmp import XmpWriter, import_keywords
from .options import EXIT_OK, EXIT_SOME_FILES_FAILED, add_db_option, open_store
from .output_reports import print_failures, print_output_report

log = logging.getLogger("autotags")

TAG_PATHS_HELP = (
    "how machine tags are named in other programs: flat is auto/malamute, the same "
    "names digiKam's own Auto-Tags Assignment gives, so both tools' tags meet and "
    "Replace swaps either; hierarchical is auto/animal/dog/malamute, which lets a photo "
    "manager's tag tree be browsed by category (default: %(default)s)")


def add_xmp_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """--xmp, --sidecar-name and --tag-paths, for every command that writes XMP."""
    parser.add_argument(
        "--xmp", choices=TARGETS, default="sidecar" if required else None,
        help="also write each image's tags, when they changed, into an XMP sidecar beside "
             "it (photo.jpg.xmp) or embedded in the image file (JPEG, TIFF, DNG, PNG, "
             "WebP; rewritten through a temporary copy, pixels untouched). Keywords "
             "outside auto/ and every other field stay as they were "
             + ("(default: %(default)s)" if required else "(default: write no files)"))
    parser.add_argument(
        "--sidecar-name", choices=SIDECAR_NAMES, default="full",
        help="name of new sidecars: full is photo.jpg.xmp (digiKam, darktable, Immich), "
             "base is photo.xmp (Lightroom, for RAW files). An existing sidecar under "
             "either name is updated (default: %(default)s)")
    add_tag_paths_option(parser)


def add_tag_paths_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag-paths", choices=("flat", "hierarchical"), default="flat",
                        help=TAG_PATHS_HELP)


def xmp_writer(args: argparse.Namespace) -> XmpWriter | None:
    """The writer the options ask for; checked before any work, so that a missing
    library stops a scan before it starts rather than after it tagged everything."""
    if args.xmp is None:
        return None
    require_exiv2()
    return XmpWriter(args.xmp, sidecar_name=args.sidecar_name, tag_paths=args.tag_paths,
                     policy=args.policy)


def _image_paths(args: argparse.Namespace) -> tuple[list[str], list[Failure]]:
    found = discover(args.paths)
    problems = [Failure(p.path, "", p.reason) for p in found.problems]
    return [f.path for f in found.files], problems


def cmd_xmp_write(args: argparse.Namespace) -> int:
    writer = xmp_writer(args)
    if writer is None:
        raise SettingsError("--xmp needs sidecar or embed")
    paths, problems = _image_paths(args)
    with open_store(args, write=True) as store:
        writer.write_all(store, paths)
    writer.report.failures[:0] = problems
    print_output_report(writer)
    return EXIT_SOME_FILES_FAILED if writer.report.failures else EXIT_OK


def cmd_xmp_read(args: argparse.Namespace) -> int:
    paths, problems = _image_paths(args)
    with open_store(args, write=True, create=True) as store:
        report = import_keywords(store, paths)
    failures = problems + report.failures
    print(f"xmp: {report.tags_added} tags imported from {report.files} files with keywords "
          f"({len(paths)} images looked at, {len(failures)} failed)")
    print_failures(failures)
    return EXIT_SOME_FILES_FAILED if failures else EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    xmp = commands.add_parser(
        "xmp", help="write tags into XMP sidecars or image files, or read keywords from them",
        description="Photo managers read keywords from XMP: digiKam (with 'Read from sidecar "
                    "files' on), darktable, Lightroom, Immich, PhotoPrism, Shotwell. "
                    "`xmp write` puts the stored tags there; `xmp read` imports the keywords "
                    "people already have, so that `autotags search` finds them too.")
    actions = xmp.add_subparsers(dest="xmp_command", metavar="ACTION", required=True)

    writing = actions.add_parser(
        "write", help="write the stored tags of images into their XMP, without inference",
        description="Write what the tag database holds for the images below PATH into "
                    "their XMP: Xmp.digiKam.TagsList, Xmp.lr.hierarchicalSubject, "
                    "Xmp.MicrosoftPhoto.LastKeywordXMP and Xmp.dc.subject (and IPTC "
                    "Keywords when embedding in JPEG or TIFF). Only keywords below auto/ "
                    "are autotags': under --policy replace they are swapped for the stored "
                    "ones (on images a model tagged), under update kept; tags rejected with "
                    "`untag` are removed, manual tags added. Files already up to date are "
                    "not touched.")
    writing.add_argument("paths", nargs="+", metavar="PATH", help="folders or image files")
    add_xmp_options(writing, required=True)
    writing.add_argument("--policy", choices=POLICIES, default="replace",
                         help="replace: the file's keywords below auto/ become the stored "
                              "ones; update: keep those already there and add "
                              "(default: %(default)s)")
    add_db_option(writing)
    writing.set_defaults(handler=cmd_xmp_write)

    reading = actions.add_parser(
        "read", help="import the keywords already in images' XMP or IPTC as tags",
        description="Read the keywords of each image below PATH from its sidecar "
                    "(photo.jpg.xmp or photo.xmp), else from the XMP or IPTC in the file: "
                    "full paths from Xmp.digiKam.TagsList, Xmp.MicrosoftPhoto.LastKeywordXMP "
                    "or Xmp.lr.hierarchicalSubject, else the names in Xmp.dc.subject or IPTC "
                    "Keywords. They become manual tags (never changed by scans); keywords "
                    "below auto/ become machine tags of source 'xmp'. Files are not changed.")
    reading.add_argument("paths", nargs="+", metavar="PATH", help="folders or image files")
    add_db_option(reading)
    reading.set_defaults(handler=cmd_xmp_read)
