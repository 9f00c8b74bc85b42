"""Crash quarantine: finding the file that killed the process.

A bug in a third-party decoder can kill the whole process, and a scan that dies on the
same file every time could never finish its collection. Scans therefore mark the files
they hand to the engine (see :meth:`TagStore.mark_in_flight`); marks left behind name
the files a dead process was working on. Those files are decoded again here one by one,
each in a child process, and the file that kills its child is recorded as failed, so
the scan can tag the rest. It is tried again only when it changes, or with
``--retry-failed``.

    python -m autotags.collection.quarantine   (the child: JSON job on standard input)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys

from .. import _engine
from ..models.runtime import decoder_from

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 600


def crash_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exit status {returncode}"
    return (f"the decoder crashed on this file ({how}); it is skipped until it changes, "
            "or tried again with --retry-failed")


def find_crashing_files(paths: list[str], decoding: dict[str, object]) -> dict[str, str]:
    """Decodes each of `paths` as `decoding` describes, in child processes; returns the
    files that killed their child, with the reason."""
    crashed: dict[str, str] = {}
    remaining = list(paths)
    while remaining:
        job = json.dumps({"decoding": decoding, "paths": remaining})
        try:
            child = subprocess.run([sys.executable, "-m", __name__], input=job,
                                   capture_output=True, text=True, errors="surrogateescape",
                                   timeout=PROBE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("checking the files a crashed scan left behind took too long; "
                        "they will be tagged again")
            return crashed
        if child.returncode == 0:
            return crashed
        started = [int(line.split()[1]) for line in child.stdout.splitlines()
                   if line.startswith("started ")]
        if not started:  # the child died before decoding anything: nothing to learn
            log.warning("could not check the files a crashed scan left behind: %s",
                        child.stderr.strip()[-500:])
            return crashed
        culprit = started[-1]
        crashed[remaining[culprit]] = crash_reason(child.returncode)
        remaining = remaining[culprit + 1:]
    return crashed


def _probe() -> None:
    """The child: decodes the job's files in order, saying on standard output (the
    channel to its parent) which one it is on."""
    job = json.loads(sys.stdin.read())
    fit, max_pixels = decoder_from(job["decoding"])
    for index, path in enumerate(job["paths"]):
        sys.stdout.write(f"started {index}\n")
        sys.stdout.flush()
        # An ordinary per-file error is no crash: the scan reports it itself.
        with contextlib.suppress(_engine.ImageError, OSError, ValueError):
            _engine.load_image(os.fsencode(path), fit, max_pixels)


if __name__ == "__main__":
    _probe()
