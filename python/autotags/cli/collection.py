"""Commands on a collection and its tag database: scan and the queries."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time

from .. import locations
from ..collection.policy import POLICIES, SCAN_MODES
from ..collection.reports import ScanInterrupted, ScanReport
from ..collection.scanning import scan
from ..errors import SettingsError
from ..outputs.base import OutputWriter
from ..tagging.results import without_path
from .options import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FILES_FAILED,
    HelpFormatter,
    add_db_option,
    add_engine_options,
    added_tag,
    cluster_address,
    existing_file,
    open_store,
    score_fraction,
    search_word,
    tag_name,
)
from .output_reports import print_output_report, reports_as_json
from .progress_bar import ProgressBar
from .xmp import add_xmp_options, xmp_writer

log = logging.getLogger("autotags")


def print_scan_report(report: ScanReport, as_json: bool, extras: dict[str, object]) -> None:
    """The summary of a scan; `extras` are the outputs' reports, added to the JSON."""
    if as_json:
        print(json.dumps({**dataclasses.asdict(report),
                          "tagging_seconds": round(report.tagging_seconds, 3),
                          "images_per_second": round(report.images_per_second, 2),
                          **extras}, default=str))
        return
    moves = "".join(f", {count} {what}" for count, what in (
        (report.moved, "moved or renamed (tags kept)"), (report.back, "found again"))
        if count)
    print(f"{report.found} images found, {report.images_stored} stored now, "
          f"{report.newly_missing} newly missing{moves} ({report.elapsed:.1f} s; loading "
          f"models {report.loading_seconds:.1f} s)")
    for name, counts in report.models.items():
        rate = f" in {counts.seconds:.1f} s, {counts.images_per_second:.1f} images/s" \
            if counts.tagged + counts.failed else ""
        settings = f" ({counts.new_settings} of them for the new accuracy)" \
            if counts.new_settings else ""
        print(f"  {name}: {counts.tagged} tagged{settings}, {counts.failed} failed, "
              f"{counts.up_to_date} already up to date{rate}")
    unreadable = [f for f in report.failures if not f.model]
    if unreadable:
        print(f"  {len(unreadable)} paths could not be read")
    _print_not_photos(report.not_photos)
    if report.failures:
        print("failed:")
        for failure in report.failures:
            model = f" [{failure.model}]" if failure.model else ""
            print(f"  {failure.path}{model}: {without_path(failure.error, failure.path)}")


NOT_PHOTOS_LISTED = 20


def _print_not_photos(paths: list[str]) -> None:
    if not paths:
        return
    print(f"skipped, not a photo ({len(paths)} video and audio files):")
    for path in paths[:NOT_PHOTOS_LISTED]:
        print(f"  {path}")
    if len(paths) > NOT_PHOTOS_LISTED:
        print(f"  ... and {len(paths) - NOT_PHOTOS_LISTED} more (all of them with --json)")


def _resume_hint(mode: str) -> str:
    if mode == "new":
        return "run the same command again to continue where it stopped"
    return ("to finish without redoing what is stored, run it again with --mode new: it tags "
            "the images this run did not reach if they are new, changed or were tagged at "
            "another accuracy (with --mode all it starts over)")


def run_scan(args: argparse.Namespace, paths: list[str],
             outputs: list[OutputWriter]) -> ScanReport | None:
    """A scan with the command line's scan options and a progress bar on a terminal;
    None when it was interrupted (and the user was told how to continue)."""
    bar = ProgressBar() if sys.stderr.isatty() and not args.quiet and not args.json else None
    try:
        return scan(paths, db=args.db, model=args.model, mode=args.mode, policy=args.policy,
                    accuracy=args.accuracy, device=args.device, threads=args.threads,
                    precision=args.precision, max_megapixels=args.max_megapixels,
                    retry_failed=args.retry_failed, progress=bar, outputs=outputs,
                    cluster=args.cluster, cluster_security=args.cluster_security)
    except ScanInterrupted as interrupted:
        log.warning("interrupted: %d images stored in %s; %s", interrupted.report.images_stored,
                    args.db or locations.default_database(), _resume_hint(args.mode))
        return None
    finally:
        if bar:
            bar.finish()


def scan_and_report(args: argparse.Namespace, paths: list[str],
                    outputs: list[OutputWriter]) -> int:
    """A scan that also brings `outputs` up to date, and what every one of them did."""
    report = run_scan(args, paths, outputs)
    if report is None:
        return EXIT_INTERRUPTED
    print_scan_report(report, args.json, reports_as_json(outputs))
    if not args.json:
        for output in outputs:
            print_output_report(output)
    failed = report.failures or any(output.report.failures for output in outputs)
    return EXIT_SOME_FILES_FAILED if failed else EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    writer = xmp_writer(args)
    return scan_and_report(args, args.paths, [writer] if writer else [])


