"""Starting the shop front: static or dynamic, with one-line errors for the operator."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.precomputed import PrecomputedError

from .factory import ShopFront, create_app
from .hosts import HostConfigError

DYNAMIC_MODULES = ("numpy", "PIL", "keras")


class AppStartError(Exception):
    """The app cannot start; the message is the one line to print."""


@dataclass(frozen=True)
class Started:
    """A shop front ready to serve, and its photo searcher in dynamic mode."""

    front: ShopFront
    searcher: Any = None  # pipeline.search.PhotoSearcher in dynamic mode


def build_front(
    folder: str | Path, dynamic: bool = False, model_path: str | Path | None = None,
    preload: bool = False,
) -> Started:
    """The shop front to serve; raises AppStartError with a one-line message."""
    if not dynamic:
        try:
            return Started(create_app(folder))
        except (PrecomputedError, HostConfigError) as e:
            raise AppStartError(f"lookalike: cannot serve {folder}: {e}") from None
    missing = [m for m in DYNAMIC_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise AppStartError(f"lookalike: cannot search by photo in {folder}: dynamic mode "
                            f"needs {', '.join(missing)}: pip install -e \".[dynamic]\"")
    from pipeline.models import ModelError  # dynamic mode's packages, checked just above

    from .dynamic import DynamicModeError, create_dynamic_app

    try:
        front, searcher = create_dynamic_app(folder, model_path, preload)
    except (PrecomputedError, HostConfigError) as e:
        raise AppStartError(f"lookalike: cannot serve {folder}: {e}") from None
    except (ModelError, DynamicModeError) as e:
        message = " ".join(str(e).split())  # Keras errors can span lines
        raise AppStartError(f"lookalike: cannot search by photo in {folder}: {message}") from None
    return Started(front, searcher)
