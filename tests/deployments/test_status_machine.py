import ast
import itertools
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from deployments.models import Deployment, InvalidTransition
from deployments.status import TRANSITIONS, Status
from tests import factories

ALLOWED = {
    (Status.PENDING, Status.STARTED),
    (Status.PENDING, Status.CANCELED),
    (Status.PENDING, Status.FAILED),
    (Status.STARTED, Status.DONE),
    (Status.STARTED, Status.FAILED),
    (Status.STARTED, Status.PENDING_CANCELLATION),
    (Status.PENDING_CANCELLATION, Status.CANCELING),
    (Status.PENDING_CANCELLATION, Status.FAILED),
    (Status.CANCELING, Status.CANCELED),
    (Status.CANCELING, Status.FAILED),
}
ALL_PAIRS = list(itertools.product(Status, Status))


def test_the_statuses_are_those_of_the_public_contract() -> None:
    assert [s.value for s in Status] == [
        "PENDING",
        "STARTED",
        "DONE",
        "FAILED",
        "PENDING_CANCELLATION",
        "CANCELING",
        "CANCELED",
    ]


def test_the_table_allows_exactly_the_documented_moves() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


def test_terminal_statuses_are_done_failed_and_canceled() -> None:
    assert {s for s in Status if s.is_terminal} == {Status.DONE, Status.FAILED, Status.CANCELED}
    assert set(Status.in_progress()) == set(Status) - {Status.DONE, Status.FAILED, Status.CANCELED}


@pytest.fixture
def deployment(db: None, alice: User) -> Deployment:
    return factories.make_deployment(
        service=factories.make_service(),
        environment=factories.make_environment(),
        deployed_by=alice,
        status=Status.PENDING,
    )


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=lambda s: str(s))
def test_transition_to_allows_and_refuses_each_pair(
    deployment: Deployment, current: Status, new: Status
) -> None:
    type(deployment).objects.filter(pk=deployment.pk).update(status=current)
    deployment.status = current
    if (current, new) in ALLOWED:
        deployment.transition_to(new, reason="because")
        deployment.refresh_from_db()
        assert deployment.status == new
        assert deployment.status_reason == "because"
    else:
        with pytest.raises(InvalidTransition):
            deployment.transition_to(new)
        deployment.refresh_from_db()
        assert deployment.status == current


def test_a_stale_instance_cannot_move_a_row_someone_else_moved(
    deployment: Deployment,
) -> None:
    other = type(deployment).objects.get(pk=deployment.pk)
    other.transition_to(Status.STARTED)
    # This instance still believes PENDING; its move must lose, not overwrite.
    with pytest.raises(InvalidTransition, match="no longer PENDING"):
        deployment.transition_to(Status.CANCELED)
    deployment.refresh_from_db()
    assert deployment.status == Status.STARTED


# -- the table is the only way a status changes ------------------------------------------------

APPS = ("apollo_site", "deployments", "environments", "history", "permissions")


def _raw_status_writes(path: Path) -> list[str]:
    """Calls that write a `status` column without the state machine: .update(status=...),
    .update(**{"status": ...}), dict.update(status=...) building such a call, and
    save(update_fields=[..."status"...])."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        keywords = {k.arg for k in node.keywords}
        spread = [k.value for k in node.keywords if k.arg is None]
        literal_keys = {
            key.value
            for value in spread
            if isinstance(value, ast.Dict)
            for key in value.keys
            if isinstance(key, ast.Constant)
        }
        fields = next((k.value for k in node.keywords if k.arg == "update_fields"), None)
        updated = (
            node.func.attr in ("update", "bulk_update") and "status" in keywords | literal_keys
        )
        saved = node.func.attr == "save" and fields is not None and "status" in ast.unparse(fields)
        if updated or saved:
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_status_is_written_by_a_raw_update_outside_the_state_machine() -> None:
    root = Path(__file__).resolve().parents[2]
    files = [p for app in APPS for p in (root / app).rglob("*.py") if "migrations" not in p.parts]
    assert len(files) > 50  # the scan found the code
    writes = [w for path in files for w in _raw_status_writes(path)]
    assert writes == [], "change the status with Deployment.transition_to:\n" + "\n".join(writes)


def test_the_scan_would_see_the_raw_update_the_worker_used_to_claim_with(tmp_path: Path) -> None:
    old = tmp_path / "worker.py"
    old.write_text(
        "changes.update(status=Status.STARTED, started_at=now)\n"
        "Deployment.objects.filter(pk=pk).update(**changes, updated_at=now)\n"
        "Deployment.objects.filter(pk=pk).update(status='DONE')\n"
        "d.save(update_fields=['status'])\n"
    )
    assert len(_raw_status_writes(old)) == 3
