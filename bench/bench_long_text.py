"""Long words and titles (issue 22, finding 3): a build and the app's index derivation
with and without a 300 KB title holding a 40,000-character word, and the index's text
builder against the old compound-word regex, in one run.

    .venv/bin/python bench/bench_long_text.py [--runs 5] [--products 20000] [--old-max 20000]

1. builds a 96-product catalog (tests/pipeline_helpers.py: drawn photos, the stand-in
   colour model, so no TensorFlow; under 100 products the map is PCA, not UMAP's noisy
   timing) twice over: with one product's title 300 KB long (a 40,000-character word
   in it) and a 40,000-character attribute, and with a short title and attribute; the
   pipeline caps both on reading; runs alternate, medians of --runs (warm feature
   cache, as a re-build is);
2. derives shop.sqlite (what the app does at start-up for a folder without a current
   index) for a fake --products folder whose products.json is written by hand with that
   title (nothing caps it there) and for the same folder without it;
3. times the index's text builder on one long word: `searchable_text` now, and the old
   regex (backtracking from every position) up to --old-max characters.
Target: with the long title as fast as without it, within 10%.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_first_paint import cpu_line  # noqa: E402

from pipeline.build import BuildOptions, build  # noqa: E402
from pipeline.shop_index import derive_shop_index, searchable_text  # noqa: E402
from tests.fake_precomputed import make_fake_precomputed  # noqa: E402
from tests.pipeline_helpers import colour_extractor, make_catalog  # noqa: E402

WORD = "w" * 40_000
LONG_TITLE = (("Long " + WORD + " ") * 8)[:300_000]  # 300 KB, 40,000-letter words
OLD_COMPOUND = re.compile(r"[^\W_]+(?:['’\-‐][^\W_]+)+")  # before issue 22


def alternate(runs: int, **timed: Callable[[], object]) -> dict[str, float]:
    """Median seconds of each callable, run in turn `runs` times."""
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(runs):
        for name, run in timed.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def catalog(folder: Path, long: bool) -> Path:
    """96 drawn products, the first with the long title and attribute (or short ones)."""
    make_catalog(folder, n_variants=8)
    text = (folder / "catalog.csv").read_text(encoding="utf-8").splitlines()
    header = text[0] + ",notes"
    rows = [line + ",short" for line in text[1:]]
    first = rows[0].split(",")
    first[2] = LONG_TITLE if long else "Short title"
    first[-1] = WORD if long else "short"
    rows[0] = ",".join(first)
    (folder / "catalog.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    """Time the three parts; print the ratios against the 10% target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--old-max", type=int, default=20_000,
                        help="longest word given to the old regex (40,000: about 25 s)")
    args = parser.parse_args(argv)
    print(cpu_line())
    print(f"long title: {len(LONG_TITLE.encode()):,} bytes, words of {len(WORD):,} characters")
    tmp = Path(tempfile.mkdtemp(prefix="bench-long-text-"))
    try:
        # 1. the build
        cats = {name: catalog(tmp / f"cat-{name}", name == "long") for name in ("short", "long")}
        cache = tmp / "cache"

        def build_of(name: str) -> Callable[[], object]:
            return lambda: build(BuildOptions(catalog=cats[name], out=tmp / f"pre-{name}",
                                              cache_dir=cache, progress=False),
                                 extractor=colour_extractor())
        build_of("short")(), build_of("long")()  # warm the feature cache
        took = alternate(args.runs, short=build_of("short"), long=build_of("long"))
        products = json.loads((tmp / "pre-long" / "products.json").read_text(encoding="utf-8"))
        longest = max(len(p["title"] or "") for p in products)
        print(f"\nbuild, 96 products (stand-in model): short {took['short']:.3f} s, "
              f"long {took['long']:.3f} s = {took['long'] / took['short']:.3f}x "
              f"(longest title written: {longest} characters)")
        ratios = [took["long"] / took["short"]]

        # 2. the app's derivation of shop.sqlite from hand-made JSON
        plain = make_fake_precomputed(tmp / "fake", args.products, k=5, metric="euclidean",
                                      thumbs=False)
        edited = tmp / "fake-long"
        shutil.copytree(plain, edited)
        items = json.loads((edited / "products.json").read_text(encoding="utf-8"))
        items[0]["title"] = LONG_TITLE
        items[0]["attrs"]["notes"] = WORD
        (edited / "products.json").write_text(json.dumps(items), encoding="utf-8")
        took = alternate(max(3, args.runs // 2),
                         short=lambda: derive_shop_index(plain, tmp / "short.sqlite"),
                         long=lambda: derive_shop_index(edited, tmp / "long.sqlite"))
        print(f"derive shop.sqlite, {args.products:,} products: short {took['short']:.2f} s, "
              f"long {took['long']:.2f} s = {took['long'] / took['short']:.3f}x")
        ratios.append(took["long"] / took["short"])

        # 3. the text builder on one long word
        print("\nindex text of one word    now        old regex")
        for n in (5_000, 20_000, 40_000, 400_000):
            word = "a" * n
            t0 = time.perf_counter()
            searchable_text(word)
            now = time.perf_counter() - t0
            old = "(not run)"
            if n <= args.old_max:
                t0 = time.perf_counter()
                OLD_COMPOUND.findall(word)
                old = f"{time.perf_counter() - t0:9.3f} s"
            print(f"  {n:>9,} characters {now:8.4f} s  {old}")
        verdict = "PASS" if max(ratios) <= 1.10 else "FAIL"
        print(f"\n{verdict}: with the long title within 10% of without "
              f"(worst {max(ratios):.3f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
