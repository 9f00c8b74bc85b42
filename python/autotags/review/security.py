"""The rules of a web server on a machine that holds someone's photos.

- Loopback by default; any other address needs a token (printed in the URL, kept in a
  cookie after the first visit); requests without it get 403.
- The Host header must name this server (a DNS-rebinding page names another), unless a
  token guards it: a page elsewhere never has the token.
- Every change is a POST with the page's CSRF token, from a page of this server
  (Origin, else Referer).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp

TOKEN_COOKIE = "autotags_token"
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    host: str
    port: int
    token: str | None      # None: loopback without a token
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def allowed_hosts(self) -> set[str]:
        names = {self.host}
        if is_loopback(self.host):
            names |= {"localhost", "127.0.0.1", "[::1]"}
        return {f"{name}:{self.port}" for name in names}

    def refusal(self, request: Request) -> str | None:
        """Why `request` may not be served, or None."""
        if self.token is None and request.headers.get("host") not in self.allowed_hosts():
            return "this server answers only to its own address (open the URL it printed)"
        if self.token is not None and not self._has_token(request):
            return ("this server needs its token: open the URL `autotags serve` printed "
                    "(…/?token=…)")
        if request.method in CHANGING_METHODS and not self._from_this_server(request):
            return "changes are accepted only from this server's own pages"
        return None

    def csrf_holds(self, value: object) -> bool:
        return isinstance(value, str) and secrets.compare_digest(value, self.csrf)

    def _has_token(self, request: Request) -> bool:
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        return self.token is not None and secrets.compare_digest(given, self.token)

    def _from_this_server(self, request: Request) -> bool:
        here = request.headers.get("host", "")
        origin = request.headers.get("origin")
        if origin is not None:
            return origin == f"{request.url.scheme}://{here}"
        referer = urlsplit(request.headers.get("referer", ""))
        return referer.netloc == here and referer.scheme == request.url.scheme


Refusal = Callable[[Request, int, str], Response]


class GuardMiddleware(BaseHTTPMiddleware):
    """Applies a :class:`Guard` to every request before any route sees it."""

    def __init__(self, app: ASGIApp, guard: Guard, refuse: Refusal) -> None:
        super().__init__(app)
        self.guard, self.refuse = guard, refuse

    async def dispatch(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        reason = self.guard.refusal(request)
        if reason is not None:
            return self.refuse(request, 403, reason)
        if self.guard.token is not None and "token" in request.query_params:
            # Into a cookie, out of the address bar (and of links and the history).
            clean = request.url.remove_query_params("token")
            response: Response = RedirectResponse(str(clean), status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.guard.token, httponly=True,
                                samesite="strict")
            return response
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


# Everything the pages use comes from this server; nothing from the internet.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; "
                               "script-src 'self'; form-action 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
