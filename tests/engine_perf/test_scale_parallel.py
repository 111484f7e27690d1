"""How many rollouts one worker drives at once (#16): a default that fits PostgreSQL's
connection limit with two workers, and a bad --parallel refused with a clear message before
anything starts."""

import pytest
from django.core.management import CommandError, call_command

from deployments.engine.worker import DEFAULT_PARALLEL
from deployments.management.commands.rundeployments import Command


def test_the_default_leaves_room_in_postgresqls_default_connection_limit_for_two_workers() -> None:
    options = Command().create_parser("manage.py", "rundeployments").parse_args([])
    assert options.parallel == DEFAULT_PARALLEL
    # Two workers, each a connection per rollout and a few of its own, under 100.
    assert 2 * (DEFAULT_PARALLEL + 4) < 100


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_a_parallel_below_one_is_refused_with_a_clear_message(bad: str) -> None:
    with pytest.raises(CommandError, match="expected a whole number of at least 1"):
        call_command("rundeployments", "--parallel", bad)
