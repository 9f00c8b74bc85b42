"""The review page as an ASGI application: routes, the guard in front of them, and
error pages instead of tracebacks."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import pages
from .security import GuardMiddleware
from .state import Review

log = logging.getLogger(__name__)


def create_app(review: Review) -> Starlette:
    """The application over `review`'s store (opened by the caller)."""
    routes = [
        Route("/", pages.home),
        Route("/results", pages.results),
        Route("/image/{image:int}", pages.photo),
        Route("/image/{image:int}/thumbnail", pages.thumbnail),
        Route("/image/{image:int}/view", pages.view),
        Route("/image/{image:int}/tags", pages.correct_photo, methods=["POST"]),
        Route("/bulk", pages.correct_many, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(Path(__file__).with_name("static"))),
              name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, guard=review.guard, refuse=pages.error_page)],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.review = review
    return app


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    reason = error.detail if error.status_code != 404 or error.detail != "Not Found" \
        else "there is no such page"
    return pages.error_page(request, error.status_code, reason)


async def _internal_error(request: Request, error: Exception) -> Response:
    log.error("internal error while serving %s: %s: %s (a bug: please report it; run "
              "with -v for the details)", request.url.path, type(error).__name__, error,
              exc_info=log.isEnabledFor(logging.DEBUG))
    return pages.error_page(request, 500, "an internal error: a bug in autotags, reported in "
                                          "the terminal that runs `autotags serve`")
