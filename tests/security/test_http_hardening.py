"""Attack surface of HTTP itself: script injection, downgrade to http, spoofed proxy headers.

Every response carries a Content Security Policy that allows no inline script; no template
holds an inline script or an on*= handler; with DEBUG off, static files are served (hashed
names) and HSTS is sent; X-Forwarded-Proto and X-Forwarded-For are trusted only when the
operator says a proxy sets them.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import login

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates")]


def _directives(header: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in header.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.parametrize("url", ["/login/", "/", "/deploy/", "/history/", "/admin/"])
def test_every_page_carries_a_content_security_policy_without_inline_script(
    alice: User, url: str
) -> None:
    response = login(alice).get(url)
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy.get("default-src", [])


def test_no_template_holds_an_inline_script_or_an_event_handler() -> None:
    inline = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=", re.I)
    found = []
    for directory in TEMPLATE_DIRS:
        for template in directory.rglob("*.html"):
            text = template.read_text()
            if inline.search(text) or handler.search(text) or "javascript:" in text:
                found.append(str(template.relative_to(ROOT)))
    assert found == []


def test_a_spoofed_x_forwarded_for_does_not_escape_the_bad_token_throttle(db: None) -> None:
    statuses = []
    for n in range(12):
        client = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        response = client.get(
            "/api/v1/deployments/", headers={"Authorization": f"Token apollo_{n:08x}_x"}
        )
        statuses.append(response.status_code)
    assert statuses[-1] == 429


def _settings_value(env: dict[str, str], expression: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", f"import apollo_site.settings as s; print({expression})"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_the_proxy_ssl_header_is_trusted_only_when_the_operator_opts_in(tmp_path: Path) -> None:
    env = {"APOLLO_VAR_DIR": str(tmp_path)}
    assert _settings_value(env, "s.SECURE_PROXY_SSL_HEADER") == "None"
    opted_in = {**env, "APOLLO_TRUST_X_FORWARDED_PROTO": "true"}
    assert "HTTP_X_FORWARDED_PROTO" in _settings_value(opted_in, "s.SECURE_PROXY_SSL_HEADER")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (http://127.0.0.1)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def production_server(tmp_path: Path) -> Iterator[str]:
    """Apollo as in production: DEBUG off, static files collected, daphne, a TLS proxy."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DEBUG="false",
        SECRET_KEY="x" * 50,
        APOLLO_VAR_DIR=str(tmp_path / "var"),
        ALLOWED_HOSTS="127.0.0.1",
        APOLLO_TRUST_X_FORWARDED_PROTO="true",
    )
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        subprocess.run(
            [*manage, *command], env=env, cwd=ROOT, check=True, capture_output=True, timeout=180
        )
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "apollo_site.asgi:application",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                _fetch(f"{url}/login/")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_with_debug_off_static_files_are_served_under_hashed_names_with_hsts(
    production_server: str,
) -> None:
    status, headers, page = _fetch(f"{production_server}/login/")
    assert status == 200
    assert "Strict-Transport-Security" not in headers  # plain http: HSTS means nothing there
    stylesheet = re.search(r'href="(/static/css/apollo\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet, "the page links the hashed stylesheet"
    status, headers, css = _fetch(production_server + stylesheet.group(1))
    assert status == 200
    assert "max-age=315360000" in headers["Cache-Control"]
    assert css.strip()

    status, headers, _ = _fetch(
        f"{production_server}/login/", headers={"X-Forwarded-Proto": "https"}
    )
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
