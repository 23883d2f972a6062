"""The product's words as a signal beside shape and colour: its title and attribute values
compared as TF-IDF, reduced to dense unit vectors so the top-k scan treats them as it
treats shape and colour (block by block, never an N x N matrix).

- **What is read:** the title and every attribute value that is not a bare number
  ("2011" and "42" say little about what a product is), each capped at
  `MAX_TEXT_CHARS` in all.
- **How they are compared:** scikit-learn's TF-IDF over character n-grams within words
  (3 to 5: "T-shirt", "Tshirts" and "tshirt" meet; words in any script) and whole words,
  each sublinear and L2-normalised, side by side; then a truncated SVD (latent semantic
  analysis) to `TEXT_DIMS` dimensions, so a pair's similarity is a dense dot product
  like the other signals. The SVD is fitted on at most `SVD_SAMPLE` products.
- **Two signals:** `text`, the words without the catalog's colour words (what kind of
  product it is), used by both rows, and `colour_words`, the TF-IDF of the colour words
  alone (at most `MAX_COLOUR_WORDS`, the most frequent), used by "Looks like this" only:
  "Same style, other colours" must not be pulled back to the same colour by a shared
  colour name. Two small signals instead of a second full text vector keep the top-k's
  extra matrix products to TEXT_DIMS + MAX_COLOUR_WORDS columns. A word is a colour word when
  the products that carry it agree in colour (the length of their mean centred colour
  descriptor times the square root of their count) at least `COLOUR_WORD_RATIO` times
  as much as they agree in shape (and at least `COLOUR_WORD_MIN_AGREEMENT` times as much
  as random products do); measured on fashion-small-2k this finds exactly its colour
  names (black, navy, olive, ...) and "apparel", in any language, with no list.
- A catalog without words (a bare folder of images: titles from file names are not
  read) has no text signal; rows fall back to shape and colour, recorded in meta.json.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .similarity import l2_normalise

TEXT_DIMS = 96
MAX_COLOUR_WORDS = 24
SVD_SAMPLE = 50_000
MAX_TEXT_CHARS = 2_000
COLOUR_WORD_RATIO = 1.8  # colour agreement over shape agreement (fashion-small-2k: 1.93+)
COLOUR_WORD_MIN_COUNT = 5
# and at least this agreement in colour: random products give about 1 (a word on every
# product, "marke", agrees in nothing once the catalog's mean colour is taken away)
COLOUR_WORD_MIN_AGREEMENT = 2.0
MIN_PRODUCTS_WITH_WORDS = 0.5  # share of products that must have words
_NUMBER = re.compile(r"[\d\s.,:/+-]*")
_WORD = re.compile(r"\w+")


def product_text(title: str | None, attrs: Mapping[str, str] | None = None) -> str:
    """The words of one product: its title and attribute values that are not numbers."""
    parts = [title or ""]
    for _, value in sorted((attrs or {}).items()):
        if value and not _NUMBER.fullmatch(value):
            parts.append(value)
    return " ".join(p.strip() for p in parts if p and p.strip())[:MAX_TEXT_CHARS]


def _word_sets(texts: Sequence[str]) -> tuple[list[str], Any]:
    """The lower-case words and a binary product x word matrix (scipy CSC)."""
    from sklearn.feature_extraction.text import CountVectorizer

    cv = CountVectorizer(token_pattern=r"(?u)\b\w+\b", binary=True, lowercase=True,
                         dtype=np.float32)
    matrix = cv.fit_transform(texts).tocsc()
    return list(cv.get_feature_names_out()), matrix


def colour_words(
    texts: Sequence[str], colour: np.ndarray, shape: np.ndarray,
    ratio: float = COLOUR_WORD_RATIO, min_count: int = COLOUR_WORD_MIN_COUNT,
) -> list[str]:
    """The words whose products agree in colour (centred unit `colour` rows) at least
    `ratio` times as much as in shape (unit `shape` rows, centred by whitening), sorted."""
    try:
        words, b = _word_sets(texts)
    except ValueError:  # no words at all
        return []
    counts = np.asarray(b.sum(axis=0)).ravel()
    keep = counts >= min_count
    if not keep.any():
        return []
    b, counts = b[:, keep], counts[keep]
    words = [w for w, k in zip(words, keep, strict=True) if k]
    centred_shape = shape - shape.mean(axis=0)

    def agreement(x: np.ndarray) -> np.ndarray:
        mean = np.asarray(b.T @ x) / counts[:, None]
        return np.linalg.norm(mean, axis=1) * np.sqrt(counts)

    c, s = agreement(colour), agreement(centred_shape)
    found = (c >= ratio * np.maximum(s, 1e-9)) & (c >= COLOUR_WORD_MIN_AGREEMENT)
    return sorted(w for w, f in zip(words, found, strict=True) if f)


def without_words(text: str, words: set[str]) -> str:
    """`text` with the given (lower-case) words left out."""
    if not words:
        return text
    return " ".join(w for w in _WORD.findall(text) if w.lower() not in words)


def _tfidf(texts: Sequence[str]) -> Any:
    """Character n-gram and word TF-IDF side by side, rows L2-normalised (scipy CSR)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    parts = []
    for vec in (
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                        min_df=2, dtype=np.float32),
        TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w+\b", sublinear_tf=True,
                        dtype=np.float32),
    ):
        try:
            parts.append(vec.fit_transform(texts))
        except ValueError:  # "empty vocabulary": e.g. no n-gram in two products
            continue
    if not parts:
        return None
    x = sp.hstack(parts).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sp.diags(1 / np.where(norms == 0, 1, norms)) @ x


