"""Credentials are never shown: not on an error page (even with DEBUG on), not in an error
e-mail, not in a log line.

What counts as a credential, and is replaced by ``********************``:

1. ``Authorization`` header values and ``Bearer <token>`` anywhere in a text;
2. the values of kubeconfig and client credential keys (``token``, ``client-key-data``,
   ``client-certificate-data``, ``password``, ``id-token``, ``refresh-token``,
   ``access-token``, ``api_key``), as a dict's repr or YAML/JSON text shows them;
3. Apollo API keys (``apollo_<prefix>_<secret>``) and Fernet ciphertexts (how cluster tokens
   are stored: ``gAAAAA...``);
4. every credential this process actually uses to speak to a cluster (the tokens held by the
   Kubernetes clients, decrypted or read from a kubeconfig) and the tokens of the kubeconfig
   file Apollo reads, wherever they appear.

Three places apply it:

- ``RedactingExceptionReporterFilter`` (``DEFAULT_EXCEPTION_REPORTER_FILTER``): settings,
  request META, POST, cookies and every frame's local variables, also when DEBUG is on
  (Django's own filter does nothing to frames when DEBUG is on), variables whose name says
  secret (Django's list: API, AUTH, TOKEN, KEY, SECRET, PASS, SIGNATURE) hidden whole;
- ``RedactingExceptionReporter`` (``DEFAULT_EXCEPTION_REPORTER``): the exception message, and
  the finished page or text once more, as a last net;
- ``configure_logging`` (``LOGGING_CONFIG``): every log record's message and formatted
  traceback (what Django logs for a 500 carries the exception's text), whatever the handler.
"""

import functools
import logging
import logging.config
import re
from pathlib import Path
from pprint import pformat
from typing import Any

from django.conf import settings
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

REDACTED = SafeExceptionReporterFilter.cleansed_substitute
_Q = r"(?:['\"]|&#x27;|&#39;|&quot;)?"  # a quote, as text or as the error page escapes it
_VALUE = r"[^'\"\s,;}&<]+"
_PATTERNS = [
    re.compile(rf"(?i)(authorization{_Q}\s*[:=]\s*{_Q})(?:(?:bearer|token|basic)\s+)?{_VALUE}"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(
        rf"(?i)({_Q}\b(?:token|client-key-data|client-certificate-data|password|id-token|"
        rf"refresh-token|access-token|api_key){_Q}\s*[:=]\s*{_Q})(?!{re.escape(REDACTED)}){_VALUE}"
    ),
    re.compile(r"()\bapollo_[0-9a-f]{8}_[A-Za-z0-9_\-]+"),
    re.compile(r"()gAAAAA[A-Za-z0-9_\-]{20,}={0,2}"),
]
_MIN_SECRET = 8  # shorter "secrets" would redact ordinary words


def _kubeconfig_secrets(path: str) -> frozenset[str]:
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        return frozenset()
    return _read_kubeconfig_secrets(path, mtime)


@functools.lru_cache(maxsize=8)
def _read_kubeconfig_secrets(path: str, mtime: float) -> frozenset[str]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return frozenset()
    users = data.get("users") if isinstance(data, dict) else None
    found = set()
    for entry in users if isinstance(users, list) else []:
        user = entry.get("user") if isinstance(entry, dict) else None
        for key in ("token", "password", "client-key-data"):
            if isinstance(user, dict) and isinstance(user.get(key), str):
                found.add(user[key])
    return frozenset(found)


def known_secrets() -> set[str]:
    """The credentials this process knows: its Kubernetes clients' and its kubeconfig's."""
    secrets: set[str] = set()
    try:
        from environments.kube import client_credentials

        secrets |= client_credentials()
    except Exception:  # a broken app must not break the error report
        logging.getLogger(__name__).warning("cannot list the clusters' credentials")
    path = getattr(settings, "APOLLO_KUBECONFIG", None)
    if path:
        secrets |= _kubeconfig_secrets(str(path))
    return {s for s in secrets if len(s) >= _MIN_SECRET}


def redact(text: str) -> str:
    """text with every credential of the module docstring replaced."""
    for secret in sorted(known_secrets(), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class _Shown:
    """A value replaced by its redacted repr (what the error page prints)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _redacted_value(value: Any) -> Any:
    try:
        text = pformat(value)
    except Exception:  # a repr that fails is shown as Django shows it
        return value
    cleaned = redact(text)
    return value if cleaned == text else _Shown(cleaned)


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request: Any) -> bool:
        return True  # SECURITY: DEBUG on is the demo's default; credentials stay hidden there.

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        # str(): a lazy string (Django's JSONSerializableLazyObject) passes isinstance but not
        # re.sub; without it every technical 404 page with DEBUG on was a 500.
        return redact(str(cleansed)) if isinstance(cleansed, str) else cleansed

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        return {k: redact(str(v)) if isinstance(v, str) else v for k, v in meta.items()}

    def get_post_parameters(self, request: Any) -> Any:
        params: Any = super().get_post_parameters(request)
        if not params or not hasattr(params, "setlist"):
            return params
        cleansed = params.copy()
        for key in list(cleansed.keys()):
            cleansed.setlist(key, [redact(str(v)) for v in cleansed.getlist(key)])
        return cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if isinstance(name, str) and self.hidden_settings.search(name):
                variables.append((name, REDACTED))
            else:
                variables.append((name, _redacted_value(value)))
        return variables


class RedactingExceptionReporter(ExceptionReporter):
    def get_traceback_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().get_traceback_data()
        if isinstance(data.get("exception_value"), str):
            data["exception_value"] = redact(data["exception_value"])
        return data

    def get_traceback_html(self) -> SafeString:
        # The page was escaped when rendered; removing credentials from it keeps it safe.
        return mark_safe(redact(str(super().get_traceback_html())))  # noqa: S308

    def get_traceback_text(self) -> SafeString:
        return mark_safe(redact(str(super().get_traceback_text())))  # noqa: S308


def scrub_record(record: logging.LogRecord) -> None:
    """A log record's message, traceback and stack without credentials."""
    message = record.getMessage()
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingLogFilter(logging.Filter):
    """The same scrubbing as a handler filter (for handlers configured elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def configure_logging(config: dict[str, Any]) -> None:
    """``LOGGING_CONFIG``: dictConfig, then every record made in this process is scrubbed.

    SECURITY: a record factory rather than a filter on some handlers: Django's own handlers
    (configured before ours, for the ``django`` logger) print a 500's traceback too."""
    logging.config.dictConfig(config)
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            scrub_record(record)
        except Exception:  # logging never raises; a record that cannot be cleaned is not shown
            record.msg, record.args = "(a log record that could not be checked for secrets)", ()
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
