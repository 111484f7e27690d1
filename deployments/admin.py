from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from deployments.forms import GroupVariablesField
from deployments.manifests import SAMPLE_SHA, preview, render_for
from deployments.models import (
    AutomaticRevert,
    BadVersion,
    CIStatus,
    DeployableVersion,
    Deployment,
    Group,
    RevertPolicy,
    Service,
    WorkerHeartbeat,
)
from deployments.rendering import RenderError
from deployments.services.catalog import delete_service, save_service
from deployments.services.groups import (
    create_group,
    delete_group,
    update_group,
    validate_group,
)
from environments.models import Environment
from environments.variables import VariablesField


class ServiceAdminForm(forms.ModelForm[Service]):
    """Validates the templates on save: they must render (with sample values), parse as YAML,
    produce only kinds Apollo applies, and use no undefined variable."""

    class Meta:
        model = Service
        fields = [
            "name",
            "image_repository",
            "git_repository_url",
            "deployment_template",
            "service_template",
            "ingress_template",
            "extra_templates",
            "default_variables",
            "deployed_per_group",
            "allowed_sidecar_images",
            "allowed_service_accounts",
            "allowed_secrets",
        ]

    # A JSON object of scalars: anything else would make every deploy of the service fail.
    default_variables = VariablesField(label_in_errors="Default variables")

    def clean_allowed_sidecar_images(self) -> list[str]:
        return self.cleaned_data.get("allowed_sidecar_images") or []

    def clean_allowed_service_accounts(self) -> list[str]:
        return self.cleaned_data.get("allowed_service_accounts") or []

    def clean_allowed_secrets(self) -> list[str]:
        return self.cleaned_data.get("allowed_secrets") or []

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        variables = data.get("default_variables")
        if "default_variables" in self.errors:
            return data
        if "deployment_template" not in data:  # already reported as missing
            return data
        candidate = Service(
            **{f: data.get(f, "") for f in TEMPLATE_FIELDS},
            name=data.get("name") or "service",
            image_repository=data.get("image_repository") or "",
            default_variables=variables or {},
            deployed_per_group=bool(data.get("deployed_per_group")),
        )
        groups = (
            list(self.instance.groups.select_related("environment")) if self.instance.pk else []
        )
        try:
            problem = template_problem(candidate, groups=groups)
        except RecursionError:  # YAML (or a mustache section) nested deeper than parsers recurse
            problem = "deployment template: the YAML is nested too deeply."
        if problem:
            self.add_error(_field_of(problem), problem)
        return data


TEMPLATE_FIELDS = ("deployment_template", "service_template", "ingress_template", "extra_templates")
_FIELD_OF_TEMPLATE = {
    "deployment": "deployment_template",
    "service": "service_template",
    "ingress": "ingress_template",
    "extra": "extra_templates",
}


def _field_of(problem: str) -> str:
    first = problem.split(" ", 1)[0]
    return _FIELD_OF_TEMPLATE.get(first, "deployment_template")


def template_problem(service: Service, *, groups: list[Group] | None = None) -> str:
    """Why the templates cannot be rendered, or "".

    Rendered with sample values. A variable that only environments (or groups) define is
    accepted when every target defines it (the sample render cannot know it; each real one
    can): each environment, rendered for each of the service's groups there and, unless the
    service is deployed per group only, without a group. Groups created later are checked when
    they are saved (deployments.services.groups).
    """
    try:
        preview(service)
    except RenderError as exc:
        sample_problem = str(exc)
    else:
        return ""
    if "undefined variables" not in sample_problem:
        return sample_problem
    environments = list(Environment.objects.all())
    for environment in environments:
        problem = _environment_problem(service, environment, groups or [])
        if problem:
            return problem
    if not environments:
        return f"{sample_problem} (define them in default variables)"
    return ""


