"""KubesimServer: wires the cluster, controllers and HTTPS listener; supports outages ("down")."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from kubesim import resources as R
from kubesim.app import AccessPolicy, KubeApp
from kubesim.cluster import Cluster, Settings
from kubesim.control import Control
from kubesim.controllers.deployment import DeploymentController
from kubesim.controllers.gc import GarbageCollector
from kubesim.controllers.kubelet import Kubelet
from kubesim.controllers.replicaset import ReplicaSetController
from kubesim.events import NODE_NAME
from kubesim.kinds import Kinds
from kubesim.logs import LogBook
from kubesim.meta import new_uid, now_iso
from kubesim.tls import Certificates, generate, kubeconfig, write_private

log = logging.getLogger("kubesim")


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6443  # 0 picks a free port
    kubeconfig_path: Path | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    limited_token: str | None = None
    namespaces: tuple[str, ...] = ("default",)
    settings: Settings = field(default_factory=Settings)
    # The kinds served (None: the built-in ones, kubesim.kinds.builtin_kinds()).
    kinds: Kinds | None = None


class KubesimServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.cluster = Cluster(config.settings, config.kinds)
        self.book = LogBook()
        self.certs: Certificates = generate(tuple({"127.0.0.1", "localhost", config.host}))
        self.ssl_context: ssl.SSLContext = self.certs.server_context()
        policy = AccessPolicy(config.token, config.limited_token)
        self.kube_app = KubeApp(self.cluster, policy, Control(self.cluster, self.down), self.book)
        self.runner: web.AppRunner | None = None
        self.listener: asyncio.AbstractServer | None = None
        self.port = config.port
        self._workers: list[asyncio.Task[Any]] = []
        self.controllers: list[DeploymentController | ReplicaSetController] = []

    @property
    def url(self) -> str:
        return f"https://{self.config.host}:{self.port}"

    async def start(self) -> None:
        self._start_controllers()
        self._seed()
        self.runner = web.AppRunner(
            self.kube_app.build(), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self.runner.setup()
        await self._listen()
        if self.config.kubeconfig_path is not None:
            self.write_kubeconfig(self.config.kubeconfig_path)

    def write_kubeconfig(self, path: Path) -> None:
        text = kubeconfig(
            server=self.url,
            ca_pem=self.certs.ca_pem,
            token=self.config.token,
            namespace=self.config.namespaces[0] if self.config.namespaces else "default",
            limited_token=self.config.limited_token,
        )
        write_private(path, text)

    def _start_controllers(self) -> None:
        cluster = self.cluster
        deployments, replicasets = DeploymentController(cluster), ReplicaSetController(cluster)
        gc = GarbageCollector(cluster)
        Kubelet(cluster, self.book)
        self.controllers = [deployments, replicasets]
        self._workers = [
            cluster.spawn(deployments.run()),
            cluster.spawn(replicasets.run()),
            cluster.spawn(gc.run()),
        ]

    def _seed(self) -> None:
        """Namespaces from the command line (plus kube-system) and the one node."""
        for name in dict.fromkeys(("default", "kube-system", *self.config.namespaces)):
            if self.cluster.store.get(R.NAMESPACES, "", name) is None:
                self.cluster.api.create(
                    R.NAMESPACES, "", {"metadata": {"name": name}}, manager="kubesim"
                )
        node = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "name": NODE_NAME,
                "uid": new_uid(),
                "creationTimestamp": now_iso(),
                "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux"},
            },
            "spec": {},
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    }
                ],
                "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
                "nodeInfo": {
                    "kubeletVersion": "v1.32.0-kubesim",
                    "osImage": "kubesim",
                    "containerRuntimeVersion": "containerd://1.7.0",
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                },
            },
        }
        self.cluster.store.put(R.NODES, node)

    async def _listen(self) -> None:
        assert self.runner is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.port))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        protocol_factory = self.runner.server
        assert protocol_factory is not None
        self.listener = await loop.create_server(
            protocol_factory, sock=sock, ssl=self.ssl_context, backlog=512
        )

    def _drop_connections(self) -> None:
        assert self.runner is not None
        server = self.runner.server
        if server is None:
            return
        for handler in server.connections:
            transport = handler.transport
            handler.force_close()
            if transport is not None:
                transport.abort()

    async def down(self, seconds: float) -> None:
        """Refuse connections for `seconds`: close the listening socket and every connection."""
        await asyncio.sleep(0.05)  # let the control request's response leave first
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self._drop_connections()
        self.cluster.end_all_watches()
        log.warning("kubesim is down for %.1fs", seconds)
        await asyncio.sleep(seconds)
        await self._listen()
        log.warning("kubesim is listening again on %s", self.url)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self.cluster.end_all_watches()
        for controller in self.controllers:
            controller.stop()
        for task in list(self.cluster.tasks):
            task.cancel()
        await asyncio.gather(*self.cluster.tasks, return_exceptions=True)
        if self.runner is not None:
            self._drop_connections()
            await self.runner.cleanup()
            self.runner = None
