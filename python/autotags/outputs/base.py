"""What every output shares: an output copies the store's tags into another program's
records (XMP in files, digiKam's database), checks its policy once, writes only what is
out of date, and reports what it did with the failures apart."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..collection.policy import Policy, check_policy
from ..collection.store import Failure, TagStore
from ..vocabulary.hierarchy import TagPaths


@dataclass
class OutputReport:
    failures: list[Failure] = field(default_factory=list)


class OutputWriter(abc.ABC):
    """Give one to :func:`autotags.scan` as an output, or call :meth:`write` /
    :meth:`write_all` with the images to bring up to date."""

    name: ClassVar[str]     # what the output is called in reports, e.g. "xmp"
    report: OutputReport

    def __init__(self, target: str, *, tag_paths: TagPaths, policy: Policy) -> None:
        check_policy(policy)
        self.target, self.tag_paths, self.policy = target, tag_paths, policy

    def write(self, store: TagStore, paths: Sequence[str]) -> None:
        """Writes the images among `paths` whose tags changed since they were last
        written to this target (what a scan does)."""
        self.write_all(store, store.keywords(self.target).out_of_date(paths))

    @abc.abstractmethod
    def write_all(self, store: TagStore, paths: Sequence[str]) -> None:
        """Writes every image of `paths` that the store knows; what already shows its
        tags is left as it is."""

    @abc.abstractmethod
    def summary(self) -> list[str]:
        """What was done, for people: a line, then any details indented below it."""
