"""``python -m scraper``: see :mod:`scraper.cli`."""

import sys

from scraper.cli import main

if __name__ == "__main__":
    sys.exit(main())
