"""`autotags serve`: the review page over the tag database."""

from __future__ import annotations

import argparse
import contextlib
import logging

from .. import locations
from ..outputs.exiv2_library import require_exiv2
from ..outputs.metadata_files import TARGETS
from .options import EXIT_CODES_HELP, EXIT_OK, HelpFormatter, add_db_option, port_number

log = logging.getLogger("autotags")


def cmd_serve(args: argparse.Namespace) -> int:
    from ..review.server import require_web, serve

    require_web()
    if args.xmp:
        require_exiv2()
    database = args.db or locations.default_database()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the page is meant to stop
        serve(database, host=args.host, port=args.port, token=args.token,
              read_only=args.read_only, xmp=args.xmp, open_browser=args.open)
    log.info("stopped")
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serving = commands.add_parser(
        "serve", help="see and correct the tags in a web page on this machine",
        description="Serve a web page over the tag database: the tag tree, search with the "
                    "same terms as `autotags search`, a grid of thumbnails, every photo with "
                    "the boxes its tags were found in, and corrections (reject or confirm a "
                    "machine tag, add or remove a manual one) for one photo or for all the "
                    "photos of a search at once. Corrections stick as `untag` and "
                    "`tag-manual` do. The page listens on this machine only (127.0.0.1) "
                    "unless --host says otherwise; any other address needs a token, printed "
                    "in the URL. Ctrl-C stops it. Needs pip install 'autotags[web]'.",
        epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter)
    add_db_option(serving)
    serving.add_argument("--host", default="127.0.0.1",
                         help="address to listen on; anything but loopback needs the token "
                              "(default: %(default)s)")
    serving.add_argument("--port", type=port_number, default=8765,
                         help="port to listen on, 0 for any free one (default: %(default)s)")
    serving.add_argument("--token", default=None,
                         help="the token requests must carry (default: none on loopback, a "
                              "random one printed in the URL on any other address)")
    serving.add_argument("--read-only", action="store_true",
                         help="show the tags, change nothing (the database is opened "
                              "read-only)")
    serving.add_argument("--xmp", choices=TARGETS, default=None,
                         help="also write each corrected photo's XMP at once, as `autotags "
                              "xmp write --xmp` does (default: corrections stay in the "
                              "database; the page says how many photos other programs have "
                              "not caught up with)")
    serving.add_argument("--open", action="store_true", help="open the page in a browser")
    serving.set_defaults(handler=cmd_serve)
