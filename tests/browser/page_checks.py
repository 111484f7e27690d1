"""Checks every page journey shares: no sideways scrolling at phone width and no serious
accessibility violation (axe-core, vendored for the tests only)."""

from pathlib import Path
from typing import Any

from django.conf import settings
from playwright.sync_api import Page, ViewportSize

AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core" / "axe-4.10.3.min.js"
PHONE: ViewportSize = {"width": 390, "height": 844}

WIDER = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  return [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 1)
    .slice(0, 8)
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`);
}"""


def wider_than_the_screen(page: Page) -> list[str]:
    """The elements that stick out on the right ([] when the page does not scroll sideways)."""
    found: list[str] = page.evaluate(WIDER)
    return found


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page (the context must bypass the CSP
    for the injected script)."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:3]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
