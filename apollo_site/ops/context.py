"""What a log line is about: the request id, the user and the deployment of the current
request or worker run, kept in context variables (asgiref carries them across
sync_to_async, a thread pool does not: the worker sets them in the thread that drives)."""

import re
import secrets
from contextvars import ContextVar, Token
from typing import Any

_Tokens = tuple[Token[int | None], Token[str], Token[str]]

request_id: ContextVar[str] = ContextVar("apollo_request_id", default="")
deployment_id: ContextVar[int | None] = ContextVar("apollo_deployment_id", default=None)
current_request: ContextVar[Any] = ContextVar("apollo_current_request", default=None)
deployer: ContextVar[str] = ContextVar("apollo_deployer", default="")  # outside a request

# SECURITY: an incoming X-Request-ID goes into logs and a response header: a short token of
# safe characters only (no spaces, quotes, newlines or control characters), else a new one.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def accepted_request_id(header: str | None) -> str:
    """header if it is a safe request id, else a new random one."""
    if header and _SAFE_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


def current_user_name() -> str:
    """The user of the current request if authentication already ran, else "".

    Never loads the user: a log line must not cost a query (nor run the ORM in an event loop).
    """
    request = current_request.get()
    if request is None:
        return deployer.get()
    user = request.__dict__.get("user")  # DRF sets the authenticated user here too
    wrapped = getattr(user, "_wrapped", user)  # Django's SimpleLazyObject, if not loaded
    if wrapped is None or not hasattr(wrapped, "is_authenticated"):
        return ""
    return str(wrapped.get_username()) if wrapped.is_authenticated else ""


def enter_deployment(pk: int, *, requested_by: str, user: str) -> _Tokens:
    """Until leave_deployment, this thread's log lines name deployment pk, the id of the
    request that asked for it (requested_by) and the user who did."""
    return deployment_id.set(pk), request_id.set(requested_by), deployer.set(user)


def leave_deployment(tokens: _Tokens) -> None:
    deployment_id.reset(tokens[0])
    request_id.reset(tokens[1])
    deployer.reset(tokens[2])
