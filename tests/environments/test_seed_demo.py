import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    match = re.search(r"username '(\w+)', password '([^']+)'", out.getvalue())
    assert match, out.getvalue()
    return match.group(2)


def test_it_prints_credentials_that_log_in_as_an_admin() -> None:
    password = _seed()
    assert password != "admin"
    assert len(password) >= 12
    user = authenticate(username="alice", password=password)
    assert user is not None
    assert user.is_superuser


def test_re_running_it_is_idempotent_and_issues_a_fresh_password() -> None:
    first = _seed()
    second = _seed()
    assert first != second
    assert authenticate(username="alice", password=first) is None
    assert authenticate(username="alice", password=second) is not None
