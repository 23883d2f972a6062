"""The HTML standard's "parse a srcset attribute" algorithm, ported step by step (pure).

A candidate's URL is a run of non-whitespace characters, so URLs containing commas
(image CDNs: ``.../f_auto,c_pad,w_500/x.jpg``, ``._AC_SR139,139_.jpg``) stay whole; a
candidate whose descriptors are invalid is dropped, as browsers do.
https://html.spec.whatwg.org/multipage/images.html#parsing-a-srcset-attribute
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WHITESPACE = " \t\n\f\r"
_FLOAT = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Candidate:
    """One image candidate: its URL and width (``w``) or pixel density (``x``)."""

    url: str
    width: int | None = None
    density: float | None = None


def _parse_descriptors(url: str, descriptors: list[str]) -> Candidate | None:
    width: int | None = None
    density: float | None = None
    height: int | None = None
    for desc in descriptors:
        value, kind = desc[:-1], desc[-1:]
        if kind == "w" and width is None and density is None and value.isascii() \
                and value.isdigit() and int(value) > 0:
            width = int(value)
        elif kind == "x" and width is None and density is None and height is None \
                and _FLOAT.fullmatch(value) and float(value) >= 0:
            density = float(value)
        elif kind == "h" and height is None and density is None and value.isascii() \
                and value.isdigit() and int(value) > 0:
            height = int(value)
        else:
            return None
    if height is not None and width is None:
        return None
    return Candidate(url, width, density)


def parse_srcset(value: str) -> list[Candidate]:
    """Every valid candidate of a ``srcset`` attribute, in order."""
    candidates: list[Candidate] = []
    pos, n = 0, len(value)
    while True:
        while pos < n and (value[pos] in _WHITESPACE or value[pos] == ","):
            pos += 1
        if pos >= n:
            return candidates
        start = pos
        while pos < n and value[pos] not in _WHITESPACE:
            pos += 1
        url = value[start:pos]
        descriptors: list[str] = []
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            while pos < n and value[pos] in _WHITESPACE:
                pos += 1
            current, state = "", "in descriptor"
            while True:
                c = value[pos] if pos < n else None
                if state == "in descriptor":
                    if c is not None and c in _WHITESPACE:
                        if current:
                            descriptors.append(current)
                            current, state = "", "after descriptor"
                    elif c == ",":
                        pos += 1
                        if current:
                            descriptors.append(current)
                        break
                    elif c == "(":
                        current += c
                        state = "in parens"
                    elif c is None:
                        if current:
                            descriptors.append(current)
                        break
                    else:
                        current += c
                elif state == "in parens":
                    if c == ")":
                        current += c
                        state = "in descriptor"
                    elif c is None:
                        descriptors.append(current)
                        break
                    else:
                        current += c
                else:  # after descriptor
                    if c is None:
                        break
                    if c not in _WHITESPACE:
                        state = "in descriptor"
                        continue  # reconsume
                pos += 1
        candidate = _parse_descriptors(url, descriptors)
        if candidate is not None and url:
            candidates.append(candidate)


def pick_srcset(value: str) -> str | None:
    """The URL of the largest candidate: the widest ``w``, else the highest density
    (no descriptor = ``1x``); the first one wins a tie. None if there is no valid one."""
    best: tuple[int, float, str] | None = None
    for cand in parse_srcset(value):
        key = (1, float(cand.width), cand.url) if cand.width is not None else \
            (0, cand.density if cand.density is not None else 1.0, cand.url)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None
