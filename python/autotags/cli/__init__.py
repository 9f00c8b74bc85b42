"""The `autotags` command line: one module per group of commands."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence

from .. import __version__, locations
from ..errors import AutotagsError, SettingsError
from . import collection, digikam, models, serve, tagging, xmp
from .options import (
    EXIT_BUG,
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SETUP_FAILED,
    EXIT_USAGE,
    HelpFormatter,
)

log = logging.getLogger("autotags")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotags",
        description="Auto-tag photos with neural networks: find the objects in each image "
                    "so that a collection can be searched for 'cat', 'bicycle' or 'cup'.",
        epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"autotags {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debugging details")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for module in (tagging, collection, xmp, digikam, serve, models):
        module.add_commands(commands)
    return parser


def limit_cores(count: int) -> None:
    """Keep this process, and every thread it starts from now on, on `count` cores, so
    that decoding and inference together never take more than the user allowed. The
    cores are the least busy ones: pinned to a core another process keeps busy, a scan
    would get half of it while a free core waited."""
    available = sorted(os.sched_getaffinity(0))
    if count < len(available):
        os.sched_setaffinity(0, least_busy_cores(available, count))


def least_busy_cores(cores: list[int], count: int, *, seconds: float = 0.2) -> list[int]:
    """The `count` of `cores` that were idle most over a short look at /proc/stat (the
    first ones, if it cannot be read)."""
    before = _idle_times()
    time.sleep(seconds)
    after = _idle_times()
    idle = {core: after.get(core, 0) - before.get(core, 0) for core in cores}
    return sorted(sorted(cores, key=lambda core: -idle[core])[:count])


def _idle_times() -> dict[int, int]:
    """Per core: time idle or waiting for I/O so far, in clock ticks."""
    found: dict[int, int] = {}
    with contextlib.suppress(OSError, ValueError), open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                found[int(name[3:])] = int(values[3]) + int(values[4])
    return found


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.getLogger().setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    # Before the parser: building it reads the catalogue, which may warn.
    logging.basicConfig(level=logging.INFO, format="autotags: %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    # File names are bytes; print the ones that are not UTF-8 unchanged, as ls does.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    # A polite `kill` stops every command as Ctrl-C does: finished work is kept, exit 130.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if getattr(args, "threads", None):
        limit_cores(args.threads)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except sqlite3.Error as error:
        database = getattr(args, "db", None) or locations.default_database()
        log.error("error: the tag database %s failed: %s (is the disk full or read-only, or "
                  "another program holding the file?)", database, error)
        return EXIT_SETUP_FAILED
    except SettingsError as error:  # arguments that only the command itself can judge
        log.error("error: %s", error)
        return EXIT_USAGE
    except (AutotagsError, OSError) as error:
        log.error("error: %s", error)
        return EXIT_SETUP_FAILED
    except Exception as error:
        return _report_bug(error, verbose=args.verbose)


def _report_bug(error: Exception, *, verbose: bool) -> int:
    if verbose:
        log.error("internal error", exc_info=error)
    log.error("internal error: %s: %s\nThis is a bug in autotags %s. Please report it with "
              "the command you ran%s.", type(error).__name__, error, __version__,
              "" if verbose else " and what it prints with -v (the details)")
    return EXIT_BUG
