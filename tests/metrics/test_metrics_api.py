"""GET /api/v1/metrics/: the same figures as JSON or CSV, with the API's authentication."""

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import login
from tests.metrics.history import make_story

pytestmark = pytest.mark.django_db
URL = "/api/v1/metrics/"
STAGING_MARCH = {"environment": "staging", "start": "2026-03-01", "end": "2026-03-10"}


def with_token(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def test_the_json_export_carries_the_hand_computed_figures(alice: User) -> None:
    make_story(alice)
    response = login(alice).get(URL, STAGING_MARCH)
    assert response.status_code == 200
    data = response.json()
    assert (data["deployments"], data["done"], data["failures"]) == (9, 6, 4)
    assert data["deployment_frequency_per_day"] == 0.6
    assert data["deployment_frequency_band"] == "high"
    assert data["lead_time_median_seconds"] == 12 * 3600
    assert data["lead_time_p90_seconds"] == 86 * 3600
    assert data["lead_time_band"] == "elite"
    assert data["change_failure_rate"] == round(4 / 9, 4)
    assert data["change_failure_rate_band"] == "low"
    assert data["time_to_restore_median_seconds"] == 2 * 3600
    assert data["time_to_restore_band"] == "high"
    assert data["per_day"][2] == {"day": "2026-03-03", "done": 1, "failures": 1}


def test_the_csv_export_has_one_line_per_figure(alice: User) -> None:
    make_story(alice)
    response = login(alice).get(URL, {**STAGING_MARCH, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["metric", "value", "unit", "band"]
    figures = {r[0]: r[1:] for r in rows[1:]}
    assert figures["period"] == ["2026-03-01..2026-03-10", "dates", ""]
    assert figures["deployment_frequency"] == ["0.6", "per day", "high"]
    assert figures["lead_time_median"] == ["43200.0", "seconds", "elite"]
    assert figures["change_failure_rate"] == ["0.4444", "ratio", "low"]
    assert figures["time_to_restore_median"] == ["7200.0", "seconds", "high"]


def test_a_token_holder_reads_what_its_user_may_view(alice: User, jenkins: Any) -> None:
    make_story(alice)
    response = with_token(jenkins.api_key).get(URL, {"start": "2026-03-01", "end": "2026-03-10"})
    assert response.status_code == 200
    assert response.json()["deployments"] == 0  # jenkins views nothing


def test_anonymous_callers_get_a_401(client: Any) -> None:
    assert client.get(URL).status_code == 401


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_bad_input_is_a_400_naming_the_field(alice: User, fmt: str) -> None:
    response = login(alice).get(URL, {"start": "2026-03-10", "end": "2026-03-01", "format": fmt})
    assert response.status_code == 400
    assert "The period starts after it ends." in response.content.decode()


def test_a_post_is_refused(alice: User) -> None:
    assert login(alice).post(URL, {}, content_type="application/json").status_code == 405
