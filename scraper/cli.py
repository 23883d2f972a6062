"""Command line: ``python -m scraper {crawl,import,demo-shop}``.

User mistakes end with one line on stderr and exit status 2, never a traceback. A crawl
that ran exits 0 even when some products failed (they are listed in the summary and
retried by the next run); it exits 1 when it ends with an empty catalog.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from scraper import ScraperError

DEMO_PORT = 8765


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = _Parser(prog="python -m scraper", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("crawl", help="crawl a shop described by a profile into a catalog folder")
    c.add_argument("profile", help="profile .toml file, or a bundled name such as 'demo'")
    c.add_argument("--out", required=True, type=Path, help="catalog folder to write/resume")
    c.add_argument("--base-url", help="replaces {base} in the profile's URLs")
    c.add_argument("--refresh", action="store_true",
                   help="re-read listing pages; changed, skipped and failed products are redone")
    c.add_argument("--delay", type=_positive_float,
                   help="minimum seconds between requests to one host (default 1)")
    c.add_argument("--max-pages", type=_positive_int, help="cap on listing pages fetched")
    c.add_argument("--max-image-bytes", type=_positive_int, help="cap on bytes per image")
    c.add_argument("--timeout", type=_positive_float, help="seconds per request (default 20)")
    c.add_argument("--retries", type=int, choices=range(0, 11), metavar="N",
                   help="retries on connection errors, 429 and 5xx (default 3)")
    c.add_argument("--contact", help="e-mail or URL appended to the User-Agent")
    c.add_argument("--user-agent", help="User-Agent product token")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")

    i = sub.add_parser("import", help="make a catalog folder from images on disk")
    i.add_argument("images", type=Path, help="folder of image files")
    i.add_argument("--out", required=True, type=Path, help="catalog folder to write")
    i.add_argument("--metadata", type=Path, help="CSV with one row per product")
    i.add_argument("--id-column", default="id", help="CSV column with the product id")
    i.add_argument("--title-column", help="CSV column with the product title")
    i.add_argument("--image-column", help="CSV column with the image path (relative to IMAGES);"
                   " default: the file named <id>.<ext>")
    i.add_argument("--price-column", help="CSV column with the price")
    i.add_argument("--currency-column", help="CSV column with the currency")
    i.add_argument("--no-progress", action="store_true", help="no progress bar")

    d = sub.add_parser("demo-shop", help="serve the generated demo shop on 127.0.0.1")
    d.add_argument("--port", type=int, default=DEMO_PORT,
                   help=f"port (default {DEMO_PORT}; 0 = any free port)")
    d.add_argument("--faults", action="store_true",
                   help="also serve /faults/ pages with injected errors (for tests)")
    return parser


def _crawl(args: argparse.Namespace) -> int:
    from scraper.crawl import crawl
    from scraper.profile import load_profile

    profile = load_profile(args.profile, base_url=args.base_url)
    pol = profile.politeness
    overrides = {"delay": args.delay, "max_pages": args.max_pages,
                 "max_image_bytes": args.max_image_bytes, "timeout": args.timeout,
                 "retries": args.retries, "contact": args.contact,
                 "user_agent": args.user_agent}
    pol = replace(pol, **{k: v for k, v in overrides.items() if v is not None})
    if pol.timeout <= 0:
        raise ScraperError("--timeout must be more than 0")
    profile = replace(profile, politeness=pol)
    if args.out.exists() and not args.out.is_dir():
        raise ScraperError(f"--out {args.out} exists and is not a folder")
    summary = crawl(profile, args.out, refresh=args.refresh,
                    progress=False if args.no_progress else None)
    print("\n".join(summary.lines()))
    return 0 if summary.done else 1


def _import(args: argparse.Namespace) -> int:
    from scraper.local_import import import_folder

    if args.out.exists() and not args.out.is_dir():
        raise ScraperError(f"--out {args.out} exists and is not a folder")
    summary = import_folder(args.images, args.out, metadata=args.metadata,
                            id_column=args.id_column, title_column=args.title_column,
                            image_column=args.image_column, price_column=args.price_column,
                            currency_column=args.currency_column,
                            progress=False if args.no_progress else None)
    print("\n".join(summary.lines()))
    return 0


def _demo_shop(args: argparse.Namespace) -> int:
    from scraper.demo_shop.server import serve_forever

    if not 0 <= args.port <= 65535:
        raise ScraperError(f"--port must be 0-65535, got {args.port}")
    serve_forever(port=args.port, faults=args.faults)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"crawl": _crawl, "import": _import, "demo-shop": _demo_shop}
    try:
        return handlers[args.command](args)
    except ScraperError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is saved, run the same command to resume",
              file=sys.stderr)
        return 130
