"""In-cluster credentials: what a pod's ServiceAccount gives Apollo.

A pod finds its API server in KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT and its
credentials in the ServiceAccount directory (`token`, `ca.crt`), which the kubelet mounts as a
projected volume. A projected token expires (an hour by default) and the kubelet writes a new
one into the same file well before; a process that read the token once at start would begin
to answer 401 after the expiry. So the token is re-read whenever the file changes (its inode,
size or modification time: the kubelet swaps a symlink, an operator may rewrite it in place),
checked on every request (one stat) rather than on a timer as the client's own loader does
(every minute), so a rotation is picked up on the next call without a restart.

The directory is `APOLLO_SERVICEACCOUNT_DIR` (default the kubelet's mount point), which also
lets the tests give a process the files a real pod would have.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from kubernetes import client, config


class ProjectedToken:
    """The token file, read again when it changes. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._token = ""

    def current(self) -> str:
        """The file's token; OSError when it cannot be read, ConfigException when empty."""
        status = self.path.stat()  # follows the kubelet's ..data symlink
        stamp = (status.st_ino, status.st_size, status.st_mtime_ns)
        with self._lock:
            if stamp != self._stamp:
                token = self.path.read_text().strip()
                if not token:
                    raise config.ConfigException(f"the token file {self.path} is empty")
                self._token, self._stamp = token, stamp
            return self._token


def service_account_dir() -> Path:
    return Path(
        settings.APOLLO_SERVICEACCOUNT_DIR or "/var/run/secrets/kubernetes.io/serviceaccount"
    )


def configure(configuration: client.Configuration) -> None:
    """Point configuration at the pod's API server with its ServiceAccount's credentials.

    ConfigException (outside a pod: no service host, no token or CA file) names what is
    missing; the caller reports it as an unreachable cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise config.ConfigException(
            "in-cluster mode needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
            "(set by Kubernetes in every pod)"
        )
    directory = service_account_dir()
    ca_file = directory / "ca.crt"
    if not ca_file.is_file():
        raise config.ConfigException(f"in-cluster mode needs the CA file {ca_file}")
    token = ProjectedToken(directory / "token")
    try:
        first = token.current()
    except OSError as exc:
        raise config.ConfigException(
            f"in-cluster mode cannot read the token file {token.path}: {exc.strerror}"
        ) from None
    # An IPv6 service host comes bare (fd00::1); a URL needs it in brackets.
    bracketed = f"[{host}]" if ":" in host else host
    configuration.host = f"https://{bracketed}:{port}"
    configuration.ssl_ca_cert = str(ca_file)
    configuration.verify_ssl = True
    # SECURITY: the token lives only in this process's memory, as the client's header.
    configuration.api_key = {"authorization": first}
    configuration.api_key_prefix = {"authorization": "Bearer"}

    def refresh(target: Any) -> None:
        # Called by the client before every request that authenticates.
        target.api_key = {"authorization": token.current()}

    configuration.refresh_api_key_hook = refresh
