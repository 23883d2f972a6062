"""Dynamic mode (search by photo) with the real shared model, on a fashion catalog.

The upload callback is called directly (`search_results`) with shared photos and generated
bad files; one browser test uploads a held-out photo through the page's file input; the
start-up refusal of a mismatched model runs in a subprocess. Screenshots go to
$LOOKALIKE_SCREENSHOTS (default: the test's tmp folder).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dash_bootstrap_components as dbc
import pytest
from dash import no_update
from PIL import Image

import app as lookalike
from pipeline.models import ModelError
from shopfront import ShopFront, render_page
from shopfront.dynamic import create_dynamic_app
from shopfront.pages import search as photo_search
from shopfront.query import CatalogQuery
from shopfront.text import product_href
from tests.browser_wait import wait_for
from tests.pipeline_helpers import FASHION, build_fashion_subset, needs_shared
from tests.test_app_pages import prop, texts, walk

pytestmark = [pytest.mark.slow, needs_shared]
ROOT = Path(lookalike.__file__).resolve().parent
N_CATALOG = 400
N_HELD_OUT = 12


def data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def photo(pid: str) -> bytes:
    return (FASHION / "images" / f"{pid}.jpg").read_bytes()


def encoded(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """400 fashion photos built with the shared model (k=5); held-out rows of known types."""
    root = tmp_path_factory.mktemp("fashion-dynamic")
    return build_fashion_subset(root, N_CATALOG, N_HELD_OUT, min_type_size=8)


@pytest.fixture(scope="module")
def dyn_app(fashion: tuple[Path, list[dict]]) -> tuple[ShopFront, Any]:
    """The dynamic shop front and its PhotoSearcher, built lazily (no model yet), as
    `python app.py --dynamic` does."""
    return create_dynamic_app(fashion[0])


@pytest.fixture(scope="module")
def front(dyn_app: tuple[ShopFront, Any]) -> ShopFront:
    return dyn_app[0]


@pytest.fixture(scope="module")
def searcher(dyn_app: tuple[ShopFront, Any]) -> Any:
    return dyn_app[1]


def search(dyn_app: tuple[ShopFront, Any], data: bytes, mime: str = "image/jpeg",
           filename: str = "x.jpg") -> Any:
    front, searcher = dyn_app
    return photo_search.search_results(searcher, front.shop, data_url(data, mime), filename)


def cards(layout: Any, row: str | None = None) -> list[str]:
    """Product ids of the cards of the first recommendation row (or of the row with id
    `row`), in order."""
    first = (row,) if row else ("photo-similar", "similar-products")
    strip = next((n for n in walk(layout) if isinstance(n, dict) and prop(n, "id") in first),
                 layout)
    return [prop(n, "id")["id"] for n in walk(strip)
            if isinstance(n, dict) and isinstance(n.get("props", {}).get("id"), dict)
            and n["props"]["id"].get("type") == "product-card"]


def no_internals(layout: Any, searcher: Any) -> None:
    """Shoppers see no model name, file, weights or timings."""
    shown = " ".join(texts(layout))
    model = searcher.model_meta
    for word in ("mobilenet", ".keras", "Model ready", "weights", "Compared with",
                 str(model.get("name")), str(model.get("weights"))):
        assert word not in shown, (word, shown)
    assert not re.search(r"\d ms\b", shown), shown


def error_text(layout: Any) -> str | None:
    """The alert's text if the layout is an upload error, else None."""
    nodes = [n for n in walk(layout) if getattr(n, "id", None) == "photo-error"]
    return " ".join(texts(nodes[0])) if nodes else None


# --------------------------------------------------------------------------- the callback


def test_model_loads_on_first_search_then_stays(
    dyn_app: Any, front: ShopFront, searcher: Any
) -> None:
    assert searcher.state == "not loaded"
    view = render_page(front.shop, front.pages, "/search", "")
    assert view.head.status == 200 and view.head.title == "Search by photo"
    page = view.layout
    assert "The first search takes a few seconds." in texts(page)
    assert "or paste an image (Ctrl+V)" in texts(page)
    no_internals(page, searcher)
    upload = next(n for n in walk(page) if getattr(n, "id", None) == "photo-upload")
    assert upload.accept == "image/*" and upload.max_size == 10 * 2**20
    spinner = next(n for n in walk(page) if getattr(n, "id", None) == "photo-loading")
    assert photo_search.FIRST_SEARCH_TEXT in texts(spinner.custom_spinner)

    pid = searcher.ids[7]
    layout = search(dyn_app, photo(pid))
    assert searcher.state == "ready"
    assert cards(layout)[0] == pid  # a catalog photo finds itself first
    model = searcher._extractor
    search(dyn_app, photo(pid))
    assert searcher._extractor is model  # loaded once per process
    assert photo_search.model_status(searcher) == ""  # nothing to say once it is ready
    assert texts(photo_search.loading_message(searcher)) == ["Finding look-alikes…"]


