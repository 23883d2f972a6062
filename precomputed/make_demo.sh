#!/usr/bin/env bash
# Regenerate precomputed/demo with the project's own tools: the scraper crawls the
# generated demo shop, the pipeline embeds its photos with the MobileNet file bundled in
# precomputed/models/ (meta.json records that repository-relative path, so dynamic mode
# finds it on a fresh clone) and writes the precomputed folder the app serves by default.
#
#   bash precomputed/make_demo.sh          # from the repo root, after `pip install -e ".[dev]"`
#
# PYTHON (default .venv/bin/python), DEMO_MODEL (default precomputed/models/...) override.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MODEL=${DEMO_MODEL:-precomputed/models/mobilenet-v1-imagenet-dw13-gap.keras}
CATALOG=data/demo
PORT=8765  # the bundled profile's address, so "View in shop" links work with `scraper demo-shop`

[ -f "$MODEL" ] || { echo "error: model file $MODEL not found (set DEMO_MODEL)" >&2; exit 1; }

"$PY" -m scraper demo-shop --port "$PORT" >/dev/null 2>&1 &
shop=$!
trap 'kill "$shop" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/robots.txt', timeout=1)" \
        2>/dev/null && break
    sleep 0.2
done

rm -rf "$CATALOG"
"$PY" -m scraper crawl demo --out "$CATALOG" --delay 0
"$PY" -m pipeline build "$CATALOG" --out precomputed/demo --model "$MODEL" --k 8 \
    --cache-dir data/.features --no-progress
"$PY" -m pipeline evaluate precomputed/demo --label category --k 5
