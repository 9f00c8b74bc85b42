"""`autotags digikam scan|sync`: tag a digiKam collection straight into digiKam's database."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from pathlib import Path

from .. import locations
from ..collection.policy import POLICIES
from ..outputs.digikam import DigikamWriter
from ..outputs.digikam_database import DigikamDatabase
from ..outputs.digikam_journal import DigikamJournal, journal_for
from ..outputs.digikam_settings import (
    DatabaseLocation,
    digikam_config,
    find_database,
    parse_mysql_address,
)
from .collection import add_scan_options, scan_and_report
from .options import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_SOME_FILES_FAILED,
    HelpFormatter,
    add_db_option,
    positive_int,
)
from .options import open_store as open_tag_store
from .output_reports import print_output_report
from .xmp import add_tag_paths_option

log = logging.getLogger("autotags")


def _open_digikam(args: argparse.Namespace) -> tuple[DigikamDatabase, dict[str, int]]:
    """digiKam's database, checked, and its reachable images (path -> digiKam's id)."""
    database = DigikamDatabase(database_location(args), force=args.force,
                               read_only=args.dry_run)
    try:
        if not args.dry_run:
            database.check_writable()
        collection = database.collection()
    except BaseException:
        database.close()
        raise
    for root in collection.unmounted:
        log.warning("skipped the album root %s: it is not mounted (its images are kept as "
                    "they are)", root)
    log.info("digiKam's database %s: %d images", database.where, len(collection.images))
    return database, {image.path: image.id for image in collection.images}


PASSWORD_VARIABLE = "AUTOTAGS_DIGIKAM_PASSWORD"


def database_location(args: argparse.Namespace) -> DatabaseLocation:
    """--digikam-db as a file or a mysql:// address, else what digiKam's settings say."""
    given = args.digikam_db
    if not given:
        return find_database()
    if given.startswith(("mysql://", "mariadb://")):
        password = os.environ.get(PASSWORD_VARIABLE)
        if password is None:
            password = getpass.getpass(f"password for {given}: ") if sys.stdin.isatty() else ""
        return parse_mysql_address(given, password)
    return Path(given)


def _journal(args: argparse.Namespace) -> DigikamJournal:
    """Beside the tag store, whose folder a scan makes if it is the default one."""
    store = Path(args.db) if args.db else locations.default_database(make_folder=True)
    return DigikamJournal(journal_for(store))


def _writer(args: argparse.Namespace, database: DigikamDatabase, images: dict[str, int],
            journal: DigikamJournal) -> DigikamWriter:
    return DigikamWriter(database, images, tag_paths=args.tag_paths, policy=args.policy,
                         dry_run=args.dry_run, journal=journal)


def cmd_digikam_scan(args: argparse.Namespace) -> int:
    database, images = _open_digikam(args)
    with database, _journal(args) as journal:
        if not images:
            log.warning("digiKam's collection has no reachable images")
            return EXIT_OK
        return scan_and_report(args, sorted(images), [_writer(args, database, images,
                                                              journal)])


def cmd_digikam_sync(args: argparse.Namespace) -> int:
    database, images = _open_digikam(args)
    with database, open_tag_store(args, write=True) as store, _journal(args) as journal:
        writer = _writer(args, database, images, journal)
        writer.write_all(store, sorted(images))
    print_output_report(writer)
    return EXIT_SOME_FILES_FAILED if writer.report.failures else EXIT_OK


def cmd_digikam_undo(args: argparse.Namespace) -> int:
    with DigikamDatabase(database_location(args), force=args.force,
                         read_only=args.list) as database, \
            _journal(args) as journal:
        if args.list:
            for run in journal.runs(database.identity):
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started))
                undone = " (undone)" if run.undone else ""
                print(f"run {run.id} on {when}: {run.tags_created} tags created, "
                      f"{run.links_added} links added, {run.links_removed} removed{undone}")
            return EXIT_OK
        database.check_writable()
        backup = database.back_up()
        run, left = journal.undo(database, args.run)
    print(f"digikam: took back run {run.id} ({run.links_added} links added, "
          f"{run.links_removed} removed, {run.tags_created} tags created)")
    print(f"  backup of the database before undoing: {backup}")
    for reason in left:
        print(f"  left as it is: {reason}")
    return EXIT_SOME_FILES_FAILED if left else EXIT_OK