def cmd_search(args: argparse.Namespace) -> int:
    if not args.terms and not args.text:
        raise SettingsError("search needs a TERM, or words to find in photos' text with "
                            "--text WORD...")
    if args.min_score is not None and args.max_score is not None and \
            args.min_score > args.max_score:
        raise SettingsError(f"--min-score {args.min_score:g} is above --max-score "
                            f"{args.max_score:g}: no tag can be both")
    with open_store(args) as store:
        paths = store.search(args.terms, text=args.text or (), match_any=args.any,
                             min_score=args.min_score, max_score=args.max_score,
                             include_missing=args.include_missing)
    for path in paths:
        print(path)
    if not paths:
        joined = (" or " if args.any else " and ").join(
            [repr(t) for t in args.terms] + [f"text {w!r}" for w in args.text or ()])
        log.warning("no images match %s", joined)
    return EXIT_OK if paths else EXIT_SOME_FILES_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = store.image_info(args.path)
        tags = store.tags_of(args.path)
        rejected = store.rejected_tags(args.path)
        lines = store.text_of(args.path)
    if info is None:
        log.error("error: %s is not in %s", args.path, args.db or locations.default_database())
        return EXIT_SOME_FILES_FAILED
    if args.json:
        print(json.dumps({**info, "tags": [dataclasses.asdict(t) for t in tags],
                          "rejected": rejected,
                          "text": [{"text": line.text, "confidence": round(line.confidence, 4),
                                    "box": [list(corner) for corner in line.box],
                                    "model": line.source} for line in lines]}))
        return EXIT_OK
    size = f" ({info['width']}x{info['height']})" if info["width"] else ""
    print(f"{info['path']}{size}{' [missing]' if info['missing'] else ''}")
    for tag in tags:
        confidence = f"{tag.confidence:4.0%}" if tag.confidence is not None else "    "
        count = f" x{tag.instances}" if tag.instances > 1 else ""
        print(f"  {tag.path:<32} {confidence}  {tag.source}{count}")
        for x1, y1, x2, y2, score in tag.boxes:
            print(f"      at ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f}) {score:4.0%}")
    for path in rejected:
        print(f"  rejected: {path} (no scan adds it back; tag-manual confirms it again)")
    if lines:
        print(f"  text ({len(lines)} lines):")
    for line in lines:
        print(f"    {line.text}  ({line.confidence:.0%}, {line.source})")
    for scanned in info["scans"]:  # type: ignore[attr-defined]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(scanned["scanned_at"]))
        outcome = f"failed: {without_path(scanned['error'], str(info['path']))}" \
            if scanned["error"] else "ok"
        print(f"  scanned by {scanned['model']} on {when} "
              f"(accuracy {scanned['settings'].get('accuracy')}): {outcome}")
    return EXIT_OK