def test_held_out_photos_show_preview_vote_and_look_alikes(
    dyn_app: Any, front: ShopFront, fashion: Any
) -> None:
    _, held_out = fashion
    shop = front.shop
    shares, votes = [], 0
    for row in held_out:
        layout = search(dyn_app, photo(row["id"]), filename=f"{row['id']}.jpg")
        assert error_text(layout) is None
        ids = cards(layout)
        assert len(ids) == 5
        shares.append(sum(shop.item(i).attrs["articleType"] == row["articleType"]
                          for i in ids) / 5)
        vote = texts(next(n for n in walk(layout)
                          if isinstance(n, dict) and prop(n, "id") == "photo-vote"))
        assert vote[0] == "Looks like: " and vote[2].endswith(" of 5 neighbours)")
        votes += vote[1] == row["articleType"]
    assert sum(shares) / len(shares) > 0.5  # the shared model's precision@5 is about 0.67
    assert votes / len(held_out) > 0.5

    all_texts = texts(layout)
    assert f"{held_out[-1]['id']}.jpg" in all_texts  # the file name, as text
    assert not [t for t in all_texts if t.endswith("% match")]  # no raw numbers
    labels = [t for t in all_texts if t in ("Very close match", "Close match", "Loose match")]
    assert len(labels) == 10  # two rows of 5, each card labelled from its row's calibration
    assert "Same style, other colours" in all_texts
    others = cards(layout, "photo-row-1")
    colour = {i: shop.item(i).attrs.get("baseColour") for i in others}
    assert len(others) == 5 and colour[others[0]] is not None
    preview = next(n for n in walk(layout) if isinstance(n, dict)
                   and prop(n, "id") == "photo-preview")
    src = prop(preview, "src")
    assert src.startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert max(img.size) <= photo_search.PREVIEW_SIDE
    hrefs = [prop(n, "href") for n in walk(layout)
             if isinstance(n, dict) and n.get("type") == "Link"]
    assert hrefs == [product_href(i) for i in cards(layout) + others]
    no_internals(layout, dyn_app[1])


def _cmyk_jpeg(pid: str) -> bytes:
    return encoded(Image.open(io.BytesIO(photo(pid))).convert("CMYK"), "JPEG")


def _png16(pid: str) -> bytes:
    grey = Image.open(io.BytesIO(photo(pid))).convert("L")
    return encoded(grey.point(lambda v: v * 256).convert("I;16"), "PNG")


def _rgba(pid: str) -> bytes:
    img = Image.open(io.BytesIO(photo(pid))).convert("RGBA")
    img.putalpha(200)
    return encoded(img, "PNG")


