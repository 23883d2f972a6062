"""lookalike scraper: shop profiles -> polite, resumable crawl -> catalog folder (contract 1).

Kept light on purpose: importing ``scraper`` loads no network or imaging libraries.
Entry point: ``python -m scraper {crawl,import,demo-shop} ...``.
"""

__all__ = ["ScraperError"]


class ScraperError(Exception):
    """A user-facing error: printed as one line, never with a traceback."""
