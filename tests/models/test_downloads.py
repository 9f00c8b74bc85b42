"""Model downloads against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from autotags.models.downloads import DownloadError, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Mirror:
    """What one server does: serve files, cut the first response short, or be down."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_first_after: int | None = None
    status: int = 200
    ranges: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/models"


def _handler(mirror: Mirror) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            if mirror.status != 200 or name not in mirror.files:
                self.send_error(mirror.status if mirror.status != 200 else 404)
                return
            data = mirror.files[name]
            requested = self.headers.get("Range")
            mirror.ranges.append(requested or "")
            start = int(requested.split("=")[1].split("-")[0]) if requested else 0
            self.send_response(206 if requested else 200)
            self.send_header("Content-Length", str(len(data) - start))
            if requested:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            body = data[start:]
            if mirror.cut_first_after is not None:
                body = body[: mirror.cut_first_after]
                mirror.cut_first_after = None
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

    return Handler


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up mid-body (as on an oversized file) is expected here


@pytest.fixture()
def mirrors() -> Iterator[list[Mirror]]:
    made = [Mirror(), Mirror()]
    servers = []
    for mirror in made:
        server = QuietServer(("127.0.0.1", 0), _handler(mirror))
        mirror.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield made
    for server in servers:
        server.shutdown()
        server.server_close()


def test_resumes_after_a_cut_connection(mirrors, tmp_path):
    first, _ = mirrors
    first.files["model.onnx"] = PAYLOAD
    first.cut_first_after = 300_000
    target = download([first.url], "model.onnx", tmp_path / "model.onnx", len(PAYLOAD), SHA)
    assert target.read_bytes() == PAYLOAD
    assert first.ranges == ["bytes=0-", "bytes=300000-"]  # the second request resumed
    assert not (tmp_path / "model.onnx.part").exists()


def test_a_wrong_file_is_refused(mirrors, tmp_path):
    first, _ = mirrors
    first.files["model.onnx"] = bytes(len(PAYLOAD))  # right size, wrong bytes
    with pytest.raises(DownloadError, match=r"SHA-256 mismatch.*refusing to use it"):
        download([first.url], "model.onnx", tmp_path / "model.onnx", len(PAYLOAD), SHA)
    assert not (tmp_path / "model.onnx").exists()
    assert not (tmp_path / "model.onnx.part").exists()


def test_falls_back_to_the_second_mirror(mirrors, tmp_path):
    first, second = mirrors
    first.status = 503
    second.files["model.onnx"] = PAYLOAD
    target = download([first.url, second.url], "model.onnx", tmp_path / "m.onnx",
                      len(PAYLOAD), SHA)
    assert target.read_bytes() == PAYLOAD


def test_what_one_mirror_sent_is_never_joined_to_the_next(mirrors, tmp_path):
    first, second = mirrors
    first.files["model.onnx"] = PAYLOAD[:400_000]  # this mirror only ever has a part
    second.files["model.onnx"] = PAYLOAD
    target = download([first.url, second.url], "model.onnx", tmp_path / "m.onnx",
                      len(PAYLOAD), SHA)
    assert second.ranges == ["bytes=0-"]  # from the start, not from the first's bytes
    assert target.read_bytes() == PAYLOAD


def test_a_wrong_body_from_the_first_mirror_does_not_spoil_the_second(mirrors, tmp_path):
    first, second = mirrors
    first.files["model.onnx"] = bytes(len(PAYLOAD))  # answers 200 with the wrong bytes
    second.files["model.onnx"] = PAYLOAD
    target = download([first.url, second.url], "model.onnx", tmp_path / "m.onnx",
                      len(PAYLOAD), SHA)
    assert target.read_bytes() == PAYLOAD
    assert not (tmp_path / "m.onnx.part").exists()


def test_a_server_sending_more_than_the_size_is_stopped_there(mirrors, tmp_path):
    first, _ = mirrors
    first.files["model.onnx"] = PAYLOAD * 50  # 50 MiB for an expected 1,000 bytes
    with pytest.raises(DownloadError, match="sent more than the expected 1000 bytes"):
        download([first.url], "model.onnx", tmp_path / "m.onnx", 1000, SHA)
    assert not (tmp_path / "m.onnx.part").exists()
    assert not (tmp_path / "m.onnx").exists()


def test_both_mirrors_down_is_a_clear_error(mirrors, tmp_path):
    first = mirrors[0]
    first.status = 503
    dead = "http://127.0.0.1:9/models"  # nothing listens on the discard port
    with pytest.raises(DownloadError) as raised:
        download([first.url, dead], "model.onnx", tmp_path / "m.onnx", len(PAYLOAD), SHA)
    message = str(raised.value)
    assert message.startswith("could not download model.onnx:")
    assert f"{first.url}/model.onnx" in message and "Service Unavailable" in message
    assert f"{dead}/model.onnx" in message and "refused" in message.lower()