def _animated(pid: str) -> bytes:
    others = sorted(p.stem for p in (FASHION / "images").glob("*.jpg"))[-2:]
    frames = [Image.open(io.BytesIO(photo(p))).convert("P") for p in (pid, *others)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


@pytest.mark.parametrize(
    ("make", "mime", "finds_itself"),
    [(_cmyk_jpeg, "image/jpeg", True), (_png16, "image/png", False),
     (_rgba, "image/png", False), (_animated, "image/gif", True)],
    ids=["cmyk-jpeg", "16-bit-png", "rgba-png", "animated-gif"],
)
def test_odd_but_valid_photos_are_searched(
    dyn_app: Any, searcher: Any, make: Any, mime: str, finds_itself: bool
) -> None:
    pid = searcher.ids[3]
    layout = search(dyn_app, make(pid), mime)
    assert error_text(layout) is None
    assert len(cards(layout)) == 5
    if finds_itself:  # colour kept: the same product first despite the odd encoding
        assert cards(layout)[0] == pid


def _bomb() -> bytes:
    return encoded(Image.new("1", (12000, 12000)), "PNG", optimize=True)


@pytest.mark.parametrize(
    ("make", "mime", "message"),
    [
        (lambda: b"%PDF-1.4 not a photo", "application/pdf", "not an image (application/pdf)"),
        (lambda: b"hello, this is text", "image/jpeg", "cannot be used as a photo"),
        (lambda: photo("10015")[:400], "image/jpeg", "cannot be used as a photo"),
        (lambda: b"\xff\xd8" + b"x" * (10 * 2**20 + 10), "image/jpeg", "larger than 10 MB"),
        (_bomb, "image/png", "too many pixels"),
        (lambda: b"", "image/png", "empty"),
    ],
    ids=["pdf", "text-as-jpeg", "truncated-jpeg", "over-10mb", "bomb-png", "empty"],
)
def test_bad_uploads_show_a_message(dyn_app: Any, make: Any, mime: str, message: str) -> None:
    layout = search(dyn_app, make(), mime, filename="bad.file")
    text = error_text(layout)
    assert text is not None and message in text, text
    assert "“bad.file”" in text
    assert cards(layout) == []


def test_tabs_uploading_at_once_get_their_own_results(dyn_app: Any, searcher: Any) -> None:
    pids = searcher.ids[20:28]
    alone = [cards(search(dyn_app, photo(p))) for p in pids]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda p: cards(search(dyn_app, photo(p))), pids))
    assert together == alone and [c[0] for c in alone] == pids


def test_memory_does_not_grow_with_uploads(dyn_app: Any, searcher: Any) -> None:
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    uploads = [(photo(searcher.ids[1]), "image/jpeg"), (_bomb(), "image/png"),
               (photo("10015")[:500], "image/jpeg"), (_cmyk_jpeg(searcher.ids[2]),
                                                       "image/jpeg")]
    for data, mime in uploads:
        search(dyn_app, data, mime)
    before = process.memory_info().rss
    for i in range(40):
        search(dyn_app, *uploads[i % len(uploads)])
    assert process.memory_info().rss - before < 40 * 2**20


def test_files_refused_before_upload_get_messages() -> None:
    limit = 10 * 2**20
    pdf = photo_search.rejected_upload_alert({"name": "a.pdf", "type": "application/pdf",
                                              "size": 10}, limit)
    assert "not an image (application/pdf)" in " ".join(texts(pdf))
    big = photo_search.rejected_upload_alert({"name": "big.jpg", "type": "image/jpeg",
                                              "size": 14.5 * 2**20}, limit)
    assert "14.5 MB; photos can be at most 10 MB" in " ".join(texts(big))
    assert photo_search.rejected_upload_alert(None, limit) is no_update


def test_status_texts_are_shopper_words() -> None:
    """Under the upload area: nothing when ready, plain words otherwise; no model names."""
    def status(state: str) -> tuple[str, list[str]]:
        stand_in = SimpleNamespace(state=state, model_meta={"name": "file:secret.keras"})
        return (photo_search.model_status(stand_in),  # type: ignore[arg-type]
                texts(photo_search.loading_message(stand_in)))  # type: ignore[arg-type]

    assert status("ready") == ("", ["Finding look-alikes…"])
    first = photo_search.FIRST_SEARCH_TEXT
    assert first == "Getting ready… the first search takes a few seconds."
    assert status("loading") == (first, [first])
    assert status("not loaded") == ("The first search takes a few seconds.", [first])
    assert status("failed")[0] == photo_search.UNAVAILABLE_TEXT
    assert "model" not in photo_search.UNAVAILABLE_TEXT.lower()


