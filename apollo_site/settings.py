"""Apollo settings: one module, read from environment variables.

Development defaults work from a fresh clone (SQLite under var/, in-memory channel layer,
a secret key generated once under var/). Production switches come only from the environment.
"""

import secrets
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from apollo_site.envconfig import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_networks,
    env_rate,
    env_str,
    private_directory,
    private_file,
)

# Makes generic Django classes (ModelAdmin[Model], JSONField[...]) subscriptable at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("APOLLO_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")
# SECURITY: var/ holds the secret key, the SQLite database and the demo cluster's kubeconfig:
# the directory is the owner's only (0700), its secret files 0600 from their creation.
private_directory(VAR_DIR)

DEBUG = env_bool("DEBUG", default=True)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    # SECURITY: development only. Generated once and kept under var/ (git-ignored) so
    # sessions survive restarts; never a key hard-coded in the source.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        private_file(key_file, secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "apollo_site.staticfiles.StaticFiles",  # django.contrib.staticfiles minus test-only files
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "axes",
    "csp",
    "channels",
    "environments",
    "deployments",
    "deployments.notifications",
    "permissions",
    "history",
    "apollo_site.ops",
]

MIDDLEWARE = [
    # First: every request gets its id and latency; probes and metrics are answered before the
    # host check and the HTTPS redirect (apollo_site.ops.middleware).
    "apollo_site.ops.middleware.RequestContextMiddleware",
    "apollo_site.ops.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "apollo_site.middleware.RejectNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Inside CommonMiddleware (which still redirects to the address with a slash): our 404
    # page instead of Django's URL list while DEBUG is on (apollo_site.errors).
    "apollo_site.errors.FriendlyNotFoundMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's AuthenticationMiddleware, with the user read by the session's own statement
    # (permissions.sessions: one round trip, not two, before a signed-in page's view runs).
    "permissions.middleware.SessionUserAuthenticationMiddleware",
    # A request's permission questions share one read of the user's holdings (and nothing
    # outlives the request: a revoked grant holds from the next one).
    "permissions.middleware.SharedPermissionReadsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a locked-out log-in into permissions.throttling's refusal.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "apollo_site.urls"
WSGI_APPLICATION = "apollo_site.wsgi.application"
ASGI_APPLICATION = "apollo_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apollo_site.navigation.navigation",
            ],
        },
    },
]


# Several processes share one SQLite file (web, worker): wait for a lock rather than fail at
# once, and take the write lock when a transaction begins, so that two transactions that
# read then write cannot deadlock each other (SQLite would answer "database is locked").
# mmap_size: reads go through a memory map of the file (the OS's page cache, shared by every
# connection) rather than a read() into each connection's own 2 MB page cache, which a page
# of 50 rows found among 1,000 at 100,000 deployments overflowed (History's commit-message
# search: 16.5 -> 14.5 ms CPU). Up to 256 MB of the file is mapped; the rest is read as before.
# journal_mode=WAL: readers no longer wait for a writer's commit, nor a writer for readers to
# finish (the pages, the POST and the worker's following and verdicts share the file). One
# worker following 100 rollouts (bench/scale_bench.py, three alternating pairs, load 2.6-3.7),
# DONE visible p95 / max: 78 / 79, 311 / 336, 88 / 92 ms with WAL against 106 / 195,
# 1,164 / 1,280, 89 / 98 in rollback-journal mode. The mode is kept in the file. SQLite creates
# the -wal and -shm files beside it with the file's own mode (0600); a copy of the database is
# taken with SQLite's backup (`sqlite3 apollo.sqlite3 ".backup copy.sqlite3"`), not by copying
# the file alone. A database file removed must take its -wal and -shm with it: a stale WAL
# beside a new file of the same name is replayed into it.
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA mmap_size=268435456; PRAGMA journal_mode=WAL",
}


