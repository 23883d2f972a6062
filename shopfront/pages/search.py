"""Search by photo (`/search`, dynamic mode only): upload a photo, get look-alikes.

This page needs numpy, Pillow and TensorFlow (through `pipeline.search`), so only
`shopfront.dynamic` imports it; static mode never does.
"""

from __future__ import annotations

import base64
import logging
import math
import re
from typing import Any

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update

from pipeline.images import load_image, thumbnail_jpeg
from pipeline.models import ModelError
from pipeline.search import (
    MAX_UPLOAD_BYTES,
    UPLOAD_PIXELS,
    PhotoSearcher,
    UploadError,
    decode_upload,
)

from ..components import HTML_NS, div, recommendation_row, wire
from ..router import Head, Page, View
from ..shop import Shop
from ..text import attribute_label

SEARCH_PATH = "/search"
PREVIEW_SIDE = 320  # the uploaded photo is shown as a JPEG of at most this many pixels
PREVIEW_PREFIX = "data:image/jpeg;base64,"
# Bounds on a saved result sent back by the browser (it is client data: any type, any size).
MAX_SAVED_PREVIEW = 256 * 1024  # characters; a 320 px JPEG at quality 80 is about 30 KB
MAX_SAVED_NEIGHBOURS = 100
MAX_SAVED_TEXT = 300
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
log = logging.getLogger("lookalike")


FIRST_SEARCH_TEXT = "Getting ready… the first search takes a few seconds."
UNAVAILABLE_TEXT = "Search by photo isn't available right now. Please try again later."


def model_status(searcher: PhotoSearcher) -> str:
    """The line under the upload area, in shopper words: nothing once the model is ready.

    Model names, weights and timings are for the operator (the About page, the log).
    """
    return {
        "ready": "",
        "loading": FIRST_SEARCH_TEXT,
        "failed": UNAVAILABLE_TEXT,
    }.get(searcher.state, "The first search takes a few seconds.")


def loading_message(searcher: PhotoSearcher) -> Any:
    """What dcc.Loading shows while a search runs: a spinner, and a word if the model loads."""
    text = "Finding look-alikes…" if searcher.state == "ready" else FIRST_SEARCH_TEXT
    return html.Div(
        [dbc.Spinner(color="secondary", size="sm", spinner_class_name="me-2"),
         html.Span(text, id="photo-loading-text")],
        className="photo-loading d-flex align-items-center",
    )


def search_placeholder(shop: Shop) -> html.Div:
    """The results area before any upload."""
    return html.Div(
        [
            html.Div("Your look-alikes will appear here", className="h5"),
            html.Div(
                f"We compare your photo with all {shop.n_products:,} products in the catalog.",
                className="text-muted",
            ),
        ],
        className="empty-state text-center py-5",
        id="photo-placeholder",
    )


def upload_alert(message: str, filename: str | None = None, color: str = "warning") -> dbc.Alert:
    """A message about an upload, shown in place of the results."""
    heading = f"We couldn't search with “{filename}”" if filename else "We couldn't search"
    return dbc.Alert(
        [html.Div(heading, className="alert-heading fw-semibold"), html.Div(message)],
        color=color,
        id="photo-error",
        className="mb-0",
    )


def format_megabytes(size: float) -> str:
    """A file size for a message: "14.2 MB"."""
    return f"{size / 2**20:.1f} MB"


def rejected_upload_alert(info: dict[str, Any] | None, max_bytes: int) -> Any:
    """The message for a file the browser refused to upload (not an image, or too large)."""
    if not isinstance(info, dict):
        return no_update
    name = str(info.get("name") or "") or None
    mime = str(info.get("type") or "")
    size = info.get("size")
    if not mime.startswith("image/"):
        kind = f" ({mime})" if mime else ""
        message = f"That file is not an image{kind}. Please upload a JPEG, PNG or WebP photo."
    elif isinstance(size, int | float) and size > max_bytes:
        message = (f"The photo is {format_megabytes(size)}; photos can be at most "
                   f"{max_bytes // 2**20} MB.")
    else:
        message = "That file could not be uploaded."
    return upload_alert(message, name)


def photo_preview(data: bytes) -> str:
    """A small JPEG data URL of an uploaded photo (upright, RGB), for the results header.

    Shown from the decoded photo rather than the upload itself, so CMYK, 16-bit or TIFF
    photos (which browsers cannot show) preview too, and a 10 MB photo is not sent back.
    """
    img = load_image(data, draft_size=2 * PREVIEW_SIDE, max_pixels=UPLOAD_PIXELS)
    return PREVIEW_PREFIX + base64.b64encode(
        thumbnail_jpeg(img, PREVIEW_SIDE, quality=80)
    ).decode("ascii")


