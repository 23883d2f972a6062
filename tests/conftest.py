"""Shared pytest fixtures and hooks for the Dash app: precomputed folders and headless Chromium.

Browser tests (`@pytest.mark.browser`) use dash[testing]'s `dash_duo`. They always run
headless here (no `--headless` flag needed) and skip with a reason when Chromium or
chromedriver is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fake_precomputed import make_fake_precomputed

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str | None:
    """Path of a Chromium/Chrome binary ($DASH_TEST_CHROMEPATH first), or None."""
    explicit = os.environ.get("DASH_TEST_CHROMEPATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)


def browser_missing_reason() -> str | None:
    """Why browser tests cannot run here, or None if they can."""
    if chromium_binary() is None:
        return "Chromium not installed (apt-get install chromium)"
    if shutil.which("chromedriver") is None:
        return "chromedriver not installed (apt-get install chromium-driver)"
    try:
        import dash.testing.browser  # noqa: F401
    except ImportError as e:
        return f"dash[testing] not installed ({e})"
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Browser tests always run headless (no display here or in CI)."""
    if hasattr(config.option, "headless"):
        config.option.headless = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip browser tests, with the reason, when Chromium or chromedriver is missing."""
    reason = browser_missing_reason()
    if reason is None:
        return
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_setup_options():  # hook of dash[testing]; returns selenium ChromeOptions
    """Chrome options for dash[testing]: headless-safe as root and with no network."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.remote.remote_connection import RemoteConnection

    # selenium 3.141 (dash[testing] pins selenium<=4.2) passes a sentinel default timeout
    # that urllib3 2.x rejects; an explicit timeout avoids it.
    if RemoteConnection.get_timeout() is None:
        RemoteConnection.set_timeout(60)
    options = Options()
    binary = chromium_binary()
    if binary:
        options.binary_location = binary
    for arg in (
        "--no-sandbox",  # we run as root in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",  # no network: no update/telemetry calls
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    return options


@pytest.fixture(scope="session")
def fake_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-product cosine precomputed folder (k=8), shared by the session; do not modify."""
    return make_fake_precomputed(tmp_path_factory.mktemp("precomputed") / "fake", 120, k=8)


@pytest.fixture(scope="session")
def fake_folder_euclidean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-product euclidean precomputed folder (k=5); do not modify."""
    return make_fake_precomputed(
        tmp_path_factory.mktemp("precomputed") / "euclid", 40, k=5, seed=1, metric="euclidean"
    )


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where browser tests save screenshots: $LOOKALIKE_SCREENSHOTS, else the test's tmp."""
    folder = Path(os.environ.get("LOOKALIKE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
