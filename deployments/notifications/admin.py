from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from deployments.notifications.models import Delivery, Event, Subscription
from deployments.notifications.services import (
    check_url,
    delete_subscription,
    save_subscription,
)


class SubscriptionForm(forms.ModelForm[Subscription]):
    # SECURITY: write-only, like a cluster's token: the stored URL (a Slack URL is a
    # credential) and secret are never put back into the form; empty keeps them.
    url = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False),
        label="URL",
        help_text="https://… Write-only: only the host is shown again. Empty keeps the "
        "current one. Internal addresses are refused (APOLLO_WEBHOOK_ALLOWED_HOSTS).",
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signed webhooks: the HMAC-SHA256 key (at least 16 characters). "
        "Write-only. Empty keeps the current one.",
    )
    events = forms.MultipleChoiceField(
        choices=Event.choices, widget=forms.CheckboxSelectMultiple, initial=[e.value for e in Event]
    )

    class Meta:
        model = Subscription
        fields = ["name", "kind", "service", "environment", "events", "enabled"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data.get("url", "")
        if not url.strip():
            if self.instance.pk is None:
                raise ValidationError("A subscription needs a URL.")
            return ""
        return check_url(url)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        secret = data.get("secret", "")
        if data.get("kind") == Subscription.Kind.WEBHOOK and not (
            secret or self.instance.secret_ciphertext
        ):
            self.add_error("secret", "A signed webhook needs a secret to sign with.")
        if secret and len(secret) < 16:
            self.add_error("secret", "The secret needs at least 16 characters.")
        return data


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin[Subscription]):
    form = SubscriptionForm
    list_display = ["name", "kind", "url_host", "service", "environment", "enabled", "log"]
    list_filter = ["kind", "enabled", "service", "environment"]
    list_select_related = ["service", "environment"]
    readonly_fields = ["url_host", "created_by", "recent_deliveries"]

    @admin.display(description="delivery log")
    def log(self, obj: Subscription) -> str:
        return format_html('<a href="{}">deliveries</a>', self._log_url(obj))

    def _log_url(self, obj: Subscription) -> str:
        url = reverse("admin:notifications_delivery_changelist")
        return f"{url}?subscription__id__exact={obj.pk}"

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, obj: Subscription) -> str:
        """The delivery log's last 20 rows, on the subscription's own page."""
        if obj.pk is None:
            return "—"
        rows = obj.deliveries.order_by("-id")[:20]
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    d.pk,
                    d.event,
                    d.get_state_display(),
                    d.attempts,
                    d.response_code or "—",
                    d.last_error or "—",
                )
                for d in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>event</th><th>state</th><th>attempts</th>"
            "<th>answer</th><th>last error</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">the whole log</a></p>',
            body or format_html('<tr><td colspan="6">{}</td></tr>', "none yet"),
            self._log_url(obj),
        )

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        assert request.user.is_authenticated
        save_subscription(
            actor=request.user,
            subscription=obj,
            url=form.cleaned_data.get("url", ""),
            secret=form.cleaned_data.get("secret", ""),
        )

    def delete_model(self, request: HttpRequest, obj: Subscription) -> None:
        assert request.user.is_authenticated
        delete_subscription(actor=request.user, subscription=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            self.delete_model(request, subscription)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin[Delivery]):
    """The delivery log: read-only."""

    list_display = [
        "id",
        "subscription",
        "event",
        "deployment_id",
        "state",
        "attempts",
        "response_code",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["state", "event", "subscription"]
    list_select_related = ["subscription"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