def text_vectors(texts: Sequence[str], dims: int = TEXT_DIMS, seed: int = 0) -> np.ndarray | None:
    """Unit rows (float32) of the texts' TF-IDF reduced to at most `dims` dimensions by a
    truncated SVD fitted on at most SVD_SAMPLE of them; None when they share no words.
    Products without words get zero rows (similarity 0 to every product)."""
    from sklearn.decomposition import TruncatedSVD

    x = _tfidf(texts)
    if x is None or x.shape[1] < 2:
        return None
    n = x.shape[0]
    keep = min(dims, x.shape[1] - 1, n - 1)
    if keep < 1:
        return None
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, SVD_SAMPLE, replace=False)) if n > SVD_SAMPLE else None
    svd = TruncatedSVD(keep, algorithm="randomized", n_iter=7, random_state=seed)
    svd.fit(x if sample is None else x[sample])
    comps = svd.components_
    # a fixed sign per component, so the same input gives the same bytes
    signs = np.sign(comps[np.arange(keep), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(signs == 0, 1, signs)[:, None]
    return l2_normalise(np.asarray(x @ comps.T, dtype=np.float32))


def colour_word_vectors(texts: Sequence[str], words: Sequence[str]) -> np.ndarray | None:
    """Unit rows (float32) of the TF-IDF of each text's colour `words` only (zero rows for
    texts without any); None when no text has one."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not words:
        return None
    vec = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w+\b", vocabulary=words,
                          sublinear_tf=True, dtype=np.float32)
    x = vec.fit_transform(texts)
    if not x.nnz:
        return None
    return l2_normalise(x.toarray())


@dataclass
class TextSignals:
    """A catalog's word signals: `text` (words without colour words, SVD rows) and
    `colour` (TF-IDF rows of the colour words, or None)."""

    text: np.ndarray
    colour: np.ndarray | None
    colour_words: list[str] = field(default_factory=list)
    with_words: float = 0.0  # share of products that have words

    def meta(self, dims: int) -> dict[str, Any]:
        """meta.json's `text` entry (weights are in each row's entry)."""
        return {
            "fields": "title and attribute values (not numbers)",
            "method": "tfidf-char3-5+word-svd, colour words tfidf",
            "dims": dims,
            "with_words": round(self.with_words, 4),
            "colour_words": self.colour_words,
        }


def text_signals(
    texts: Sequence[str],
    colour: np.ndarray | None,
    shape: np.ndarray,
    dims: int = TEXT_DIMS,
    seed: int = 0,
) -> TextSignals | None:
    """The catalog's text signals, or None when too few products have words."""
    n = len(texts)
    with_words = sum(1 for t in texts if _WORD.search(t)) / max(n, 1)
    if n < 3 or with_words < MIN_PRODUCTS_WITH_WORDS:
        return None
    found = colour_words(texts, colour, shape) if colour is not None else []
    if len(found) > MAX_COLOUR_WORDS:  # the most frequent ones (one pass over the texts)
        wanted = set(found)
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update({w for w in (x.lower() for x in _WORD.findall(t)) if w in wanted})
        found = sorted(sorted(found, key=lambda w: (-counts[w], w))[:MAX_COLOUR_WORDS])
    drop = set(found)
    kind = text_vectors([without_words(t, drop) for t in texts] if drop else texts, dims, seed)
    if kind is None:
        return None
    return TextSignals(kind, colour_word_vectors(texts, found), found, with_words)
