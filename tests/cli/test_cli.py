"""The `autotags` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from autotags.cli import build_parser


def autotags(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_tag_help_documents_every_option():
    parser = build_parser()
    tag_parser = parser._subparsers._group_actions[0].choices["tag"]  # type: ignore[union-attr]
    help_text = autotags("tag", "--help").stdout
    for action in tag_parser._actions:
        assert action.help, f"option {action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in help_text
    for words in ("--accuracy", "digiKam", "--json", "exit status", "AUTO", "--threads"):
        assert words in help_text


def test_tag_prints_labels_and_reports_failures(photos, tmp_path):
    missing = tmp_path / "missing.jpg"
    completed = autotags("tag", "--precision", "f32", photos["cat"], missing, photos["coffee"])
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{photos['cat']} (451x300): cat ")
    assert lines[1] == f"{missing}: error: no such file"
    assert "cup" in lines[2]
    assert "1 of 3 files could not be tagged" in completed.stderr


def test_tag_json_has_one_object_per_file(photos, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    completed = autotags("tag", "--json", "--precision", "f32", photos["dog"], text)
    assert completed.returncode == 1
    objects = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [o["path"] for o in objects] == [str(photos["dog"]), str(text)]
    dog, bad = objects
    assert set(dog) == {"path", "width", "height", "model", "tags", "text", "error", "source"}
    assert dog["text"] == []  # lines come from text models only
    assert (dog["width"], dog["height"], dog["error"], dog["source"]) == (768, 576, None, "image")
    assert {"dog", "bicycle"} <= {t["label"] for t in dog["tags"]}
    for tag in dog["tags"]:
        assert set(tag) == {"label", "score", "box"} and len(tag["box"]) == 4
        assert 0.6 <= tag["score"] <= 1
    assert bad["tags"] == [] and str(text) in bad["error"] and bad["source"] is None


def test_classifier_json_has_no_boxes(photos):
    completed = autotags("tag", "--json", "--model", "efficientnet-lite3", photos["cat"])
    result = json.loads(completed.stdout)
    assert completed.returncode == 0
    assert result["tags"] and all(tag["box"] is None for tag in result["tags"])


@pytest.mark.parametrize(("args", "message"), [
    (["tag", "--accuracy", "11", "x.jpg"], "--accuracy: must be a whole number from 1 to 10"),
    (["tag", "--accuracy", "high", "x.jpg"], "--accuracy: must be a whole number from 1 to 10"),
    (["tag", "--threads", "0", "x.jpg"], "--threads: must be a whole number of at least 1"),
    (["tag"], "the following arguments are required: PATH"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_wrong_arguments_exit_2_with_a_message(args, message):
    completed = autotags(*args)
    assert completed.returncode == 2
    assert message in completed.stderr


def test_unknown_model_and_missing_device_exit_3(photos):
    unknown = autotags("tag", "--model", "yolo99", photos["cat"])
    assert unknown.returncode == 3 and "unknown model 'yolo99'" in unknown.stderr
    no_device = autotags("tag", "--device", "NPU.7", photos["cat"])
    assert no_device.returncode == 3
    assert "device 'NPU.7' is not available on this machine; available: CPU" in no_device.stderr


def test_models_lists_the_catalogue():
    completed = autotags("models", "list", "--json")
    rows = {row["name"]: row for row in map(json.loads, completed.stdout.splitlines())}
    assert rows["ssd-mobilenet-v2"]["kind"] == "detector"
    assert rows["ssd-mobilenet-v2"]["classes"] == 80 and rows["ssd-mobilenet-v2"]["default"]
    assert rows["efficientnet-lite3"]["kind"] == "classifier"
    assert rows["efficientnet-lite3"]["input"] == "280x280"
    info = json.loads(autotags("models", "info", "ssd-mobilenet-v2").stdout)
    assert info["threshold_at_accuracy"]["7"] == pytest.approx(0.6)


def test_scan_search_show_tags_and_manual_tags(photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("cat", "dog", "astronaut"):
        (folder / photos[name].name).write_bytes(photos[name].read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    db = tmp_path / "tags.sqlite3"

    scanned = autotags("scan", folder, "--db", db, "--precision", "f32")
    assert scanned.returncode == 1  # one file failed; the rest is stored
    assert "4 images found" in scanned.stdout and "3 tagged" in scanned.stdout
    assert f"{folder / 'broken.jpg'} [ssd-mobilenet-v2]:" in scanned.stdout

    rescan = autotags("scan", folder, "--db", db, "--json")
    assert json.loads(rescan.stdout)["inferred"] == 0

    assert autotags("search", "CAT", "--db", db).stdout == f"{folder / 'chelsea.png'}\n"
    assert autotags("search", "person", "--db", db).stdout == f"{folder / 'astronaut.png'}\n"
    nothing = autotags("search", "giraffe", "--db", db)
    assert (nothing.returncode, nothing.stdout) == (1, "")

    assert autotags("tag-manual", folder / "dog.jpg", "pets/rex", "--db", db).returncode == 0
    assert autotags("search", "rex", "--db", db).stdout == f"{folder / 'dog.jpg'}\n"
    shown = autotags("show", folder / "dog.jpg", "--db", db).stdout
    assert "auto/dog" in shown and "ssd-mobilenet-v2" in shown and "pets/rex" in shown
    assert "manual" in shown and "(768x576)" in shown

    tree = autotags("tags", "--db", db).stdout.splitlines()
    assert "auto (3)" in tree and "    cat (1)" in tree and "pets (1)" in tree
    assert tree.index("  animal (2)") < tree.index("    cat (1)")  # below its category

    assert autotags("untag", folder / "dog.jpg", "pets/rex", "--db", db).returncode == 0
    assert autotags("search", "rex", "--db", db).returncode == 1
    confirmed = autotags("tag-manual", folder / "dog.jpg", "auto/cat", "--db", db)
    assert confirmed.returncode == 0  # below auto/: confirms a machine tag (see corrections)


def test_database_location_follows_autotags_db(photos, tmp_path, monkeypatch):
    db = tmp_path / "env.sqlite3"
    monkeypatch.setenv("AUTOTAGS_DB", str(db))
    assert autotags("scan", photos["cat"]).returncode == 0
    assert db.is_file()
    assert autotags("search", "cat").stdout.strip() == str(photos["cat"])


def test_queries_without_a_database_explain(tmp_path):
    missing = autotags("search", "cat", "--db", tmp_path / "none.sqlite3")
    assert missing.returncode == 3 and "no such tag database" in missing.stderr


def test_progress_bar_on_a_terminal_only(photos, tmp_path):
    import pty

    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(6):
        (folder / f"dog{index}.jpg").write_bytes(photos["dog"].read_bytes())
    command = [sys.executable, "-m", "autotags.cli", "scan", str(folder), "--db",
               str(tmp_path / "tty.sqlite3")]
    controller, terminal = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=terminal) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closes when the scan ends
                break
            if not chunk:
                break
            shown += chunk
        process.wait(timeout=120)
    os.close(controller)
    assert b"\r[####################] 6/6" in shown and b"img/s ETA" in shown

    quiet = autotags("scan", folder, "--db", tmp_path / "pipe.sqlite3")
    assert "ETA" not in quiet.stderr and "\r" not in quiet.stderr


def test_bench_reports_rates_and_the_ratio_to_the_bound(photos):
    completed = autotags("bench", "--json", photos["dog"], photos["cat"], photos["coffee"])
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["model"] == "ssd-mobilenet-v2" and report["images"] == 3
    for rate in ("end_to_end", "decode_only", "inference_only", "bound"):
        assert report[rate] > 0
    assert report["bound"] < min(report["decode_only"], report["inference_only"])
    assert report["ratio_to_bound"] == pytest.approx(report["end_to_end"] / report["bound"])
    text = autotags("bench", photos["dog"]).stdout
    assert "end to end / bound" in text and "decode only" in text


def test_bench_with_two_models_lines_up_its_figures(photos):
    """The two-model bound's longer label pushed its figure two columns to the right."""
    text = autotags("bench", "--model", "ssd-mobilenet-v2,efficientnet-lite3", "--rounds", "1",
                    photos["dog"], photos["cat"]).stdout
    rates = [line for line in text.splitlines() if line.endswith(" images/s")]
    assert len(rates) == 5, text  # end to end, decode, two models' inference, the bound
    assert len({line.index(" images/s") for line in rates}) == 1, text
    assert "one round" in text