def test_model_failure_is_plain_words_for_shoppers_and_details_in_the_log(
    dyn_app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    front, searcher = dyn_app

    def broken(data: bytes) -> Any:
        raise ModelError("/models/secret.keras has sha256 0123abcd")

    monkeypatch.setattr(searcher, "search", broken)
    with caplog.at_level(logging.ERROR, logger="lookalike"):
        layout, saved = photo_search.run_search(searcher, front.shop,
                                                data_url(photo(searcher.ids[0])), "a.jpg")
    text = error_text(layout)
    assert text is not None and photo_search.UNAVAILABLE_TEXT in text
    assert "secret" not in text and "sha256" not in text and saved is None
    assert "secret.keras" in caplog.text


def test_timings_go_to_the_log_not_to_shoppers(
    dyn_app: Any, searcher: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="lookalike"):
        layout = search(dyn_app, photo(searcher.ids[4]))
    no_internals(layout, searcher)
    record = next(r for r in caplog.records if r.getMessage().startswith("search by photo:"))
    assert record.levelno == logging.INFO
    assert re.fullmatch(r"search by photo: 400 products in \d+ ms \(photo \d+ ms, model "
                        r"\d+ ms( including loading it)?, search \d+\.\d ms\)",
                        record.getMessage())


def test_a_saved_search_is_shown_again_from_ids_and_scores(dyn_app: Any, searcher: Any) -> None:
    """What the browser keeps (session storage) redraws the same results, without the model."""
    front = dyn_app[0]
    pid = searcher.ids[9]
    layout, saved = photo_search.run_search(searcher, front.shop, data_url(photo(pid)),
                                            "mine.jpg")
    assert saved is not None
    assert set(saved) == {"filename", "preview", "rows", "vote"}
    assert list(saved["rows"]) == ["similar", "other_colours"]
    kept = json.loads(json.dumps(saved))  # as it comes back from the browser
    assert len(json.dumps(kept)) < 60_000  # one small search: ids, scores, a 320 px preview
    again = photo_search.restore_results(front.shop, kept)
    assert cards(again) == cards(layout) and cards(again)[0] == pid
    assert texts(again) == texts(layout)

    gone = {**kept, "rows": {**kept["rows"], "similar": [["no-such-product", 0.99],
                                                         *kept["rows"]["similar"]]}}
    assert cards(photo_search.restore_results(front.shop, gone)) == cards(layout)
    # a search saved before rows existed (one list of neighbours) is the first row
    old = {k: v for k, v in kept.items() if k != "rows"} | {"neighbours": kept["rows"]["similar"]}
    assert cards(photo_search.restore_results(front.shop, old)) == cards(layout)
    unknown_row = {**kept, "rows": {"nope": kept["rows"]["similar"]}}
    assert photo_search.restore_results(front.shop, unknown_row) is no_update


@pytest.mark.parametrize("saved", [
    None, [], "x", {},
    {"preview": "javascript:alert(1)", "neighbours": []},
    {"preview": "data:image/svg+xml;base64,PHN2Zz4=", "neighbours": []},
    {"preview": "data:image/jpeg;base64,\"><script>", "neighbours": []},
    {"preview": "data:image/jpeg;base64," + "A" * 300_000, "neighbours": []},
    {"preview": "data:image/jpeg;base64,AAAA", "neighbours": "p1"},
    {"preview": "data:image/jpeg;base64,AAAA", "neighbours": [["p1", float("nan")]]},
    {"preview": "data:image/jpeg;base64,AAAA", "neighbours": [["p1", True]]},
    {"preview": "data:image/jpeg;base64,AAAA", "neighbours": [[1, 0.5]]},
    {"preview": "data:image/jpeg;base64,AAAA", "neighbours": [["p", 0.5]] * 101},
], ids=lambda v: repr(v)[:40])
def test_odd_saved_searches_are_ignored(front: ShopFront, saved: Any) -> None:
    assert photo_search.restore_results(front.shop, saved) is no_update


def test_odd_saved_vote_and_file_name_are_dropped(front: ShopFront, searcher: Any) -> None:
    pid = searcher.ids[0]
    saved = {"preview": "data:image/jpeg;base64,AAAA", "neighbours": [[pid, 0.9]],
             "vote": ["articleType", {"x": 1}, 3, 5], "filename": ["a"]}
    layout = photo_search.restore_results(front.shop, saved)
    assert cards(layout) == [pid] and "Looks like: " not in texts(layout)


def test_callback_over_http_keeps_serving_after_bad_uploads(
    front: ShopFront, searcher: Any
) -> None:
    client = front.server.test_client()

    outputs = [("photo-results", "children"), ("photo-upload", "contents"),
               ("photo-model-status", "children"), ("photo-loading", "custom_spinner"),
               ("photo-last", "data")]

    def upload(contents: str) -> str:
        response = client.post("/_dash-update-component", json={
            "output": next(k for k in front.app.callback_map if "photo-results.children" in k),
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": [{"id": "photo-upload", "property": "contents", "value": contents},
                       {"id": "photo-rejected", "property": "data", "value": None}],
            "state": [{"id": "photo-upload", "property": "filename", "value": "p.jpg"}],
            "changedPropIds": ["photo-upload.contents"],
        })
        assert response.status_code == 200, response.data[:500]
        body = response.get_json()["response"]
        assert body["photo-upload"]["contents"] is None  # the same file can come again
        saved.append(body.get("photo-last"))
        return json.dumps(body["photo-results"])

    saved: list[Any] = []

    pid = searcher.ids[5]
    assert "photo-error" in upload(data_url(_bomb(), "image/png"))
    assert "photo-error" in upload(data_url(b"garbage", "image/jpeg"))
    assert saved == [None, None]  # nothing kept for the browser from a bad upload
    good = upload(data_url(photo(pid)))
    assert "photo-error" not in good and f'"id": "{pid}"' in good
    assert saved[-1]["data"]["rows"]["similar"][0][0] == pid  # the last good search, to keep
    # The largest upload the page sends (a file just over 10 MB, 14 MB as base64) reaches
    # the callback, which explains the limit: dynamic mode's request limit is above it.
    over = upload(data_url(b"\xff\xd8" + b"x" * (10 * 2**20 + 10)))
    assert "photo-error" in over and "larger than 10 MB" in over
    too_big = client.post("/_dash-update-component", data=b"x" * (17 * 2**20),
                          content_type="application/json")
    assert too_big.status_code == 413  # refused before it is read into memory
    assert client.get("/search").status_code == 200


