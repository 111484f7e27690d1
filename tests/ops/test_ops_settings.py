"""The ops settings fail loudly on bad values; APOLLO_LOG_FORMAT=json makes the process's own
log lines JSON objects, with credentials still scrubbed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _python(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "apollo_site.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("APOLLO_LOG_FORMAT", "xml", "APOLLO_LOG_FORMAT must be one of plain, json"),
        ("APOLLO_METRICS_ALLOW", "10.0.0.0/8,not-a-net", "'not-a-net' is not an address or CIDR"),
        ("APOLLO_WORKER_METRICS_PORT", "http", "APOLLO_WORKER_METRICS_PORT must be an integer"),
    ],
)
def test_a_bad_ops_setting_stops_the_process(name: str, value: str, message: str) -> None:
    result = _python({name: value}, "import apollo_site.settings")
    assert result.returncode != 0
    assert message in result.stderr


def test_json_log_format_writes_one_object_per_line() -> None:
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('apollo.check').warning('token: sekrit-value-123456 for %s', 'x')"
    )
    result = _python({"APOLLO_LOG_FORMAT": "json"}, code)
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert line["level"] == "WARNING"
    assert line["logger"] == "apollo.check"
    assert line["request_id"] == ""
    assert "sekrit-value-123456" not in result.stderr
    assert line["message"].startswith("token: ")
