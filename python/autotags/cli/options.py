"""What the commands share: exit codes, option types and the engine options."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable

from .. import locations
from ..collection.cluster import parse_cluster
from ..collection.store import (
    StoreError,
    TagStore,
    full_text_query,
    split_added_tag,
    split_tag_path,
)
from ..models.catalogue import DEFAULT_ACCURACY, MAX_ACCURACY, MIN_ACCURACY, load_catalogue
from ..models.runtime import MAX_MEGAPIXELS, MAX_THREADS, RunSettings

EXIT_OK = 0

EXIT_SOME_FILES_FAILED = 1

EXIT_USAGE = 2

EXIT_SETUP_FAILED = 3

EXIT_BUG = 70  # sysexits' EX_SOFTWARE

EXIT_INTERRUPTED = 130


EXIT_CODES_HELP = """exit status:
  0  every file was handled
  1  some files could not be read (each is reported; the others were still tagged)
  2  wrong arguments
  3  the model, device or database could not be set up
  70  an internal error: a bug in autotags (please report it, with the output of -v)
  130  interrupted with Ctrl-C (a scan keeps everything finished before)"""


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal's width; the exit-status table kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("exit status:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


DB_HELP = ("tag database file (default: $AUTOTAGS_DB, else "
           "$XDG_DATA_HOME/autotags/tags.sqlite3, i.e. ~/.local/share/autotags/tags.sqlite3)")


def database_file(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("needs a file name (leave the option out to use the "
                                         "default database)")
    return text


def existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def run_settings(args: argparse.Namespace) -> RunSettings:
    """How the models of a command run, from the engine options."""
    return RunSettings(device=args.device, accuracy=args.accuracy, threads=args.threads,
                       precision=args.precision, max_megapixels=args.max_megapixels)


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="FILE", type=database_file, help=DB_HELP)


def open_store(args: argparse.Namespace, *, write: bool = False,
               create: bool = False) -> TagStore:
    """Queries open the database read-only; only commands that add tags create it."""
    if not write:
        return TagStore(args.db or locations.default_database(), read_only=True)
    return TagStore(args.db or locations.default_database(make_folder=create), create=create)


def port_number(text: str) -> int:
    return _whole_number(text, 0, 65535, as_range=True)


def accuracy_level(text: str) -> int:
    return _whole_number(text, MIN_ACCURACY, MAX_ACCURACY, as_range=True)


def positive_int(text: str) -> int:
    return _whole_number(text, 1, None)


def _whole_number(text: str, low: int, high: int | None, *, as_range: bool = False) -> int:
    """`text` as a whole number from `low` to `high`; the message names the range, or
    (unless `as_range`) the one bound that was crossed."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if high is not None and as_range and not low <= value <= high:
        bound = f"from {low} to {high}"
    elif value < low:
        bound = f"of at least {low}"
    elif high is not None and value > high:
        bound = f"of at most {high}"
    else:
        return value
    raise argparse.ArgumentTypeError(f"must be a whole number {bound}, got {text!r}")


def thread_count(text: str) -> int:
    return _whole_number(text, 1, MAX_THREADS)


def megapixels(text: str) -> int:
    return _whole_number(text, 1, MAX_MEGAPIXELS)


def score_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def input_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"must be like 640 or 640x480, got {text!r}")
    width = int(match.group(1))
    return width, int(match.group(2) or width)


def threshold_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        low, high = -1.0, -1.0
    if not 0 <= low <= high <= 100:
        raise argparse.ArgumentTypeError(f"must be MIN,MAX percentages, got {text!r}")
    return low, high


def _checked_by(check: Callable[[str], object], error: type[Exception]
                ) -> Callable[[str], str]:
    """An option type that takes the text unchanged once `check` accepts it, before any
    work; `check`'s error becomes argparse's usage error."""
    def checked(text: str) -> str:
        try:
            check(text)
        except error as problem:
            raise argparse.ArgumentTypeError(str(problem)) from None
        return text
    return checked


tag_name = _checked_by(split_tag_path, StoreError)  # people/alice, as the store takes it
added_tag = _checked_by(split_added_tag, StoreError)  # as tag-manual takes it
search_word = _checked_by(lambda word: full_text_query([word], match_any=False), StoreError)
cluster_address = _checked_by(parse_cluster, ValueError)


def model_names(text: str) -> list[str]:
    """The models of a comma-separated --model value, in order, each once."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise argparse.ArgumentTypeError(f"expected model names separated by commas, got {text!r}")
    return names


def add_engine_options(parser: argparse.ArgumentParser, *, several_models: bool = False) -> None:
    """Options shared by every command that runs a model."""
    catalogue = load_catalogue()
    known = ", ".join(sorted(catalogue.models))
    if several_models:
        parser.add_argument(
            "--model", type=model_names, default=[catalogue.default_models[0]],
            metavar="NAME[,NAME...]",
            help=f"models to run, comma-separated; their tags are merged, e.g. a detector "
                 f"and a classifier (default: {catalogue.default_models[0]}). Known: {known}")
    else:
        parser.add_argument(
            "--model", default=catalogue.default_models[0], metavar="NAME",
            help=f"model to run (default: %(default)s); see `autotags models`. Known: {known}")
    parser.add_argument(
        "--device", default="CPU", metavar="D",
        help="OpenVINO device: CPU, GPU (integrated or discrete Intel GPU) or AUTO "
             "(let OpenVINO choose) (default: %(default)s)")
    parser.add_argument(
        "--accuracy", type=accuracy_level, default=DEFAULT_ACCURACY, metavar="1..10",
        help="how sure a tag must be, as digiKam's accuracy slider: 1 keeps the most tags, "
             "10 only the surest; each model maps it onto its own score range "
             "(default: %(default)s)")
    parser.add_argument(
        "--threads", type=thread_count, default=None, metavar="N",
        help="use at most N CPU cores for decoding and inference together, to leave the "
             "machine usable while tagging (default: all cores)")
    parser.add_argument(
        "--precision", choices=("f32", "bf16", "f16"), default=None,
        help="inference precision; by default OpenVINO picks the fastest the CPU supports "
             "(bf16 on recent CPUs, which moves scores by about 0.01-0.04)")
    parser.add_argument(
        "--max-megapixels", type=megapixels, default=300, metavar="MP",
        help="refuse images larger than this many megapixels, which protects against "
             "decompression bombs (default: %(default)s)")
