"""The Kubernetes API's errors, translated once into Apollo's three: ClusterUnreachable
(no answer), KubeError (an error Status), WatchExpired (410 on a watch)."""

from kubernetes.client.exceptions import ApiException


class ClusterUnreachable(Exception):
    """The API server did not answer (refused, timed out, or 5xx)."""


class KubeError(Exception):
    """The API server answered with an error Status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


# A real kube-apiserver answers a server-side apply whose manifest does not fit the schema (a
# misspelt field) with 500 and this message: the manifest is refused, a retry cannot help.
_REFUSED_APPLY = "failed to create typed patch object"


def _translate(exc: ApiException) -> Exception:
    status = int(exc.status or 0)
    import json

    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or "")
    if (status == 0 or status >= 500) and not message.startswith(_REFUSED_APPLY):
        return ClusterUnreachable(f"API server answered {status} {exc.reason}")
    return KubeError(status, str(body.get("reason") or exc.reason), message)


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)[:300]


class WatchExpired(Exception):
    """410 Gone: the resourceVersion is too old; relist and watch again."""
