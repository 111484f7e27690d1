"""Forms of the deployment pages. They validate and normalise; the services decide and write."""

import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from django import forms
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput

from apollo_site.prepared_sql import prepared_cursor
from deployments import selectors
from deployments.models import (
    MAX_SCALING_FACTOR,
    DeployableVersion,
    Group,
    Service,
    validate_group_variables,
)
from deployments.services.deploy import MAX_TARGETS, Target, fan_out
from environments.models import Environment, dns_label
from permissions.selectors import every_environment, service_rows, visibility

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
HEX = re.compile(r"^[0-9a-f]+$")


class GroupBoxes(forms.CheckboxSelectMultiple):
    """Group checkboxes that carry their service and environment, so the page can show only
    the groups of the chosen ones."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        group = getattr(option["value"], "instance", None)
        if isinstance(group, Group):
            option["attrs"].update(
                {"data-service": group.service_id, "data-environment": group.environment_id}
            )
        return option


MAX_ID = 2**63 - 1


class IdsChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    """Refuses ids that are not plain numbers in range before the IN query: on SQLite an
    out-of-range integer there raises OverflowError (a 500) instead of matching nothing."""

    def clean(self, value: Any) -> Any:
        for pk in value if isinstance(value, list | tuple) else []:
            text = str(pk)
            if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
                raise ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        return super().clean(value)


class ListedChoiceField(IdsChoiceField):
    """With `listed` set, validates against the rows it returns, the ones a page lists (the
    rows of its queryset, read once per request), not by a query of its own: the Deploy page's
    GET listed the visible environments and read the chosen ones again to validate them (one
    query of the thirteen to sixteen the page made). Without it, as IdsChoiceField (a POST,
    the check fragment: nothing lists every choice there)."""

    listed: "Callable[[], list[Any]] | None" = None

    def _check_values(self, value: Any) -> Any:
        if self.listed is None:
            return super()._check_values(value)  # type: ignore[misc]  # not in the stubs
        # clean() has refused the ids that are not plain numbers in range; `value` is a list.
        listed = self.listed()
        chosen = {str(pk) for pk in value}
        known = {str(row.pk) for row in listed}
        for pk in value:
            # SECURITY: an id the user may not view is not in the list: the same refusal as
            # an id that does not exist ("no environment 7 that you may see").
            if str(pk) not in known:
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        # The chosen rows in the list's order, as the queryset's filter gave them.
        return [row for row in listed if str(row.pk) in chosen]


class ServiceChoiceField(IdsChoiceField):
    """When its queryset is every service (no filter: the user may view every one), reads the
    chosen ones by a statement compiled once per process and number of ids (Service.objects.raw
    of _chosen_services_sql), not by Django's check (a queryset per id, then one filtered by
    all of them, compiled on every request: 0.49 ms for one service on SQLite, 0.80 on
    PostgreSQL, where this takes 0.18 and 0.47). A filtered queryset is Django's check."""

    def _check_values(self, value: Any) -> Any:
        offered: Any = self.queryset
        if offered.query.where:
            return super()._check_values(value)  # type: ignore[misc]  # not in the stubs
        # clean() has refused the ids that are not plain numbers in range; `value` is a list.
        ids = sorted({int(pk) for pk in value})
        using = offered.db
        sql = _chosen_services_sql(using, connections[using].vendor, len(ids))
        chosen = list(Service.objects.raw(sql, ids, using=using))
        found = {str(service.pk) for service in chosen}
        for pk in value:
            # SECURITY: the same refusal as Django's check (an id that does not exist).
            if str(int(pk)) not in found:
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        return chosen  # in name order, as the queryset's filter gave them


@lru_cache(maxsize=64)
def _chosen_services_sql(using: str, vendor: str, count: int) -> str:
    """Every service's queryset filtered by `count` ids, as Django compiles it for a database
    (alias and vendor), its ids located by stand-ins no id can be (negative numbers)."""
    del vendor
    stand_ins = [-n for n in range(1, count + 1)]
    query = Service.objects.using(using).order_by("name").filter(pk__in=stand_ins)
    sql, params = query.query.sql_with_params()
    if list(params) != stand_ins:
        raise RuntimeError("the chosen services' query binds other values than their ids")
    return sql


