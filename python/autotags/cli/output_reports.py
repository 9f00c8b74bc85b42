"""How commands print what an output did, whichever output it is."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..collection.store import Failure
from ..outputs.base import OutputWriter
from ..tagging.results import without_path


def print_output_report(writer: OutputWriter) -> None:
    for line in writer.summary():
        print(line)
    print_failures(writer.report.failures)


def print_failures(failures: Sequence[Failure]) -> None:
    if failures:
        print("failed:")
    for failure in failures:
        print(f"  {failure.path}: {without_path(failure.error, failure.path)}")


def reports_as_json(writers: Sequence[OutputWriter]) -> dict[str, object]:
    return {writer.name: dataclasses.asdict(writer.report) for writer in writers}