def _environment_problem(service: Service, environment: Environment, groups: list[Group]) -> str:
    mine = [g for g in groups if g.environment_id == environment.pk]
    targets: list[Group | None] = list(mine)
    if not service.deployed_per_group:
        targets.append(None)
    sample = DeployableVersion(service=service, git_commit_sha=SAMPLE_SHA)
    for group in targets:
        try:
            render_for(service=service, environment=environment, version=sample, group=group)
        except RenderError as exc:
            where = f"environment {environment.name}" + (f", group {group.name}" if group else "")
            return f"{exc} (in {where}; define a default in default variables)"
    return ""


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin[Service]):
    form = ServiceAdminForm
    list_display = ["name", "image_repository", "git_repository_url", "deployed_per_group"]
    list_filter = ["deployed_per_group"]
    search_fields = ["name", "image_repository", "git_repository_url"]
    readonly_fields = ["manifest_preview"]

    @admin.display(description="Preview")
    def manifest_preview(self, obj: Service | None) -> str:
        """The manifests rendered with sample values, and links to render them per environment."""
        if obj is None or obj.pk is None:
            return "Save the service to see its manifests rendered."
        try:
            rendered = preview(obj)
        except RenderError as exc:
            rendered = f"cannot render: {exc}"
        links = format_html_join(
            " · ",
            '<a href="{}?environment={}">{}</a>',
            (
                (reverse("admin:deployments_service_preview", args=[obj.pk]), e.pk, e.name)
                for e in Environment.objects.only("name")
            ),
        )
        return format_html(
            '<pre class="manifest-preview">{}</pre><p>Render for an environment: {}</p>',
            rendered,
            links or "(no environments yet)",
        )

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:service_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="deployments_service_preview",
            )
        ]
        return own + super().get_urls()

    def preview_view(self, request: HttpRequest, service_id: int) -> HttpResponse:
        """The manifests of a saved service rendered for the chosen environment."""
        service = Service.objects.filter(pk=service_id).first()
        if service is None:
            raise Http404("No such service.")
        if not self.has_view_permission(request, service):
            raise PermissionDenied
        environments = list(Environment.objects.all())
        chosen = next(
            (e for e in environments if str(e.pk) == request.GET.get("environment")), None
        )
        try:
            rendered, error = preview(service, chosen), ""
        except RenderError as exc:
            rendered, error = "", str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "service": service,
            "environments": environments,
            "chosen": chosen,
            "rendered": rendered,
            "error": error,
            "title": f"Manifests of {service.name}",
        }
        return render(request, "deployments/admin_preview.html", context)

    def save_model(self, request: HttpRequest, obj: Service, form: Any, change: bool) -> None:
        # Through the service: history records who changed what (templates as diffs).
        save_service(actor=request.user, service=obj)

    def delete_model(self, request: HttpRequest, obj: Service) -> None:
        delete_service(actor=request.user, service=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        for service in queryset:
            delete_service(actor=request.user, service=service)


@admin.register(DeployableVersion)
class DeployableVersionAdmin(admin.ModelAdmin[DeployableVersion]):
    list_display = ["service", "short_sha", "branch", "commit_author", "committed_at", "created_at"]
    list_filter = ["service", "branch"]
    search_fields = ["git_commit_sha", "branch", "commit_message", "commit_author"]
    list_select_related = ["service"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        # SECURITY: a registered version's identity is what CI built; changing the service or
        # sha afterwards would deploy an image CI never registered.
        return ["service", "git_commit_sha"] if obj is not None else []

    @admin.display(description="sha", ordering="git_commit_sha")
    def short_sha(self, obj: DeployableVersion) -> str:
        return obj.git_commit_sha[:12]


class GroupAdminForm(forms.ModelForm[Group]):
    """Field validation (variables: a JSON object of strings), then the service's templates
    must render with the group's variables."""

    # The pages' field: strings only, and a form error (not a 500) for JSON nested too deeply.
    variables = GroupVariablesField()

    class Meta:
        model = Group
        fields = [
            "service",
            "environment",
            "name",
            "scaling_factor",
            "variables",
            "scaling_locked",
            "scaling_lock_reason",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        # The instance gets the cleaned values only after clean(); fixed fields are read-only
        # on a change form, so they come from the instance.
        instance = self.instance
        group = Group(
            pk=instance.pk,
            service=data.get("service") or instance.service,
            environment=data.get("environment") or instance.environment,
            name=data.get("name") or instance.name,
            scaling_factor=data.get("scaling_factor", instance.scaling_factor),
            variables=data.get("variables") or {},
            scaling_locked=data.get("scaling_locked", False),
            scaling_lock_reason=data.get("scaling_lock_reason", ""),
        )
        group._state.adding = instance._state.adding  # uniqueness: a change excludes itself
        try:
            validate_group(group)  # what the group services check: the same errors here
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                target = field if field in self.fields else None
                for message in messages:
                    self.add_error(target, message)
        return data


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin[Group]):
    """Changes go through deployments.services.groups (history). Once created, a group's
    service, environment and name are fixed (they name its Kubernetes objects), and its scaling
    factor changes by scaling it (service or environment page), which scales the cluster too."""

    form = GroupAdminForm
    list_display = [
        "name",
        "service",
        "environment",
        "scaling_factor",
        "scaling_locked",
        "running",
        "page",
    ]
    list_filter = ["service", "environment", "scaling_locked"]
    search_fields = ["name", "service__name", "environment__name"]
    list_select_related = ["service", "environment"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).with_status()  # type: ignore[attr-defined]

    def get_readonly_fields(self, request: HttpRequest, obj: Group | None = None) -> Any:
        if obj is None:
            return []
        return ["service", "environment", "name", "scaling_factor"]

    @admin.display(description="Running")
    def running(self, obj: Group) -> str:
        sha = getattr(obj, "running_sha", None)
        return sha[:12] if sha else "—"

    @admin.display(description="Service page")
    def page(self, obj: Group) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("service-detail", args=[obj.service.name]),
            obj.service.name,
        )

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        user = request.user
        if change:
            # The saved row, not obj (the form changed obj already): history shows before/after.
            saved = Group.objects.select_related("service", "environment").get(pk=obj.pk)
            update_group(
                user=user,
                group=saved,
                variables=obj.variables,
                scaling_locked=obj.scaling_locked,
                scaling_lock_reason=obj.scaling_lock_reason,
            )
            return
        created = create_group(
            user=user,
            service=obj.service,
            environment=obj.environment,
            name=obj.name,
            scaling_factor=obj.scaling_factor,
            variables=obj.variables,
        )
        if obj.scaling_locked:
            update_group(
                user=user,
                group=created,
                scaling_locked=True,
                scaling_lock_reason=obj.scaling_lock_reason,
            )
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        delete_group(user=request.user, group=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for group in queryset.select_related("service", "environment"):
            delete_group(user=request.user, group=group)


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin[Deployment]):
    """Read-only: deployments change state only through the deployment services."""

    list_display = ["id", "service", "environment", "group", "status", "deployed_by", "created_at"]
    list_filter = ["status", "environment", "service"]
    search_fields = ["message", "version__git_commit_sha", "deployed_by__username"]
    list_select_related = ["service", "environment", "group", "deployed_by"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False  # deployments are the audit record of who deployed what


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin[WorkerHeartbeat]):
    """Read-only: which deployment workers run (each writes its row every second) and when
    each was last seen; an operator's view of what /readyz reports as "workers"."""

    list_display = ["name", "started_at", "seen_at", "stopped_at", "driving"]
    search_fields = ["name"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(CIStatus)
class CIStatusAdmin(admin.ModelAdmin[CIStatus]):
    list_display = ["version", "context", "state", "reported_at"]
    list_filter = ["state", "context"]
    search_fields = ["version__git_commit_sha", "context"]
    list_select_related = ["version__service"]


class _ReadOnly:
    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(BadVersion)
class BadVersionAdmin(_ReadOnly, admin.ModelAdmin[BadVersion]):
    """Read-only: marks are made and undone through deployments.services.bad_versions (the
    Deploy page, a revert, the API), which check the permission and write history."""

    list_display = ["service", "environment", "sha", "marked_by", "marked_at", "unmarked_at"]
    list_filter = ["environment", "service"]
    search_fields = ["sha", "reason"]
    list_select_related = ["service", "environment", "marked_by"]


@admin.register(RevertPolicy)
class RevertPolicyAdmin(admin.ModelAdmin[RevertPolicy]):
    """Automatic revert and marking FAILED versions bad, per environment (a service's own
    policy replaces its environment's)."""

    list_display = ["environment", "service", "enabled", "mark_bad", "max_age", "may_pass_blockers"]
    list_filter = ["enabled", "environment"]
    list_select_related = ["environment", "service"]


@admin.register(AutomaticRevert)
class AutomaticRevertAdmin(_ReadOnly, admin.ModelAdmin[AutomaticRevert]):
    """Read-only: what Apollo decided about each FAILED deployment under a revert policy."""

    list_display = ["failed", "revert", "explanation", "created_at"]
    list_select_related = ["failed", "revert"]
