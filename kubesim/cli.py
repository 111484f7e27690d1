"""Command line: python -m kubesim --port 6443 --kubeconfig var/kubesim.kubeconfig ..."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from kubesim.cluster import Settings
from kubesim.server import KubesimServer, ServerConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kubesim", description="A simulated Kubernetes API server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443, help="0 picks a free port")
    parser.add_argument("--kubeconfig", type=Path, default=Path("var/kubesim.kubeconfig"))
    parser.add_argument("--token", help="admin bearer token (random when absent)")
    parser.add_argument("--limited-token", help="a second, read-only token (no exec, no secrets)")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="namespace to create at start (repeatable); the first is the kubeconfig's default",
    )
    parser.add_argument(
        "--startup-delay",
        type=float,
        default=2.0,
        help="seconds from pod creation to Running (0: instant)",
    )
    parser.add_argument(
        "--log-rate", type=float, default=2.0, help="log lines per second per running container"
    )
    parser.add_argument(
        "--stop-delay", type=float, default=1.0, help="seconds a terminating pod takes to go away"
    )
    parser.add_argument(
        "--strict-registry",
        action="store_true",
        help="only images registered through the control API exist",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    settings = Settings(
        startup_delay=args.startup_delay, log_rate=args.log_rate, stop_delay=args.stop_delay
    )
    config = ServerConfig(
        host=args.host,
        port=args.port,
        kubeconfig_path=args.kubeconfig,
        limited_token=args.limited_token,
        namespaces=tuple(args.namespace) or ("default",),
        settings=settings,
    )
    if args.token:
        config.token = args.token
    server = KubesimServer(config)
    server.cluster.images.strict = args.strict_registry
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"kubesim ready on {server.url} (kubeconfig: {args.kubeconfig})", flush=True)
    await stop.wait()
    print("kubesim stopping", flush=True)
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"kubesim: {exc}", file=sys.stderr)
        return 1
    return 0
