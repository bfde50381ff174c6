"""A real browser: Playwright driving the system's Chromium (never a downloaded one)."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from infra.system_packages import ensure_chromium

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", REPO / ".run" / "screenshots"))


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=ensure_chromium(), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def screenshot():
    """Save a page's screenshot under SCREENSHOT_DIR (default .run/screenshots) by name; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return save
