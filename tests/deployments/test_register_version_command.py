from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from deployments.models import CIStatus, DeployableVersion, Service
from history.models import AuditEvent

pytestmark = pytest.mark.django_db

SHA = "0123456789abcdef0123456789abcdef01234567"


def run(*args: str) -> str:
    out = StringIO()
    call_command("register_version", *args, stdout=out)
    return out.getvalue()


def test_it_registers_a_version(checkout: Service) -> None:
    output = run(
        "--service=checkout",
        f"--sha={SHA}",
        "--branch=main",
        "--message=Fix the basket",
        "--author=Dev <dev@example.com>",
        f"--url=https://git.example.com/checkout/commit/{SHA}",
        "--repository-url=https://git.example.com/checkout",
        "--committed-at=2025-01-02T03:04:05+01:00",
    )
    assert output == "registered checkout@0123456789ab\n"
    version = DeployableVersion.objects.get()
    assert (version.branch, version.commit_message) == ("main", "Fix the basket")
    assert version.commit_author == "Dev <dev@example.com>"
    assert version.commit_url.endswith(SHA)
    assert version.committed_at is not None
    assert version.committed_at.isoformat() == "2025-01-02T02:04:05+00:00"


def test_a_second_run_says_already_registered(checkout: Service) -> None:
    run("--service=checkout", f"--sha={SHA}")
    assert run("--service=checkout", f"--sha={SHA}") == "already registered checkout@0123456789ab\n"
    assert DeployableVersion.objects.count() == 1


def test_it_normalises_an_upper_case_sha(checkout: Service) -> None:
    run("--service=checkout", f"--sha={SHA.upper()}")
    assert DeployableVersion.objects.get().git_commit_sha == SHA


def test_without_user_history_names_the_system(checkout: Service) -> None:
    run("--service=checkout", f"--sha={SHA}")
    event = AuditEvent.objects.exclude(action__startswith="token.").get()
    assert (event.action, event.actor, event.actor_name) == ("version.registered", None, "system")


def test_with_user_history_names_that_user(jenkins: User, checkout: Service) -> None:
    run("--service=checkout", f"--sha={SHA}", "--user=jenkins")
    assert AuditEvent.objects.exclude(action__startswith="token.").get().actor == jenkins


def test_it_holds_user_to_the_api_permission(mallory: User, checkout: Service) -> None:
    with pytest.raises(CommandError, match="may not register"):
        run("--service=checkout", f"--sha={SHA}", "--user=mallory")
    assert not DeployableVersion.objects.exists()


def test_an_unknown_user_is_refused(checkout: Service) -> None:
    with pytest.raises(CommandError, match="--user: unknown user 'ghost'"):
        run("--service=checkout", f"--sha={SHA}", "--user=ghost")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service=nope", f"--sha={SHA}"], "--service: Unknown service 'nope'."),
        (["--service=checkout", "--sha=abc1234"], "--sha: 'abc1234' is not a full git commit"),
        (["--service=checkout", f"--sha={SHA}", "--url=javascript:x"], "--url: Enter a valid URL"),
        (
            ["--service=checkout", f"--sha={SHA}", "--repository-url=nope"],
            "--repository-url: Enter a valid URL",
        ),
        (
            ["--service=checkout", f"--sha={SHA}", "--committed-at=yesterday"],
            "--committed-at: 'yesterday' is not an ISO 8601",
        ),
        (
            ["--service=checkout", f"--sha={SHA}", "--committed-at=2025-02-30T00:00:00"],
            "--committed-at: '2025-02-30T00:00:00' is not an ISO 8601",
        ),
        (
            ["--service=checkout", f"--sha={SHA}", "--ci-context=unit"],
            "--ci-context and --ci-url need --ci-state",
        ),
    ],
)
def test_bad_input_fails_naming_the_option(
    checkout: Service, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert str(caught.value).startswith(message)
    assert not DeployableVersion.objects.exists()
    assert not AuditEvent.objects.exclude(action__startswith="token.").exists()


def test_bad_input_exits_non_zero(checkout: Service) -> None:
    # manage.py turns a CommandError into this exit status.
    with pytest.raises(CommandError) as caught:
        run("--service=checkout", "--sha=nope")
    assert caught.value.returncode == 1


def test_a_naive_commit_time_is_read_as_utc(checkout: Service) -> None:
    run("--service=checkout", f"--sha={SHA}", "--committed-at=2025-01-02 03:04:05")
    committed = DeployableVersion.objects.get().committed_at
    assert committed is not None
    assert committed.isoformat() == "2025-01-02T03:04:05+00:00"


def test_it_reports_a_ci_status_in_the_same_call(checkout: Service) -> None:
    output = run(
        "--service=checkout",
        f"--sha={SHA}",
        "--ci-context=jenkins/unit",
        "--ci-state=success",
        "--ci-url=https://ci.example.com/job/1/",
    )
    assert output.splitlines() == [
        "registered checkout@0123456789ab",
        "CI status jenkins/unit: success",
    ]
    status = CIStatus.objects.get()
    assert (status.context, status.state, status.url) == (
        "jenkins/unit",
        "success",
        "https://ci.example.com/job/1/",
    )


def test_an_unknown_ci_state_is_refused_by_the_parser(checkout: Service) -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        run("--service=checkout", f"--sha={SHA}", "--ci-state=green")