def _databases() -> dict[str, Any]:
    url = env_str("DATABASE_URL")
    if url is None:
        # SQLite creates its file with the process umask; create it 0600 first (an empty
        # file is an empty database), so that neither it nor its journal is world-readable.
        private_file(VAR_DIR / "apollo.sqlite3")
        default: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "apollo.sqlite3",
            # A file-backed test database, so that a live server in another process
            # (browser tests) sees what the test wrote.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
            "OPTIONS": SQLITE_OPTIONS,
        }
        return {"default": default}
    try:
        parsed: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if parsed["ENGINE"].endswith("sqlite3"):
        parsed["OPTIONS"] = {**SQLITE_OPTIONS, **parsed.get("OPTIONS", {})}
    if parsed["ENGINE"].endswith("postgresql"):
        # The few statements read through apollo_site.prepared_sql are prepared at their first
        # run on a connection; Django's own cursors bind on the client and never prepare.
        threshold = 0 if env_bool("APOLLO_DATABASE_PREPARED_STATEMENTS", default=True) else None
        parsed["OPTIONS"] = {"prepare_threshold": threshold, **parsed.get("OPTIONS", {})}
    # PostgreSQL otherwise keeps Django's client-side binding. Server-side binding with psycopg's
    # prepared statements ({"server_side_binding": True, "prepare_threshold": 5}) was measured
    # (#16, session 8) in one process, alternating blocks of requests on the history bench's
    # 100,000 deployments: the history, home and status board pages took 0.98-1.24x as long,
    # not less (their main statements stayed on custom plans, planned on every run anyway).
    # It also sends a bare int in an ORM expression typed int4, which psycopg wraps silently
    # past 2**31: type such values (Value(..., BigIntegerField())) before turning it on.
    return {"default": parsed}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


REDIS_READ_TIMEOUT_SECONDS = 20.0  # > channels_redis's 5 s blocking receive
REDIS_CONNECT_TIMEOUT_SECONDS = 2.0


def redis_channel_layer(redis_url: str, *, prefix: str) -> dict[str, Any]:
    """The channel layer on Redis (tests build theirs on a Redis of their own with it)."""
    # redis-py (8.x) gives every read a 5 s socket timeout by default, and channels_redis
    # waits for a socket's next message with a blocking BZPOPMIN of 5 s (brpop_timeout): the
    # read timed out just as the server answered "nothing yet", and every idle websocket was
    # dropped after 5 to 12 s. The read timeout must outlast the blocking pop; connecting to
    # a Redis that is down still fails fast. (Publishing has its own short deadline:
    # apollo_site.ops.publish.)
    host = {
        "address": redis_url,
        "socket_timeout": REDIS_READ_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
    }
    return {
        "BACKEND": "apollo_site.ops.channel_layer.RedisChannelLayer",
        "CONFIG": {"hosts": [host], "prefix": prefix},
    }


def _channel_layers() -> dict[str, Any]:
    redis_url = env_str("REDIS_URL")
    if redis_url is None:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
    prefix = env_str("APOLLO_REDIS_PREFIX", "apollo") or "apollo"
    return {"default": redis_channel_layer(redis_url, prefix=prefix)}


CHANNEL_LAYERS = _channel_layers()


def redis_throttles_cache(redis_url: str, *, prefix: str) -> dict[str, Any]:
    """The throttles' cache on Redis (tests build theirs on a Redis of their own with it)."""
    # While Redis is unreachable the throttles count per process instead of answering 500
    # (apollo_site.ops.fallback_cache); a Redis that hangs costs a request at most a second.
    return {
        "BACKEND": "apollo_site.ops.fallback_cache.RedisCacheWithLocalFallback",
        "LOCATION": redis_url,
        "KEY_PREFIX": f"{prefix}:throttles",
        "OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
    }


def _caches() -> dict[str, Any]:
    # The API throttles count in their own cache: with several processes (REDIS_URL) they
    # must share one count, or each process would allow the full rate.
    redis_url = env_str("REDIS_URL")
    if redis_url is None:
        throttles: dict[str, Any] = {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "throttles",
        }
    else:
        prefix = env_str("APOLLO_REDIS_PREFIX", "apollo") or "apollo"
        throttles = redis_throttles_cache(redis_url, prefix=prefix)
    default = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {"default": default, "throttles": throttles}


CACHES = _caches()
# The same Redis elects one process to watch each environment (environments/election.py).
APOLLO_REDIS_URL = env_str("REDIS_URL")
APOLLO_REDIS_PREFIX = env_str("APOLLO_REDIS_PREFIX", "apollo")

