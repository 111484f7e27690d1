"""The deployment status machine: statuses from the public contract and their transitions."""

from django.db import models


class Status(models.TextChoices):
    PENDING = "PENDING", "Pending"
    STARTED = "STARTED", "Started"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"
    PENDING_CANCELLATION = "PENDING_CANCELLATION", "Pending cancellation"
    CANCELING = "CANCELING", "Canceling"
    CANCELED = "CANCELED", "Canceled"

    def can_become(self, other: "Status") -> bool:
        return other in TRANSITIONS[self]

    @property
    def is_terminal(self) -> bool:
        return not TRANSITIONS[self]

    @classmethod
    def in_progress(cls) -> list["Status"]:
        return [status for status in cls if not status.is_terminal]


# Every allowed move. A PENDING deployment that nobody started yet can be cancelled outright;
# a started one is cancelled by re-applying the previous version (CANCELING). Any live state
# may end FAILED (cluster unreachable, timeout, a revert that itself fails).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.STARTED, Status.CANCELED, Status.FAILED}),
    Status.STARTED: frozenset({Status.DONE, Status.FAILED, Status.PENDING_CANCELLATION}),
    Status.PENDING_CANCELLATION: frozenset({Status.CANCELING, Status.FAILED}),
    Status.CANCELING: frozenset({Status.CANCELED, Status.FAILED}),
    Status.DONE: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
}
