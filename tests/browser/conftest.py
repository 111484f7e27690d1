"""The browser harness: Playwright driving Debian's Chromium, never a downloaded browser."""

import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import factories
from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (CI installs it)")
    # Playwright's sync API keeps an event loop running in this thread; Django then refuses
    # ORM calls from test bodies unless told that this thread is not serving async code.
    # Browser tests are sorted last (tests/conftest.py), so no other test runs under this.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: Any
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keeps each phase's report on the test, so the page fixture knows whether it failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failure_screenshots() -> Path:
    """Where a failed browser test leaves its page: var/browser-failures/ (APOLLO_VAR_DIR)."""
    return Path(settings.VAR_DIR) / "browser-failures"


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    # SECURITY: every browser test also checks that the Content Security Policy blocked
    # nothing the page needed (Chromium reports each refusal on the console).
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    # Nor may a page's script throw (a module that fails to load or run leaves a live page
    # silently dead: the markup is there, nothing updates).
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        # The page as it was when the test failed, kept as a test artifact (every open tab).
        failure_screenshots().mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        for n, shown in enumerate(context.pages):
            path = failure_screenshots() / f"{name}{f'-{n}' if n else ''}.png"
            try:
                shown.screenshot(path=str(path), full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"no screenshot of {name}: {exc}")
            else:
                print(f"screenshot of the failed page: {path}")
    context.close()
    assert violations == [], f"the page broke its Content Security Policy: {violations}"
    assert errors == [], f"a script of the page failed: {errors}"


def log_in(page: Page, live: LiveServer, username: str) -> None:
    """Log in through the login page as a persona; returns once the page names them."""
    page.goto(live.url + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_have_text(username)