class GroupChoiceField(IdsChoiceField):
    widget = GroupBoxes

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.service.name} / {obj.environment.name} / {obj.name}"


def _choice_errors(what: str) -> dict[str, str]:
    # SECURITY: the same words whether the id does not exist or is hidden from the user.
    return {
        "invalid_choice": f"There is no {what} %(value)s that you may see.",
        "invalid_pk_value": f"“%(pk)s” is not a {what} id.",
        "required": f"Choose at least one {what}.",
    }


Offered = tuple[QuerySet[Environment], QuerySet[Service], QuerySet[Group]]


def _offered(user: User | AnonymousUser) -> Offered:
    """The environments, services and groups a DeployForm offers the user."""
    # SECURITY: what the user may view is offered (the page says why a choice is not
    # deployable); what they may not view cannot even be named.
    seen = visibility(user)
    environments = Environment.objects.order_by("name")
    services = Service.objects.order_by("name")
    groups = Group.objects.select_related("service", "environment").order_by(
        "environment__name", "service__name", "name"
    )
    if not seen.everything:
        environments = environments.filter(pk__in=seen.environment_ids)
        groups = groups.filter(seen.q())
    # Who may view every service of some environment may view every service (as
    # history.forms): then no "id IN (every service's id)" is bound, three times a page (a
    # quarter of the Deploy page for a developer at 1,000 services).
    if not (seen.everything or seen.whole_environments):
        services = services.filter(pk__in=seen.service_ids)
    return environments, services, groups


