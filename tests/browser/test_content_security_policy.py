"""The Content Security Policy is in force in a real browser: an injected inline script does
not run (and Chromium reports the refusal on the console, which every other browser test
treats as a failure)."""

import pytest
from playwright.sync_api import Browser

from tests.live import LiveServer

pytestmark = pytest.mark.browser


def test_an_injected_inline_script_is_refused_by_the_browser(
    live_apollo: LiveServer, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(live_apollo.url + "/login/")
        with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
            page.evaluate(
                """() => {
                    const script = document.createElement("script");
                    script.textContent = "window.injected = true";
                    document.body.appendChild(script);
                }"""
            )
        assert page.evaluate("() => window.injected === undefined")
    finally:
        context.close()
