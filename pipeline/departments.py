"""Departments (who a product is for: men, women, boys, girls, kids, baby, or anyone),
read from a catalog's attribute values or, failing those, from its titles.

The rule is the same for every shop, whatever its column names or language:

1. A value or title names a department when one of its words is in `DEPARTMENT_WORDS`
   (English, German, French, Spanish, Italian, Dutch, Portuguese, Polish, Swedish,
   Danish, Norwegian; "Men's", "Herren", "Damen", "Femme", ...). A value naming two adult
   departments ("Men & Women", "Herren/Damen") or a unisex word is `unisex`.
2. The department column is the attribute column whose non-empty values name a
   department for at least `COLUMN_SHARE` of them, for at least `COVERAGE` of the
   products, with at least two departments (the best-covered one wins). Its name does
   not matter ("gender", "department", "Abteilung").
3. Without such a column, titles are read the same way when at least `COVERAGE` of them
   name a department.
4. `unisex` and unknown go with every department; `kids` goes with boys, girls and baby.

Only the standard library is imported: the shop front and `evaluate` use it too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

UNISEX = "unisex"
DEPARTMENTS = ("men", "women", "boys", "girls", "kids", "baby", UNISEX)
COLUMN_SHARE = 0.9  # of a column's non-empty values that must name a department
COVERAGE = 0.5  # of the products whose column value (or title) must name one

_WORDS: dict[str, tuple[str, ...]] = {
    "men": (
        "men", "mens", "man", "male", "males", "gents", "gentlemen", "herren", "herr",
        "mann", "manner", "maenner", "homme", "hommes", "hombre", "hombres", "caballero",
        "caballeros", "uomo", "uomini", "heren", "masculino", "masculina", "masculin",
        "meski", "meskie", "herrar", "herre",
    ),
    "women": (
        "women", "womens", "woman", "ladies", "lady", "female", "females", "damen", "dame",
        "frauen", "frau", "femme", "femmes", "mujer", "mujeres", "senora", "donna", "donne",
        "dames", "vrouwen", "feminino", "feminina", "feminin", "femenino", "damski",
        "damskie", "damer",
    ),
    "boys": (
        "boys", "boy", "jungen", "junge", "knaben", "garcon", "garcons", "nino", "ninos",
        "bambino", "ragazzo", "ragazzi", "jongens", "jongen", "menino", "meninos",
        "chlopiec", "chlopiece", "pojke", "pojkar", "gutt", "drenge",
    ),
    "girls": (
        "girls", "girl", "madchen", "maedchen", "fille", "filles", "nina", "ninas",
        "bambina", "ragazza", "ragazze", "meisjes", "meisje", "menina", "meninas",
        "dziewczynka", "dziewczece", "flicka", "flickor", "jente", "piger",
    ),
    "kids": (
        "kids", "kid", "children", "child", "childrens", "kinder", "kinderen",
        "enfant", "enfants", "infantil", "bambini", "junior", "juniors", "youth",
        "dzieci", "dzieciece", "barn",
    ),
    "baby": ("baby", "babies", "infant", "infants", "bebe", "bebes", "neonato", "niemowle"),
    UNISEX: ("unisex", "uni", "all", "everyone", "both"),
}
DEPARTMENT_WORDS: dict[str, str] = {w: dept for dept, words in _WORDS.items() for w in words}
_ADULT = frozenset({"men", "women"})
_CHILD = frozenset({"boys", "girls", "kids", "baby"})
_TOKEN = re.compile(r"[^\W\d_]+")


def _fold(text: str) -> str:
    """Lower case without accents (Mädchen -> madchen, garçon -> garcon)."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


def department_of_text(text: str | None, whole: bool = False) -> str | None:
    """The department a value or title names, or None.

    `whole`: the text is an attribute value, so a value with a word outside the
    vocabulary besides department words (e.g. "Men Shoes") still counts, but a value
    whose words name nothing is None. Titles and values are read the same way: the
    department words found decide (two adult departments, or a unisex word: unisex).
    """
    if not text:
        return None
    words = _TOKEN.findall(_fold(text))
    found = {DEPARTMENT_WORDS[w] for w in words if w in DEPARTMENT_WORDS}
    if not whole and UNISEX in found and "unisex" not in words:
        found.discard(UNISEX)  # in titles "all", "uni" are ordinary words ("All Star")
    if not found:
        return None
    if UNISEX in found or found >= _ADULT:
        return UNISEX
    if len(found) == 1:
        return next(iter(found))
    if found <= _CHILD:  # "boys & girls", "kids/baby": any child
        return "kids"
    # an adult and a child department ("Men and Boys"): the adult one, as shops file them
    adult = found & _ADULT
    return next(iter(adult)) if len(adult) == 1 else UNISEX


@dataclass(frozen=True)
class DepartmentSource:
    """Where a catalog's departments come from: an attribute column, or the titles."""

    kind: str  # "column" | "title"
    column: str | None
    coverage: float  # share of the products with a department

    def meta(self) -> dict[str, object]:
        """The `department` entry of meta.json."""
        return {"source": self.kind, "column": self.column, "coverage": round(self.coverage, 4)}


def find_department_source(
    titles: Sequence[str | None], attrs: Sequence[Mapping[str, str]]
) -> DepartmentSource | None:
    """The attribute column (or else the titles) that says each product's department,
    by the module's rule; None when the catalog does not say."""
    n = len(titles)
    if n == 0:
        return None
    columns = sorted({c for a in attrs for c in a})
    best: tuple[float, str] | None = None
    for column in columns:
        values = [a.get(column) or "" for a in attrs]
        distinct = Counter(v for v in values if v.strip())
        if not distinct:
            continue
        named = {v: department_of_text(v, whole=True) for v in distinct}
        covered = sum(c for v, c in distinct.items() if named[v])
        share = covered / sum(distinct.values())
        depts = {d for d in named.values() if d and d != UNISEX}
        coverage = covered / n
        qualifies = share >= COLUMN_SHARE and coverage >= COVERAGE and len(depts) >= 2
        if qualifies and (best is None or coverage > best[0]):
            best = (coverage, column)
    if best is not None:
        return DepartmentSource("column", best[1], best[0])
    found = [department_of_text(t) for t in titles]
    coverage = sum(1 for d in found if d) / n
    if coverage >= COVERAGE and len({d for d in found if d and d != UNISEX}) >= 2:
        return DepartmentSource("title", None, coverage)
    return None


def product_departments(
    titles: Sequence[str | None],
    attrs: Sequence[Mapping[str, str]],
    source: DepartmentSource | None,
) -> list[str | None]:
    """Each product's department by `source` (None: unknown, goes with every one)."""
    if source is None:
        return [None] * len(titles)
    if source.kind == "column":
        return [department_of_text(a.get(source.column or "") or "", whole=True)
                for a in attrs]
    return [department_of_text(t) for t in titles]


def compatible(a: str | None, b: str | None) -> bool:
    """Whether products of departments a and b may be recommended for each other."""
    if a is None or b is None or a == b or UNISEX in (a, b):
        return True
    return "kids" in (a, b) and {a, b} <= _CHILD


def compatibility_codes(
    departments: Sequence[str | None],
) -> tuple[list[int], list[list[bool]]]:
    """Integer codes of `departments` and the symmetric table of which codes go together
    (code 0: unknown), for block-wise use in the top-k scan."""
    names: list[str | None] = [None, *DEPARTMENTS]
    index = {name: i for i, name in enumerate(names)}
    table = [[compatible(a, b) for b in names] for a in names]
    return [index[d] for d in departments], table
