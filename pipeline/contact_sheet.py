"""A contact sheet: random products of a precomputed folder with their rows, as one
self-contained HTML file to look at instead of read (`evaluate --sheet FILE.html`).

Each product shows its thumbnail, title and key labels (kind, department, colours),
then every row's cards with title, score and labels; a card in another kind or
department has a red outline and says why, a card also in the first row a dashed one.
Thumbnails from the folder are embedded as data: URIs; an absolute `thumb` URL without
a local file is linked. Every text is HTML-escaped. Standard library only.
"""

from __future__ import annotations

import base64
import html
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .precomputed import THUMBS_DIR, Precomputed

if TYPE_CHECKING:
    from .evaluate import FolderEvaluation, Labelling

MAX_THUMB_BYTES = 2 << 20  # larger files are not embedded (a thumbnail is <= 256 px)
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
         ".webp": "image/webp", ".gif": "image/gif"}

_CSS = """
body{font:13px/1.35 system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 4px}
.legend span{display:inline-block;margin-right:14px}
.product{display:flex;gap:16px;background:#fff;border:1px solid #ddd;border-radius:6px;
 padding:10px;margin:14px 0}
.query{flex:0 0 160px}
.query img,.query .noimg{width:150px;height:150px}
.rows{flex:1;min-width:0}
.row h3{font-size:13px;margin:2px 0 4px;font-weight:600}
.row h3 small{font-weight:400;color:#666}
.cards{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:8px}
.card{box-sizing:border-box;width:100px;border:2px solid #e4e4e4;border-radius:4px;
 padding:3px;background:#fff}
.card img,.card .noimg{width:90px;height:90px}
img{object-fit:contain;display:block;background:#fff}
.noimg{display:flex;align-items:center;justify-content:center;background:#eee;color:#888;
 font-size:11px}
.card.bad{border-color:#d11;background:#fff4f4}
.card.shared{border-style:dashed;border-color:#36c}
.card.bad.shared{border-color:#d11}
.t{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden;
 font-size:11px;margin-top:2px}
.query .t{-webkit-line-clamp:4;font-size:13px;font-weight:600}
.lab{font-size:11px;color:#555}
.score{font-size:11px;color:#888}
.why{font-size:11px;color:#d11;font-weight:600}
.also{font-size:11px;color:#36c}
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;font-size:12px}
"""


def sample_products(ids: list[str], n: int, seed: int) -> list[str]:
    """`n` product ids drawn at random with `seed` (all of them when there are fewer)."""
    return random.Random(seed).sample(sorted(ids), min(n, len(ids)))


