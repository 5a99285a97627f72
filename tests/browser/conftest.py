"""Playwright against Debian's Chromium and pytest-django's live server.

Browsers cannot be downloaded here, so `playwright install` is never run: the tests launch
/usr/bin/chromium (`apt-get install chromium`). Without it they are skipped, unless
REQUIRE_SERVICES=1 (see `_service_markers` in tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import CHROMIUM

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "Quiet-Harbour-2026"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser_context(_service_markers, tmp_path, monkeypatch) -> Iterator[BrowserContext]:
    """A fresh Chromium profile per test. Playwright is imported here, not at the top, so that a
    machine without it skips these tests instead of failing to collect them."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running on this thread. The test's own ORM calls
    # (seeding, checking what a page saved) are still plain synchronous code, which Django would
    # refuse beside a running loop; and beside one Django keeps its connections apart from the
    # thread's usual ones, so those are closed here before the loop stops (left open, PostgreSQL
    # would refuse to drop the test database at the end of the run).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1366, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
            connections.close_all()


@dataclass
class Errors:
    """JavaScript errors a page reported: console messages of type error and uncaught exceptions."""

    messages: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    return browser_context.new_page()


@pytest.fixture
def js_errors(page: Page) -> Errors:
    errors = Errors()
    page.on("console", lambda message: message.type == "error" and errors.messages.append(message.text))
    page.on("pageerror", lambda error: errors.messages.append(str(error)))
    return errors


def sign_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("form [type=submit]")


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
