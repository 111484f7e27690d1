from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from environments.catalog import delete_cluster, save_cluster, save_environment
from environments.models import Cluster, Environment
from environments.services import delete_environment
from environments.variables import VariablesField


class ClusterForm(forms.ModelForm[Cluster]):
    # SECURITY: write-only. The stored token is never put back into the form; leaving the
    # field empty keeps the current token, ticking "clear" removes it.
    token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Bearer token for the token connection. Write-only: never shown again.",
    )
    clear_token = forms.BooleanField(required=False, help_text="Remove the stored token.")

    class Meta:
        model = Cluster
        fields = [
            "name",
            "connection",
            "kubeconfig_path",
            "kubeconfig_context",
            "api_url",
            "ca_certificate",
            "verify_tls",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("connection") == Cluster.Connection.TOKEN:
            if not data.get("api_url"):
                self.add_error("api_url", "The token connection needs the API server URL.")
            has_token = bool(data.get("token")) or (
                self.instance.has_token and not data.get("clear_token")
            )
            if not has_token:
                self.add_error("token", "The token connection needs a bearer token.")
        return data

    def save(self, commit: bool = True) -> Cluster:
        cluster = super().save(commit=False)
        if self.cleaned_data.get("clear_token"):
            cluster.token_ciphertext = ""
        elif self.cleaned_data.get("token"):
            cluster.set_token(self.cleaned_data["token"])
        if commit:
            cluster.save()
        return cluster


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin[Cluster]):
    form = ClusterForm
    list_display = ["name", "connection", "api_url", "kubeconfig_context", "token_stored"]
    list_filter = ["connection"]
    search_fields = ["name", "api_url", "kubeconfig_context"]

    @admin.display(boolean=True, description="token stored")
    def token_stored(self, obj: Cluster) -> bool:
        return obj.has_token

    def save_model(self, request: HttpRequest, obj: Cluster, form: Any, change: bool) -> None:
        # SECURITY: history records "token changed", never the token (environments.catalog).
        data = form.cleaned_data
        changed = bool(data.get("token")) or bool(data.get("clear_token"))
        save_cluster(actor=request.user, cluster=obj, token_changed=changed)

    def delete_model(self, request: HttpRequest, obj: Cluster) -> None:
        delete_cluster(actor=request.user, cluster=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for cluster in queryset:
            delete_cluster(actor=request.user, cluster=cluster)


class EnvironmentAdminForm(forms.ModelForm[Environment]):
    # A JSON object of scalars: anything else would make every deploy here fail.
    variables = VariablesField(
        help_text="Mustache variables for every service's templates: a JSON object of "
        'strings, numbers and true/false, e.g. {"host": "staging.example.com"}.'
    )

    class Meta:
        model = Environment
        # Every field the admin shows: a field added to Environment appears without a change here.
        fields = "__all__"  # noqa: DJ007


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin[Environment]):
    form = EnvironmentAdminForm
    list_display = [
        "name",
        "availability",
        "region",
        "cluster",
        "namespace",
        "node_port_coefficient",
        "concurrency_limit",
        "require_deployment_message",
    ]
    list_filter = ["availability", "region", "cluster", "require_deployment_message"]
    search_fields = ["name", "namespace", "region"]
    list_select_related = ["cluster"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("cluster")

    def save_model(self, request: HttpRequest, obj: Environment, form: Any, change: bool) -> None:
        save_environment(actor=request.user, environment=obj)

    def delete_model(self, request: HttpRequest, obj: Environment) -> None:
        delete_environment(actor=request.user, environment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for environment in queryset:
            delete_environment(actor=request.user, environment=environment)