# -- Single sign-on (OpenID Connect, mozilla-django-oidc; permissions/oidc.py) -------------------
# On when APOLLO_OIDC_ISSUER is set; then the client and the provider's endpoints are required
# (its /.well-known/openid-configuration lists them). Users are created at their first log-in,
# matched by (issuer, subject) afterwards; their Apollo groups follow the groups claim of the
# ID token at every log-in. APOLLO_PASSWORD_LOGIN=false leaves single sign-on as the only way
# in (pages and admin); API tokens are unaffected.
APOLLO_OIDC_ISSUER = env_str("APOLLO_OIDC_ISSUER") or ""
APOLLO_PASSWORD_LOGIN = env_bool("APOLLO_PASSWORD_LOGIN", default=True)


def _oidc_required(name: str) -> str:
    value = env_str(name)
    if not value:
        raise ImproperlyConfigured(f"{name} is required when APOLLO_OIDC_ISSUER is set")
    return value


if APOLLO_OIDC_ISSUER:
    OIDC_RP_CLIENT_ID = _oidc_required("APOLLO_OIDC_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = _oidc_required("APOLLO_OIDC_CLIENT_SECRET")
    OIDC_OP_AUTHORIZATION_ENDPOINT = _oidc_required("APOLLO_OIDC_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = _oidc_required("APOLLO_OIDC_TOKEN_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = _oidc_required("APOLLO_OIDC_JWKS_ENDPOINT")
    # Claims come from the verified ID token; the userinfo endpoint is not called.
    OIDC_OP_USER_ENDPOINT = env_str("APOLLO_OIDC_USERINFO_ENDPOINT") or ""
    APOLLO_OIDC_END_SESSION_ENDPOINT = env_str("APOLLO_OIDC_END_SESSION_ENDPOINT") or ""
    OIDC_RP_SIGN_ALGO = env_choice(
        "APOLLO_OIDC_SIGN_ALGO", "RS256", choices=("RS256", "RS384", "RS512", "ES256", "ES384")
    )
    OIDC_RP_SCOPES = env_str("APOLLO_OIDC_SCOPES", "openid profile email groups")
    OIDC_USE_PKCE = True
    OIDC_STORE_ID_TOKEN = True  # the id_token_hint of the provider's logout
    OIDC_TIMEOUT = 10
    OIDC_OP_LOGOUT_URL_METHOD = "permissions.oidc.provider_logout_url"
    LOGIN_REDIRECT_URL_FAILURE = "/login/"  # used as is (not resolved) by the library
APOLLO_OIDC_NAME = env_str("APOLLO_OIDC_NAME", "single sign-on") or "single sign-on"
APOLLO_OIDC_USERNAME_CLAIM = env_str("APOLLO_OIDC_USERNAME_CLAIM", "preferred_username")
APOLLO_OIDC_GROUPS_CLAIM = env_str("APOLLO_OIDC_GROUPS_CLAIM", "groups")
if not APOLLO_PASSWORD_LOGIN and not APOLLO_OIDC_ISSUER:
    raise ImproperlyConfigured(
        "APOLLO_PASSWORD_LOGIN=false needs single sign-on (APOLLO_OIDC_ISSUER): nobody could log in"
    )

AUTHENTICATION_BACKENDS = [
    # SECURITY: first, so that a locked-out user name or address is refused before any
    # password is checked (permissions.throttling).
    "permissions.throttling.LoginLockoutBackend",
    *(["django.contrib.auth.backends.ModelBackend"] if APOLLO_PASSWORD_LOGIN else []),
    # Also answers Django's model permissions (it is a ModelBackend) without passwords.
    *(["permissions.oidc.ApolloOIDCBackend"] if APOLLO_OIDC_ISSUER else []),
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous users have no grants

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# SECURITY: brute force (permissions.throttling). Log-ins: a user name or an address may fail
# this many times; the next failure locks it out until this long after its last failure.
APOLLO_LOGIN_FAILURE_LIMIT = env_int("APOLLO_LOGIN_FAILURE_LIMIT", 10, minimum=1)
APOLLO_LOGIN_COOLOFF_SECONDS = env_int("APOLLO_LOGIN_COOLOFF_SECONDS", 300, minimum=1)
AXES_FAILURE_LIMIT = APOLLO_LOGIN_FAILURE_LIMIT + 1  # axes locks at the failure that reaches it
AXES_COOLOFF_TIME = "permissions.throttling.login_cool_off"
AXES_LOCKOUT_CALLABLE = "permissions.throttling.lockout_response"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "permissions.throttling.client_address"
AXES_VERBOSE = False
# The API: requests per valid token, and unknown tokens per client address.
APOLLO_API_RATE = env_rate("APOLLO_API_RATE", "600/minute")
APOLLO_API_BAD_TOKEN_RATE = env_rate("APOLLO_API_BAD_TOKEN_RATE", "10/minute")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC") or "UTC"
# Apollo speaks English only (no translations of its own, no LocaleMiddleware): Django's
# documented optimisation for a site without internationalisation, gettext and its lazy strings
# answered without the translation machinery. The pages are byte for byte the same; History's
# first page took 0.93 times as long (#16).
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)

# With DEBUG off, whitenoise serves the collected files (`manage.py collectstatic`; rundemo
# runs it) under content-hashed names, compressed, cached for a year; the imports between our
# ES modules are rewritten to the hashed names too (apollo_site/staticfiles.py).
if not DEBUG:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "apollo_site.staticfiles.HashedStaticFilesStorage"},
    }