def saved_result(
    rows: dict[str, list[tuple[str, float]]], vote: Any, preview: str, filename: str | None
) -> dict[str, Any]:
    """What the browser keeps of the last search (session storage) to show it again:
    each row's ids and scores, the vote, the small preview and the file name."""
    return {"filename": filename, "preview": preview,
            "rows": {key: [[pid, float(score)] for pid, score in pairs]
                     for key, pairs in rows.items()},
            "vote": list(vote) if vote else None}


def _count(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= MAX_SAVED_NEIGHBOURS)


def _saved_pairs(pairs: Any) -> list[tuple[str, float]] | None:
    """A saved row ([[id, score], ...]) checked, or None."""
    if not isinstance(pairs, list) or len(pairs) > MAX_SAVED_NEIGHBOURS:
        return None
    out = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                and len(pair[0]) <= MAX_SAVED_TEXT and isinstance(pair[1], int | float)
                and not isinstance(pair[1], bool) and math.isfinite(pair[1])):
            return None
        out.append((pair[0], float(pair[1])))
    return out


def read_saved(saved: Any, row_keys: tuple[str, ...] = ("similar",)) -> dict[str, Any] | None:
    """A saved result as the browser sent it back, checked; None if it is not one.

    Only rows the shop has (`row_keys`) are kept; a result saved before rows existed
    (`neighbours`) is read as the first row.
    """
    if not isinstance(saved, dict):
        return None
    preview = saved.get("preview")
    if not (isinstance(preview, str) and len(preview) <= MAX_SAVED_PREVIEW
            and preview.startswith(PREVIEW_PREFIX)
            and BASE64.fullmatch(preview, len(PREVIEW_PREFIX))):
        return None
    raw_rows = saved.get("rows")
    if raw_rows is None and "neighbours" in saved:
        raw_rows = {row_keys[0]: saved["neighbours"]}
    if not isinstance(raw_rows, dict) or len(raw_rows) > len(row_keys):
        return None
    rows = {}
    for key in row_keys:
        if key in raw_rows:
            pairs = _saved_pairs(raw_rows[key])
            if pairs is None:
                return None
            rows[key] = pairs
    if not rows:
        return None
    filename = saved.get("filename")
    vote = saved.get("vote")
    ok_vote = (isinstance(vote, list) and len(vote) == 4
               and all(isinstance(v, str) and 0 < len(v) <= MAX_SAVED_TEXT for v in vote[:2])
               and all(_count(v) for v in vote[2:]))
    return {"filename": filename[:MAX_SAVED_TEXT] if isinstance(filename, str) and filename
            else None, "preview": preview, "rows": rows,
            "vote": tuple(vote) if ok_vote else None}


NOTHING_MATCHES_TEXT = (
    "Nothing in this shop looks like this photo. Try a clearer photo of one product, "
    "on a plain background, filling most of the picture."
)


def nothing_matches_layout(preview: str, filename: str | None) -> Any:
    """The results area for a photo that looks like nothing in the catalog: the photo and
    a plain message, no vote, no rows and no match labels."""
    return div(
        [
            div(
                [
                    div(wire("Img", HTML_NS, src=preview, alt=filename or "your photo",
                             id="photo-preview"), className="photo-preview"),
                    div([div(wire("Strong", HTML_NS, children="No match in this shop"),
                             className="h5 mb-1"),
                         div(NOTHING_MATCHES_TEXT, className="text-muted")],
                        className="photo-summary"),
                ],
                className="photo-header mb-4",
            ),
        ],
        className="photo-results", id="photo-nothing",
    )