class DeployForm(forms.Form):
    """Environment(s), service(s), one version (picked, typed as a sha prefix, or the latest on
    a branch), optional groups and a message. Every environment and service the user may view
    can be posted; whether they may deploy there is the service's decision (request_deployments),
    which names the reason. An id they may not view is "no environment 7 that you may see"."""

    environments = ListedChoiceField(
        queryset=Environment.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages=_choice_errors("environment"),
    )
    services = ServiceChoiceField(
        queryset=Service.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages=_choice_errors("service"),
    )
    version = forms.CharField(required=False, label="Recent version")  # radios in the template
    sha = forms.CharField(
        required=False,
        max_length=40,
        label="Commit sha or prefix",
        help_text="At least 4 hex digits.",
    )
    branch = forms.CharField(required=False, max_length=255, label="Latest on branch")
    groups = GroupChoiceField(
        queryset=Group.objects.none(), required=False, error_messages=_choice_errors("group")
    )
    all_groups = forms.BooleanField(
        required=False,
        label="All groups",
        help_text="Every group of the chosen services in each chosen environment.",
    )
    message = forms.CharField(required=False, max_length=5000, widget=forms.Textarea({"rows": 2}))
    override_reason = forms.CharField(required=False, max_length=2000)

    def __init__(
        self,
        *args: Any,
        user: User | AnonymousUser,
        offered_like: "DeployForm | None" = None,
        **kwargs: Any,
    ) -> None:
        """`offered_like`: a form made for the same user in this request, whose choices this
        one takes rather than building them again (the Deploy page's GET binds a second form
        to the query string: its three filtered querysets took 0.9 ms for a developer). That
        form's page lists this one's environments (listed_environments): the chosen ones are
        validated against that list."""
        super().__init__(*args, **kwargs)
        self.offered_to = user
        if offered_like is None:
            self.offered = _offered(user)
        else:
            # SECURITY: another user's choices would let this one name what they may not view.
            if offered_like.offered_to != user:
                raise ValueError("a DeployForm takes the choices of a form of the same user only")
            self.offered = offered_like.offered
        fields: Any = self.fields
        for name, queryset in zip(
            ("environments", "services", "groups"), self.offered, strict=True
        ):
            fields[name].queryset = queryset
        if offered_like is not None:
            fields["environments"].listed = offered_like.listed_environments
        self.items: list[Target] = []

    def offered_service_rows(self) -> list[tuple[int, str, bool]]:
        """The services the form offers as (id, name, deployed per group), in name order: the
        request's read of every service's row (permissions.selectors.service_rows), filtered
        as _offered filters the services' queryset."""
        seen = visibility(self.offered_to)
        rows = service_rows()
        if seen.everything or seen.whole_environments:
            return rows
        return [row for row in rows if row[0] in seen.service_ids]

    def offered_group_rows(self) -> list[tuple[int, int, int, str]]:
        """The groups the form offers as (id, service id, environment id, name), in name order.
        When the user may view every service in every environment (_offered's filter then
        keeps every group: each has both), by _every_group_sql's statement, kept prepared on
        PostgreSQL (no parameter); otherwise by the groups' queryset."""
        seen = visibility(self.offered_to)
        if seen.everything or seen.all_pairs:
            using = Group.objects.db
            with prepared_cursor(using) as cursor:
                cursor.execute(_every_group_sql(using, connections[using].vendor))
                return list(cursor.fetchall())
        field: Any = self.fields["groups"]
        query = field.queryset.select_related(None).order_by("name")
        return list(query.values_list(*_GROUP_COLUMNS))

    def listed_environments(self) -> list[Environment]:
        """Every environment the form offers, in name order: the request's read of every
        environment (permissions.selectors.every_environment), filtered as _offered filters
        the environments' queryset (its validation takes the same rows when they are listed)."""
        seen = visibility(self.offered_to)
        rows = every_environment()
        return rows if seen.everything else [e for e in rows if e.pk in seen.environment_ids]

    def clean_version(self) -> str:
        value: str = self.cleaned_data["version"].strip().lower()
        if value and not FULL_SHA.match(value):
            raise forms.ValidationError("Pick a version from the list.")
        return value

    def clean_sha(self) -> str:
        value: str = self.cleaned_data["sha"].strip().lower()
        if value and not HEX.match(value):
            raise forms.ValidationError("A commit sha has only hex digits (0-9, a-f).")
        if value and len(value) < selectors.MIN_PREFIX:
            raise forms.ValidationError(
                f"Type at least {selectors.MIN_PREFIX} hex digits of the sha."
            )
        return value

    def clean_branch(self) -> str:
        return str(self.cleaned_data["branch"]).strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        given = [name for name in ("version", "sha", "branch") if data.get(name)]
        if len(given) != 1:
            raise forms.ValidationError(
                "Choose the version one way: pick it from the list, type a sha, or name a branch."
            )
        services = list(data["services"])
        environments = list(data["environments"])
        versions = self._versions(given[0], data[given[0]], services)
        groups = list(data["groups"])
        if data.get("all_groups"):
            groups = self._all_groups(services, environments)
        self.items = self._items(services, environments, groups, versions)
        if len(self.items) > MAX_TARGETS:
            raise forms.ValidationError(
                f"That is {len(self.items)} deployments at once; at most {MAX_TARGETS}."
            )
        return data

    def _all_groups(self, services: list[Service], environments: list[Environment]) -> list[Group]:
        """ "All groups" expands to every group of the chosen services in the chosen
        environments (the gate still decides per group)."""
        return list(
            selectors.groups_of(services, environments).order_by(
                "environment__name", "service__name", "name"
            )
        )

    def _versions(
        self, how: str, value: str, services: list[Service]
    ) -> dict[int, DeployableVersion]:
        if how == "branch":
            found = selectors.latest_on_branch(services, value)
            if not found:
                self.add_error("branch", f"No chosen service has a version on branch '{value}'.")
            return found
        try:
            found = selectors.versions_for_sha(services, value)
        except selectors.VersionLookupError as exc:
            self.add_error(how, str(exc))
            return {}
        if not found:
            names = ", ".join(s.name for s in services)
            self.add_error(how, f"No version {value} is registered for {names}.")
        return found

    def _items(
        self,
        services: list[Service],
        environments: list[Environment],
        groups: list[Group],
        versions: dict[int, DeployableVersion],
    ) -> list[Target]:
        chosen = {(s.pk, e.pk) for s in services for e in environments}
        stray = [g for g in groups if (g.service_id, g.environment_id) not in chosen]
        if stray:
            names = ", ".join(f"{g.service.name}/{g.environment.name}/{g.name}" for g in stray)
            self.add_error(
                "groups", f"These groups are not of a chosen service and environment: {names}."
            )
            return []
        sha = self.cleaned_data.get("sha") or self.cleaned_data.get("version") or ""
        wanted = sha or f"on branch {self.cleaned_data.get('branch')}"
        return fan_out(
            services=services,
            environments=environments,
            groups=groups,
            versions=versions,
            wanted=wanted,
        )


