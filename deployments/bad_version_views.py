"""Pages of rollbacks that stick: mark a deployment's version bad, unmark it, list the marks;
and what the deployment page says about marks and automatic reverts. Every change is a POST to
deployments.services.bad_versions, then a redirect."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments import selectors
from deployments.models import AutomaticRevert, BadVersion, Deployment
from deployments.services import bad_versions
from deployments.services.auto_revert import SYSTEM_USERNAME
from deployments.status import Status
from permissions.selectors import allowed_targets, visibility
from permissions.verbs import Verb


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=bad_versions.MAX_REASON, strip=True)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


def detail_context(user: User, deployment: Deployment) -> dict[str, Any]:
    """What the deployment page shows about its version's mark and its reverts, read in one
    query (the page has a query budget, tests/deployments/test_detail.py)."""
    service, environment = deployment.service, deployment.environment
    mark_q = BadVersion.objects.active().filter(
        service_id=service.pk, environment_id=environment.pk, sha=deployment.version.git_commit_sha
    )
    automatic_q = AutomaticRevert.objects.filter(failed_id=OuterRef("pk"))
    reverts_q = Deployment.objects.filter(cause_id=OuterRef("pk")).order_by("-pk")
    row = (
        Deployment.objects.filter(pk=deployment.pk)
        .annotate(
            mark_id=Subquery(mark_q.values("pk")[:1]),
            mark_reason=Subquery(mark_q.values("reason")[:1]),
            mark_at=Subquery(mark_q.values("marked_at")[:1]),
            mark_by=Subquery(mark_q.values("marked_by__username")[:1]),
            automatic_id=Subquery(automatic_q.values("pk")[:1]),
            automatic_revert_id=Subquery(automatic_q.values("revert_id")[:1]),
            automatic_explanation=Subquery(automatic_q.values("explanation")[:1]),
            latest_revert_id=Subquery(reverts_q.values("pk")[:1]),
        )
        .values(
            "mark_id",
            "mark_reason",
            "mark_at",
            "mark_by",
            "automatic_id",
            "automatic_revert_id",
            "automatic_explanation",
            "latest_revert_id",
        )
        .get()
    )
    mark = None
    if row["mark_id"] is not None:
        mark = BadVersion(
            pk=row["mark_id"],
            sha=deployment.version.git_commit_sha,
            reason=row["mark_reason"],
            marked_at=row["mark_at"],
            marked_by=User(username=row["mark_by"]) if row["mark_by"] else None,
        )
    finished = Status(deployment.status).is_terminal
    return {
        "bad_mark": mark,
        "bad_mark_text": bad_versions.describe(mark, environment=environment) if mark else "",
        "may_mark_bad": finished
        and mark is None
        and bad_versions.may_mark(user, service=service, environment=environment),
        "may_unmark": mark is not None
        and bad_versions.may_unmark(user, service=service, environment=environment),
        "automatic_revert": row["automatic_id"] is not None,
        "automatic_revert_id": row["automatic_revert_id"],
        "automatic_explanation": row["automatic_explanation"] or "",
        "latest_revert_id": row["latest_revert_id"],
        "requested_by_apollo": deployment.deployed_by.get_username() == SYSTEM_USERNAME,
    }


@login_required
@require_POST
def mark_bad(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """Mark this deployment's version bad in its environment (without reverting)."""
    user = _user(request)
    # SECURITY: a deployment the user may not view is a 404, as if it did not exist.
    deployment = selectors.deployment_for_page(user, deployment_id)
    if deployment is None:
        raise Http404(f"No deployment #{deployment_id}.")
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not marked bad: give a reason.")
        return redirect("deployment-detail", deployment_id=deployment.pk)
    try:
        marked = bad_versions.mark_bad(
            user=user,
            service=deployment.service,
            environment=deployment.environment,
            sha=deployment.version.git_commit_sha,
            reason=form.cleaned_data["reason"],
            deployment=deployment,
        )
    except PermissionDenied as exc:
        messages.error(request, f"Not marked bad: {exc}")
    except bad_versions.BadVersionError as exc:
        messages.error(request, f"Not marked bad: {exc}")
    else:
        sha = deployment.version.git_commit_sha[:12]
        if marked.created:
            messages.success(request, f"{sha} is marked bad in {deployment.environment.name}.")
        else:
            messages.info(request, f"{sha} was marked bad already.")
    return redirect("deployment-detail", deployment_id=deployment.pk)


@login_required
@require_POST
def unmark(request: HttpRequest, mark_id: int) -> HttpResponse:
    """Undo a mark (`manage`, with a reason); back to the list of marks."""
    user = _user(request)
    mark = _visible_marks(user).filter(pk=mark_id).first()
    if mark is None:
        raise Http404("No such bad version.")
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not unmarked: give a reason.")
    else:
        try:
            bad_versions.unmark(user=user, mark=mark, reason=form.cleaned_data["reason"])
        except PermissionDenied as exc:
            messages.error(request, f"Not unmarked: {exc}")
        except bad_versions.BadVersionError as exc:
            messages.error(request, f"Not unmarked: {exc}")
        else:
            messages.success(request, f"{mark.sha[:12]} is no longer marked bad.")
    return redirect("bad-versions")


@login_required
@require_GET
def bad_version_list(request: HttpRequest) -> HttpResponse:
    """The marks in force the user may view, newest first, with unmark for manage holders."""
    user = _user(request)
    marks = list(_visible_marks(user).filter(unmarked_at__isnull=True)[:200])
    # Where the user may unmark, in three queries whatever the number of rows.
    managed = allowed_targets(user, Verb.MANAGE) if marks else set()
    rows = [
        {
            "mark": m,
            "text": bad_versions.describe(m, environment=m.environment),
            "may_unmark": (m.service_id, m.environment_id) in managed,
        }
        for m in marks
    ]
    return render(request, "deployments/bad_versions.html", {"rows": rows})


def _visible_marks(user: User) -> Any:
    # SECURITY: only marks of (service, environment) pairs the user may view.
    return BadVersion.objects.filter(visibility(user).q()).select_related(
        "service", "environment", "marked_by", "deployment"
    )
