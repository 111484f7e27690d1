"""Home page server time with 50 environments and 10,000 deployments, against a trivial view.

Runs on its own SQLite database under var/ (BENCH_DATABASE_URL overrides), never on the
database DATABASE_URL names, so that a benchmark cannot touch real data.
"""

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = ROOT / "var" / "bench-home.sqlite3"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DB}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apollo_site.settings")

ENVIRONMENTS = 50
DEPLOYMENTS = 10_000
REPEAT = 200


def _populate() -> Any:
    from django.contrib.auth.models import User

    from deployments.models import DeployableVersion, Deployment, Service
    from environments.models import Cluster, Environment

    user = User.objects.create_user("bench", password="bench-password-0123")
    cluster = Cluster.objects.create(name="bench")
    environments = Environment.objects.bulk_create(
        Environment(name=f"env-{i}", cluster=cluster, namespace=f"ns-{i}", availability="staging")
        for i in range(ENVIRONMENTS)
    )
    services = Service.objects.bulk_create(
        Service(name=f"svc-{i}", image_repository=f"demo/svc-{i}", deployment_template="x")
        for i in range(20)
    )
    versions = DeployableVersion.objects.bulk_create(
        DeployableVersion(service=s, git_commit_sha=f"{i:040x}") for i, s in enumerate(services * 5)
    )
    Deployment.objects.bulk_create(
        (
            Deployment(
                service=versions[i % len(versions)].service,
                version=versions[i % len(versions)],
                environment=environments[i % ENVIRONMENTS],
                deployed_by=user,
                status="DONE",
                message=f"deployment {i}",
            )
            for i in range(DEPLOYMENTS)
        ),
        batch_size=1000,
    )
    return user


def main() -> dict[str, Any]:
    BENCH_DB.unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    from bench.common import row, time_calls, write_result

    call_command("migrate", verbosity=0, interactive=False)
    user = _populate()
    client = Client()
    client.force_login(user)
    with override_settings(ROOT_URLCONF="bench.urls", DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        # A benchmark of an error page would be meaningless: check both answer 200 first.
        assert client.get("/").status_code == 200
        assert client.get("/bench/trivial/").status_code == 200
        home = time_calls(lambda: client.get("/"), repeat=REPEAT)
        trivial = time_calls(lambda: client.get("/bench/trivial/"), repeat=REPEAT)
    result = {
        "name": "home",
        "setup": f"{ENVIRONMENTS} environments, {DEPLOYMENTS} deployments, {REPEAT} requests",
        "rows": [row("home page server time", home, trivial, "trivial view")],
    }
    write_result("home", result)
    return result


if __name__ == "__main__":
    print(main())