_GROUP_COLUMNS = ("pk", "service_id", "environment_id", "name")


@cache
def _every_group_sql(using: str, vendor: str) -> str:
    """Every group's row (offered_group_rows) as Django compiles it, once per database."""
    del vendor
    query = Group.objects.using(using).order_by("name").values_list(*_GROUP_COLUMNS)
    sql, params = query.query.sql_with_params()
    if params:
        raise RuntimeError("every group's statement binds parameters")
    return sql


class RedeployForm(forms.Form):
    """Deploy this deployment's version again, or the version that ran before it."""

    which = forms.ChoiceField(choices=[("this", "this version"), ("previous", "previous version")])
    message = forms.CharField(required=False, max_length=5000)
    # Rolling back may mark this version bad (deployments.services.bad_versions checks it).
    mark_bad = forms.BooleanField(required=False)
    mark_bad_reason = forms.CharField(required=False, max_length=2000)


class CompareForm(forms.Form):
    a = forms.IntegerField(min_value=1, label="Deployment")
    b = forms.IntegerField(min_value=1, label="compared with deployment")


# -- groups on the service page -------------------------------------------------------------


class GroupVariablesField(forms.JSONField):
    """A JSON object of strings (validated again by the model)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea({"rows": 3}))
        kwargs.setdefault("help_text", 'A JSON object of strings, e.g. {"region": "eu"}.')
        super().__init__(**kwargs)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Re-displaying the refused input parses it again: deep nesting must not 500 there.
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)

    def clean(self, value: Any) -> Any:
        try:
            cleaned = super().clean(value)
        except RecursionError:  # "[[[[..." nested deeper than the parser recurses
            raise forms.ValidationError("The variables are nested too deeply.") from None
        if cleaned in (None, ""):
            return {}
        try:
            validate_group_variables(cleaned)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None
        return cleaned


class GroupCreateForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=Environment.objects.none())
    name = forms.CharField(max_length=40, validators=[dns_label])
    scaling_factor = forms.IntegerField(min_value=0, max_value=MAX_SCALING_FACTOR, initial=1)
    variables = GroupVariablesField()

    def __init__(self, *args: Any, environments: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["environment"]
        field.queryset = environments


class GroupChangeForm(forms.Form):
    variables = GroupVariablesField()
    scaling_locked = forms.BooleanField(required=False, label="Lock scaling")
    scaling_lock_reason = forms.CharField(required=False, max_length=300, label="Lock reason")


class ScaleForm(forms.Form):
    replicas = forms.IntegerField(min_value=0, max_value=MAX_SCALING_FACTOR)


class PreviewForm(forms.Form):
    """One target and version whose manifests the Deploy page previews against what is
    applied (ids and a full sha; the view looks them up among what the user may view)."""

    service = forms.IntegerField(min_value=1, max_value=MAX_ID)
    environment = forms.IntegerField(min_value=1, max_value=MAX_ID)
    group = forms.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    version = forms.RegexField(regex=FULL_SHA, max_length=40)