def test_navbar_and_static_pages_in_dynamic_mode(front: ShopFront) -> None:
    labels = [p.label for p in front.pages if p.label]
    assert labels == ["Catalog", "Explore", "About", "Search by photo"]
    bar = next(n for n in walk(front.app.layout) if isinstance(n, dbc.Navbar))
    nav = texts(bar)
    assert nav.index("Search by photo") < nav.index("About")  # About stays last
    _, _, first = front.shop.matching(CatalogQuery(), 1)
    product = render_page(front.shop, front.pages, f"/product/{first[0].id}", "")
    assert product.head.status == 200 and product.head.title == first[0].title
    assert len(cards(product.layout)) == 5


# --------------------------------------------------------------------------- start-up


def run(args: list[str], env: dict[str, str] | None = None, code: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code] if code else [sys.executable, str(ROOT / "app.py")]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **(env or {})},
    )


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real Keras model file: loads fine, but is not the catalog's model."""
    import keras

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_mismatched_model_is_refused_at_start_up(fashion: Any, other_model: Path) -> None:
    folder = fashion[0]
    result = run(["--dynamic", "--precomputed", str(folder), "--model", str(other_model),
                  "--port", "1"])
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "model mismatch" in lines[0] and str(other_model) in lines[0]
    assert str(folder) in lines[0] and "Traceback" not in result.stderr


def test_model_options_need_dynamic(fashion: Any) -> None:
    result = run(["--precomputed", str(fashion[0]), "--preload-model", "--port", "1"])
    assert result.returncode != 0
    assert result.stderr.strip() == "lookalike: --model and --preload-model need --dynamic"


GUNICORN_ENTRY = """
import sys, app, dash
s = app.server
page = s.test_client().get("/search")
print(type(s).__name__, isinstance(app.app, dash.Dash), page.status_code,
      "first search takes a few seconds" in page.get_data(as_text=True),
      "tensorflow" in sys.modules)
"""


def test_gunicorn_entry_point_dynamic_from_env(fashion: Any, other_model: Path) -> None:
    env = {lookalike.ENV_VAR: str(fashion[0]), lookalike.DYNAMIC_ENV: "1"}
    result = run([], env, GUNICORN_ENTRY)
    assert result.returncode == 0, result.stderr
    # The search page is served, and lazily: the model (and TensorFlow) is not loaded
    # until the first search.
    assert result.stdout.split() == ["Flask", "True", "200", "True", "False"]
    result = run([], {**env, lookalike.MODEL_ENV: str(other_model)}, GUNICORN_ENTRY)
    assert result.returncode == 3  # gunicorn stops instead of respawning workers
    assert len(result.stderr.strip().splitlines()) == 1 and "model mismatch" in result.stderr


@pytest.mark.skipif(shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None,
                    reason="gunicorn not installed")
