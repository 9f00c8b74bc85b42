"""Starting and stopping the review page: one command, Ctrl-C stops it."""

from __future__ import annotations

import logging
import secrets
import socket
import webbrowser
from pathlib import Path

from ..errors import AutotagsError
from ..outputs.metadata_files import Target
from .security import Guard, is_loopback
from .state import Review

log = logging.getLogger(__name__)


class ServeError(AutotagsError, RuntimeError):
    """The page cannot be served: the address is taken, the web extra is missing."""


def require_web() -> None:
    try:
        import jinja2  # noqa: F401
        import multipart  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ServeError("the review page needs its web libraries: pip install "
                         "'autotags[web]'") from None


def serve(database: Path, *, host: str = "127.0.0.1", port: int = 8765,
          token: str | None = None, read_only: bool = False, xmp: Target | None = None,
          open_browser: bool = False) -> None:
    """Serves the page until Ctrl-C. Any host but loopback gets a token (``token``, or a
    random one) without which every request is refused."""
    require_web()
    import uvicorn

    from .app import create_app

    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    listening = _listen(host, port)
    port = listening.getsockname()[1]
    review = Review(database, Guard(host, port, token), read_only=read_only, xmp=xmp)
    try:
        review.open()  # a database that cannot be used stops here, in one line
    except BaseException:
        listening.close()
        raise
    server = uvicorn.Server(uvicorn.Config(create_app(review), log_level="warning",
                                           access_log=False, lifespan="off"))
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/" + (f"?token={token}" if token else "")
    print(f"autotags serve: {database} at {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.run(sockets=[listening])
    finally:
        review.close()
        listening.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror} (choose another "
                         "--port, or --port 0 for any free one)") from None
    listening.listen(128)
    return listening