# Database sessions whose row names their user, read with it in one statement
# (permissions.sessions, permissions.middleware.SessionUserAuthenticationMiddleware).
SESSION_ENGINE = "permissions.sessions"
# SECURITY: cookies and headers that production needs; DEBUG keeps local http working.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# HSTS on https responses once DEBUG is off (a browser then refuses plain http for a year).
SECURE_HSTS_SECONDS = env_int("APOLLO_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto (only if it always sets it), and
# read the client's address from the X-Forwarded-For entry the nearest of APOLLO_PROXY_COUNT
# proxies appended (log-in lockouts and API throttles count per address).
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env_bool("APOLLO_TRUST_X_FORWARDED_PROTO", default=False)
    else None
)
APOLLO_PROXY_COUNT = env_int("APOLLO_PROXY_COUNT", 0, minimum=0)
# SECURITY: a Content Security Policy without inline script (django-csp): scripts are the
# static ES modules and vendored files only. Styles may be inline (xterm.js injects them).


def _oidc_origins() -> list[str]:
    from urllib.parse import urlsplit

    if not APOLLO_OIDC_ISSUER or not APOLLO_OIDC_END_SESSION_ENDPOINT:
        return []
    parts = urlsplit(APOLLO_OIDC_END_SESSION_ENDPOINT)
    return [f"{parts.scheme}://{parts.netloc}"]


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        # The log-out of a single sign-on user is a form whose answer redirects to the
        # provider's end-session page, which form-action also governs.
        "form-action": [SELF, *_oidc_origins()],
        "frame-ancestors": [NONE],
    }
}

# SECURITY: key for encrypting cluster credentials at rest. Defaults to a key derived
# from SECRET_KEY; set APOLLO_CREDENTIALS_KEY (a Fernet key) to rotate independently.
APOLLO_CREDENTIALS_KEY = env_str("APOLLO_CREDENTIALS_KEY")
APOLLO_KUBECONFIG = env_str("APOLLO_KUBECONFIG", str(VAR_DIR / "kubesim.kubeconfig"))
# Clusters of the in-cluster kind read the pod's ServiceAccount token and CA from here
# (environments/kube/incluster.py); the host and port come from KUBERNETES_SERVICE_HOST/PORT.
APOLLO_SERVICEACCOUNT_DIR = env_str(
    "APOLLO_SERVICEACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount"
)

# The deployment worker: lease of a claimed deployment (another worker resumes it after this),
# how long an apply is retried against an unreachable cluster (never longer than the
# environment's rollout timeout; APOLLO_APPLY_ATTEMPTS, when above 0, also bounds the number of
# attempts), how long a rollout may lose the cluster.
APOLLO_WORKER_LEASE_SECONDS = env_int("APOLLO_WORKER_LEASE_SECONDS", 30, minimum=5)
APOLLO_APPLY_BUDGET_SECONDS = env_int("APOLLO_APPLY_BUDGET_SECONDS", 60, minimum=1)
APOLLO_APPLY_ATTEMPTS = env_int("APOLLO_APPLY_ATTEMPTS", 0, minimum=0)
APOLLO_UNREACHABLE_SECONDS = env_int("APOLLO_UNREACHABLE_SECONDS", 60, minimum=1)
# SIGTERM: a worker finishes its rollouts for up to this long, then hands the rest over (its
# leases and locks released at once). Below Kubernetes' terminationGracePeriodSeconds (30).
APOLLO_WORKER_GRACE_SECONDS = env_int("APOLLO_WORKER_GRACE_SECONDS", 20, minimum=0)
# A PENDING deployment older than this while no worker is alive says so in its reason.
APOLLO_PENDING_WARN_SECONDS = env_int("APOLLO_PENDING_WARN_SECONDS", 30, minimum=0)
# Live pages: how long one watch request lasts before it is renewed, the web shell's idle
# timeout, and the Jolokia proxy's size limits.
APOLLO_WATCH_SECONDS = env_int("APOLLO_WATCH_SECONDS", 240, minimum=5)
APOLLO_SHELL_IDLE_SECONDS = env_int("APOLLO_SHELL_IDLE_SECONDS", 900, minimum=10)
APOLLO_JOLOKIA_MAX_BODY = env_int("APOLLO_JOLOKIA_MAX_BODY", 64 * 1024, minimum=1024)
APOLLO_JOLOKIA_MAX_RESPONSE = env_int("APOLLO_JOLOKIA_MAX_RESPONSE", 1024 * 1024, minimum=1024)