def test_gunicorn_preload_loads_the_model_in_the_worker(fashion: Any) -> None:
    """The production command (shopfront.gunicorn_conf: `preload_app`) + LOOKALIKE_PRELOAD=1:
    a model loaded before gunicorn forks would hang the worker's first search (TensorFlow
    does not survive a fork); it must answer at once."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {**os.environ, lookalike.ENV_VAR: str(fashion[0]), lookalike.DYNAMIC_ENV: "1",
           lookalike.PRELOAD_ENV: "1"}
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "python:shopfront.gunicorn_conf", "app:server",
         "--workers", "1", "--bind", "127.0.0.1:0", "--timeout", "20", "--no-control-socket"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    log: list[str] = []
    try:
        port = None
        while port is None:  # the worker reports when its model is in memory
            line = proc.stderr.readline()  # type: ignore[union-attr]
            assert line or proc.poll() is None, "gunicorn exited: " + "".join(log)
            log.append(line)
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        while "model loaded in" not in log[-1]:
            log.append(proc.stderr.readline())  # type: ignore[union-attr]
            assert log[-1], "".join(log)
        deps = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-dependencies",
                                                timeout=10))
        dyn_id = next(d["output"] for d in deps if "photo-results.children" in d["output"])
        first = sorted(p.stem for p in (fashion[0] / "thumbs").glob("*.jpg"))[0]
        payload = json.dumps({
            "output": dyn_id,
            "outputs": [{"id": i, "property": p} for i, p in (
                ("photo-results", "children"), ("photo-upload", "contents"),
                ("photo-model-status", "children"), ("photo-loading", "custom_spinner"),
                ("photo-last", "data"))],
            "inputs": [{"id": "photo-upload", "property": "contents",
                        "value": data_url(photo(first))},
                       {"id": "photo-rejected", "property": "data", "value": None}],
            "state": [{"id": "photo-upload", "property": "filename", "value": "q.jpg"}],
            "changedPropIds": ["photo-upload.contents"],
        }).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/_dash-update-component",
                                         payload, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=15) as r:
            body = r.read().decode()
        assert "photo-error" not in body
        assert cards(json.loads(body)["response"]["photo-results"]["children"])[0] == first
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not any("WORKER TIMEOUT" in line for line in log)


# --------------------------------------------------------------------------- browser


@pytest.mark.browser
def test_shopper_uploads_a_photo(dash_duo: Any, fashion: Any, tmp_path: Path) -> None:
    folder, held_out = fashion
    shots = Path(os.environ.get("LOOKALIKE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    front, _ = create_dynamic_app(folder)  # lazy: the first upload loads the model
    shop = front.shop
    dash_duo.start_server(front.app)
    driver = dash_duo.driver

    dash_duo.find_element('.site-nav a[href="/search"]').click()
    dash_duo.wait_for_element("#photo-upload")
    assert dash_duo.find_element("#photo-model-status").text == \
        "The first search takes a few seconds."
    wait_for(lambda: driver.title.startswith("Search by photo"), 10, "the page title")

    query = held_out[0]
    file_input = driver.find_element_by_css_selector("#photo-upload input[type=file]")
    file_input.send_keys(str(FASHION / "images" / f"{query['id']}.jpg"))
    loading = wait_for(lambda: driver.find_elements_by_css_selector("#photo-loading-text"),
                       30, "the loading state")  # the first search loads the model
    assert loading[0].text == photo_search.FIRST_SEARCH_TEXT
    driver.save_screenshot(str(shots / "search-loading.png"))
    links = wait_for(lambda: driver.find_elements_by_css_selector("#photo-similar .product-link"),
                     60, "result cards")
    ids = [a.get_attribute("href").rsplit("/", 1)[1] for a in links]
    assert len(ids) == 5
    same = sum(shop.item(i).attrs["articleType"] == query["articleType"] for i in ids)
    assert same >= 3, (query, [shop.item(i).attrs["articleType"] for i in ids])
    assert query["articleType"] in dash_duo.find_element("#photo-vote").text
    wait_for(lambda: driver.execute_script(
        "const i = document.getElementById('photo-preview'); return i && i.complete "
        "&& i.naturalWidth > 0 && [...document.querySelectorAll('#photo-similar img')]"
        ".every(x => x.complete && x.naturalWidth > 0)"), 10, "images")
    assert dash_duo.find_element("#photo-model-status").text == ""
    assert "ms" not in dash_duo.find_element("#photo-results").text.split()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 120, 800), 3000))
    time.sleep(0.3)
    driver.save_screenshot(str(shots / "search-results.png"))
    driver.set_window_size(1280, 1000)

    # A file the browser will not upload (not an image) gets a message, not silence.
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a photo")
    file_input = driver.find_element_by_css_selector("#photo-upload input[type=file]")
    file_input.send_keys(str(text_file))
    error = wait_for(lambda: driver.find_elements_by_css_selector("#photo-error"), 10, "alert")
    assert "not an image" in error[0].text and "notes.txt" in error[0].text
    driver.save_screenshot(str(shots / "search-not-an-image.png"))

    # A photo over 10 MB: refused in the browser, with its size.
    big = tmp_path / "huge.jpg"
    big.write_bytes(photo(query["id"]) + b"\0" * (11 * 2**20))
    file_input = driver.find_element_by_css_selector("#photo-upload input[type=file]")
    file_input.send_keys(str(big))
    wait_for(lambda: "at most 10 MB" in dash_duo.find_element("#photo-error").text, 10, "size")

    # Click a result: its product page.
    file_input = driver.find_element_by_css_selector("#photo-upload input[type=file]")
    file_input.send_keys(str(FASHION / "images" / f"{query['id']}.jpg"))
    first = wait_for(lambda: driver.find_elements_by_css_selector("#photo-similar .product-link"),
                     30, "result cards again")[0]
    first_id = first.get_attribute("href").rsplit("/", 1)[1]
    first.click()
    wait_for(lambda: dash_duo.find_element("#product-title").text
             == shop.item(first_id).title, 10, "product page")

    # A phone: no sideways scroll on the search page.
    driver.set_window_size(390, 1200)
    dash_duo.find_element('.site-nav a[href="/search"]').click()
    dash_duo.wait_for_element("#photo-upload")
    time.sleep(0.3)
    driver.save_screenshot(str(shots / "search-phone.png"))
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ), "search page scrolls sideways on a phone"
    assert dash_duo.get_logs() == [], "browser console errors"


def shared_model_front(folder: Path, searcher: Any) -> ShopFront:
    """A fresh dynamic shop front (its own Dash app) using an already-loaded PhotoSearcher."""
    from shopfront.dynamic import MAX_REQUEST_BYTES
    from shopfront.factory import create_app
    from shopfront.shop import Shop

    return create_app(Shop(folder), extra_pages=(photo_search.search_page(searcher),),
                      max_request_bytes=MAX_REQUEST_BYTES)


def result_ids(driver: Any, what: str) -> list[str]:
    links = wait_for(lambda: driver.find_elements_by_css_selector("#photo-similar .product-link"),
                     60, what)
    return [a.get_attribute("href").rsplit("/", 1)[1] for a in links]


def preview_src(driver: Any) -> str:
    return driver.find_element_by_css_selector("#photo-preview").get_attribute("src")


def update_requests(driver: Any) -> int:
    """Callback requests the page has sent so far."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/_dash-update-component')).length")