def test_bench_against_another_model_reports_speed_ratios_and_agreement(photos):
    completed = autotags("bench", "--json", "--precision", "f32", "--against",
                         "ssd-mobilenet-v2", photos["dog"], photos["cat"])
    assert completed.returncode == 0, completed.stderr
    against = json.loads(completed.stdout)["against"]
    assert against["model"] == "ssd-mobilenet-v2"
    assert against["agreement"] == 1.0  # the same model agrees with itself
    assert against["inference_speedup"] > 0 and against["end_to_end_speedup"] > 0


def test_tag_agreement_counts_shared_image_label_pairs():
    from autotags import ImageTags, Tag
    from autotags.benchmark import tag_agreement

    first = [ImageTags("a", 1, 1, "m", [Tag("cat", 0.9), Tag("dog", 0.8)])]
    second = [ImageTags("a", 1, 1, "n", [Tag("cat", 0.7), Tag("cow", 0.5)])]
    assert tag_agreement(first, second) == pytest.approx(1 / 3)
    assert tag_agreement([], []) == 1.0


def test_threads_caps_the_cores_the_process_may_use(photos):
    probe = ("import os, sys; from autotags.cli import main; "
             "code = main(['-q', 'tag', '--threads', '1', sys.argv[1]]); "
             "print(len(os.sched_getaffinity(0)), code)")
    completed = subprocess.run([sys.executable, "-c", probe, str(photos["dog"])],
                               capture_output=True, text=True, timeout=300)
    assert completed.stdout.split()[-2:] == ["1", "0"], completed.stderr