def results_layout(
    shop: Shop, rows: dict[str, list[tuple[str, float]]], vote: Any, preview: str,
    filename: str | None,
) -> Any:
    """The results area for a search: the preview, the vote and the catalog's rows of
    look-alikes for the photo, each labelled with the row's own calibration.

    Built from ids and scores, so a saved search is shown with the catalog's current
    titles and prices; ids no longer in the catalog are left out.
    """
    shown = []
    for spec in shop.rows:
        found = [(item, score) for item, score in
                 ((shop.item(pid), score) for pid, score in rows.get(spec.key, ()))
                 if item is not None]
        if found:
            row_id = "photo-similar" if spec.position == 0 else f"photo-row-{spec.position}"
            shown.append(recommendation_row(spec.title, found, spec.quantiles, shop.metric,
                                             row_id, f"photo-row-title-{spec.position}"))
    summary: list[Any] = []
    if filename:
        summary.append(div(filename, className="photo-filename text-muted small text-truncate",
                           title=filename))
    if vote:
        attr, label, votes, k = vote
        summary.append(div(
            [wire("Span", HTML_NS, children="Looks like: ", className="text-muted"),
             wire("Strong", HTML_NS, children=label),
             wire("Span", HTML_NS, children=f" ({votes} of {k} neighbours)",
                  className="text-muted")],
            className="photo-vote h5 mb-1", id="photo-vote",
            title=f"{attribute_label(attr)} of the most similar products",
        ))
    header = div(
        [
            div(wire("Img", HTML_NS, src=preview, alt=filename or "your photo",
                     id="photo-preview"), className="photo-preview"),
            div(summary, className="photo-summary"),
        ],
        className="photo-header mb-4",
    )
    return div(
        [
            header,
            *(shown or [div(wire("P", HTML_NS, children="No products to compare with."),
                            id="photo-similar")]),
        ],
        className="photo-results",
    )


def log_timings(shop: Shop, timings: dict[str, float], was_ready: bool) -> None:
    """Where a search's time went, for the operator (INFO); shoppers never see it."""
    log.info(
        "search by photo: %d products in %.0f ms (photo %.0f ms, model %.0f ms%s, "
        "search %.1f ms)", shop.n_products, sum(timings.values()), timings.get("decode", 0),
        timings.get("embed", 0), "" if was_ready else " including loading it",
        timings.get("search", 0),
    )


def run_search(
    searcher: PhotoSearcher, shop: Shop, contents: Any, filename: Any
) -> tuple[Any, dict[str, Any] | None]:
    """The upload callback as a pure function: an upload (data URL) -> (results area,
    what the browser keeps of it, or None when there is nothing to keep).

    A photo gives its preview, the neighbour vote and the k most similar products as
    cards; a bad upload gives an alert with a message for the shopper. Nothing is kept
    on the server between calls.
    """
    filename = filename if isinstance(filename, str) and filename else None
    if not contents or not isinstance(contents, str):
        return search_placeholder(shop), None
    was_ready = searcher.state == "ready"
    try:
        data = decode_upload(contents)
        result = searcher.search(data)
        preview = photo_preview(data)
    except UploadError as e:
        return upload_alert(str(e), filename), None
    except ModelError as e:
        log.error("search by photo: %s", e)
        return upload_alert(UNAVAILABLE_TEXT, filename, "danger"), None
    except Exception:  # a shopper gets a message, the operator the traceback
        log.exception("search by photo failed for %r", filename)
        return upload_alert("Something went wrong on our side. Please try another photo.",
                            filename, "danger"), None
    log_timings(shop, result.timings_ms, was_ready)
    if result.nothing:
        return nothing_matches_layout(preview, filename), None
    rows = result.rows or {shop.rows[0].key: result.neighbours}
    layout = results_layout(shop, rows, result.vote, preview, filename)
    return layout, saved_result(rows, result.vote, preview, filename)


def search_results(searcher: PhotoSearcher, shop: Shop, contents: Any, filename: Any) -> Any:
    """The results area for an upload (`run_search` without what the browser keeps)."""
    return run_search(searcher, shop, contents, filename)[0]


def restore_results(shop: Shop, saved: Any) -> Any:
    """The results area for the last search as the browser kept it (Back, reload)."""
    checked = read_saved(saved, tuple(spec.key for spec in shop.rows))
    if checked is None:
        return no_update
    return results_layout(shop, checked["rows"], checked["vote"], checked["preview"],
                          checked["filename"])


