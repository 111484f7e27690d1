from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from deployments.manifests import preview
from deployments.models import CIStatus, DeployableVersion, Deployment, Group, Service
from deployments.rendering import RenderError
from environments.models import Environment


class ServiceAdminForm(forms.ModelForm[Service]):
    """Validates the templates on save: they must render (with sample values), parse as YAML,
    produce only kinds Apollo applies, and use no undefined variable."""

    class Meta:
        model = Service
        fields = [
            "name", "image_repository", "git_repository_url", "deployment_template",
            "service_template", "ingress_template", "extra_templates", "default_variables",
            "deployed_per_group",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        variables = data.get("default_variables")
        if variables is not None and not isinstance(variables, dict):
            self.add_error("default_variables", "Default variables must be a JSON object.")
            return data
        if "deployment_template" not in data:  # already reported as missing
            return data
        candidate = Service(**{f: data.get(f, "") for f in TEMPLATE_FIELDS},
                            name=data.get("name") or "service",
                            image_repository=data.get("image_repository") or "",
                            default_variables=variables or {})  # fmt: skip
        problem = template_problem(candidate)
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


def template_problem(service: Service) -> str:
    """Why the templates cannot be rendered, or "".

    Rendered with sample values. A variable that only environments define is accepted when
    every environment defines it (the sample render cannot know it; each real one can).
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
        try:
            preview(service, environment)
        except RenderError as exc:
            return (
                f"{exc} (in environment {environment.name}; define a default in default variables)"
            )
    if not environments:
        return f"{sample_problem} (define them in default variables)"
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
            " · ", '<a href="{}?environment={}">{}</a>',
            ((reverse("admin:deployments_service_preview", args=[obj.pk]), e.pk, e.name)
             for e in Environment.objects.only("name")),
        )  # fmt: skip
        return format_html(
            '<pre class="manifest-preview">{}</pre><p>Render for an environment: {}</p>',
            rendered, links or "(no environments yet)",
        )  # fmt: skip

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


@admin.register(DeployableVersion)
class DeployableVersionAdmin(admin.ModelAdmin[DeployableVersion]):
    list_display = ["service", "short_sha", "branch", "commit_author", "committed_at", "created_at"]
    list_filter = ["service", "branch"]
    search_fields = ["git_commit_sha", "branch", "commit_message", "commit_author"]
    list_select_related = ["service"]
    date_hierarchy = "created_at"

    @admin.display(description="sha", ordering="git_commit_sha")
    def short_sha(self, obj: DeployableVersion) -> str:
        return obj.git_commit_sha[:12]


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin[Group]):
    list_display = ["name", "service", "environment", "scaling_factor"]
    list_filter = ["service", "environment"]
    search_fields = ["name", "service__name", "environment__name"]
    list_select_related = ["service", "environment"]


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


@admin.register(CIStatus)
class CIStatusAdmin(admin.ModelAdmin[CIStatus]):
    list_display = ["version", "context", "state", "reported_at"]
    list_filter = ["state", "context"]
    search_fields = ["version__git_commit_sha", "context"]
    list_select_related = ["version__service"]
