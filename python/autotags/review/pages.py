"""The review page's requests: home, results, a photo, its renditions, corrections."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ..collection.store import (
    AUTO_ROOT,
    MANUAL_SOURCE,
    ImageMatch,
    ImageRecord,
    StoreError,
    TagNode,
    TagStore,
)
from .state import Review

PAGE_SIZE = 100
# How a results view may be ordered, and what the page calls each order.
ORDERS = {"path": "folder and name", "doubtful": "least sure first",
          "surest": "surest first"}
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def readable(name: str) -> str:
    """A file name for the page: bytes that are not UTF-8 (kept in the store as they are on
    disk) shown as the replacement character, as file managers do."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


TEMPLATES.env.filters["readable"] = readable
TEMPLATES.env.globals["orders"] = ORDERS


@dataclass(frozen=True)
class Filter:
    """A results view: the CLI's search terms, words of the photos' text (``search
    --text``) and a score range."""

    text: str
    any: bool = False
    low: float | None = None   # 0..1
    high: float | None = None
    words: str = ""
    order: str = "path"

    @property
    def terms(self) -> list[str]:
        try:
            return shlex.split(self.text)  # "hot dog" in quotes is one term
        except ValueError:
            return self.text.split()

    @property
    def word_list(self) -> list[str]:
        return self.words.split()

    def query(self, **more: object) -> str:
        fields: dict[str, object] = {"q": self.text}
        if self.words:
            fields["text"] = self.words
        if self.any:
            fields["any"] = "1"
        for name, value in (("min", self.low), ("max", self.high)):
            if value is not None:
                fields[name] = f"{value * 100:g}"
        if self.order != "path":
            fields["order"] = self.order
        return urlencode({**fields, **more})

    def ordered(self, matches: list[ImageMatch]) -> list[ImageMatch]:
        """`matches` (sorted by path) in this view's order; tags a person added or
        confirmed (no score) count as the surest."""
        if self.order == "doubtful":
            return sorted(matches, key=lambda m: (m.score is None, m.score or 0.0))
        if self.order == "surest":
            return sorted(matches, key=lambda m: (m.score is not None, -(m.score or 0.0)))
        return matches


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    review: Review = request.app.state.review
    return TEMPLATES.TemplateResponse(request, name, {
        **context, "read_only": review.read_only, "csrf": review.guard.csrf}, status_code=status)


def error_page(request: Request, status: int, reason: str) -> Response:
    return TEMPLATES.TemplateResponse(request, "error.html", {
        "status": status, "reason": reason, "read_only": True, "csrf": ""}, status_code=status)


def home(request: Request) -> Response:
    review: Review = request.app.state.review
    with review.store() as store:
        tree = store.tag_tree()
        counts = store.counts()
        scans = store.recent_scans()
        behind = store.outputs_out_of_date()
    return page(request, "home.html", {
        "tree": [(node, search_term(node)) for node in tree], "counts": counts,
        "scans": scans, "behind": behind})


def search_term(node: TagNode) -> str:
    """What finds a node of the tag tree: a machine tag's category or label by its name
    (the CLI's meaning), any other tag by its full path."""
    if node.path.startswith(AUTO_ROOT + "/"):
        return node.path.rsplit("/", 1)[-1]
    return node.path


