"""lookalike shop front: the entry point. The shop front itself is the `shopfront` package.

    python app.py [--precomputed FOLDER] [--host 127.0.0.1] [--port 8050]   # development
    gunicorn -c python:shopfront.gunicorn_conf app:server                   # production

Dynamic mode (`--dynamic [--model PATH] [--preload-model]`, or LOOKALIKE_DYNAMIC=1,
LOOKALIKE_MODEL, LOOKALIKE_PRELOAD=1 under gunicorn) adds search by photo (/search).
The folder comes from `--precomputed`, else $LOOKALIKE_PRECOMPUTED, else precomputed/demo.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shopfront import AppStartError, Started, build_front

ROOT = Path(__file__).resolve().parent
ENV_VAR = "LOOKALIKE_PRECOMPUTED"
DYNAMIC_ENV = "LOOKALIKE_DYNAMIC"
MODEL_ENV = "LOOKALIKE_MODEL"
PRELOAD_ENV = "LOOKALIKE_PRELOAD"
DEFAULT_FOLDER = ROOT / "precomputed" / "demo"


def env_flag(name: str) -> bool:
    """Whether an environment variable is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def precomputed_folder(option: str | None = None) -> Path:
    """The folder to serve: the command-line option, else $LOOKALIKE_PRECOMPUTED, else the demo."""
    return Path(option or os.environ.get(ENV_VAR) or DEFAULT_FOLDER)


def building_in_gunicorn_master() -> bool:
    """Whether gunicorn's master is importing the app (`--preload`), to fork workers later.

    TensorFlow does not survive a fork (a worker forked after the model was loaded hangs
    on its first search), so then the model is loaded in each worker right after the fork.
    """
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_filename.endswith(os.path.join("gunicorn", "arbiter.py")):
            return True
        frame = frame.f_back
    return False


def preload_in_worker(searcher: Any) -> None:
    """Load the model in a freshly forked worker; a failure is logged, searches then say so."""
    started = time.perf_counter()
    try:
        searcher.preload()
    except Exception as e:
        print(f"lookalike: worker {os.getpid()}: model failed to load: "
              f"{' '.join(str(e).split())}", file=sys.stderr)
        return
    print(f"lookalike: worker {os.getpid()}: model loaded in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)


_started: Started | None = None


def __getattr__(name: str) -> Any:
    """`app.server` / `app.app` for gunicorn, built on first use from the environment.

    Importing this module (tests, tools) loads nothing; `gunicorn app:server` does.
    """
    global _started
    if name not in ("server", "app"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _started is None:
        preload = env_flag(PRELOAD_ENV)
        after_fork = preload and building_in_gunicorn_master()
        try:
            _started = build_front(precomputed_folder(), env_flag(DYNAMIC_ENV),
                                   os.environ.get(MODEL_ENV) or None, preload and not after_fork)
        except AppStartError as e:
            print(e, file=sys.stderr)
            # 3 is gunicorn's "worker failed to boot": it stops instead of respawning.
            raise SystemExit(3) from None
        searcher = _started.searcher
        if after_fork and searcher is not None:
            os.register_at_fork(after_in_child=lambda: preload_in_worker(searcher))
    return _started.front.server if name == "server" else _started.front.app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of `python app.py`."""
    parser = argparse.ArgumentParser(description="Serve a lookalike precomputed folder.")
    parser.add_argument("--precomputed", metavar="FOLDER",
                        help=f"precomputed folder to serve (default: ${ENV_VAR}, "
                             "else precomputed/demo)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on")
    parser.add_argument("--debug", action="store_true", help="Dash dev tools and reloader")
    parser.add_argument("--dynamic", action="store_true", default=env_flag(DYNAMIC_ENV),
                        help="add search by photo (loads the catalog's model; "
                             f"default: ${DYNAMIC_ENV})")
    parser.add_argument("--model", metavar="PATH", default=os.environ.get(MODEL_ENV) or None,
                        help="the catalog's Keras model file, if not at the path recorded in "
                             f"meta.json (default: ${MODEL_ENV})")
    parser.add_argument("--preload-model", action="store_true", default=env_flag(PRELOAD_ENV),
                        help="load the model at start-up, not on the first search "
                             f"(default: ${PRELOAD_ENV})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the development server."""
    args = parse_args(argv)
    if not args.dynamic and (args.model or args.preload_model):
        raise SystemExit("lookalike: --model and --preload-model need --dynamic")
    folder = precomputed_folder(args.precomputed)
    started = time.perf_counter()
    try:
        run = build_front(folder, args.dynamic, args.model, args.preload_model)
    except AppStartError as e:
        raise SystemExit(str(e)) from None
    mode = ""
    if run.searcher is not None:
        loaded = (f"loaded in {time.perf_counter() - started:.1f} s)" if run.searcher.loaded
                  else "loads on the first search)")
        mode = f"; search by photo at /search ({loaded}"
    print(f"lookalike: serving {folder} ({run.front.shop.n_products:,} products) "
          f"on http://{args.host}:{args.port}{mode}", file=sys.stderr)
    run.front.app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
