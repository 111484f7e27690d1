"""The Dockerfile's build, without a container engine (none is usable where this was written):
its steps (deploy/image/build.sh) run on what .dockerignore leaves of the source, in a clean
virtual environment made from the pins only, and what comes out serves /healthz and the
content-hashed static files with DEBUG off. The image itself was not built here."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A clean install from the pins takes minutes and does not depend on the database: once, in the
# default pass, not again in CI's PostgreSQL + Redis pass.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="runs in the default (SQLite) pass only"
)
BUILD = ["sh", "deploy/image/build.sh"]


def ignored(relative: str, patterns: list[str]) -> bool:
    """.dockerignore's rule, for the patterns it uses: the last matching pattern wins."""
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, bare) for prefix in prefixes) or (
            bare.startswith("**/") and any(fnmatch.fnmatch(part, bare[3:]) for part in parts)
        ):
            verdict = not negated
    return verdict


def build_context(destination: Path) -> Path:
    """The source as `docker build .` would send it (tracked files only, .dockerignore applied)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    for relative in tracked:
        if ignored(relative, patterns) or not (ROOT / relative).is_file():
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    return destination


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(source, venv, var dir) after both build steps, as in the image's build stage."""
    base = tmp_path_factory.mktemp("image")
    app, venv, var = build_context(base / "app"), base / "venv", base / "app" / "var"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO", "APOLLO", "DATABASE", "REDIS"))
    }
    env["PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    for step in (["install", str(venv)], ["collect", str(venv), str(var)]):
        result = subprocess.run(
            [*BUILD, *step], cwd=app, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, (
            f"build step {step[0]} failed:\n{result.stdout}\n{result.stderr}"
        )
    return app, venv, var


def test_the_context_leaves_out_tests_clusters_and_local_state(
    built: tuple[Path, Path, Path],
) -> None:
    app, _, _ = built
    for absent in ("tests", "kubesim", "cluster", "bench", ".venv", ".git", "deploy/base"):
        assert not (app / absent).exists(), absent
    assert (app / "manage.py").is_file()
    assert (app / "deploy" / "image" / "build.sh").is_file()


def test_the_clean_venv_holds_exactly_the_pinned_runtime_requirements(
    built: tuple[Path, Path, Path],
) -> None:
    _, venv, _ = built
    frozen = subprocess.run(
        [str(venv / "bin" / "pip"), "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout.lower()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            name = name.split("[")[0].lower().replace("_", "-")
            assert f"{name}=={version}" in frozen.replace("_", "-"), line
    assert "pytest" not in frozen  # no test tool in the image


def test_collectstatic_ran_at_build_with_content_hashed_names(
    built: tuple[Path, Path, Path],
) -> None:
    _, _, var = built
    manifest = json.loads((var / "staticfiles" / "staticfiles.json").read_text())["paths"]
    assert manifest, "no static file collected"
    for original, hashed in manifest.items():
        assert hashed != original
        assert (var / "staticfiles" / hashed).is_file()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a local URL)
            return response.status, response.read()
    except OSError:
        return 0, b""


def test_the_built_app_serves_healthz_and_its_static_files_with_debug_off(
    built: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    app, venv, var = built
    port = _free_port()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "DEBUG": "false",
        "SECRET_KEY": "test-only-runtime-key",
        "APOLLO_VAR_DIR": str(var),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    daphne = subprocess.Popen(
        [str(venv / "bin" / "daphne"), "--bind", "127.0.0.1", "--port", str(port),
         "apollo_site.asgi:application"],
        cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        while status != 200 and time.monotonic() < deadline and daphne.poll() is None:
            time.sleep(0.2)
            status, body = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200, f"no /healthz; daphne exited with {daphne.poll()}"
        assert json.loads(body) == {"status": "ok"}
        manifest = json.loads((var / "staticfiles" / "staticfiles.json").read_text())["paths"]
        hashed = next(path for path in manifest.values() if path.endswith(".css"))
        status, _ = _get(f"http://127.0.0.1:{port}/static/{hashed}")
        assert status == 200
    finally:
        daphne.terminate()
        daphne.wait(timeout=30)
        if daphne.stdout:
            daphne.stdout.close()


def test_the_dockerfile_runs_these_steps_and_its_final_stage_is_non_root_without_build_tools() -> (
    None
):
    text = (ROOT / "Dockerfile").read_text()
    build_stage, final_stage = text.split("\nFROM ", 2)[1:]
    assert "RUN sh deploy/image/build.sh install /opt/venv" in build_stage
    assert "RUN sh deploy/image/build.sh collect /opt/venv /app/var" in build_stage
    assert "AS build" in build_stage
    runs = [line for line in final_stage.splitlines() if line.startswith("RUN")]
    assert all("apt-get" not in run and "pip" not in run for run in runs)
    assert "COPY --from=build /opt/venv /opt/venv" in final_stage
    assert "\nUSER 10001:10001\n" in final_stage
    assert "SECRET_KEY" not in final_stage
