"""One module per page, each exporting its `PAGE` (layout, head and callbacks).

The static pages are listed here in navbar order; dynamic mode adds `search.PAGE`.
"""

from __future__ import annotations

from . import about, catalog, explore, product

STATIC_PAGES = (catalog.PAGE, product.PAGE, explore.PAGE, about.PAGE)
