"""Search by photo (dynamic mode): embed an uploaded photo, compare with embeddings.npy.

The photo goes through the same `pipeline.images.decode_for_model` as the catalog did
(model input and colour descriptor from one decode), with the resize policy recorded in
meta.json, the model named there, the catalog's whitening transform and its rows' rules
(`pipeline.rows`), so an upload gets the rows a catalog product would. TensorFlow is
imported only when the model is loaded (lazily, or at start-up with `preload()`).
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .colour import centre_colours
from .evaluate import majority_label
from .images import ImageError, decode_for_model, load_image
from .models import BUILTIN_MODELS, FeatureExtractor, ModelError, check_identity, file_sha256
from .precomputed import COLOUR_MEAN_FILE, COLOURS_FILE, Precomputed
from .rows import SIMILAR, RowRule
from .similarity import l2_normalise
from .whitening import Whitening

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_PIXELS = 40_000_000  # a phone photo is 12-50 MP; more than this is refused
VOTE_ATTRIBUTES = ("articleType", "category", "subCategory", "type", "masterCategory")
REPO_ROOT = Path(__file__).resolve().parent.parent  # recorded relative model paths


class UploadError(ValueError):
    """An upload that cannot be searched with; the message is shown to the shopper."""


@dataclass
class SearchResult:
    """Neighbours of an uploaded photo, the neighbour vote and where the time went."""

    neighbours: list[tuple[str, float]]  # the first row (similar)
    vote: tuple[str, str, int, int] | None = None  # (attribute, label, votes, k)
    timings_ms: dict[str, float] = field(default_factory=dict)
    rows: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    nothing: bool = False  # the photo looks like nothing in this catalog (no rows, no vote)


def decode_upload(contents: str, max_bytes: int = MAX_UPLOAD_BYTES) -> bytes:
    """The bytes of a `dcc.Upload` data URL; UploadError if it is not an image upload."""
    if not contents or "," not in contents:
        raise UploadError("The upload is empty.")
    header, _, payload = contents.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise UploadError("The upload could not be read.")
    mime = header[5:].split(";")[0]
    if mime and not mime.startswith("image/"):
        raise UploadError(
            f"That is not an image ({mime}). Please upload a JPEG, PNG or WebP photo."
        )
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise UploadError(f"The photo is larger than {max_bytes // 2**20} MB.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError("The upload could not be read.") from None
    if not data:
        raise UploadError("The upload is empty.")
    if len(data) > max_bytes:
        raise UploadError(f"The photo is larger than {max_bytes // 2**20} MB.")
    return data


def vote_attribute(pre: Precomputed) -> str | None:
    """The category-like attribute used for the neighbour vote, if the catalog has one."""
    present = {a for p in pre.products for a in (p.get("attrs") or {})}
    return next((a for a in VOTE_ATTRIBUTES if a in present), None)


def neighbour_vote(labels: list[str]) -> tuple[str, int] | None:
    """Majority label of the neighbours (ties to the better-ranked), with its count."""
    labels = [lab for lab in labels if lab]
    winner = majority_label(labels)
    return None if winner is None else (winner, labels.count(winner))


def model_file_candidates(
    model_meta: dict[str, Any], model_path: str | Path | None, root: str | Path = REPO_ROOT
) -> list[Path]:
    """Where a catalog's Keras model file may be, in the order they are tried.

    `model_path` (the app's --model) first; then the path recorded in meta.json at build
    time, as given (so a relative path is read from the current directory), and, when it
    is relative, from `root` (the repository root: the bundled demo records
    `precomputed/models/...`).
    """
    candidates = [Path(model_path)] if model_path else []
    recorded = model_meta.get("path")
    if recorded:
        candidates.append(Path(recorded))
        if not Path(recorded).is_absolute():
            candidates.append(Path(root) / recorded)
    return list(dict.fromkeys(candidates))


def resolve_model_source(
    model_meta: dict[str, Any], model_path: str | Path | None = None,
    root: str | Path = REPO_ROOT,
) -> str:
    """Which model to load for a catalog: a built-in name or a Keras file path.

    A Keras file is the first of `model_file_candidates` that exists; its sha256 must
    match meta.json. Raises ModelError otherwise.
    """
    name = model_meta.get("name", "")
    if name in BUILTIN_MODELS:
        return name
    if not name.startswith("file:"):
        raise ModelError(f"meta.json names an unknown model {name!r}")
    candidates = model_file_candidates(model_meta, model_path, root)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        tried = ", ".join(str(p) for p in candidates) or "no path recorded"
        raise ModelError(f"model file {name[5:]} not found ({tried}); pass --model PATH to the app")
    sha = file_sha256(found)
    if sha != model_meta.get("weights_sha256"):
        raise ModelError(
            f"model mismatch: {found} has sha256 {sha[:12]}..., the catalog was built with "
            f"{str(model_meta.get('weights_sha256'))[:12]}..."
        )
    return str(found)


class PhotoSearcher:
    """Loads embeddings once and the model once per process; answers photo searches."""

    def __init__(
        self, pre: Precomputed, model_path: str | Path | None = None, k: int | None = None
    ):
        """Check the model file and embeddings.npy's shape now; load both later.

        `model_path` is the --model option; without it the path recorded in meta.json is
        tried from the current directory, then from the repository root.
        """
        model_meta = pre.meta.get("model") or {}
        self.pre = pre
        self.model_meta = model_meta
        self.source = resolve_model_source(model_meta, model_path)  # checked at start-up
        self.k = int(k or pre.meta.get("k") or 10)
        self.resize = model_meta.get("resize", "pad")
        w, h = model_meta.get("input_size", (224, 224))
        self.size = (int(w), int(h))
        if not pre.embeddings_path.is_file():
            raise ModelError(f"{pre.embeddings_path}: missing; rebuild the catalog")
        shape = np.load(pre.embeddings_path, mmap_mode="r").shape  # header only, checked now
        whitened = (pre.meta.get("whitening") or {}).get("dims")
        dim = whitened or model_meta.get("dim", shape[-1])
        if shape != (len(pre.products), dim):
            raise ModelError(
                f"{pre.embeddings_path}: shape {shape} does not match "
                f"{len(pre.products)} products x dim {dim}"
                + (" (whitened)" if whitened else "")
            )
        self._embeddings: np.ndarray | None = None
        self._colours: np.ndarray | None = None
        self.rules = [RowRule.from_meta(r) for r in pre.meta.get("rows") or []] or [
            RowRule(SIMILAR, "Looks like this", 1.0, 0.0)
        ]
        self.whitening = self._load_whitening(pre)
        upload = pre.meta.get("upload") or {}
        limit = upload.get("max_residual") if self.whitening is not None else None
        self.max_residual = float(limit) if isinstance(limit, int | float) else None
        colour_meta = pre.meta.get("colour") or {}
        self.colours_path = pre.folder / COLOURS_FILE if colour_meta else None
        self.colour_mean: np.ndarray | None = None
        if self.colours_path is not None:
            mean_path = pre.folder / str(colour_meta.get("mean_file", COLOUR_MEAN_FILE))
            try:
                self.colour_mean = np.load(mean_path)
            except (OSError, ValueError) as e:
                raise ModelError(f"{mean_path}: cannot read ({e}); rebuild the catalog") from None
            if not self.colours_path.is_file():
                raise ModelError(f"{self.colours_path}: missing; rebuild the catalog")
        self.ids = [p["id"] for p in pre.products]
        self.index = {pid: i for i, pid in enumerate(self.ids)}
        self.vote_attr = vote_attribute(pre)
        self._extractor: FeatureExtractor | None = None
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one model call at a time per process
        self.state = "not loaded"

    @staticmethod
    def _load_whitening(pre: Precomputed) -> Whitening | None:
        entry = pre.meta.get("whitening")
        if not entry:
            return None
        path = pre.folder / str(entry.get("file", ""))
        try:
            return Whitening.load(path)
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"{path}: cannot read the whitening transform ({e})") from None

    @property
    def colours(self) -> np.ndarray | None:
        """The catalog's colour descriptors as float32 unit rows (None: shape-only rows)."""
        if self.colours_path is None:
            return None
        if self._colours is None:
            with self._load_lock:
                if self._colours is None:
                    self._colours = l2_normalise(np.load(self.colours_path))
        return self._colours

    @property
    def embeddings(self) -> np.ndarray:
        """The catalog's embeddings as unit float32 rows, read on first use.

        Read after the model is loaded, so the model's load-time peak and this copy of
        the catalog are not in memory at the same time.
        """
        if self._embeddings is None:
            with self._load_lock:
                if self._embeddings is None:
                    stored = np.load(self.pre.embeddings_path, mmap_mode="r")
                    emb = np.empty(stored.shape, dtype=np.float32)
                    for i in range(0, len(emb), 4096):  # float16 -> float32 a block at a time
                        block = np.asarray(stored[i : i + 4096], dtype=np.float32)
                        norms = np.linalg.norm(block, axis=1, keepdims=True)
                        emb[i : i + 4096] = block / np.where(norms == 0, 1, norms)
                    del stored
                    self._embeddings = emb
        return self._embeddings

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._extractor is not None

    def preload(self) -> FeatureExtractor:
        """Load the model now (once per process) and check it against meta.json."""
        with self._load_lock:
            if self._extractor is None:
                from .models import load_extractor

                self.state = "loading"
                try:
                    weights = self.model_meta.get("weights", "imagenet")
                    if self.source in BUILTIN_MODELS and weights not in ("imagenet", "random"):
                        raise ModelError(
                            f"the catalog was built with weights file {weights}; "
                            "dynamic mode supports imagenet or random weights for built-ins"
                        )
                    ex = load_extractor(  # the catalog's precision: uploads embed alike
                        self.source, weights if self.source in BUILTIN_MODELS else "imagenet",
                        precision=self.model_meta.get("precision", "float32"),
                    )
                    check_identity(self.model_meta, ex.identity)
                    # the first prediction builds TensorFlow's graph (0.5-0.8 s): pay it here
                    ex.embed(np.full((1, self.size[1], self.size[0], 3), 255, np.uint8))
                    ex.calls = 0
                except BaseException:
                    self.state = "failed"
                    raise
                self._extractor = ex
                self.state = "ready"
        self.embeddings  # noqa: B018 - read the catalog now that the model's peak is over
        return self._extractor

    def embed_photo(self, data: bytes) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """A photo's unit shape vector (whitened as the catalog was), its colour descriptor,
        and decode/embed times in ms (and `residual`: how far it lies outside the catalog's
        principal subspace, when the catalog is whitened)."""
        t0 = time.perf_counter()
        try:
            img = load_image(data, draft_size=max(self.size), max_pixels=UPLOAD_PIXELS)
            arr, colour = decode_for_model(img, self.size, self.resize)
        except ImageError as e:
            raise UploadError(f"That file cannot be used as a photo: {e}.") from None
        t1 = time.perf_counter()
        ex = self.preload()
        with self._model_lock:
            vec = ex.embed(arr[None])
        t2 = time.perf_counter()
        shape = self.whitening.apply(vec)[0] if self.whitening else l2_normalise(vec)[0]
        if self.colour_mean is not None:
            colour = centre_colours(colour, self.colour_mean)[0]
        timings = {"decode": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3}
        if self.whitening is not None:
            timings["residual"] = float(self.whitening.residual(vec)[0])
        return shape, colour, timings

    def nearest(
        self, vec: np.ndarray, k: int | None = None, colour: np.ndarray | None = None,
        rule: RowRule | None = None, exclude: Sequence[str] = (),
    ) -> list[tuple[str, float]]:
        """The k best catalog products for a unit shape vector (and colour descriptor) by
        one row's rule (default: shape only), `exclude`d ids left out; ties go to the
        lower id."""
        k = min(k or self.k, len(self.ids))
        scores = self.embeddings @ vec.astype(np.float32)
        if rule is not None:  # a photo has no words: the rule's visual part
            rule = rule.visual()
            colours = self.colours
            s_colour = None if colours is None or colour is None else colours @ colour
            scores = rule.scores(scores, s_colour)
            if exclude:
                scores[[self.index[i] for i in exclude if i in self.index]] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        part = np.argpartition(-scores, k - 1)[:k]
        order = part[np.lexsort((part, -scores[part]))]
        return [(self.ids[i], round(float(scores[i]), 6)) for i in order]

    def search(self, data: bytes, k: int | None = None) -> SearchResult:
        """Embed the photo; return every row of its neighbours and the neighbour vote."""
        vec, colour, timings = self.embed_photo(data)
        residual = timings.pop("residual", None)
        if residual is not None and self.max_residual is not None \
                and residual > self.max_residual:
            return SearchResult(neighbours=[], timings_ms=timings, nothing=True)
        t = time.perf_counter()
        rows: dict[str, list[tuple[str, float]]] = {}
        for rule in self.rules:
            shown = [pid for pid, _ in rows.get(rule.exclude_row or "", [])]
            rows[rule.key] = self.nearest(vec, k, colour, rule, shown)
        neighbours = rows[self.rules[0].key]
        timings["search"] = (time.perf_counter() - t) * 1e3
        vote = None
        if self.vote_attr:
            labels = [
                (self.pre.product(pid) or {}).get("attrs", {}).get(self.vote_attr, "")
                for pid, _ in neighbours
            ]
            won = neighbour_vote(labels)
            if won:
                vote = (self.vote_attr, won[0], won[1], len(neighbours))
        return SearchResult(neighbours=neighbours, vote=vote, timings_ms=timings, rows=rows)