@pytest.fixture()
def not_utf8_photo(tmp_path, photos):
    """A copy of dog.jpg whose file name is Latin-1 bytes, as old cameras' cards have."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = os.fsencode(str(folder)) + b"/caf\xe9.jpg"
    shutil.copy(photos["dog"], photo)
    return folder, os.fsdecode(photo)


def test_a_file_name_that_is_not_utf8_is_valid_json_and_imported(tmp_path, not_utf8_photo):
    """tag --json printed the raw bytes (not JSON text); xmp read over the folder died with
    a TypeError traceback and imported nothing after it."""
    folder, photo = not_utf8_photo
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Subject=Alice",
                    os.fsencode(photo)], check=True)
    tagged = subprocess.run([sys.executable, "-m", "autotags.cli", "tag", "--json", photo],
                            capture_output=True, timeout=300)
    assert tagged.returncode == 0, tagged.stderr
    line = tagged.stdout.decode("utf-8")  # valid UTF-8 text
    assert os.fsencode(json.loads(line)["path"]) == os.fsencode(photo)
    imported = autotags("xmp", "read", str(folder), "--db", str(tmp_path / "tags.sqlite3"))
    assert imported.returncode == 0, imported.stderr
    assert "1 files with keywords" in imported.stdout and "Traceback" not in imported.stderr


def test_kill_stops_every_command_with_status_130(tmp_path, photos):
    """Only scans turned SIGTERM into a clean stop; `xmp write` and the others died with 143.
    The command is stopped while it waits for the database another process holds."""
    db = tmp_path / "tags.sqlite3"
    subprocess.run([sys.executable, "-m", "autotags.cli", "tag-manual", str(photos["dog"]),
                    "x", "--db", str(db)], check=True, timeout=300)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the writer now waits up to its busy timeout
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "autotags.cli", "tag-manual", str(photos["dog"]), "y",
             "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr


# A bug cannot be caused on purpose from outside: this one is planted in a command.
PLANTED_BUG = """
import sys
from autotags.cli import collection, main

