"""Static files with DEBUG off: content-hashed names, also inside the imports between modules,
so that a deploy of Apollo never serves a page's new module with a stale live.js (or back)."""

import re
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings

HASHED = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "apollo_site.staticfiles.HashedStaticFilesStorage"},
}


def test_every_live_page_imports_the_live_module_by_its_hashed_name(tmp_path: Path) -> None:
    with override_settings(STORAGES=HASHED, STATIC_ROOT=tmp_path):
        call_command("collectstatic", interactive=False, verbosity=0)
    live = [p.name for p in (tmp_path / "js").glob("live.*.js")]
    assert len(live) == 1, live
    assert re.fullmatch(r"live\.[0-9a-f]{12}\.js", live[0]), live
    for page in ("deployment", "groups", "environment", "livetail", "shell"):
        [module] = (tmp_path / "js").glob(f"{page}.*[0-9a-f].js")
        assert f'from "./{live[0]}";' in module.read_text(), page
