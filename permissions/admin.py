"""Admin for grants and blockers. Saving and deleting go through the services, which write
history in the same transaction; the admin never writes grants or blockers itself."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.cache import add_never_cache_headers

from deployments.models import Service
from environments.models import Environment
from history.services import record_event
from permissions import blockers, removal, services, tokens
from permissions.forms import BlockerForm, GrantForm
from permissions.models import (
    RULE_HELP,
    ApiToken,
    Blocker,
    ExternalIdentity,
    Grant,
    GrantGroupObjectPermission,
    GrantUserObjectPermission,
)
from permissions.selectors import permission_matrix
from permissions.services import grant_holder
from permissions.verbs import Verb


class VerbFilter(admin.SimpleListFilter):
    title = "verb"
    parameter_name = "verb"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(v.value, v.value) for v in Verb]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> QuerySet[Grant]:
        if self.value() is None:
            return queryset
        verb = {"content_object": OuterRef("pk"), "permission__codename": self.value()}
        return queryset.filter(
            Exists(GrantUserObjectPermission.objects.filter(**verb))
            | Exists(GrantGroupObjectPermission.objects.filter(**verb))
        )


class HolderKindFilter(admin.SimpleListFilter):
    title = "held by"
    parameter_name = "held_by"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("user", "a user"), ("group", "a group")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> QuerySet[Grant]:
        if self.value() == "user":
            return queryset.filter(user_perms__isnull=False).distinct()
        if self.value() == "group":
            return queryset.filter(group_perms__isnull=False).distinct()
        return queryset


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin[Grant]):
    form = GrantForm
    change_list_template = "permissions/admin/grant_change_list.html"
    list_display = ["id", "effect", "verb_list", "holder", "scope", "note", "updated_at"]
    list_display_links = ["id", "effect"]
    list_filter = [
        "effect",
        VerbFilter,
        HolderKindFilter,
        ("service", admin.RelatedOnlyFieldListFilter),
        ("environment", admin.RelatedOnlyFieldListFilter),
        "availability",
    ]
    search_fields = [
        "user_perms__user__username",
        "group_perms__group__name",
        "service__name",
        "environment__name",
        "availability",
        "note",
    ]
    fieldsets = [
        ("Who", {"fields": ["user", "group"]}),
        ("What", {"fields": ["verbs", "effect"], "description": RULE_HELP}),
        ("Where (exactly one scope)", {"fields": ["service", "environment", "availability"]}),
        (None, {"fields": ["note"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        return (
            super()
            .get_queryset(request)
            .select_related("service", "environment")
            .prefetch_related(
                "user_perms__user",
                "user_perms__permission",
                "group_perms__group",
                "group_perms__permission",
            )
        )

    @admin.display(description="verbs")
    def verb_list(self, obj: Grant) -> str:
        rows: list[Any] = [*obj.user_perms.all(), *obj.group_perms.all()]
        codenames = {row.permission.codename for row in rows}
        return ", ".join(v.value for v in Verb if v.value in codenames)

    @admin.display(description="held by")
    def holder(self, obj: Grant) -> str:
        users = {f"user {row.user}" for row in obj.user_perms.all()}
        groups = {f"group {row.group}" for row in obj.group_perms.all()}
        return ", ".join(sorted(users | groups)) or "(nobody)"

    @admin.display(description="scope")
    def scope(self, obj: Grant) -> str:
        return obj.scope_label

    def get_form(
        self, request: HttpRequest, obj: Grant | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm[Grant]]:
        form = super().get_form(request, obj, change=change, **kwargs)
        actor = request.user if isinstance(request.user, User) else None
        # A subclass per request, so the actor never leaks into another request's form.
        return type(form.__name__, (form,), {"actor": actor})

    def _is_own(self, request: HttpRequest, obj: Grant | None) -> bool:
        return (
            obj is not None
            and services.own_grant_refusal(request.user, grant_holder(obj)) is not None
        )

    def has_change_permission(self, request: HttpRequest, obj: Grant | None = None) -> bool:
        return super().has_change_permission(request, obj) and not self._is_own(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Grant | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not self._is_own(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        # One service call per grant, so that every revocation gets its own history event.
        # The whole action is refused (nothing deleted) if one of them is the actor's own.
        grants = list(queryset)
        for grant in grants:
            if self._is_own(request, grant):
                raise PermissionDenied(
                    services.own_grant_refusal(request.user, grant_holder(grant))
                )
        for grant in grants:
            services.revoke_grant(actor=request.user, grant=grant)

    def save_model(
        self, request: HttpRequest, obj: Grant, form: ModelForm[Grant], change: bool
    ) -> None:
        assert isinstance(form, GrantForm)
        services.save_grant(
            actor=request.user, grant=obj, holder=form.holder, verbs=form.cleaned_data["verbs"]
        )

    def delete_model(self, request: HttpRequest, obj: Grant) -> None:
        services.revoke_grant(actor=request.user, grant=obj)

    def get_urls(self) -> list[URLPattern]:
        matrix = path(
            "matrix/",
            self.admin_site.admin_view(self.matrix_view),
            name="permissions_grant_matrix",
        )
        return [matrix, *super().get_urls()]

    def matrix_view(self, request: HttpRequest) -> HttpResponse:
        """Who can do what: users and groups x services x environments, for one verb."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        verb = request.GET.get("verb", Verb.DEPLOY)
        verb = verb if verb in Verb.values else Verb.DEPLOY
        service_list = Service.objects.all()
        environment_list = Environment.objects.all()
        if _is_id(request.GET.get("service", "")):
            service_list = service_list.filter(pk=request.GET["service"])
        if _is_id(request.GET.get("environment", "")):
            environment_list = environment_list.filter(pk=request.GET["environment"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Who can do what",
            "opts": self.model._meta,
            "verbs": Verb.choices,
            "verb": verb,
            "all_services": Service.objects.all(),
            "all_environments": Environment.objects.all(),
            "chosen_service": request.GET.get("service", ""),
            "chosen_environment": request.GET.get("environment", ""),
            "matrix": permission_matrix(
                verb=Verb(verb), services=list(service_list), environments=list(environment_list)
            ),
            "rule_help": RULE_HELP,
        }
        return TemplateResponse(request, "permissions/admin/matrix.html", context)


def _is_id(value: str) -> bool:
    """ASCII digits only: "²".isdigit() is true but int("²") fails."""
    return value.isascii() and value.isdigit()


class _GuardianRowAdmin(admin.ModelAdmin[Any]):
    """Read-only view of guardian rows; they change only through the grants."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The rows go with their grant (or with a deleted service, environment, user or
        # group); the admin's cascade check asks this, so it follows delete_grant. Deleting a
        # row on its own is refused below: that would change a grant without history.
        return request.user.has_perm("permissions.delete_grant")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        raise PermissionDenied("revoke or change the grant instead")


@admin.register(GrantUserObjectPermission)
class GrantUserObjectPermissionAdmin(_GuardianRowAdmin):
    list_display = ["content_object", "user", "permission"]
    search_fields = ["user__username", "permission__codename"]
    list_select_related = [
        "content_object__service",
        "content_object__environment",
        "user",
        "permission",
    ]


@admin.register(GrantGroupObjectPermission)
class GrantGroupObjectPermissionAdmin(_GuardianRowAdmin):
    list_display = ["content_object", "group", "permission"]
    search_fields = ["group__name", "permission__codename"]
    list_select_related = [
        "content_object__service",
        "content_object__environment",
        "group",
        "permission",
    ]


_KIND_SECTIONS = [
    ("Unconditional", "unconditional", ["except_services", "except_environments"]),
    ("Time window", "time_window", ["days", "start", "end", "timezone"]),
    ("Branch allow-list", "branch", ["patterns"]),
    ("Concurrency", "concurrency", ["max_in_progress", "concurrency_except_services"]),
    ("CI status", "ci_status", ["required_contexts"]),
    ("Promotion", "promotion", ["from_environment", "min_minutes"]),
]


# Typed loosely: django-stubs cannot type a fieldset list built by a comprehension.
_KIND_FIELDSETS: list[Any] = [
    (title, {"fields": fields, "description": f"Only for the kind {kind}.", "classes": [kind]})
    for title, kind, fields in _KIND_SECTIONS
]


@admin.register(Blocker)
class BlockerAdmin(admin.ModelAdmin[Blocker]):
    form = BlockerForm
    list_display = ["name", "kind", "scope", "active", "overridable", "updated_at"]
    list_filter = [
        "kind",
        "active",
        "overridable",
        ("service", admin.RelatedOnlyFieldListFilter),
        ("environment", admin.RelatedOnlyFieldListFilter),
        "availability",
        "group_name",
    ]
    search_fields = ["name", "service__name", "environment__name", "availability", "group_name"]
    list_select_related = ["service", "environment"]
    filter_horizontal = ["exempt_users"]

    class Media:
        js = ["permissions/blocker_kind.js"]

    fieldsets = [
        (None, {"fields": ["name", "kind", "active", "overridable"]}),
        (
            "Scope",
            {
                "fields": ["service", "environment", "availability", "group_name", "exempt_users"],
                "description": "Every field that is set narrows the scope; none set blocks "
                "every deployment. Exempt users are never refused by this blocker.",
            },
        ),
        *_KIND_FIELDSETS,
    ]

    @admin.display(description="scope")
    def scope(self, obj: Blocker) -> str:
        return obj.scope_label

    def save_model(
        self, request: HttpRequest, obj: Blocker, form: ModelForm[Blocker], change: bool
    ) -> None:
        blockers.save_blocker(
            actor=request.user, blocker=obj, exempt_users=list(form.cleaned_data["exempt_users"])
        )

    def save_related(
        self, request: HttpRequest, form: ModelForm[Blocker], formsets: Any, change: bool
    ) -> None:
        # save_blocker already stored the exemptions, inside its transaction and history event.
        pass

    def delete_model(self, request: HttpRequest, obj: Blocker) -> None:
        blockers.delete_blocker(actor=request.user, blocker=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Blocker]) -> None:
        for blocker in queryset:
            blockers.delete_blocker(actor=request.user, blocker=blocker)


# Where a freshly issued key waits, in the issuing admin's session, for the page that shows it.
ISSUED_KEY_SLOT = "apollo.issued_api_key"


class ApiTokenForm(ModelForm[ApiToken]):
    class Meta:
        model = ApiToken
        fields = ["user", "name"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Issue and revoke API tokens. The key is shown once, right after it is issued."""

    form = ApiTokenForm
    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a token is issued or revoked, never edited

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # SECURITY: a token acts as its user. Only a superuser may issue one for someone
        # else; otherwise "add API token" would let a staff member act as any account.
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = User.objects.filter(pk=getattr(request.user, "pk", None) or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        issued = path(
            "<int:token_id>/issued/",
            self.admin_site.admin_view(self.issued_view),
            name="permissions_apitoken_issued",
        )
        return [issued, *super().get_urls()]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        user = request.user if isinstance(request.user, User) else None
        token, key = tokens.issue_token(actor=user, user=obj.user, name=obj.name)
        obj.pk = token.pk
        # SECURITY: never in a message: the default message storage is a cookie. The key
        # waits in this admin's server-side session for the one page that shows it.
        request.session[ISSUED_KEY_SLOT] = {"token": token.pk, "key": key}

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        return redirect("admin:permissions_apitoken_issued", token_id=obj.pk)

    def issued_view(self, request: HttpRequest, token_id: int) -> HttpResponse:
        """The new key, once: taken out of the session as it is shown, never cached."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        waiting = request.session.get(ISSUED_KEY_SLOT)
        key = None
        if isinstance(waiting, dict) and waiting.get("token") == token_id:
            key = request.session.pop(ISSUED_KEY_SLOT)["key"]
        context = {
            **self.admin_site.each_context(request),
            "title": "API token issued",
            "opts": self.model._meta,
            "token": ApiToken.objects.filter(pk=token_id).select_related("user").first(),
            "api_key": key,
        }
        response = TemplateResponse(request, "permissions/admin/token_issued.html", context)
        add_never_cache_headers(response)  # Cache-Control: no-store, for the key
        return response

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        user = request.user if isinstance(request.user, User) else None
        tokens.revoke_token(actor=user, token=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset:
            self.delete_model(request, token)


# Users and groups are deleted through permissions.removal, so the grants (and a user's API
# tokens) that go with them are revoked first, each recorded in history.
class UserAdmin(DjangoUserAdmin[User]):
    def delete_model(self, request: HttpRequest, obj: User) -> None:
        removal.delete_holder(actor=request.user, holder=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            removal.delete_holder(actor=request.user, holder=user)


class GroupAdmin(DjangoGroupAdmin):
    def delete_model(self, request: HttpRequest, obj: AuthGroup) -> None:
        removal.delete_holder(actor=request.user, holder=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AuthGroup]) -> None:
        for group in queryset:
            removal.delete_holder(actor=request.user, holder=group)


admin.site.unregister(User)
admin.site.register(User, UserAdmin)
admin.site.unregister(AuthGroup)
admin.site.register(AuthGroup, GroupAdmin)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin[ExternalIdentity]):
    """Single sign-on links (permissions/oidc.py): made at a person's first log-in. An admin may
    link an existing local user to a provider's subject (the log-in refused a name already
    taken), or delete a link; the issuer and subject of a link never change. Recorded."""

    list_display = ["user", "subject", "issuer", "created_at"]
    search_fields = ["user__username", "subject"]
    readonly_fields = ["created_at", "last_login_groups"]
    raw_id_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fixed = ["user", "issuer", "subject"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def save_model(
        self, request: HttpRequest, obj: ExternalIdentity, form: Any, change: bool
    ) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if not change:
                record_event(
                    actor=request.user,
                    action="user.sso_linked",
                    summary=f"{obj.user} linked to single sign-on subject {obj.subject}",
                    target=obj.user,
                    data={"issuer": obj.issuer, "subject": obj.subject},
                )

    def delete_model(self, request: HttpRequest, obj: ExternalIdentity) -> None:
        with transaction.atomic():
            record_event(
                actor=request.user,
                action="user.sso_unlinked",
                summary=f"{obj.user} unlinked from single sign-on subject {obj.subject}",
                target=obj.user,
                data={"issuer": obj.issuer, "subject": obj.subject},
            )
            super().delete_model(request, obj)
