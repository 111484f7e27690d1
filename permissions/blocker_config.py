"""Typed configuration of each blocker kind, parsed strictly from ``Blocker.config``.

Parsing is strict (unknown keys, wrong types and impossible values are errors) because a
blocker that silently means something else than its author intended is worse than one that
refuses loudly: ``permissions.blockers.evaluate`` turns a ConfigError into a refusal.

Config shapes (JSON):
  unconditional  {"except_services": [names], "except_environments": [names]}
  time_window    {"days": [0..6, Monday=0], "start": "HH:MM", "end": "HH:MM",
                  "timezone": "Europe/Berlin"}  start > end crosses midnight; end minute inclusive
  branch         {"patterns": ["main", "release/*"]}  fnmatch patterns, case-sensitive
  concurrency    {"max_in_progress": N >= 1, "except_services": [names]}
  ci_status      {"required_contexts": [contexts]}  empty: at least one status, all passing
  single_region  {}
  promotion      {"from_environment": name, "min_minutes": M >= 0}
"""

from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class ConfigError(ValueError):
    """The configuration of a blocker cannot be understood."""


@dataclass(frozen=True)
class Unconditional:
    except_services: tuple[str, ...] = ()
    except_environments: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimeWindow:
    days: tuple[int, ...]
    start: time
    end: time
    timezone: str

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end


@dataclass(frozen=True)
class BranchAllowList:
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Concurrency:
    max_in_progress: int
    except_services: tuple[str, ...] = ()


@dataclass(frozen=True)
class CIStatusRequired:
    required_contexts: tuple[str, ...] = ()


@dataclass(frozen=True)
class SingleRegion:
    pass


@dataclass(frozen=True)
class Promotion:
    from_environment: str
    min_minutes: int = 0


Config = (
    Unconditional
    | TimeWindow
    | BranchAllowList
    | Concurrency
    | CIStatusRequired
    | SingleRegion
    | Promotion
)


def _only_keys(raw: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a JSON object")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown setting {', '.join(unknown)}")
    return raw


def _names(raw: dict[str, Any], key: str, *, required: bool = False) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{key} must be a list of non-empty strings")
    if required and not value:
        raise ConfigError(f"{key} must not be empty")
    return tuple(v.strip() for v in value)


def _int(raw: dict[str, Any], key: str, *, minimum: int, default: int | None = None) -> int:
    value = raw.get(key, default)
    # bool is an int in Python; true/false in JSON is a mistake here.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key} must be a whole number of at least {minimum}")
    return value


def _clock(raw: dict[str, Any], key: str) -> time:
    value = raw.get(key)
    try:
        hours, minutes = str(value).split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(f"{key} must be a time as HH:MM, not {value!r}") from None


def parse_zone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("timezone must be a time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {value!r}") from None
    return value


def _time_window(raw: dict[str, Any]) -> TimeWindow:
    days = raw.get("days")
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days)
    ):
        raise ConfigError("days must be a non-empty list of weekdays 0 (Monday) to 6 (Sunday)")
    start, end = _clock(raw, "start"), _clock(raw, "end")
    if start == end:
        raise ConfigError("start and end must differ (use 00:00 to 23:59 for a whole day)")
    return TimeWindow(tuple(sorted(set(days))), start, end, parse_zone(raw.get("timezone")))


def parse(kind: str, raw: Any) -> Config:
    """The typed configuration of a blocker kind, or ConfigError saying what is wrong."""
    match kind:
        case "unconditional":
            raw = _only_keys(raw, {"except_services", "except_environments"})
            return Unconditional(_names(raw, "except_services"), _names(raw, "except_environments"))
        case "time_window":
            return _time_window(_only_keys(raw, {"days", "start", "end", "timezone"}))
        case "branch":
            raw = _only_keys(raw, {"patterns"})
            return BranchAllowList(_names(raw, "patterns", required=True))
        case "concurrency":
            raw = _only_keys(raw, {"max_in_progress", "except_services"})
            return Concurrency(
                _int(raw, "max_in_progress", minimum=1), _names(raw, "except_services")
            )
        case "ci_status":
            return CIStatusRequired(
                _names(_only_keys(raw, {"required_contexts"}), "required_contexts")
            )
        case "single_region":
            _only_keys(raw, set())
            return SingleRegion()
        case "promotion":
            raw = _only_keys(raw, {"from_environment", "min_minutes"})
            source = raw.get("from_environment")
            if not isinstance(source, str) or not source.strip():
                raise ConfigError("from_environment must name an environment")
            return Promotion(source.strip(), _int(raw, "min_minutes", minimum=0, default=0))
    raise ConfigError(f"unknown blocker kind {kind!r}")