def cmd_tags(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        tree = store.tag_tree()
    if args.json:
        for node in tree:
            print(json.dumps(dataclasses.asdict(node)))
        return EXIT_OK
    for node in tree:
        print(f"{'  ' * node.depth}{node.path.rsplit('/', 1)[-1]} ({node.images})")
    return EXIT_OK


def cmd_tag_manual(args: argparse.Namespace) -> int:
    if not os.path.exists(args.path):
        log.warning("%s does not exist; tagging it anyway", args.path)
    with open_store(args, write=True, create=True) as store:
        store.add_manual_tag(args.path, args.tag)
    return EXIT_OK


def cmd_untag(args: argparse.Namespace) -> int:
    with open_store(args, write=True) as store:
        removed = store.remove_manual_tag(args.path, args.tag)
    if not removed:
        log.error("error: %s has no tag %r", args.path, args.tag)
    return EXIT_OK if removed else EXIT_SOME_FILES_FAILED


def add_scan_options(parser: argparse.ArgumentParser) -> None:
    """What every command that scans takes: database, models, mode, policy, ..."""
    add_db_option(parser)
    add_engine_options(parser, several_models=True)
    parser.add_argument(
        "--mode", choices=SCAN_MODES, default="new",
        help="new: only images this model has not tagged yet, that changed since (size or "
             "modification time) or that it tagged at another --accuracy, so a rescan of an "
             "unchanged collection does no work; all: tag everything again "
             "(default: %(default)s)")
    parser.add_argument(
        "--policy", choices=POLICIES, default="replace",
        help="replace: drop the auto tags this model gave an image before and store the new "
             "ones, so tags follow the current model and settings instead of piling up; this "
             "is the default, as in digiKam. update: keep earlier auto tags and add new ones. "
             "Manual tags and other models' tags are never touched either way "
             "(default: %(default)s)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="try again the files that failed before even if unchanged")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object")
    parser.add_argument(
        "--cluster", metavar="local:N|tls://HOST:PORT", type=cluster_address, default=None,
        help="tag on a Dask cluster: local:N starts N worker processes here (at most one "
             "per core), tls://HOST:PORT uses a running Dask scheduler over TLS "
             "(tcp://HOST:PORT without encryption: anyone who reaches that port can run code "
             "on the workers). This machine plans and writes the database; every worker must "
             "see the photos at the same paths (checked first). Needs "
             "pip install 'autotags[cluster]' (default: tag on this machine)")
    parser.add_argument(
        "--cluster-security", metavar="FILE", type=existing_file, default=None,
        help="TLS settings for a tls:// cluster, in Dask's configuration format "
             "(distributed: comm: tls: ca-file, client: cert, key; paths relative to the "
             "file's folder) (default: Dask's own configuration, ~/.config/dask/)")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scanning = commands.add_parser(
        "scan", help="tag a photo collection into the tag database",
        description="Tag every image below the given folders (and any files given) into the "
                    "tag database, so that `autotags search` can find them. Folders are "
                    "walked recursively; hidden files and folders are skipped; symbolic links "
                    "are followed without looping. Camera RAW files are read through their "
                    "embedded preview; videos and sound files are listed as skipped. "
                    "Files that cannot be read are recorded "
                    "with the reason and retried only when they change (or --retry-failed). "
                    "Results are committed every few seconds: Ctrl-C or a crash loses at "
                    "most the last moments, and running the same command again continues.",
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter)
    scanning.add_argument("paths", nargs="+", metavar="PATH", help="folders or image files")
    add_scan_options(scanning)
    add_xmp_options(scanning)
    scanning.set_defaults(handler=cmd_scan)

    searching = commands.add_parser(
        "search", help="print the images carrying tags",
        description="Print the paths of images matching every TERM, one per line. A term "
                    "matches, ignoring case and as whole words, a tag's name at any level "
                    "('cat' finds auto/cat) or full path ('auto/cat', 'people/alice'), other "
                    "names of a label ('motorbike' finds motorcycle, 'sofa' couch) and the "
                    "categories above it ('dog' finds malamute, 'animal' finds both, 'fruit' "
                    "finds banana). With --text, the words are looked for in the text "
                    "read in photos (by a text model such as pp-ocrv4). Exit status 1 if "
                    "nothing matches.")
    searching.add_argument("terms", nargs="*", metavar="TERM", type=tag_name)
    searching.add_argument("--text", nargs="+", metavar="WORD", type=search_word,
                           help="images whose text holds every WORD (with --any: one of them), "
                                "case and accents ignored; 'word*' matches words starting so. "
                                "With TERMs too, images must match both")
    searching.add_argument("--any", action="store_true",
                           help="images matching any of the terms (or words), not all of them")
    searching.add_argument("--min-score", type=score_fraction, default=None, metavar="S",
                           help="ignore machine tags below this confidence, 0..1 (manual "
                                "tags always count)")
    searching.add_argument("--max-score", type=score_fraction, default=None, metavar="S",
                           help="only machine tags up to this confidence, 0..1: the doubtful "
                                "ones, to check (the best score any model gave; tags added or "
                                "confirmed by hand do not count)")
    add_db_option(searching)
    searching.add_argument("--include-missing", action="store_true",
                           help="also list images that were not found at the last scan")
    searching.set_defaults(handler=cmd_search)

    showing = commands.add_parser("show", help="print an image's tags and scan history")
    showing.add_argument("path", metavar="PATH")
    add_db_option(showing)
    showing.add_argument("--json", action="store_true", help="print one JSON object")
    showing.set_defaults(handler=cmd_show)

    listing = commands.add_parser("tags", help="print the tag tree with image counts")
    add_db_option(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per tag")
    listing.set_defaults(handler=cmd_tags)

    manual = commands.add_parser(
        "tag-manual", help="add a manual tag to an image, or confirm a machine tag",
        description="Add a tag by hand, e.g. `people/alice`. Manual tags are never changed "
                    "by scans. A tag below `auto/` (e.g. `auto/dog`) confirms a machine tag: "
                    "it then survives Replace scans, and a rejection of it is lifted.")
    manual.add_argument("path", metavar="PATH")
    manual.add_argument("tag", metavar="TAG", type=added_tag)
    add_db_option(manual)
    manual.set_defaults(handler=cmd_tag_manual)

    untag = commands.add_parser(
        "untag", help="remove a manual tag, or reject a machine tag",
        description="Remove a tag added by hand. A tag below `auto/` (e.g. `auto/car`) is "
                    "rejected: it is removed whichever model made it, and no later scan of "
                    "this image adds it back (any mode or policy, also after the file is "
                    "edited); `show` lists it as rejected, and `tag-manual` confirms it again.")
    untag.add_argument("path", metavar="PATH")
    untag.add_argument("tag", metavar="TAG", type=tag_name)
    add_db_option(untag)
    untag.set_defaults(handler=cmd_untag)
