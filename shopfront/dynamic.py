"""Dynamic mode: the shop front plus search by photo, with one PhotoSearcher per process.

Imports numpy, Pillow and (when the model loads) TensorFlow, so it is imported only when
dynamic mode is asked for (`shopfront.start.build_front(dynamic=True)`).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.precomputed import read_precomputed
from pipeline.search import PhotoSearcher

from .factory import ShopFront, create_app
from .pages.search import search_page
from .shop import Shop

MAX_REQUEST_BYTES = 16 * 2**20  # a 10 MB photo is 13.4 MB as base64 inside the callback


class DynamicModeError(RuntimeError):
    """Dynamic mode cannot start; the message says why in one line."""


def create_dynamic_app(
    folder: str | Path, model_path: str | Path | None = None, preload: bool = False
) -> tuple[ShopFront, PhotoSearcher]:
    """create_app plus the search-by-photo page, and the process's PhotoSearcher.

    The model file is checked against meta.json here (ModelError if it is missing or
    differs); `preload` also loads it now instead of on the first search.
    """
    if model_path is not None and not Path(model_path).is_file():
        raise DynamicModeError(f"model file {model_path} not found (--model / $LOOKALIKE_MODEL)")
    searcher = PhotoSearcher(read_precomputed(folder), model_path)
    if preload:
        searcher.preload()
    front = create_app(Shop(folder), extra_pages=(search_page(searcher),),
                       max_request_bytes=MAX_REQUEST_BYTES)
    return front, searcher
