"""The lookalike shop front: a Dash app serving a precomputed folder (contract 2).

    shop.py       the loaded shop (SQLite index) and every query a page makes
    query.py      the catalog's URL query string, bounded and normalised
    text.py       prices, labels and links as shoppers read them
    components.py product cards, match badges, grids, navbar (Dash wire format)
    router.py     URL -> page view (layout + head); pages/ one module per page
    document.py   the server-rendered document: status, title, meta tags, first frame
    web.py        limits, body deadline, security headers, compression, caching, thumbnails
    hosts.py      $LOOKALIKE_HOSTS: the only host names redirects and OpenGraph URLs name
    factory.py    create_app: the pieces assembled; dynamic.py adds search by photo
    start.py      build_front: static or dynamic, one-line start-up errors
"""

from __future__ import annotations

from .factory import ShopFront, create_app, render_page
from .shop import Item, Shop
from .start import AppStartError, Started, build_front

__all__ = ["AppStartError", "Item", "Shop", "ShopFront", "Started", "build_front",
           "create_app", "render_page"]
