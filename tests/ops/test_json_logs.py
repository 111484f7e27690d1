"""APOLLO_LOG_FORMAT=json and request ids: one JSON object per line, the request id taken
from a safe X-Request-ID or made up, echoed in the response, credentials still scrubbed."""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from apollo_site.ops.logs import JsonFormatter

logger = logging.getLogger("tests.ops.view")


def logging_view(request: HttpRequest) -> HttpResponse:
    request.user.is_authenticated  # noqa: B018  (authentication runs, as in a real view)
    logger.info("deploying with Authorization: Bearer abcdefgh12345678secret")
    return HttpResponse("ok")


urlpatterns = [path("log-something/", logging_view, name="log-something")]


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@override_settings(ROOT_URLCONF="tests.ops.test_json_logs")
def test_a_line_carries_the_request_id_and_the_user(alice: Any, json_lines: io.StringIO) -> None:
    client = Client()
    client.force_login(alice)
    response = client.get("/log-something/", HTTP_X_REQUEST_ID="req-42.abc")
    assert response["X-Request-ID"] == "req-42.abc"
    [line] = _lines(json_lines)
    assert line["request_id"] == "req-42.abc"
    assert line["user"] == "alice"
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.ops.view"
    assert line["time"].endswith("+00:00")
    assert "abcdefgh12345678secret" not in json_lines.getvalue()


@override_settings(ROOT_URLCONF="tests.ops.test_json_logs")
@pytest.mark.parametrize("header", ["", "has space", 'quote"d', "x" * 65, "new\nline", "ünicode"])
def test_an_unsafe_request_id_is_replaced_by_a_new_one(
    db: None, header: str, json_lines: io.StringIO
) -> None:
    response = Client().get("/log-something/", HTTP_X_REQUEST_ID=header)
    issued = response["X-Request-ID"]
    assert issued != header
    assert len(issued) == 32
    assert issued.isalnum()
    [line] = _lines(json_lines)
    assert line["request_id"] == issued
    assert line["user"] == ""


def test_every_response_gets_a_request_id(db: None) -> None:
    first = Client().get("/healthz")["X-Request-ID"]
    second = Client().get("/healthz")["X-Request-ID"]
    assert first
    assert first != second


@override_settings(ROOT_URLCONF="tests.ops.test_json_logs")
async def test_under_asgi_the_view_logs_the_request_id_it_echoes(
    db: None, json_lines: io.StringIO
) -> None:
    response = await AsyncClient().get("/log-something/", headers={"X-Request-ID": "asgi-1"})
    assert response["X-Request-ID"] == "asgi-1"
    [line] = _lines(json_lines)
    assert line["request_id"] == "asgi-1"
    await sync_to_async(connections.close_all)()  # the view's thread: PostgreSQL teardown


async def test_under_asgi_the_probes_answer_with_a_request_id(db: None) -> None:
    for probe in ("/healthz", "/readyz"):
        response = await AsyncClient().get(probe, headers={"Host": "10.1.2.3"})
        assert response.status_code == 200, probe
        assert response["X-Request-ID"]
    await sync_to_async(connections.close_all)()  # the probes' thread: PostgreSQL teardown
