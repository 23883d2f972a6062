"""Embedding throughput of VGG16 fc2: the pipeline's batched path vs the tutorial's loop.

Prints, all measured in this run on this machine:
- the fp32 matmul rate (GFLOP/s) and the implied limit for VGG16 (30.9 GFLOP per image);
- the pipeline's end-to-end rate (JPEG decode + resize + batched predict) and its share
  of that limit (target >= 85%);
- the tutorial's one-image-per-`predict` loop (keras load_img per file) and the ratio.

With `--precision bfloat16` (or `auto`) it instead compares float32 with that precision in
one run: decode time alone, model time alone (on the decoded batches) and end to end
(`embed_items`, decode overlapped), and prints the ratio end to end; `--model` picks
vgg16 (default) or a .keras file such as ../shared's MobileNet.

Weights are random (ImageNet weights cannot be downloaded here); speed does not depend
on them. Usage: python bench/bench_embed.py [--images 96] [--naive 16] [--batch 32]
       python bench/bench_embed.py --precision bfloat16 [--model vgg16|FILE.keras]
       python bench/bench_embed.py --quality  (bfloat16's quality gate on fashion-small-2k)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw

VGG16_GFLOP_PER_IMAGE = 30.9


def make_photos(folder: Path, n: int, size=(800, 1000)) -> list[Path]:
    """Shop-sized JPEG photos (800x1000), each a little different."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = Image.new("RGB", size, "white")
        d = ImageDraw.Draw(img)
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        x0, y0 = rng.integers(50, 250, 2)
        d.ellipse((x0, y0, x0 + 450, y0 + 600), fill=c)
        noise = rng.integers(0, 30, (size[1] // 4, size[0] // 4, 3), dtype=np.uint8)
        img.paste(Image.fromarray(noise).resize(size), mask=Image.new("L", size, 40))
        p = folder / f"p{i:04d}.jpg"
        img.save(p, quality=90)
        paths.append(p)
    return paths


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Sustained fp32 matmul rate of TensorFlow on this CPU."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    f = tf.function(lambda: tf.linalg.matmul(a, b))
    f().numpy()
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            out = f()
        out.numpy()
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9)
    return best


def naive_rate(model, paths: list[Path]) -> float:
    """The tutorial: load_img(target_size) + expand_dims + preprocess + predict, per image."""
    import keras
    from keras.applications.vgg16 import preprocess_input

    def one(p: Path) -> np.ndarray:
        img = keras.utils.load_img(p, target_size=(224, 224))
        x = np.expand_dims(keras.utils.img_to_array(img), axis=0)
        return model.predict(preprocess_input(x), verbose=0)

    one(paths[0])  # warm-up
    t = time.perf_counter()
    for p in paths:
        one(p)
    return len(paths) / (time.perf_counter() - t)


def pipeline_rate(extractor, paths: list[Path], batch: int) -> float:
    """The pipeline's embed_items: threaded decode ahead of batched predict_on_batch."""
    from pipeline.features import EmbedItem, embed_items

    extractor.embed(np.zeros((batch, 224, 224, 3), np.uint8))  # warm-up (graph build)
    items = [EmbedItem(f"{i}", p) for i, p in enumerate(paths)]
    t = time.perf_counter()
    out, _colours, errors = embed_items(items, extractor.embed, extractor.input_size, "pad",
                                        batch)
    elapsed = time.perf_counter() - t
    assert len(out) == len(paths) and not errors
    return len(paths) / elapsed


def precision_times(extractor, paths: list[Path], batch: int) -> tuple[float, float, float]:
    """(decode s, model s, end-to-end s) of one extractor over the photos."""
    from pipeline.features import EmbedItem, decoded_batches

    items = [EmbedItem(f"{i}", p) for i, p in enumerate(paths)]
    t = time.perf_counter()
    batches = [arr for _, arr, _, _ in decoded_batches(items, extractor.input_size, "pad",
                                                       batch)]
    decode = time.perf_counter() - t
    extractor.embed(batches[0])  # warm-up (graph build)
    t = time.perf_counter()
    for arr in batches:
        extractor.embed(arr)
    model = time.perf_counter() - t
    return decode, model, len(paths) / pipeline_rate(extractor, paths, batch)


def compare_precisions(model: str, precision: str, paths: list[Path], batch: int) -> None:
    """Print float32 against `precision` for one model, measured in this run."""
    from bench_first_paint import cpu_line

    from pipeline.models import load_extractor, resolve_precision

    other = resolve_precision(precision)
    print(cpu_line())
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "(the machine may be shared with other work)")
    times = {}
    for name in dict.fromkeys(("float32", other)):
        extractor = load_extractor(model, weights="random", precision=name)
        times[name] = precision_times(extractor, paths, batch)
        decode, model_s, end = times[name]
        n = len(paths)
        print(f"{model} {name:8s}: decode {n / decode:7.1f} img/s, model {n / model_s:7.2f} "
              f"img/s, end to end {n / end:7.2f} img/s ({n} photos of 800x1000, batch {batch})")
    if other != "float32":
        ratio = times["float32"][2] / times[other][2]
        model_ratio = times["float32"][1] / times[other][1]
        print(f"{other}/float32: {ratio:.2f}x end to end, {model_ratio:.2f}x model alone")


