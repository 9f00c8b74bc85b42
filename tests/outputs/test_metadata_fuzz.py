"""Holds the metadata writer to the decoder's standard (issue: hardening): a bounded
mutation fuzz run over real sidecars and the metadata of real JPEG, TIFF and PNG files,
through the real writer in child processes, checked with exiftool (see metadata_fuzz).
AUTOTAGS_METADATA_FUZZ_SECONDS sets how long (default 60)."""

from __future__ import annotations

import os

from helpers.metadata_fuzz import make_seeds, run


def test_damaged_metadata_is_refused_untouched_or_written_keeping_the_rest(
        tmp_path, photos, vips_cli):
    seconds = float(os.environ.get("AUTOTAGS_METADATA_FUZZ_SECONDS", "60"))
    seeds = make_seeds(photos["dog"], tmp_path / "seeds", vips_cli)
    assert {s.name for s in seeds} == {"photo.jpg.xmp", "photo.jpg", "photo.tif", "photo.png"}
    assert all(s.regions for s in seeds)
    outcome = run(seeds, photos["dog"], tmp_path / "cases", seconds)
    print(f"metadata fuzz: {outcome.cases} damaged files, {outcome.written} written, "
          f"{outcome.refused} refused untouched")
    assert not outcome.problems, "\n".join(outcome.problems[:20])
    assert outcome.written and outcome.refused  # both paths were taken