@pytest.mark.browser
def test_photo_search_survives_back_and_reload(
    dash_duo: Any, fashion: Any, searcher: Any
) -> None:
    folder, held_out = fashion
    searcher.preload()
    dash_duo.start_server(shared_model_front(folder, searcher).app)
    driver = dash_duo.driver
    dash_duo.find_element('.site-nav a[href="/search"]').click()
    dash_duo.wait_for_element("#photo-placeholder")
    assert dash_duo.find_element("#photo-model-status").text == ""  # ready: nothing to say

    query = held_out[1]
    before = update_requests(driver)
    file_input = driver.find_element_by_css_selector("#photo-upload input[type=file]")
    file_input.send_keys(str(FASHION / "images" / f"{query['id']}.jpg"))
    ids = result_ids(driver, "result cards")
    src, vote = preview_src(driver), dash_duo.find_element("#photo-vote").text
    assert len(ids) == 5 and src.startswith("data:image/jpeg;base64,")
    time.sleep(1)
    assert update_requests(driver) - before == 1  # the search only: nothing redrawn after it
    assert "ms" not in dash_duo.find_element("#photo-results").text.split()

    # Another page, then Back: the same results, without searching again.
    dash_duo.find_element('.site-nav a[href="/about"]').click()
    dash_duo.wait_for_element("#about-table")
    driver.back()
    assert result_ids(driver, "results after Back") == ids
    assert preview_src(driver) == src and dash_duo.find_element("#photo-vote").text == vote
    assert f"{query['id']}.jpg" in dash_duo.find_element(".photo-filename").text

    # A reload of the page: still there (session storage, this tab only).
    driver.refresh()
    assert result_ids(driver, "results after reload") == ids
    assert preview_src(driver) == src
    kept = driver.execute_script("return Object.keys(sessionStorage).sort()")
    assert kept == ["photo-last", "photo-last-timestamp"]  # one search, small
    assert driver.execute_script("return sessionStorage.getItem('photo-last').length") < 60_000

    # A bad upload shows its message; the last good search is the one kept.
    text_file = FASHION / "README.md"
    driver.find_element_by_css_selector("#photo-upload input[type=file]").send_keys(
        str(text_file))
    wait_for(lambda: driver.find_elements_by_css_selector("#photo-error"), 10, "alert")
    driver.refresh()
    assert result_ids(driver, "results after a bad upload and reload") == ids
    assert dash_duo.get_logs() == [], "browser console errors"


