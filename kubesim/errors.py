"""Kubernetes `Status` errors, shaped exactly like the API server's."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

_REASON_BY_CODE = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """Raised anywhere in request handling; rendered as a `Status` by the app."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JSON | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASON_BY_CODE.get(code, "Unknown")
        self.details = details

    def status(self) -> JSON:
        return failure_status(self.code, self.message, self.reason, self.details)


def failure_status(code: int, message: str, reason: str, details: JSON | None = None) -> JSON:
    status: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        status["details"] = details
    return status


def success_status(details: JSON | None = None) -> JSON:
    status: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details is not None:
        status["details"] = details
    return status


def _details(name: str, group: str, kind: str) -> JSON:
    details: JSON = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(plural, group)} "{name}" not found',
        details=_details(name, group, plural),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{_qualified(plural, group)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        details=_details(name, group, plural),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """causes: (field, reason type e.g. FieldValueInvalid, message)."""
    text = "; ".join(f"{field}: {message}" for field, _, message in causes)
    details = _details(name, group, kind)
    details["causes"] = [
        {"reason": reason, "message": message, "field": field} for field, reason, message in causes
    ]
    prefix = f"{kind}.{group}" if group else kind
    return ApiError(422, f'{prefix} "{name}" is invalid: {text}', details=details)


def forbidden(
    user: str, verb: str, resource: str, group: str, namespace: str, name: str
) -> ApiError:
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    subject = f'{resource} "{name}"' if name else resource
    group_text = f'"{group}"' if group else '""'
    return ApiError(
        403,
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f"in API group {group_text}{where}",
        details={"name": name, "group": group, "kind": resource.split("/")[0]},
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def gone(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")
