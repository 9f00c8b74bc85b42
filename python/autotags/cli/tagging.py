"""Commands that run a model over files without a database: tag, bench."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from ..tagging.results import ImageTags, without_path
from .options import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_SOME_FILES_FAILED,
    HelpFormatter,
    add_engine_options,
    positive_int,
    run_settings,
)

log = logging.getLogger("autotags")


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


def _describe(results: list[ImageTags]) -> str:
    """One line for one image: its size and each model's tags (named when several)."""
    first = results[0]
    if not first.ok:
        return f"{first.path}: error: {without_path(first.error or '', first.path)}"
    # Camera RAW files say what was looked at: the embedded preview or the raw data.
    through = {"preview": ", from its preview", "raw": ", from its raw data"}.get(
        first.source or "", "")
    size = f"({first.width}x{first.height}{through})"
    if len(results) == 1:
        return f"{first.path} {size}: {_describe_tags(first)}"
    parts = [f"{_describe_tags(r)} [{r.model}]" for r in results]
    return f"{first.path} {size}: {'; '.join(parts)}"


def _per_path(stream: Iterator[tuple[int, int, ImageTags]], models: int
              ) -> Iterator[list[ImageTags]]:
    """Every model's result for a path together (each path has one from each model)."""
    results: list[ImageTags] = []
    for _, _, result in stream:
        results.append(result)
        if len(results) == models:
            yield results
            results = []


def cmd_tag(args: argparse.Namespace) -> int:
    from ..tagging.tagger import Tagger, tag_together

    settings = run_settings(args)
    taggers = [Tagger.from_settings(name, settings) for name in args.model]
    failures = 0
    # One pipeline, each file decoded once for all models; results come in path order.
    for results in _per_path(tag_together(taggers, args.paths), len(taggers)):
        failures += not all(r.ok for r in results)
        if args.json:
            for result in results:
                # ASCII escapes keep it valid JSON when a file name is not UTF-8: the
                # name comes back byte for byte through os.fsencode(json.loads(line)).
                print(json.dumps(result.to_json()), flush=True)
        else:
            print(_describe(list(results)), flush=True)
    if failures and not args.json:
        log.warning("%d of %d files could not be tagged", failures, len(args.paths))
    return EXIT_SOME_FILES_FAILED if failures else EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from ..benchmark import compare, run_benchmark
    from ..collection.discovery import discover
    from ..tagging.tagger import Tagger

    found = discover(args.paths)
    paths = [f.path for f in found.files][: args.limit]
    if not paths:
        log.error("error: no images found in %s", " ".join(map(str, args.paths)))
        for problem in found.problems:
            log.error("  %s: %s", problem.path, problem.reason)
        return EXIT_SOME_FILES_FAILED
    settings = dataclasses.replace(run_settings(args), batch=args.batch)
    taggers = [Tagger.from_settings(name, settings) for name in args.model]
    report = run_benchmark(paths, taggers, threads=args.threads, rounds=args.rounds)
    comparison = None
    if args.against:
        other = Tagger.from_settings(args.against, settings)
        comparison = compare(paths, report, taggers[0], other, threads=args.threads)
    for warning in report.warnings:
        log.warning("warning: %s", warning)
    if args.json:
        print(json.dumps({**dataclasses.asdict(report), "model": report.model,
                          **{name: getattr(report, name) for name in (
                              "end_to_end", "decode_only", "inference_only", "inference_each",
                              "bound", "ratio_to_bound", "ratio_spread")},
                          "against": dataclasses.asdict(comparison) if comparison else None}))
        return EXIT_OK
    _print_bench(report, comparison)
    return EXIT_OK


