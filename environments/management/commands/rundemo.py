"""Start everything the demo needs and stop it all on Ctrl-C.

Each part runs as a child process; when one of them exits on its own, the others are
stopped too, so `make run` never leaves half a demo running.
"""

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, seed the demo and serve Apollo on 127.0.0.1:$APOLLO_PORT (default 8000)."

    def handle(self, *args: Any, **options: Any) -> None:
        port = os.environ.get("APOLLO_PORT", "8000")
        if not port.isdigit():
            self.stderr.write(f"APOLLO_PORT must be a port number, got {port!r}")
            sys.exit(2)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        children = {
            "web": [
                sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", port,
                "apollo_site.asgi:application",
            ],
        }  # fmt: skip
        processes = {name: subprocess.Popen(argv) for name, argv in children.items()}
        self.stdout.write(f"Apollo is serving on http://127.0.0.1:{port}/ (Ctrl-C stops it)")
        try:
            self._wait_for_first_exit(processes)
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            self._stop(processes)

    def _wait_for_first_exit(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with {process.returncode}; stopping the rest")
                    return
            time.sleep(0.5)

    def _stop(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