def results(request: Request) -> Response:
    review: Review = request.app.state.review
    wanted = _filter(request.query_params)
    number = _whole(request.query_params.get("page", "1"), "page")
    if not wanted.terms and not wanted.word_list:
        return RedirectResponse("/", status_code=303)
    with review.store() as store:
        matches = wanted.ordered(_found(store, wanted))
        shown = matches[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]
        tags = {m.image.id: store.tags_of(m.image.path) for m in shown}
    machine = sorted({t for m in matches for t in m.matched if t.startswith(AUTO_ROOT + "/")},
                     key=str.lower)
    return page(request, "results.html", {
        "filter": wanted, "matches": shown, "tags": tags, "total": len(matches),
        "number": number, "pages": max(1, -(-len(matches) // PAGE_SIZE)),
        "machine_tags": machine, "notice": _notice(request.query_params)})


def photo(request: Request) -> Response:
    review: Review = request.app.state.review
    image = _image(request)
    with review.store() as store:
        tags = store.tags_of(image.path)
        rejected = store.rejected_tags(image.path)
        info = store.image_info(image.path) or {}
        lines = store.text_of(image.path)
    boxes = [{"label": t.path.rsplit("/", 1)[-1], "score": score, "model": t.source,
              "x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}
             for t in tags for x1, y1, x2, y2, score in t.boxes]
    return page(request, "photo.html", {
        "image": image, "name": readable(Path(image.path).name), "tags": tags,
        "rejected": rejected,
        "boxes": sorted(boxes, key=lambda b: -b["score"]), "scans": info.get("scans", []),
        "lines": lines, "outlines": [" ".join(f"{x:g},{y:g}" for x, y in line.box)
                                     for line in lines],
        "label_size": max(image.width or 0, image.height or 0) / 40,
        "manual": MANUAL_SOURCE, "auto": AUTO_ROOT, "notice": _notice(request.query_params)})


def thumbnail(request: Request) -> Response:
    return _rendition(request, "thumbnail")


def view(request: Request) -> Response:
    return _rendition(request, "view")


def _rendition(request: Request, size: str) -> Response:
    review: Review = request.app.state.review
    image = _image(request)
    made = getattr(review.renditions, size)(image)
    headers = {"Cache-Control": "private, max-age=600"}
    if made.problem:  # one line of printable ASCII, as a header must be
        reason = " ".join(made.problem.replace(image.path, "").split()).lstrip(": ")
        headers["X-Autotags-Problem"] = reason.encode("ascii", "replace").decode()[:200]
    return Response(made.content, media_type=made.media_type, headers=headers)


async def correct_photo(request: Request) -> Response:
    review: Review = request.app.state.review
    form = await _changes(request)
    image = _image(request)
    action, tag = str(form.get("action", "")), str(form.get("tag", "")).strip()
    with review.store() as store:
        try:
            done = _correct_one(store, image, action, tag)
        except StoreError as error:
            raise HTTPException(400, str(error)) from None
        problems = review.after_correction(store, [image.id])
    notice = {"done": action, "tag": tag} if done else {"none": action, "tag": tag}
    if problems:
        notice["xmp"] = problems[0]
    return RedirectResponse(f"/image/{image.id}?{urlencode(notice)}", status_code=303)


def _correct_one(store: TagStore, image: ImageRecord, action: str, tag: str) -> bool:
    if action in ("reject", "confirm"):
        return bool(store.correct_machine_tag([image.id], tag, confirm=action == "confirm"))
    if action == "add":
        store.add_manual_tag(image.path, tag)
        return True
    if action == "remove":
        return bool(store.remove_manual_tag(image.path, tag))
    raise HTTPException(400, f"unknown action {action!r}")


async def correct_many(request: Request) -> Response:
    """One machine tag rejected or confirmed on the selected photos of a results view,
    or on every photo it found, in one transaction."""
    review: Review = request.app.state.review
    form = await _changes(request)
    wanted = _filter(form)
    action, tag = str(form.get("action", "")), str(form.get("tag", ""))
    if action not in ("reject", "confirm"):
        raise HTTPException(400, f"unknown action {action!r}")
    with review.store() as store:
        try:
            if form.get("scope") == "all":
                ids = [m.image.id for m in _found(store, wanted)]
            else:
                ids = [_whole(str(value), "image") for value in form.getlist("image")]
            changed = store.correct_machine_tag(ids, tag, confirm=action == "confirm")
        except StoreError as error:
            raise HTTPException(400, str(error)) from None
        review.after_correction(store, ids)
    return RedirectResponse("/results?" + wanted.query(done=action, tag=tag, count=changed),
                            status_code=303)


async def _changes(request: Request) -> FormData:
    """The form of a change, after the rules every change obeys."""
    review: Review = request.app.state.review
    if review.read_only:
        raise HTTPException(403, "this page was started with --read-only: it changes nothing")
    form = await request.form()
    if not review.guard.csrf_holds(form.get("csrf")):
        raise HTTPException(403, "the form's security token is missing or out of date; "
                                 "reload the page and try again")
    return form


def _found(store: TagStore, wanted: Filter) -> list[ImageMatch]:
    try:
        return store.find_images(wanted.terms, text=wanted.word_list, match_any=wanted.any,
                                 min_score=wanted.low, max_score=wanted.high)
    except StoreError as error:
        raise HTTPException(400, str(error)) from None


def _image(request: Request) -> ImageRecord:
    review: Review = request.app.state.review
    with review.store() as store:
        image = store.image(request.path_params["image"])
    if image is None:
        raise HTTPException(404, "no such image in the tag database")
    return image


def _filter(fields: Any) -> Filter:
    order = str(fields.get("order") or "path")
    if order not in ORDERS:
        raise HTTPException(400, f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    return Filter(str(fields.get("q", "")).strip(), fields.get("any") in ("1", "on"),
                  _percent(fields.get("min"), "min"), _percent(fields.get("max"), "max"),
                  str(fields.get("text", "")).strip(), order)


def _percent(text: object, name: str) -> float | None:
    if text in (None, ""):
        return None
    try:
        value = float(str(text))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise HTTPException(400, f"{name} must be a score from 0 to 100, got {text!r}")
    return value / 100


def _whole(text: str, name: str) -> int:
    if not text.isdigit() or int(text) < 1 or len(text) > 12:
        raise HTTPException(400, f"{name} must be a whole number from 1, got {text!r}")
    return int(text)


def _notice(fields: Any) -> dict[str, str]:
    return {key: str(fields[key]) for key in ("done", "none", "tag", "count", "xmp")
            if key in fields}