def _print_bench(report: Any, comparison: Any) -> None:
    print(f"{report.model} on {report.images} images, {len(os.sched_getaffinity(0))} cores, "
          + ("one round" if len(report.rounds) == 1 else
             f"the median of {len(report.rounds)} rounds"))
    several = len(report.models) > 1
    rates = [("end to end (scan, results stored)", report.end_to_end),
             ("decode only (once for all models)" if several else "decode only",
              report.decode_only)]
    rates += [(f"inference only, {name}" if several else "inference only", rate)
              for name, rate in zip(report.models, report.inference_each, strict=True)]
    rates.append(("bound 1/(1/decode + sum 1/inference)" if several else
                  "bound 1/(1/decode + 1/inference)", report.bound))
    ratios = [r.ratio for r in report.rounds]
    rows = [(label, f"{rate:.1f}", " images/s") for label, rate in rates] + [
        ("end to end / bound", f"{report.ratio_to_bound:.2f}",
         f"  (rounds {min(ratios):.2f}-{max(ratios):.2f})"),
        ("other processes' share of the cores", f"{report.others_cpu_share:.0%}", "")]
    if comparison:
        rows += [(f"{comparison.model} on the same images, as a ratio to {report.models[0]}",
                  "", ""),
                 ("inference only", f"{comparison.inference_speedup:.2f}", "x"),
                 ("end to end", f"{comparison.end_to_end_speedup:.2f}", "x"),
                 ("tags agree (shared image-label pairs)", f"{comparison.agreement:.2f}", "")]
    _print_rows(rows)


def _print_rows(rows: list[tuple[str, str, str]]) -> None:
    """Labels in one column, numbers right-aligned in the next; a row without a number
    is a heading of its own."""
    width = max(len(label) for label, number, _ in rows if number)
    for label, number, unit in rows:
        print(f"  {label:{width}} {number:>8}{unit}" if number else label)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tag = commands.add_parser(
        "tag", help="tag image files and print what each contains",
        description="Tag image files and print what each contains. The model is installed "
                    "on first use. Files that cannot be read are reported one by one and the "
                    "others are still tagged. Folders are not searched: use `autotags scan`.",
        epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter)
    tag.add_argument("paths", nargs="+", metavar="PATH", help="image files (JPEG, PNG, TIFF, "
                     "WebP, GIF, HEIC/AVIF, JPEG XL, ... whatever libvips reads)")
    add_engine_options(tag, several_models=True)
    tag.add_argument(
        "--json", action="store_true",
        help="print one JSON object per line: path, width, height (original pixels, EXIF "
             "orientation applied), model, tags [{label, score, box: [x1, y1, x2, y2] in "
             "original pixels, or null for classifier labels}], error (null on success)")
    tag.set_defaults(handler=cmd_tag)

    benching = commands.add_parser(
        "bench", help="measure throughput on your photos against this machine's bound",
        description="Measure, on the same images and models in one run: images per second end "
                    "to end (a scan into a throw-away database), decoding alone (all cores, "
                    "one decode for all the models) and each model's inference alone (all "
                    "infer requests busy), and the ratio of the end-to-end rate to the bound "
                    "1/(1/decode + sum of 1/inference). The measurements run interleaved in "
                    "rounds and the median round is reported with the spread of all of them "
                    "and the share of the cores other processes took meanwhile; a warning "
                    "says when either makes the figures doubtful. Ratios hold on busy machines "
                    "where absolute rates do not. Nothing is stored.")
    benching.add_argument("paths", nargs="+", metavar="PATH", help="folders or image files")
    add_engine_options(benching, several_models=True)
    benching.add_argument("--batch", type=positive_int, default=1, metavar="N",
                          help="images per inference (default: %(default)s)")
    benching.add_argument("--limit", type=positive_int, default=None, metavar="N",
                          help="use at most N images")
    benching.add_argument(
        "--against", metavar="NAME",
        help="also measure model NAME on the same images (e.g. the INT8 copy made by "
             "`autotags models quantize`) and report its speed as a ratio to --model and how "
             "far their tags agree")
    benching.add_argument("--rounds", type=positive_int, default=5, metavar="N",
                          help="rounds of measurements, the median reported "
                               "(default: %(default)s)")
    benching.add_argument("--json", action="store_true", help="print one JSON object")
    benching.set_defaults(handler=cmd_bench)
