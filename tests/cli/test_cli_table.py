"""Protects the command line's promise (issue: no traceback ever reaches a user): every
wrong flag, bad value, bad path and bad database gives its documented exit status
(0 fine, 1 some files failed, 2 usage, 3 setup or database) and a short message, never
a Python traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

USAGE, FILES_FAILED, SETUP = 2, 1, 3


@pytest.fixture(scope="module")
def places(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("table")
    good_db = root / "good.sqlite3"
    subprocess.run([sys.executable, "-m", "autotags.cli", "-q", "scan", str(photos["cat"]),
                    "--db", str(good_db), "--precision", "f32"], check=True,
                   capture_output=True)
    foreign = root / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t(x)")
    db.close()
    garbage = root / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    not_image = root / "notes.jpg"
    not_image.write_text("hello")
    return {"root": root, "good_db": good_db, "foreign": foreign, "garbage": garbage,
            "cat": photos["cat"], "not_image": not_image}


CASES = [
    # wrong commands and flags
    ("no command", [], USAGE),
    ("unknown command", ["frobnicate"], USAGE),
    ("unknown flag", ["tag", "--colour", "{cat}"], USAGE),
    ("tag without paths", ["tag"], USAGE),
    ("accuracy too high", ["tag", "--accuracy", "11", "{cat}"], USAGE),
    ("accuracy not a number", ["scan", "{cat}", "--accuracy", "high"], USAGE),
    ("threads zero", ["tag", "--threads", "0", "{cat}"], USAGE),
    ("megapixels negative", ["tag", "--max-megapixels", "-5", "{cat}"], USAGE),
    ("unknown precision", ["tag", "--precision", "f8", "{cat}"], USAGE),
    ("unknown mode", ["scan", "{cat}", "--mode", "some"], USAGE),
    ("empty model list", ["scan", "{cat}", "--model", ","], USAGE),
    ("bad threshold", ["models", "add", "{cat}", "--name", "x", "--threshold", "90,10"], USAGE),
    ("xmp without an action", ["xmp"], USAGE),
    ("xmp write without paths", ["xmp", "write"], USAGE),
    ("unknown xmp target", ["scan", "{cat}", "--xmp", "inline"], USAGE),
    ("unknown tag paths", ["xmp", "write", "{cat}", "--tag-paths", "deep"], USAGE),
    ("digikam without an action", ["digikam"], USAGE),
    ("bad cluster", ["scan", "{cat}", "--cluster", "udp://x"], USAGE),
    ("more local workers than cores", ["scan", "{cat}", "--cluster", "local:100"], USAGE),
    ("megapixels past any photo", ["tag", "--max-megapixels", "20000000000000", "{cat}"],
     USAGE),
    ("megapixels past any photo in a scan",
     ["scan", "{cat}", "--max-megapixels", "20000000000000"], USAGE),
    ("threads past any machine", ["tag", "--threads", "5000000000", "{cat}"], USAGE),
    ("an empty tag", ["tag-manual", "{cat}", "", "--db", "{good_db}"], USAGE),
    ("a tag with an empty level", ["untag", "{cat}", "a//b", "--db", "{good_db}"], USAGE),
    ("confirm the root of machine tags", ["tag-manual", "{cat}", "auto", "--db", "{good_db}"],
     USAGE),
    ("reject the root of machine tags", ["untag", "{cat}", "/AUTO/", "--db", "{good_db}"],
     FILES_FAILED),  # no such manual tag: the root is never a machine tag
    ("an empty --db", ["tag-manual", "{cat}", "x", "--db", ""], USAGE),
    ("an empty --db for a query", ["search", "cat", "--db", ""], USAGE),
    ("search without a term", ["search", "--db", "{good_db}"], USAGE),
    ("search for an empty term", ["search", "", "--db", "{good_db}"], USAGE),
    ("search for a term with an empty level", ["search", "a//b", "--db", "{good_db}"], USAGE),
    ("search for a word without letters", ["search", "--text", "*", "--db", "{good_db}"],
     USAGE),
    ("search a score range that is empty",
     ["search", "cat", "--min-score", "0.9", "--max-score", "0.1", "--db", "{good_db}"], USAGE),
    ("serve on a port past 65535", ["serve", "--port", "70000"], USAGE),
    ("serve on a port that is not a number", ["serve", "--port", "http"], USAGE),
    ("serve with an unknown xmp target", ["serve", "--xmp", "inline"], USAGE),
    ("cluster settings that do not exist",
     ["scan", "{cat}", "--cluster-security", "{root}/none.yaml"], USAGE),
    # setup problems
    ("unknown model", ["tag", "--model", "nonesuch", "{cat}"], SETUP),
    ("unknown device", ["tag", "--device", "NPU9", "{cat}"], SETUP),
    ("models info unknown", ["models", "info", "nonesuch"], SETUP),
    ("models add not a model", ["models", "add", "{not_image}", "--name", "x"], SETUP),
    ("models add bad name", ["models", "add", "{cat}", "--name", "../x"], SETUP),
    ("digikam db missing", ["digikam", "sync", "--digikam-db", "{root}/none.db"], SETUP),
    ("digikam db of another program", ["digikam", "sync", "--digikam-db", "{foreign}"], SETUP),
    ("digikam db is garbage", ["digikam", "scan", "--digikam-db", "{garbage}"], SETUP),
    ("serve a missing db", ["serve", "--db", "{root}/none.sqlite3", "--port", "0"], SETUP),
    ("serve a db of another program", ["serve", "--db", "{foreign}", "--port", "0"], SETUP),
    ("serve on an address not of this machine",
     ["serve", "--db", "{good_db}", "--host", "192.0.2.1", "--port", "0"], SETUP),
    ("xmp write on a missing db", ["xmp", "write", "{cat}", "--db", "{root}/none.sqlite3"],
     SETUP),
    # bad paths: per-file errors, status 1
    ("tag a missing file", ["tag", "{root}/missing.jpg"], FILES_FAILED),
    ("tag a folder", ["tag", "{root}"], FILES_FAILED),
    ("tag not an image", ["tag", "{not_image}", "{cat}"], FILES_FAILED),
    ("scan a missing path", ["scan", "{root}/nowhere", "--db", "{root}/s1.sqlite3"],
     FILES_FAILED),
    ("bench a missing path", ["bench", "{root}/nowhere"], FILES_FAILED),
    ("xmp read not an image", ["xmp", "read", "{not_image}", "--db", "{root}/r.sqlite3"],
     FILES_FAILED),
    # bad databases
    ("db is a folder", ["search", "cat", "--db", "{root}"], SETUP),
    ("db does not exist", ["tags", "--db", "{root}/none.sqlite3"], SETUP),
    ("db of another program", ["show", "{cat}", "--db", "{foreign}"], SETUP),
    ("db is garbage", ["scan", "{cat}", "--db", "{garbage}"], SETUP),
    ("db in a missing folder", ["scan", "{cat}", "--db", "{root}/no/such/t.sqlite3"], SETUP),
    ("untag on a missing db", ["untag", "{cat}", "x", "--db", "{root}/none.sqlite3"], SETUP),
    ("db is a device", ["tag-manual", "{cat}", "x", "--db", "/dev/null"], SETUP),
    ("db is a device for a query", ["tags", "--db", "/dev/null"], SETUP),
    ("tls cluster without certificates", ["scan", "{cat}", "--db", "{root}/c.sqlite3",
                                          "--mode", "all", "--cluster", "tls://127.0.0.1:9"],
     SETUP),
    # queries that find nothing
    ("search finds nothing", ["search", "giraffe", "--db", "{good_db}"], FILES_FAILED),
    ("show an unknown image", ["show", "{not_image}", "--db", "{good_db}"], FILES_FAILED),
    # and what works
    ("search finds", ["search", "cat", "--db", "{good_db}"], 0),
    ("version", ["--version"], 0),
]


@pytest.mark.parametrize(("what", "arguments", "status"), CASES, ids=[c[0] for c in CASES])
def test_every_mistake_has_its_status_and_no_traceback(places, what, arguments, status):
    argv = [a.format(**places) for a in arguments]
    completed = subprocess.run([sys.executable, "-m", "autotags.cli", *argv],
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "AUTOTAGS_DB": str(places["root"] / "x.db")})
    assert completed.returncode == status, (what, completed.stderr)
    assert "Traceback" not in completed.stderr + completed.stdout, what
    lines = completed.stderr.strip().splitlines()
    if status == USAGE:  # argparse's usage, then one line saying what was wrong
        assert "error:" in lines[-1], what
    if status == SETUP:
        assert len(lines) == 1 and "error" in lines[0], (what, completed.stderr)


def test_exit_statuses_are_documented_in_help():
    text = subprocess.run([sys.executable, "-m", "autotags.cli", "--help"],
                          capture_output=True, text=True, check=True).stdout
    for status in ("0", "1", "2", "3", "70", "130"):
        assert f"\n  {status}  " in text


def test_bench_on_a_path_without_images_says_why(places):
    """It said only "no images found in ...", whether the path was missing or held none."""
    missing = places["root"] / "nowhere"
    completed = subprocess.run([sys.executable, "-m", "autotags.cli", "bench", str(missing)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == FILES_FAILED
    assert completed.stderr.splitlines() == [
        f"autotags: error: no images found in {missing}",
        f"autotags:   {missing}: no such file or folder"]
