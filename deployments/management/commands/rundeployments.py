import argparse
import faulthandler
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import start_http_server

from deployments.engine import startup
from deployments.engine.database import use_pool
from deployments.engine.worker import DEFAULT_PARALLEL, run_worker, worker_name
from deployments.notifications.delivery import start_deliverer


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


class Command(BaseCommand):
    help = "Run the deployment worker: claim PENDING deployments, apply them, follow rollouts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--parallel",
            type=_at_least_one,
            default=DEFAULT_PARALLEL,
            help=f"deployments driven at once (default {DEFAULT_PARALLEL}); each holds a "
            "database connection while it follows: on PostgreSQL keep the workers' total "
            "under max_connections",
        )
        parser.add_argument(
            "--poll-interval", type=float, default=0.2, help="seconds between looks for work"
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=None,
            help="on SIGTERM, seconds to finish the rollouts before handing them over "
            "(default APOLLO_WORKER_GRACE_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # A fatal error (a crash in a C extension, an abort at exit) prints every thread's
        # Python stack on stderr before the process dies, rather than a bare exit status.
        faulthandler.enable()
        use_pool()  # (PostgreSQL: before any thread of the worker opens a connection)
        frozen = startup.settle()  # (before its threads start: what lives as long as it)
        shutdown = threading.Event()

        def stop(*_: object) -> None:
            # Claims stop now; the rollouts being driven get the grace period to finish, then
            # are handed over (lease released, lock freed), never left to expire.
            shutdown.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
        name = worker_name()
        self.stdout.write(f"deployment worker {name} started")
        self.stdout.write(f"{frozen} objects loaded at start kept out of garbage collection")
        if settings.APOLLO_WORKER_METRICS_PORT:
            # This process's own metrics (ops.metrics): counts only, no credential, no auth.
            address = settings.APOLLO_WORKER_METRICS_ADDR
            start_http_server(settings.APOLLO_WORKER_METRICS_PORT, addr=address)
            self.stdout.write(f"metrics on http://{address}:{settings.APOLLO_WORKER_METRICS_PORT}/")
        # Notifications leave from their own thread: a slow receiver never delays a rollout.
        deliverer = start_deliverer(shutdown=shutdown, owner=name)
        run_worker(
            shutdown=shutdown,
            poll_interval=options["poll_interval"],
            parallel=options["parallel"],
            owner=name,
            grace=(
                settings.APOLLO_WORKER_GRACE_SECONDS
                if options["grace"] is None
                else max(0.0, options["grace"])
            ),
        )
        deliverer.join(timeout=30)
        self.stdout.write("deployment worker stopped")
