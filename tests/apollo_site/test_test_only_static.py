"""axe-core (vendored for the browser tests' accessibility check) is never collected, so never
served to users; its licence and version sit beside it."""

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.staticfiles.finders import FileSystemFinder

AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core"


def test_axe_is_vendored_with_its_licence_and_version() -> None:
    assert (AXE / "LICENSE").is_file()
    assert "4.10.3" in (AXE / "VERSION").read_text()
    assert (AXE / "axe-4.10.3.min.js").is_file()


def test_collectstatic_leaves_axe_out() -> None:
    ignore = apps.get_app_config("staticfiles").ignore_patterns  # type: ignore[attr-defined]
    collected = [path for path, _ in FileSystemFinder().list(ignore)]
    assert "vendor/xterm-5.5.0/xterm.js" in collected
    assert not [path for path in collected if "axe" in path]