def quality_gate(out: Path) -> None:
    """Build fashion-small-2k with the shared MobileNet in float32 and bfloat16 (default
    options, k=10) and print the top-10 overlap per row and articleType precision@5."""
    import json

    from pipeline.build import BuildOptions, build
    from pipeline.evaluate import evaluate

    fashion = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-small-2k"
    model = fashion.parents[1] / "models" / "mobilenet-v1-imagenet-dw13-gap.keras"
    folders = {}
    for precision in ("float32", "bfloat16"):
        folders[precision] = out / precision
        t = time.perf_counter()
        build(BuildOptions(catalog=fashion / "images", metadata=fashion / "styles.csv",
                           title_column="productDisplayName", model=str(model),
                           out=folders[precision], cache_dir=out / "cache", k=10,
                           progress=False, precision=precision))
        p5 = evaluate(folders[precision], "articleType", k=5).precision_at_k
        print(f"{precision:8s}: build {time.perf_counter() - t:5.1f} s, "
              f"articleType precision@5 {p5:.4f}")
    for name in sorted(p.name for p in folders["float32"].glob("neighbours*.json")):
        a, b = (json.loads((folders[x] / name).read_text()) for x in ("float32", "bfloat16"))
        overlap = [len({n for n, _ in a[p]} & {n for n, _ in b[p]}) / max(len(a[p]), 1)
                   for p in a]
        print(f"{name}: top-10 overlap bfloat16 vs float32 {sum(overlap) / len(overlap):.4f}")


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--naive", type=int, default=16, help="images for the slow naive loop")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--precision", choices=("auto", "bfloat16", "float32"),
                    help="compare float32 with this precision instead")
    ap.add_argument("--model", default="vgg16", help="with --precision: vgg16 or a .keras file")
    ap.add_argument("--quality", action="store_true",
                    help="bfloat16's quality gate on fashion-small-2k (needs ../shared)")
    args = ap.parse_args()
    if args.quality:
        with tempfile.TemporaryDirectory() as tmp:
            quality_gate(Path(tmp))
        return
    if args.precision:
        with tempfile.TemporaryDirectory() as tmp:
            compare_precisions(args.model, args.precision, make_photos(Path(tmp), args.images),
                               args.batch)
        return

    from pipeline.models import load_extractor

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), args.images)
        gflops = matmul_gflops()
        limit = gflops / VGG16_GFLOP_PER_IMAGE
        print(f"fp32 matmul: {gflops:.1f} GFLOP/s -> VGG16 limit {limit:.2f} img/s")
        extractor = load_extractor("vgg16", weights="random")
        ours = pipeline_rate(extractor, paths, args.batch)
        naive = naive_rate(extractor.model, paths[: args.naive])
    print(f"naive (1 image per predict, {args.naive} images): {naive:.2f} img/s")
    print(
        f"pipeline (batch {args.batch}, decode overlapped, {args.images} images of 800x1000): "
        f"{ours:.2f} img/s = {100 * ours / limit:.0f}% of the fp32 limit"
    )
    print(f"speed-up over the naive loop: {ours / naive:.2f}x")


if __name__ == "__main__":
    main()