PASTE = """
const [b64, name, type, size] = arguments;
const dt = new DataTransfer();
if (b64 !== null) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    dt.items.add(new File([bytes], name, {type}));
} else if (size !== null) {
    dt.items.add(new File([new Uint8Array(size)], name, {type}));
} else {
    dt.setData("text/plain", name);
}
document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true}));
"""


@pytest.mark.browser
def test_a_pasted_image_is_searched(dash_duo: Any, fashion: Any, searcher: Any,
                                    tmp_path: Path) -> None:
    folder, held_out = fashion
    searcher.preload()
    front = shared_model_front(folder, searcher)
    dash_duo.start_server(front.app)
    driver = dash_duo.driver
    dash_duo.find_element('.site-nav a[href="/search"]').click()
    dash_duo.wait_for_element("#photo-placeholder")
    assert "or paste an image (Ctrl+V)" in dash_duo.find_element("#photo-upload").text

    # Text on the clipboard: not a photo, left alone.
    driver.execute_script(PASTE, None, "some words", "", None)
    time.sleep(0.5)
    assert driver.find_elements_by_css_selector("#photo-placeholder")

    query = held_out[2]
    b64 = base64.b64encode(photo(query["id"])).decode()
    driver.execute_script(PASTE, b64, "x.jpg", "image/jpeg", None)
    ids = result_ids(driver, "results of the pasted photo")
    assert len(ids) == 5 and dash_duo.find_element(".photo-filename").text == "x.jpg"
    assert dash_duo.find_element("#photo-vote").text.startswith("Looks like: ")
    # the photo itself, uploaded the usual way, finds the same products
    assert cards(search((front, searcher), photo(query["id"]))) == ids

    # The same photo again, as a screenshot tool pastes it (no name): found the same.
    driver.execute_script(PASTE, b64, "", "image/jpeg", None)
    wait_for(lambda: dash_duo.find_element(".photo-filename").text == "pasted image", 30,
             "the unnamed paste")
    assert result_ids(driver, "results of the unnamed paste") == ids

    # A pasted file that is not an image, and one over 10 MB: the upload's messages.
    driver.execute_script(PASTE, base64.b64encode(b"%PDF-1.4").decode(), "doc.pdf",
                          "application/pdf", None)
    error = wait_for(lambda: driver.find_elements_by_css_selector("#photo-error"), 10, "alert")
    assert "not an image (application/pdf)" in error[0].text and "doc.pdf" in error[0].text
    driver.execute_script(PASTE, None, "big.jpg", "image/jpeg", 11 * 2**20)
    wait_for(lambda: "at most 10 MB" in dash_duo.find_element("#photo-error").text, 10,
             "the size message")

    # Pasting on another page does nothing there.
    dash_duo.find_element('.site-nav a[href="/about"]').click()
    dash_duo.wait_for_element("#about-table")
    driver.execute_script(PASTE, b64, "x.jpg", "image/jpeg", None)
    time.sleep(0.5)
    assert driver.find_elements_by_css_selector("#about-table")
    assert driver.current_url.endswith("/about")
    assert dash_duo.get_logs() == [], "browser console errors"
