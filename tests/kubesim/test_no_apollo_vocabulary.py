"""kubesim is a Kubernetes simulator: it knows Kubernetes' vocabulary, never its user's. A
behaviour a client needs is reached through a generic mechanism (an image behaviour, a control
setting, a kubesim.io/ annotation), never by reading Apollo's annotations or labels."""

from __future__ import annotations

import re
from pathlib import Path

import kubesim

ROOT = Path(kubesim.__file__).resolve().parent
# Apollo's label and annotation prefix, however it is spelled or split.
APOLLO_KEY = re.compile(r"apollo\s*\.\s*io|apollo\.io/", re.IGNORECASE)


def _files(suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in ROOT.rglob("*") if p.is_file() and p.suffix in suffixes)


def test_no_kubesim_file_mentions_apollo_annotations_or_labels() -> None:
    files = _files((".py", ".md", ".json", ".yaml", ".txt"))
    assert any(p.name == "proxy.py" for p in files)  # the walk sees the sources
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if APOLLO_KEY.search(line)
    ]
    assert found == [], "kubesim must not know Apollo's vocabulary:\n" + "\n".join(found)


def test_no_kubesim_module_mentions_apollo_at_all() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _files((".py",))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "apollo" in line.lower()
    ]
    assert found == [], "kubesim's code must not know its user:\n" + "\n".join(found)
