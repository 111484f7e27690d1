"""An action control as a page shows it (issue 13): "Every action control is shown only when
the action is possible for this user now, or disabled with the reason".

A control is hidden when the user may never do the action on this page (they hold its verb
nowhere), disabled with the reason when they could but not now (the verb held elsewhere, a
blocker, a deployment in progress, a lock, a finished request), enabled otherwise. The
reasons are the sentences the services refuse with, so a page and the server agree.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from deployments.phases import status_label
from deployments.status import Status
from permissions.verbs import Verb

if TYPE_CHECKING:
    from collections.abc import Callable

    from deployments.models import DeployableVersion, Deployment
    from permissions.rules import Decision


@dataclass(frozen=True)
class Control:
    shown: bool
    allowed: bool
    reason: str = ""

    @property
    def disabled(self) -> bool:
        return self.shown and not self.allowed


HIDDEN = Control(shown=False, allowed=False)
ALLOWED = Control(shown=True, allowed=True)


def disabled(reason: str) -> Control:
    return Control(shown=True, allowed=False, reason=reason)


# -- the controls of one deployment (its page) and of one request's deployments (batch page) --

REDEPLOY_UNFINISHED = "Only a finished deployment with that version can be redeployed."
NOTHING_TO_CANCEL = "Nothing left to cancel: every deployment has finished."


def cancel_state_refusal(deployment: "Deployment") -> str:
    """Why the deployment cannot be cancelled in its state, "" when it can (the model's
    rule, Deployment.can_be_cancelled); cancel_deployment raises these words."""
    if deployment.can_be_cancelled:
        return ""
    if deployment.status == Status.STARTED:
        return "nothing ran before this deployment, so there is no version to roll back to"
    return f"a {status_label(deployment.status).lower()} deployment cannot be cancelled"


def gated(decision: "Decision", *, holds_verb: bool) -> Control | None:
    """The gate's part of a control: hidden when the verb is held nowhere, disabled with the
    gate's sentence when refused here; None when allowed (the state decides next)."""
    if decision.allowed:
        return None
    return disabled(decision.reason) if holds_verb else HIDDEN


def deployment_controls(
    deployment: "Deployment",
    *,
    cancel: "Decision",
    deploy: "Decision",
    holds: set[Verb],
    blocked: "Callable[[list[DeployableVersion]], dict[int, str]] | None" = None,
) -> dict[str, Control]:
    """Cancel, deploy this version again and roll back, on the deployment's page. A finished
    deployment has nothing to cancel; one that cannot be reverted (in progress: cancel it;
    cancelled, or nothing else ran before) has no roll back: those are absent, not disabled.
    `blocked(versions)`: why blockers refuse deploying each version here now for this user, by
    version id (deployments.services.deploy.blocked_for), asked once, only for controls
    otherwise allowed."""
    finished = Status(deployment.status).is_terminal
    controls = {"cancel": HIDDEN, "redeploy": HIDDEN, "roll_back": HIDDEN}
    if not finished:
        state = cancel_state_refusal(deployment)
        controls["cancel"] = gated(cancel, holds_verb=Verb.CANCEL in holds) or (
            disabled(state) if state else ALLOWED
        )
    redeploy = gated(deploy, holds_verb=Verb.DEPLOY in holds) or (
        ALLOWED if finished else disabled(REDEPLOY_UNFINISHED)
    )
    controls["redeploy"] = redeploy
    if deployment.can_be_reverted:  # the one rule the batch page and the service share
        controls["roll_back"] = redeploy
    if redeploy.allowed and finished and blocked is not None:
        previous = deployment.source_version if deployment.can_be_reverted else None
        versions = [v for v in (deployment.version, previous) if v is not None]
        reasons = blocked(versions)
        for name, version in (("redeploy", deployment.version), ("roll_back", previous)):
            if version is not None and reasons.get(version.pk):
                controls[name] = disabled(reasons[version.pk])
    return controls


def batch_controls(
    rows: list[tuple["Deployment", bool, bool]],
    *,
    holds: set[Verb],
    why: "Callable[[Deployment, Verb], str]",
) -> tuple[list[dict[str, Control]], dict[str, Control]]:
    """The batch page's controls: per deployment (may_cancel, may_deploy already asked of the
    gate in one read) Cancel and Revert, then Cancel all and Revert all. `why` gives the
    gate's sentence for a refused verb, asked only when the control is shown disabled."""
    per_row = []
    for deployment, may_cancel, may_deploy in rows:
        cancel, revert = HIDDEN, HIDDEN
        if not Status(deployment.status).is_terminal:
            state = cancel_state_refusal(deployment)
            if not may_cancel:
                cancel = disabled(why(deployment, Verb.CANCEL)) if Verb.CANCEL in holds else HIDDEN
            else:
                cancel = disabled(state) if state else ALLOWED
        if deployment.can_be_reverted:
            if not may_deploy:
                revert = disabled(why(deployment, Verb.DEPLOY)) if Verb.DEPLOY in holds else HIDDEN
            else:
                revert = ALLOWED
        per_row.append({"cancel": cancel, "revert": revert})
    return per_row, {
        "cancel_all": _cancel_all(rows, per_row, holds),
        "revert_all": _revert_all(per_row),
    }


def _reasons(controls: list[Control]) -> str:
    return "; ".join(dict.fromkeys(c.reason for c in controls if c.disabled))


def _cancel_all(
    rows: list[tuple["Deployment", bool, bool]], per_row: list[dict[str, Control]], holds: set[Verb]
) -> Control:
    if Verb.CANCEL not in holds:
        return HIDDEN
    if all(Status(d.status).is_terminal for d, _, _ in rows):
        return disabled(NOTHING_TO_CANCEL)
    cancels = [row["cancel"] for row in per_row]
    return ALLOWED if any(c.allowed for c in cancels) else disabled(_reasons(cancels))


def _revert_all(per_row: list[dict[str, Control]]) -> Control:
    """Revert all cancels the running deployments and reverts the finished ones."""
    controls = [c for row in per_row for c in (row["cancel"], row["revert"])]
    if any(c.allowed for c in controls):
        return ALLOWED
    reasons = _reasons(controls)
    return disabled(reasons) if reasons else HIDDEN


def from_gate(*, allowed: bool, holds_verb: bool, why: "Callable[[], str]") -> Control:
    """A control decided by the gate alone: enabled, disabled with the gate's sentence (asked
    only then) when the verb is held elsewhere, absent when it is held nowhere."""
    if allowed:
        return ALLOWED
    return disabled(why()) if holds_verb else HIDDEN
