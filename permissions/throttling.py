"""Brute-force protection: log-in lockouts (django-axes) and API throttles (DRF).

1. A user name, or a client address, may fail to log in APOLLO_LOGIN_FAILURE_LIMIT times
   (each failure within APOLLO_LOGIN_COOLOFF_SECONDS of the previous one); the next failure
   is refused (429, Retry-After) and so is every attempt, even with the right password,
   until that long has passed since its last failure. This covers the site's and the
   admin's log-in pages and any other call of `authenticate()` that carries a request.
2. Every API request with a valid token (or session) is limited to APOLLO_API_RATE per
   token (per user for a session).
3. A client address that presents APOLLO_API_BAD_TOKEN_RATE unknown tokens is refused
   (429, Retry-After) for the rest of that window, before any token is looked up, so that
   guessing cannot tell a right key from a wrong one.
"""

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:
    # rest_framework.views imports the authentication classes, which import this module.
    from rest_framework.views import APIView

# The throttles' time source; tests replace it to move time on without sleeping.
clock: Callable[[], float] = time.time


def client_address(request: HttpRequest | Request) -> str:
    """The client's address for lockouts and throttles (AXES_CLIENT_IP_CALLABLE too).

    SECURITY: X-Forwarded-For is read only behind APOLLO_PROXY_COUNT trusted proxies, and
    then the entry the nearest of them appended: a client cannot choose its own address.
    """
    remote = str(request.META.get("REMOTE_ADDR") or "")
    proxies = settings.APOLLO_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies == 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in str(forwarded).split(",")]
    return addresses[-min(proxies, len(addresses))] or remote


def login_cool_off(request: HttpRequest | None = None) -> timedelta:
    """AXES_COOLOFF_TIME: how long a locked-out user name or address waits."""
    return timedelta(seconds=settings.APOLLO_LOGIN_COOLOFF_SECONDS)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the log-in page's refusal, with when to try again."""
    seconds = int(login_cool_off().total_seconds())
    response = render(
        request, "registration/locked_out.html", {"minutes": max(1, seconds // 60)}, status=429
    )
    response["Retry-After"] = str(seconds)
    return response


class LoginLockoutBackend(AxesStandaloneBackend):  # type: ignore[misc]
    """Axes' lockout check, first in AUTHENTICATION_BACKENDS.

    `authenticate()` without a request comes from code on the server (management commands,
    the demo seeding, a shell), not from a client that could guess: it is not throttled.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        super().authenticate(request, username=username, password=password, **kwargs)
        return None


class _Throttle(SimpleRateThrottle):
    """A sliding-window throttle whose rate is read from settings at each request."""

    setting = ""

    def __init__(self) -> None:
        self.timer = clock  # looked up at each request, so that tests can move it on
        # Shared by every process when REDIS_URL is set (settings.CACHES).
        self.cache = caches["throttles"]
        super().__init__()

    def get_rate(self) -> str:
        rate: str = getattr(settings, self.setting)
        return rate

    def get_ident(self, request: Request) -> str:
        return client_address(request)


class ApiTokenRateThrottle(_Throttle):
    """Per token (per user for a browser session)."""

    scope = "api"
    setting = "APOLLO_API_RATE"

    def get_cache_key(self, request: Request, view: "APIView") -> str | None:
        if isinstance(request.auth, str):
            # SECURITY: the key's public prefix names the token; the secret never reaches the cache.
            ident = "token-" + request.auth.split("_", 2)[1]
        elif request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class BadTokenThrottle(_Throttle):
    """Counts unknown tokens per client address; checked before a token is looked up."""

    scope = "api-bad-token"
    setting = "APOLLO_API_BAD_TOKEN_RATE"
    num_requests: int
    duration: int

    def _prepare(self, request: Request) -> None:
        self.key = self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def refusal_wait(self, request: Request) -> float | None:
        """Seconds this address must still wait, or None when it may try a token."""
        self._prepare(request)
        if len(self.history) < self.num_requests:
            return None
        return self.wait()

    def record_failure(self, request: Request) -> None:
        self._prepare(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