def thumbnail_src(pre: Precomputed, product: dict[str, Any]) -> str | None:
    """The image source of a product: a data: URI of its file in the folder, else its
    absolute http(s) `thumb` URL, else None (no image)."""
    thumb = product.get("thumb") or ""
    external = thumb.startswith(("https://", "http://"))
    root = pre.folder.resolve()
    candidates = [f"{THUMBS_DIR}/{product['id']}.jpg"] if external else [thumb]
    for relative in candidates:
        if not relative:
            continue
        path = (pre.folder / relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            continue
        try:
            if path.stat().st_size > MAX_THUMB_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        mime = _MIME.get(path.suffix.lower(), "image/jpeg")
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return thumb if external else None


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def key_labels(labelling: Labelling, pid: str) -> list[str]:
    """The labels shown under a product: its kind, department and colour values."""
    from .evaluate import attr

    product = labelling.products[pid]
    found = [labelling.kind_of(pid), labelling.departments.get(pid) or ""]
    found += [attr(product, c) for c in labelling.colours]
    return [v for v in dict.fromkeys(found) if v]


def _image(src: str | None, alt: str) -> str:
    if src is None:
        return '<div class="noimg">no image</div>'
    return f'<img src="{_esc(src)}" alt="{_esc(alt)}" loading="lazy">'


def _card(pre: Precomputed, labelling: Labelling, query: str, card: str, score: float,
          shared: bool) -> str:
    product = pre.products[pre.index[card]]
    title = product.get("title") or card
    reasons = labelling.reasons(query, card)
    classes = " ".join(["card", *(["bad"] if reasons else []), *(["shared"] if shared else [])])
    parts = [
        f'<div class="{classes}" title="{_esc(title)}">',
        _image(thumbnail_src(pre, product), title),
        f'<div class="t">{_esc(title)}</div>',
        f'<div class="score">{score:.3f}</div>',
        f'<div class="lab">{_esc(" · ".join(key_labels(labelling, card)))}</div>',
    ]
    if reasons:
        parts.append(f'<div class="why">{_esc(", ".join(reasons))}</div>')
    if shared:
        parts.append('<div class="also">also in row 1</div>')
    parts.append("</div>")
    return "".join(parts)


def _product(pre: Precomputed, fe: FolderEvaluation, pid: str) -> str:
    labelling = fe.labelling
    product = pre.products[pre.index[pid]]
    title = product.get("title") or pid
    out = ['<section class="product"><div class="query">',
           _image(thumbnail_src(pre, product), title),
           f'<div class="t">{_esc(title)}</div>',
           f'<div class="lab">{_esc(" · ".join(key_labels(labelling, pid)))}</div>',
           f'<div class="score">id {_esc(pid)}</div></div><div class="rows">']
    keys = [r.row for r in fe.rows]
    first = next(iter(pre.rows))
    first_cards = {n for n, _ in pre.rows[first].get(pid, [])[:fe.cards]}
    titles = {r.row: r.title for r in fe.rows}
    for key in keys:
        pairs = pre.rows[key].get(pid, [])[:fe.cards]
        bad = sum(1 for n, _ in pairs if labelling.reasons(pid, n))
        shared = {n for n, _ in pairs} & first_cards if key != first else set()
        note = f"{len(pairs)} cards, {bad} marked"
        if key != first:
            note += f", {len(shared)} also in row 1"
        out.append(f'<div class="row"><h3>{_esc(titles[key])} <small>({_esc(key)}; '
                   f'{_esc(note)})</small></h3><div class="cards">')
        out += [_card(pre, labelling, pid, n, s, n in shared) for n, s in pairs]
        if not pairs:
            out.append('<span class="lab">no recommendations</span>')
        out.append("</div></div>")
    out.append("</div></section>")
    return "".join(out)


def contact_sheet_html(
    pre: Precomputed, fe: FolderEvaluation, ids: list[str], report: str = ""
) -> str:
    """The contact sheet of the products `ids` as one HTML document."""
    lab = fe.labelling
    dept = ("none" if lab.department is None else
            f"column {lab.department.column}" if lab.department.kind == "column" else "titles")
    head = (f"{len(ids)} of {fe.n_products:,} products, {fe.cards} cards per row; kind: "
            f"{lab.kind or 'none'}; department: {dept}; colour: {', '.join(lab.colours) or 'none'}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(f'Contact sheet: {pre.folder.name}')}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Contact sheet: {_esc(pre.folder.name)}</h1>",
        f"<p>{_esc(head)}</p>",
        '<p class="legend"><span class="why">red: another kind or department '
        "(unisex and unknown go with every department)</span>"
        '<span class="also">dashed blue: also among the first row\'s cards</span></p>',
    ]
    if report:
        parts.append(f"<details><summary>Evaluation</summary><pre>{_esc(report)}</pre>"
                     "</details>")
    parts += [_product(pre, fe, pid) for pid in ids]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_contact_sheet(
    pre: Precomputed, fe: FolderEvaluation, path: Path, n: int = 10, seed: int = 0,
    report: str = "",
) -> int:
    """Write the contact sheet of `n` random products (seeded) to `path` atomically;
    returns how many products it shows."""
    from .evaluate import EvaluationError

    ids = sample_products([p["id"] for p in pre.products], n, seed)
    text = contact_sheet_html(pre, fe, ids, report)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EvaluationError(f"--sheet {path}: cannot write ({e.strerror})") from None
    return len(ids)
