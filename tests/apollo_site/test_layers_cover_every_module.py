"""The import-direction check only constrains modules that belong to a layer: a module left out
of every layer of `[tool.importlinter]` could import anything. Every module of Apollo's packages
is in a layer (itself or a package that contains it)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["apollo_site", "deployments", "environments", "permissions", "history"]


def _layer_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    return {name.strip() for layer in layers for name in layer.split(":")}


def _modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                if not path.read_text().strip():
                    continue  # an empty package marker imports nothing
                parts = parts[:-1]
            found.append(".".join(parts))
    return found


def _covered(module: str, layers: set[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:n]) in layers for n in range(1, len(parts) + 1))


def test_every_module_of_apollo_is_in_a_layer() -> None:
    layers = _layer_modules()
    outside = [m for m in _modules() if not _covered(m, layers) and m not in PACKAGES]
    assert outside == [], f"modules in no layer of pyproject.toml's import contract: {outside}"


def test_the_check_sees_a_module_left_out() -> None:
    layers = _layer_modules() - {"apollo_site.settings"}
    assert not _covered("apollo_site.settings", layers)
