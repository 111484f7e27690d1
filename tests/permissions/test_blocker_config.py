"""permissions.blocker_config.parse: strict, typed configuration per blocker kind."""

from datetime import time
from typing import Any

import pytest

from permissions import blocker_config as bc


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("unconditional", {}, bc.Unconditional()),
        (
            "unconditional",
            {"except_services": ["checkout"], "except_environments": ["qa"]},
            bc.Unconditional(("checkout",), ("qa",)),
        ),
        (
            "time_window",
            {"days": [4, 4, 0], "start": "22:00", "end": "02:00", "timezone": "Europe/Berlin"},
            bc.TimeWindow((0, 4), time(22), time(2), "Europe/Berlin"),
        ),
        ("branch", {"patterns": ["main", "release/*"]}, bc.BranchAllowList(("main", "release/*"))),
        ("concurrency", {"max_in_progress": 2}, bc.Concurrency(2)),
        ("ci_status", {}, bc.CIStatusRequired()),
        (
            "ci_status",
            {"required_contexts": ["jenkins/unit"]},
            bc.CIStatusRequired(("jenkins/unit",)),
        ),
        ("single_region", {}, bc.SingleRegion()),
        ("promotion", {"from_environment": "staging"}, bc.Promotion("staging", 0)),
        (
            "promotion",
            {"from_environment": "staging", "min_minutes": 30},
            bc.Promotion("staging", 30),
        ),
    ],
)
def test_it_parses_every_kind(kind: str, raw: dict[str, Any], expected: bc.Config) -> None:
    assert bc.parse(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        ("unconditional", [], "JSON object"),
        ("unconditional", {"except_service": ["x"]}, "unknown setting except_service"),
        ("unconditional", {"except_services": "checkout"}, "list of non-empty strings"),
        ("time_window", {"start": "12:00", "end": "13:00", "timezone": "UTC"}, "days"),
        ("time_window", {"days": [7], "start": "12:00", "end": "13:00", "timezone": "UTC"}, "days"),
        (
            "time_window",
            {"days": [True], "start": "12:00", "end": "13:00", "timezone": "UTC"},
            "days",
        ),
        (
            "time_window",
            {"days": [1], "start": "25:00", "end": "13:00", "timezone": "UTC"},
            "start",
        ),
        ("time_window", {"days": [1], "start": "12:00", "end": "1pm", "timezone": "UTC"}, "end"),
        (
            "time_window",
            {"days": [1], "start": "12:00", "end": "12:00", "timezone": "UTC"},
            "differ",
        ),
        (
            "time_window",
            {"days": [1], "start": "12:00", "end": "13:00", "timezone": "Mars/Base"},
            "time zone",
        ),
        ("time_window", {"days": [1], "start": "12:00", "end": "13:00"}, "timezone"),
        ("branch", {"patterns": []}, "must not be empty"),
        ("branch", {}, "must not be empty"),
        ("concurrency", {"max_in_progress": 0}, "at least 1"),
        ("concurrency", {"max_in_progress": "2"}, "whole number"),
        ("concurrency", {"max_in_progress": True}, "whole number"),
        ("ci_status", {"required_contexts": [""]}, "non-empty"),
        ("single_region", {"anything": 1}, "unknown setting"),
        ("promotion", {}, "from_environment"),
        ("promotion", {"from_environment": "staging", "min_minutes": -1}, "at least 0"),
        ("teleport", {}, "unknown blocker kind"),
    ],
)
def test_it_refuses_configurations_it_cannot_understand(kind: str, raw: Any, message: str) -> None:
    with pytest.raises(bc.ConfigError, match=message):
        bc.parse(kind, raw)
