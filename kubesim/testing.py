"""Embedding API: run kubesim in a background thread and drive it from tests.

with run_kubesim(tmp_dir=tmp_path) as sim:
    core = kubernetes.client.CoreV1Api(sim.api_client())
    sim.register_image("registry.example/shop:" + sha, behaviour="crashloop")
    sim.set_faults(error_rate=0.2, seed=1)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubesim.cluster import Settings
from kubesim.kinds import Kinds
from kubesim.server import KubesimServer, ServerConfig

JSON = dict[str, Any]

# Settings that keep tests fast: instant pods, quick crash loops and terminations.
FAST_SETTINGS = {
    "startup_delay": 0.0,
    "stop_delay": 0.05,
    "log_rate": 20.0,
    "crash_after": 0.3,
    "crash_backoff": 0.3,
    "crash_backoff_max": 1.0,
    "image_pull_backoff": 0.2,
    "slow_seconds": 1.0,
    "bookmark_interval": 1.0,
}


class ControlError(RuntimeError):
    pass


@dataclass
class ControlClient:
    """A typed client for the /_kubesim/ control API (stdlib only, verifies the CA)."""

    url: str
    token: str
    ca_cert_pem: str
    _context: ssl.SSLContext = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._context = ssl.create_default_context(cadata=self.ca_cert_pem)

    def call(self, action: str, body: JSON | None = None, *, method: str = "POST") -> JSON:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(  # noqa: S310 (https only, our own server)
            f"{self.url}/_kubesim/{action}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=10) as response:  # noqa: S310
                result: JSON = json.loads(response.read())
                return result
        except urllib.error.HTTPError as exc:
            raise ControlError(
                f"{action}: {exc.code} {exc.read().decode(errors='replace')}"
            ) from exc


@dataclass
class KubesimHandle:
    server: KubesimServer
    url: str
    kubeconfig_path: Path
    token: str
    limited_token: str
    ca_cert_pem: str
    control: ControlClient

    # -- clients ---------------------------------------------------------------------------------

    def api_client(self, *, limited: bool = False) -> Any:
        """A `kubernetes.client.ApiClient` configured from the generated kubeconfig."""
        from kubernetes import config

        context = "kubesim-limited" if limited else "kubesim"
        return config.new_client_from_config(config_file=str(self.kubeconfig_path), context=context)

    # -- image registry ----------------------------------------------------------------------

    def register_image(
        self,
        ref: str,
        behaviour: str = "ok",
        *,
        seconds: float = 0,
        exit_code: int = 1,
        has_bash: bool = True,
        jolokia_port: int | None = None,
    ) -> JSON:
        """behaviour: ok | missing | crashloop | notready | slow (seconds: crash/slow timing);
        jolokia_port: the image runs a Jolokia agent there (the pod proxy answers on it)."""
        return self.control.call(
            "images",
            {
                "image": ref,
                "behaviour": behaviour,
                "seconds": seconds,
                "exitCode": exit_code,
                "hasBash": has_bash,
                "jolokiaPort": jolokia_port,
            },
        )

    def mark_image_missing(self, ref: str) -> JSON:
        return self.register_image(ref, "missing")

    def set_strict_registry(self, strict: bool = True) -> JSON:
        return self.control.call("registry", {"strict": strict})

    # -- faults ------------------------------------------------------------------------------

    def set_faults(
        self,
        *,
        latency_ms: float | None = None,
        error_rate: float | None = None,
        drop_rate: float | None = None,
        fail_next: int | None = None,
        seed: int | None = None,
    ) -> JSON:
        values = {
            "latency_ms": latency_ms,
            "error_rate": error_rate,
            "drop_rate": drop_rate,
            "fail_next": fail_next,
            "seed": seed,
        }
        return self.control.call("faults", {k: v for k, v in values.items() if v is not None})

    def reset_faults(self) -> JSON:
        return self.control.call("faults/reset")

    def end_watches(self) -> int:
        return int(self.control.call("watches/end")["ended"])

    def expire_watches(self, count: int = 1) -> int:
        """The next `count` watches that start from a resourceVersion answer 410 Expired."""
        return int(self.control.call("watches/expire", {"next": count})["expireNextWatches"])

    def down(self, seconds: float) -> None:
        """Refuse connections for `seconds`; returns once the listener is closed."""
        self.control.call("down", {"seconds": seconds})
        time.sleep(0.15)

    def reset(self) -> JSON:
        """Faults cleared, registry back to the naming convention."""
        return self.control.call("reset")

    # -- settings ----------------------------------------------------------------------------

    def set_settings(self, **values: float) -> JSON:
        return self.control.call("settings", values)

    def set_startup_delay(self, seconds: float) -> JSON:
        return self.set_settings(startup_delay=seconds)

    @contextlib.contextmanager
    def settings(self, **values: float) -> Iterator[None]:
        """Temporarily change settings (e.g. startup_delay) and restore them afterwards."""
        before = self.state()["settings"]
        self.set_settings(**values)
        try:
            yield
        finally:
            self.set_settings(**{k: before[k] for k in values})

    def state(self) -> JSON:
        return self.control.call("state", method="GET")

    def watches_in(self, namespace: str) -> int:
        """Open watches scoped to `namespace` (a test's own: other tests' do not count)."""
        return int(self.state()["watchesByNamespace"].get(namespace, 0))


class _LoopThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="kubesim", daemon=True)
        self.loop = asyncio.new_event_loop()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def run_kubesim(
    *,
    tmp_dir: Path,
    startup_delay: float = 0,
    namespaces: tuple[str, ...] = ("default",),
    port: int = 0,
    host: str = "127.0.0.1",
    token: str | None = None,
    limited_token: str = "kubesim-limited-token",  # noqa: S107 (a test-only token)
    settings: JSON | None = None,
    kinds: Kinds | None = None,
) -> Iterator[KubesimHandle]:
    """Start kubesim over TLS on a free port in a background thread; stop it on exit."""
    values = {**FAST_SETTINGS, "startup_delay": startup_delay, **(settings or {})}
    config = ServerConfig(
        host=host,
        port=port,
        kubeconfig_path=Path(tmp_dir) / "kubesim.kubeconfig",
        limited_token=limited_token,
        namespaces=namespaces,
        settings=Settings(**values),
        kinds=kinds,
    )
    if token:
        config.token = token
    thread = _LoopThread()
    thread.start()

    async def build() -> KubesimServer:
        server = KubesimServer(config)
        await server.start()
        return server

    server: KubesimServer = thread.call(build())
    ca_pem = server.certs.ca_pem.decode()
    handle = KubesimHandle(
        server=server,
        url=server.url,
        kubeconfig_path=config.kubeconfig_path or Path(),
        token=config.token,
        limited_token=limited_token,
        ca_cert_pem=ca_pem,
        control=ControlClient(server.url, config.token, ca_pem),
    )
    try:
        yield handle
    finally:
        thread.call(server.stop())
        thread.loop.call_soon_threadsafe(thread.loop.stop)
        thread.join(timeout=10)
        thread.loop.close()