# Notifications (deployments.notifications): webhook hosts an admin allows although they resolve
# to internal addresses (comma-separated names; the SSRF guard refuses the others), the link
# base in messages, and the delivery's timeouts, back-off and attempts.
APOLLO_WEBHOOK_ALLOWED_HOSTS = env_list("APOLLO_WEBHOOK_ALLOWED_HOSTS", [])
APOLLO_PUBLIC_URL = (env_str("APOLLO_PUBLIC_URL", "http://127.0.0.1:8000") or "").rstrip("/")
APOLLO_WEBHOOK_TIMEOUT_SECONDS = env_int("APOLLO_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)
APOLLO_WEBHOOK_BACKOFF_SECONDS = env_int("APOLLO_WEBHOOK_BACKOFF_SECONDS", 5, minimum=1)
APOLLO_WEBHOOK_BACKOFF_MAX_SECONDS = env_int("APOLLO_WEBHOOK_BACKOFF_MAX_SECONDS", 900, minimum=1)
APOLLO_WEBHOOK_MAX_ATTEMPTS = env_int("APOLLO_WEBHOOK_MAX_ATTEMPTS", 25, minimum=1)
# Delivered notification rows are pruned after this many days (deployments.notifications.pruning).
APOLLO_NOTIFICATION_RETENTION_DAYS = env_int("APOLLO_NOTIFICATION_RETENTION_DAYS", 30, minimum=1)

# Upload limits: API bodies and forms are small; anything larger is refused.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("APOLLO_MAX_BODY_BYTES", 256 * 1024, minimum=1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # SECURITY: hashed tokens (permissions.tokens), not DRF's plain-text Token model.
        "permissions.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["permissions.throttling.ApiTokenRateThrottle"],
    "NUM_PROXIES": APOLLO_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Apollo API",
    "DESCRIPTION": "One-click continuous deployment for Kubernetes.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Prometheus (ops.metrics): /metrics answers a bearer APOLLO_METRICS_TOKEN or a client address
# inside one of the APOLLO_METRICS_ALLOW networks (CIDRs, comma-separated); with neither it is
# off (404). A worker serves its own metrics on APOLLO_WORKER_METRICS_PORT when set.
APOLLO_METRICS_TOKEN = env_str("APOLLO_METRICS_TOKEN")
APOLLO_METRICS_ALLOW = env_networks("APOLLO_METRICS_ALLOW")
# It is unauthenticated: bound to loopback unless APOLLO_WORKER_METRICS_ADDR says otherwise
# (0.0.0.0 in a pod, with a NetworkPolicy that lets only Prometheus in).
APOLLO_WORKER_METRICS_PORT = env_int("APOLLO_WORKER_METRICS_PORT", 0, minimum=0)
APOLLO_WORKER_METRICS_ADDR = env_str("APOLLO_WORKER_METRICS_ADDR", "127.0.0.1") or "127.0.0.1"
APOLLO_LOG_FORMAT = env_choice("APOLLO_LOG_FORMAT", "plain", choices=("plain", "json"))

# SECURITY: no error page, error e-mail or log line shows a credential (apollo_site/redaction.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "apollo_site.redaction.RedactingExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "apollo_site.redaction.RedactingExceptionReporter"
LOGGING_CONFIG = "apollo_site.redaction.configure_logging"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "apollo_site.ops.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": APOLLO_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {
        "kubernetes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # one INFO line per log-in; lockouts are WARNINGs
    },
}
