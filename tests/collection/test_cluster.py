"""Protects scanning on a Dask cluster (issue: cluster): real worker processes on
127.0.0.1 tag into the same store rows as a local scan; a worker killed mid-scan loses
and duplicates nothing; Ctrl-C keeps what finished; workers that cannot see the files,
and a scheduler that cannot be reached (or is not Dask), stop the scan with one clear line;
a TLS cluster works with Dask's certificates and refuses clients without them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from dask.distributed import Client, LocalCluster
from distributed import Security

from autotags import ScanProgress, TagStore, scan
from autotags.collection.cluster import ClusterError
from autotags.collection.scan_lock import lock_path

NAMES = ("dog", "horses", "person", "eagle", "giraffe", "kite")


def autotags(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autotags.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def make_folder(tmp_path: Path, photos: dict[str, Path], copies: int) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for copy in range(copies):
        for name in NAMES:
            shutil.copy(photos[name], folder / f"{name}-{copy}.jpg")
    return folder


def stored_rows(db: Path) -> dict[str, dict[str, float]]:
    """image -> {tag: confidence}, checking that each image was scanned exactly once."""
    with sqlite3.connect(db) as database:
        scans = database.execute("SELECT image_id, count(*) FROM scans GROUP BY image_id")
        assert all(count == 1 for _, count in scans)
    found: dict[str, dict[str, float]] = {}
    with TagStore(db, read_only=True) as store:
        for path in store.search("auto"):
            found[Path(path).name] = {t.path: t.confidence or 0 for t in store.tags_of(path)}
    return found


def assert_same_store(cluster_db: Path, local_db: Path) -> None:
    on_cluster, local = stored_rows(cluster_db), stored_rows(local_db)
    assert on_cluster.keys() == local.keys()
    for image, tags in local.items():
        assert on_cluster[image].keys() == tags.keys(), image
        for tag, confidence in tags.items():
            assert on_cluster[image][tag] == pytest.approx(confidence, abs=0.05), (image, tag)


@pytest.fixture(scope="module")
def local_cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster:
        yield cluster


def test_a_local_cluster_stores_what_a_local_scan_stores(tmp_path, photos):
    folder = make_folder(tmp_path, photos, copies=2)
    local_db, cluster_db = tmp_path / "local.sqlite3", tmp_path / "cluster.sqlite3"
    scan(folder, db=local_db)
    report = scan(folder, db=cluster_db, cluster="local:2")
    assert report.models["ssd-mobilenet-v2"].tagged == 12 and report.inferred == 12
    assert_same_store(cluster_db, local_db)
    again = scan(folder, db=cluster_db, cluster="local:2")
    assert again.inferred == 0 and again.skipped == 12


def test_a_worker_killed_mid_scan_loses_and_duplicates_nothing(tmp_path, photos,
                                                               local_cluster):
    folder = make_folder(tmp_path, photos, copies=8)  # 48 images in chunks of 6
    local_db, cluster_db = tmp_path / "local.sqlite3", tmp_path / "cluster.sqlite3"
    scan(folder, db=local_db)
    workers = [nanny.process.pid for nanny in local_cluster.workers.values()]
    killed: list[int] = []

    def kill_one_worker(progress: ScanProgress) -> None:
        if not killed:
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])

    report = scan(folder, db=cluster_db, cluster=local_cluster.scheduler_address,
                  progress=kill_one_worker)
    assert killed and report.models["ssd-mobilenet-v2"].tagged == 48
    assert not report.failures
    assert_same_store(cluster_db, local_db)
    with TagStore(cluster_db, read_only=True) as store:
        assert store.in_flight() == {}


def test_ctrl_c_keeps_what_finished_and_the_next_run_continues(tmp_path, photos):
    folder = make_folder(tmp_path, photos, copies=12)  # 72 images
    db = tmp_path / "tags.sqlite3"
    command = [sys.executable, "-m", "autotags.cli", "scan", folder, "--db", db,
               "--cluster", "local:2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 300
    while not stored_count(db):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    first = stored_count(db)
    assert 0 < first < 72
    result = autotags("scan", folder, "--db", db, "--cluster", "local:2", "--json")
    assert result.returncode == 0, result.stderr
    assert stored_count(db) == 72
    local_db = tmp_path / "local.sqlite3"
    scan(folder, db=local_db)
    assert_same_store(db, local_db)


def stored_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as database:
            return database.execute("SELECT count(*) FROM scans").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_workers_that_cannot_see_the_files_stop_the_scan(tmp_path, photos):
    """A worker that runs without root's power to read any folder, beside a folder only
    another user may read: the client reads it, the worker cannot."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a worker that cannot read what the client reads")
    folder = make_folder(tmp_path, photos, copies=1)
    os.chown(folder, 12345, 12345)
    folder.chmod(0o700)
    without = "-dac_override,-dac_read_search"
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      silence_logs=logging.ERROR) as cluster:
        worker = subprocess.Popen(
            ["setpriv", f"--inh-caps={without}", f"--bounding-set={without}",
             sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
             "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with Client(cluster.scheduler_address) as client:
                client.wait_for_workers(1, timeout=120)
            with pytest.raises(ClusterError, match=r"cannot read .* same paths"):
                scan(folder, db=tmp_path / "tags.sqlite3", cluster=cluster.scheduler_address)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    with TagStore(tmp_path / "tags.sqlite3", read_only=True) as store:
        assert store.counts()["tag_links"] == 0


def test_an_unreachable_scheduler_is_one_line_and_exit_3(tmp_path, photos):
    folder = make_folder(tmp_path, photos, copies=1)
    result = autotags("scan", folder, "--db", tmp_path / "tags.sqlite3", "--cluster",
                      "tcp://127.0.0.1:9")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], result.stderr
    wrong = autotags("scan", folder, "--cluster", "local:none")
    assert wrong.returncode == 2 and "local:N" in wrong.stderr


@pytest.fixture()
def not_dask(tmp_path):
    """A port on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in [*held, server]:
        connection.close()


def test_a_port_that_is_not_dask_is_one_line_and_exit_3(tmp_path, photos, not_dask):
    folder = make_folder(tmp_path, photos, copies=1)
    result = autotags("scan", folder, "--db", tmp_path / "tags.sqlite3", "--cluster",
                      f"tcp://{not_dask}")
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], result.stderr


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    key: Path
    settings: Path   # the client's, in Dask's configuration format


@pytest.fixture()
def tls_files(tmp_path) -> TlsFiles:
    """A temporary certificate (Dask's own) as files, and client settings naming them
    by paths relative to the settings file."""
    temporary = Security.temporary()
    folder = tmp_path / "tls"
    folder.mkdir()
    (folder / "ca.pem").write_text(temporary.tls_ca_file)
    (folder / "key.pem").write_text(temporary.tls_client_key)
    settings = folder / "client.yaml"
    settings.write_text("distributed:\n  comm:\n    tls:\n      ca-file: ca.pem\n"
                        "      client:\n        cert: ca.pem\n        key: key.pem\n")
    return TlsFiles(folder / "ca.pem", folder / "key.pem", settings)


@pytest.fixture()
def tls_cluster(tmp_path, tls_files):
    """A real scheduler and worker on 127.0.0.1 that speak TLS only."""
    tls = ["--tls-ca-file", tls_files.ca, "--tls-cert", tls_files.ca, "--tls-key", tls_files.key]
    address_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--protocol", "tls", "--no-dashboard", "--scheduler-file",
         address_file, *tls], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists():
            assert scheduler.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.2)  # written whole
        address = json.loads(address_file.read_text())["address"]
        assert address.startswith("tls://127.0.0.1:")
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
             "--nthreads", "1", "--no-dashboard", *tls],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield address
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)


def test_a_tls_cluster_tags_what_a_local_scan_tags(tmp_path, photos, tls_cluster, tls_files):
    folder = make_folder(tmp_path, photos, copies=1)
    local_db, cluster_db = tmp_path / "local.sqlite3", tmp_path / "cluster.sqlite3"
    scan(folder, db=local_db)
    result = autotags("scan", folder, "--db", cluster_db, "--cluster", tls_cluster,
                      "--cluster-security", tls_files.settings)
    assert result.returncode == 0, result.stderr
    assert_same_store(cluster_db, local_db)


def test_a_tls_cluster_refuses_clients_without_its_certificates(tmp_path, photos,
                                                                tls_cluster):
    folder = make_folder(tmp_path, photos, copies=1)
    db = tmp_path / "tags.sqlite3"
    without_settings = autotags("scan", folder, "--db", db, "--cluster", tls_cluster)
    assert without_settings.returncode == 3
    assert without_settings.stderr.count("\n") == 1
    assert "needs Dask's TLS settings" in without_settings.stderr
    plain = autotags("scan", folder, "--db", db, "--cluster",
                     tls_cluster.replace("tls://", "tcp://"))
    assert plain.returncode == 3 and plain.stderr.count("\n") == 1, plain.stderr
    assert "cannot reach the Dask scheduler" in plain.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("distributed: [not, settings\n")
    broken = autotags("scan", folder, "--db", db, "--cluster", tls_cluster,
                      "--cluster-security", bad)
    assert broken.returncode == 3 and broken.stderr.count("\n") == 1, broken.stderr
    assert "not Dask security settings" in broken.stderr
    assert stored_count(db) == 0


def test_sigterm_while_a_local_cluster_starts_stops_it_cleanly(tmp_path, photos):
    """Stopped at several moments of starting a cluster (counted from when the scan holds
    its lock, just before): exit 130, no traceback."""
    folder = make_folder(tmp_path, photos, copies=1)
    db = tmp_path / "tags.sqlite3"
    for delay in (0.0, 0.3, 0.6, 1.0):
        process = subprocess.Popen(
            [sys.executable, "-m", "autotags.cli", "scan", folder, "--db", db,
             "--cluster", "local:2", "--mode", "all"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not lock_path(db).exists() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(delay)
        process.terminate()
        _, stderr = process.communicate(timeout=60)
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
        assert process.returncode in (0, 130), (delay, process.returncode, stderr)


def test_a_local_cluster_has_at_most_one_worker_per_core(tmp_path, photos):
    folder = make_folder(tmp_path, photos, copies=1)
    cores = len(os.sched_getaffinity(0))
    result = autotags("scan", folder, "--db", tmp_path / "tags.sqlite3", "--cluster",
                      f"local:{cores + 1}")
    assert result.returncode == 2 and f"local:{cores} or fewer" in result.stderr
    with pytest.raises(ValueError, match="each worker takes one"):
        scan(folder, db=tmp_path / "tags.sqlite3", cluster="local:100")