def _add_digikam_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--digikam-db", metavar="FILE|mysql://USER@HOST:PORT/NAME",
        help=f"digiKam's core database: its file, digikam4.db, or its MariaDB/MySQL "
             f"database (the password from ${PASSWORD_VARIABLE} or a prompt, never in the "
             f"address; mysql://USER@/NAME?socket=PATH for a socket) (default: the one named "
             f"in {digikam_config()}, group [Database Settings])")
    add_tag_paths_option(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would change in digiKam's database, change nothing "
                             "there")
    parser.add_argument("--force", action="store_true",
                        help="write even while digiKam is running (it keeps tags in memory "
                             "and may overwrite or miss the changes: not recommended)")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    digikam = commands.add_parser(
        "digikam", help="tag a digiKam collection into digiKam's own database",
        description="Write machine tags into digiKam's database exactly as digiKam's "
                    "Auto-Tags Assignment does: below the top-level tag 'auto', linked to "
                    "the images. Tags outside 'auto' and digiKam's internal tags are never "
                    "touched. digiKam must be closed. The database is checked first (an "
                    "unknown or newer schema is refused untouched), copied to a backup "
                    "before the first change, written in transactions and checked after.")
    actions = digikam.add_subparsers(dest="digikam_command", metavar="ACTION", required=True)

    scanning = actions.add_parser(
        "scan", help="tag the collection's images, then write their tags into digiKam",
        description="Tag the visible images of every mounted album root of digiKam's "
                    "collection into autotags' tag database (as `autotags scan` does, with "
                    "the same options), then write their machine tags into digiKam's "
                    "database. Album roots that are not mounted are reported and skipped. "
                    "--dry-run still tags into autotags' database, but only prints what "
                    "would change in digiKam's.",
        epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter)
    add_scan_options(scanning)
    _add_digikam_options(scanning)
    scanning.set_defaults(handler=cmd_digikam_scan)

    syncing = actions.add_parser(
        "sync", help="write the tags autotags already holds into digiKam, without inference",
        description="Write the machine tags autotags' tag database holds for the images of "
                    "digiKam's collection into digiKam's database.",
        epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter)
    add_db_option(syncing)
    syncing.add_argument("--policy", choices=POLICIES, default="replace",
                         help="replace: an image's tags below 'auto' in digiKam become the "
                              "stored ones; update: keep those already there and add "
                              "(default: %(default)s)")
    _add_digikam_options(syncing)
    syncing.set_defaults(handler=cmd_digikam_sync)

    undoing = actions.add_parser(
        "undo", help="take back what one run wrote into digiKam's database",
        description="Every run that changes digiKam's database records exactly which rows it "
                    "added and removed (tags created, image-tag links) in a journal beside "
                    "autotags' tag database. `undo` takes one run back (the last by default): "
                    "links it added go, links it removed come back, tags it created go if "
                    "nothing uses them now. Only rows that are still as that run left them "
                    "are touched; what digiKam's user changed since is reported and left. "
                    "The database is copied to a backup first. `digikam sync` writes the "
                    "tags again.",
        epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter)
    undoing.add_argument("run", nargs="?", type=positive_int, default=None, metavar="RUN",
                         help="the run to take back (default: the last one not yet undone; "
                              "--list shows them)")
    undoing.add_argument("--list", action="store_true",
                         help="list the runs recorded for this database, change nothing")
    undoing.add_argument("--digikam-db", metavar="FILE|mysql://USER@HOST:PORT/NAME",
                         help=f"digiKam's core database, as for digikam scan (default: the "
                              f"one named in {digikam_config()})")
    undoing.add_argument("--force", action="store_true",
                         help="undo even while digiKam is running (not recommended)")
    add_db_option(undoing)
    undoing.set_defaults(handler=cmd_digikam_undo)
