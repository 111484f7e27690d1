"""Settings are read from the environment and fail loudly on bad values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apollo_site.envconfig import env_bool, env_int, env_list, env_rate

ROOT = Path(__file__).resolve().parents[2]


def _settings_in_subprocess(
    env: dict[str, str], expression: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    code = f"import apollo_site.settings as s; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("off", False)])
def test_env_bool_reads_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("APOLLO_FLAG", raw)
    assert env_bool("APOLLO_FLAG", default=not expected) is expected


def test_env_bool_refuses_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APOLLO_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="APOLLO_FLAG"):
        env_bool("APOLLO_FLAG", default=False)


def test_env_int_refuses_words_and_values_below_the_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APOLLO_N", "ten")
    with pytest.raises(ImproperlyConfigured, match="integer"):
        env_int("APOLLO_N", 1)
    monkeypatch.setenv("APOLLO_N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("APOLLO_N", 1, minimum=1)


def test_env_list_refuses_empty_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APOLLO_HOSTS", "a.example,,b.example")
    with pytest.raises(ImproperlyConfigured):
        env_list("APOLLO_HOSTS", [])


def test_secret_key_is_required_when_debug_is_off() -> None:
    result = _settings_in_subprocess({"DEBUG": "0", "SECRET_KEY": ""}, "s.SECRET_KEY")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_production_switches_come_from_the_environment() -> None:
    result = _settings_in_subprocess(
        {
            "DEBUG": "false",
            "SECRET_KEY": "a-production-secret-from-the-environment",
            "ALLOWED_HOSTS": "apollo.example.com",
            "DATABASE_URL": "postgres://apollo@db.example.com:5432/apollo",
            "REDIS_URL": "redis://cache.example.com:6379/0",
        },
        "s.DEBUG, s.ALLOWED_HOSTS, s.DATABASES['default']['ENGINE'], "
        "s.CHANNEL_LAYERS['default']['BACKEND'], s.SESSION_COOKIE_SECURE",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "False ['apollo.example.com'] django.db.backends.postgresql "
        "apollo_site.ops.channel_layer.RedisChannelLayer True"
    )


def test_development_defaults_need_nothing_set(tmp_path: Path) -> None:
    result = _settings_in_subprocess(
        {"APOLLO_VAR_DIR": str(tmp_path), "DEBUG": "1", "SECRET_KEY": ""},
        "s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
        "len(s.SECRET_KEY) > 40",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "django.db.backends.sqlite3 channels.layers.InMemoryChannelLayer True"
    )
    # Generated once and kept: a second start reuses the same key.
    assert (tmp_path / "secret_key").exists()
    key = (tmp_path / "secret_key").read_text()
    again = _settings_in_subprocess(
        {"APOLLO_VAR_DIR": str(tmp_path), "DEBUG": "1", "SECRET_KEY": ""}, "s.SECRET_KEY"
    )
    assert again.stdout.strip() == key


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "sometimes", "DEBUG must be a boolean"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must start with"),
        ("DATABASE_URL", "nonsense://x", "DATABASE_URL is not a valid database URL"),
    ],
)
def test_bad_values_stop_the_start(name: str, value: str, message: str) -> None:
    result = _settings_in_subprocess({name: value, "SECRET_KEY": "x" * 50}, "s.DEBUG")
    assert result.returncode != 0
    assert message in result.stderr


def test_a_sqlite_database_url_waits_for_locks_and_writes_ahead_like_the_default(
    tmp_path: Path,
) -> None:
    result = _settings_in_subprocess(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/apollo.sqlite3", "SECRET_KEY": "x" * 50},
        "s.DATABASES['default']['OPTIONS']",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "{'timeout': 20, 'transaction_mode': 'IMMEDIATE', "
        "'init_command': 'PRAGMA mmap_size=268435456; PRAGMA journal_mode=WAL'}"
    )


@pytest.mark.parametrize(("switch", "threshold"), [(None, "0"), ("1", "0"), ("0", "None")])
def test_postgresql_prepares_at_first_run_unless_turned_off(
    switch: str | None, threshold: str
) -> None:
    """apollo_site.prepared_sql's statements: prepared at their first run on a connection, or
    never (Django's default) behind a pooler that cannot keep prepared statements."""
    env = {"DATABASE_URL": "postgres://apollo@db.example.com:5432/apollo", "SECRET_KEY": "x" * 50}
    if switch is not None:
        env["APOLLO_DATABASE_PREPARED_STATEMENTS"] = switch
    result = _settings_in_subprocess(env, "s.DATABASES['default']['OPTIONS']")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{{'prepare_threshold': {threshold}}}"


def test_env_rate_reads_a_count_per_period_and_refuses_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APOLLO_RATE", "30/hour")
    assert env_rate("APOLLO_RATE", "1/second") == "30/hour"
    for bad in ("30", "0/minute", "ten/minute", "30/fortnight"):
        monkeypatch.setenv("APOLLO_RATE", bad)
        with pytest.raises(ImproperlyConfigured, match="APOLLO_RATE"):
            env_rate("APOLLO_RATE", "1/second")


def test_the_throttles_share_redis_when_several_processes_do() -> None:
    redis = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    result = _settings_in_subprocess(redis, "s.CACHES['throttles']['BACKEND']")
    # Django's RedisCache, falling back to a per-process count while Redis is down.
    assert result.stdout.strip() == "apollo_site.ops.fallback_cache.RedisCacheWithLocalFallback"
    result = _settings_in_subprocess({}, "s.CACHES['throttles']['BACKEND']")
    assert result.stdout.strip().endswith("LocMemCache")


def test_apollo_speaks_english_without_the_translation_machinery() -> None:
    """USE_I18N off (#16: Django's documented optimisation; History's first page took 0.93
    times as long): Apollo has no catalogue of its own to translate with and picks no language
    per request, so gettext answers its text as written, without the per-call lookups of the
    active language."""
    from django.conf import settings
    from django.utils import translation
    from django.utils.translation import trans_null

    assert settings.USE_I18N is False
    assert settings.LANGUAGE_CODE == "en-us"
    assert "django.middleware.locale.LocaleMiddleware" not in settings.MIDDLEWARE
    assert not [path for path in ROOT.glob("*/locale") if path.is_dir()]
    assert not getattr(settings, "LOCALE_PATHS", [])
    assert translation.gettext("%(num)d days") == "%(num)d days"
    assert translation._trans.gettext is trans_null.gettext  # type: ignore[attr-defined]