def tags_with_a_bug(args):
    raise {error}("planted")

collection.cmd_tags = tags_with_a_bug
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("error", ["ZeroDivisionError", "RuntimeError", "ValueError"])
def test_a_bug_is_said_to_be_one_and_its_traceback_waits_behind_verbose(tmp_path, error):
    db = tmp_path / "tags.sqlite3"
    code = PLANTED_BUG.format(error=error)
    quiet = subprocess.run([sys.executable, "-c", code, "tags", "--db", str(db)],
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 70  # not 3: a bug is no setup problem
    assert f"internal error: {error}: planted" in quiet.stderr
    assert "This is a bug in autotags" in quiet.stderr and "-v" in quiet.stderr
    assert "Traceback" not in quiet.stderr
    verbose = subprocess.run([sys.executable, "-c", code, "-v", "tags", "--db", str(db)],
                             capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 70
    assert "Traceback" in verbose.stderr and "tags_with_a_bug" in verbose.stderr


def test_an_expected_error_is_one_line_with_exit_status_3(tmp_path):
    (tmp_path / "notes.sqlite3").write_text("not a database")
    result = autotags("tags", "--db", str(tmp_path / "notes.sqlite3"))
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("autotags: error: ")


def test_bench_of_two_models_reports_each_inference_and_the_shared_bound(photos):
    completed = autotags("bench", "--json", "--rounds", "3", "--model",
                         "ssd-mobilenet-v2,efficientnet-lite3", photos["dog"], photos["cat"])
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["models"] == ["ssd-mobilenet-v2", "efficientnet-lite3"]
    assert len(report["rounds"]) == 3 and len(report["inference_each"]) == 2
    assert report["bound"] == pytest.approx(
        1 / (1 / report["decode_only"] + sum(1 / r for r in report["inference_each"])))
    assert report["ratio_to_bound"] == pytest.approx(report["end_to_end"] / report["bound"])
    ratios = [r["end_to_end"] / (1 / (1 / r["decode_only"] + sum(
        1 / i for i in r["inference_each"]))) for r in report["rounds"]]
    assert report["ratio_spread"] == pytest.approx(max(ratios) - min(ratios))
    assert sorted(ratios)[1] == pytest.approx(report["ratio_to_bound"])  # the median round
    assert 0 <= report["others_cpu_share"] <= 1


def test_a_doubtful_benchmark_says_why():
    from autotags.benchmark import BenchReport, RoundRates, _doubts

    steady = [RoundRates(30.0, 60.0, (120.0,)) for _ in range(3)]
    assert _doubts(BenchReport(("m",), 10, tuple(steady), 0.02)) == []
    busy = _doubts(BenchReport(("m",), 10, tuple(steady), 0.4))
    assert len(busy) == 1 and "other processes took 40%" in busy[0]
    unsteady = (RoundRates(30.0, 60.0, (120.0,)), RoundRates(20.0, 60.0, (120.0,)),
                RoundRates(30.0, 60.0, (120.0,)))
    assert any("not steady" in d for d in _doubts(BenchReport(("m",), 10, unsteady, 0.0)))
    over = (RoundRates(45.0, 60.0, (120.0,)),)  # bound 40: end to end above it
    assert any("above the bound" in d for d in _doubts(BenchReport(("m",), 10, over, 0.0)))


def test_threads_pick_the_cores_no_one_else_keeps_busy():
    """--threads 1 pinned to a core another process keeps busy got half a core while a
    free one waited (issue: pipeline, behaviour under a neighbour)."""
    from autotags.cli import least_busy_cores

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores to have a busy one and a free one")
    for busy_core in cores[:2]:
        neighbour = subprocess.Popen(["taskset", "-c", str(busy_core), sys.executable, "-c",
                                      "while True: pass"])
        try:
            time.sleep(0.3)
            chosen = least_busy_cores(cores[:2], 1, seconds=0.5)
        finally:
            neighbour.kill()
            neighbour.wait()
        assert chosen == [c for c in cores[:2] if c != busy_core]