def search_layout(shop: Shop, searcher: PhotoSearcher) -> html.Div:
    """Search by photo: an upload area (click, drop, or a phone's camera) and the results."""
    upload = dcc.Upload(
        id="photo-upload",
        accept="image/*",  # phones offer the camera as well as the gallery
        max_size=MAX_UPLOAD_BYTES,
        multiple=False,
        className="photo-drop",
        className_active="photo-drop active",
        className_reject="photo-drop rejected",
        children=html.Div(
            [
                html.Div(className="photo-drop-icon"),
                html.Div("Drop a photo here", className="fw-semibold"),
                html.Div(["or ", html.Span("choose one", className="photo-drop-link"),
                          " (on a phone: take one)"], className="small"),
                html.Div("or paste an image (Ctrl+V)", className="small"),
                html.Div(f"JPEG, PNG or WebP · up to {MAX_UPLOAD_BYTES // 2**20}\u00a0MB",
                         className="small text-muted mt-2"),
            ],
            className="photo-drop-inner",
        ),
    )
    return html.Div(
        [
            html.H1("Search by photo", className="h3 mb-1"),
            html.P("Upload a product photo and we'll find what in the catalog looks most "
                   "like it.", className="text-muted mb-3"),
            dcc.Store(id="photo-rejected"),
            # The last search, kept by the browser for this tab (Back and reload show it
            # again), and the copy of it that the results area is asked to show.
            dcc.Store(id="photo-last", storage_type="session"),
            dcc.Store(id="photo-restore"),
            dcc.Store(id="photo-paste"),  # the paste listener's callback needs an output
            dbc.Row(
                [
                    dbc.Col(
                        [upload,
                         html.Div(model_status(searcher), id="photo-model-status",
                                  className="text-muted small mt-2")],
                        md=4, lg=3,
                    ),
                    dbc.Col(
                        dcc.Loading(
                            html.Div(search_placeholder(shop), id="photo-results"),
                            id="photo-loading",
                            custom_spinner=loading_message(searcher),
                            overlay_style={"visibility": "visible", "opacity": 0.35},
                        ),
                        md=8, lg=9,
                    ),
                ],
                className="g-4",
            ),
        ],
        className="search-page",
    )


def search_page(searcher: PhotoSearcher) -> Page:
    """The search-by-photo page and its callbacks, for `create_app(extra_pages=...)`."""

    def view(shop: Shop, rest: str = "", search: str = "") -> View:
        return View(search_layout(shop, searcher),
                    Head("Search by photo", "Upload a product photo and find what looks like it."))

    def register(app: Dash, shop: Shop) -> None:
        @app.callback(
            Output("photo-results", "children"),
            Output("photo-upload", "contents"),
            Output("photo-model-status", "children"),
            Output("photo-loading", "custom_spinner"),
            Output("photo-last", "data"),
            Input("photo-upload", "contents"),
            Input("photo-rejected", "data"),
            State("photo-upload", "filename"),
            prevent_initial_call=True,
        )
        def _search(contents: Any, rejected: Any, filename: Any) -> tuple[Any, ...]:
            filename = filename if isinstance(filename, str) else None
            saved = None
            if ctx.triggered_id == "photo-rejected":
                body = rejected_upload_alert(rejected, MAX_UPLOAD_BYTES)
            else:
                body, saved = run_search(searcher, shop, contents, filename)
            # Clearing contents lets the same file be uploaded again and frees the browser's
            # copy; a bad upload leaves the last good search saved.
            return (body, None, model_status(searcher), loading_message(searcher),
                    no_update if saved is None else saved)

        # The page appears again (Back, reload) with a saved search: the browser passes it
        # on only while the results area shows the placeholder (assets/shopfront.js), and
        # it is shown again from its ids and scores, without the model.
        app.clientside_callback(
            ClientsideFunction(namespace="shopfront", function_name="restore_gate"),
            Output("photo-restore", "data"),
            Input("photo-last", "data"),
            State("photo-results", "children"),
            prevent_initial_call=True,
        )

        @app.callback(
            Output("photo-results", "children", allow_duplicate=True),
            Input("photo-restore", "data"),
            prevent_initial_call=True,
        )
        def _restore(saved: Any) -> Any:
            return restore_results(shop, saved)

        # Runs in the browser when the page appears: dcc.Upload silently drops a file that is
        # not an image or is too large; the guard reports it here (assets/shopfront.js).
        app.clientside_callback(
            ClientsideFunction(namespace="shopfront", function_name="upload_guard"),
            Output("photo-rejected", "data"),
            Input("photo-upload", "id"),
            State("photo-upload", "max_size"),
        )
        # An image pasted on the page (Ctrl+V) is uploaded like a dropped one.
        app.clientside_callback(
            ClientsideFunction(namespace="shopfront", function_name="paste_photo"),
            Output("photo-paste", "data"),
            Input("photo-upload", "id"),
            State("photo-upload", "max_size"),
        )

    return Page(SEARCH_PATH, "Search by photo", view, register, short_label="Photo")
