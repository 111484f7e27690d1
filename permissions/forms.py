"""Admin forms: they validate and normalise; saving goes through the services."""

from typing import Any

from django import forms
from django.contrib.auth.models import Group, User

from deployments.models import Service
from environments.models import Environment
from permissions import blocker_config as bc
from permissions.models import RULE_HELP, Blocker, Grant
from permissions.services import Holder, grant_holder, grant_verbs, own_grant_refusal
from permissions.verbs import Verb


def _availability_choices(current: str) -> list[tuple[str, str]]:
    known = set(Environment.objects.values_list("availability", flat=True).distinct())
    known.add(current)
    return [("", "---------")] + [(a, a) for a in sorted(known) if a]


class GrantForm(forms.ModelForm[Grant]):
    user = forms.ModelChoiceField(
        User.objects.order_by("username"), required=False, help_text="Give it to this user ..."
    )
    group = forms.ModelChoiceField(
        Group.objects.order_by("name"), required=False, help_text="... or to this group."
    )
    verbs = forms.MultipleChoiceField(
        choices=Verb.choices, widget=forms.CheckboxSelectMultiple, help_text=RULE_HELP
    )
    availability = forms.ChoiceField(
        required=False,
        help_text="Every environment of this availability. Leave service and environment empty.",
    )

    class Meta:
        model = Grant
        fields = [
            "user",
            "group",
            "verbs",
            "effect",
            "service",
            "environment",
            "availability",
            "note",
        ]

    # Set by the admin to the user editing (GrantAdmin.get_form); None outside the admin.
    actor: User | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        availability_field = self.fields["availability"]
        assert isinstance(availability_field, forms.ChoiceField)
        availability_field.choices = _availability_choices(self.instance.availability)
        if self.instance.pk is not None:
            holder = grant_holder(self.instance)
            self.initial["user"] = holder if isinstance(holder, User) else None
            self.initial["group"] = holder if isinstance(holder, Group) else None
            self.initial["verbs"] = grant_verbs(self.instance)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("user") is None) == (data.get("group") is None):
            raise forms.ValidationError("Choose either a user or a group (exactly one).")
        scoped = data.get("service") is not None or data.get("environment") is not None
        if scoped == bool(data.get("availability")):
            raise forms.ValidationError(
                "Choose a scope: a service, an environment, both, or an availability alone."
            )
        holders = [data.get("user") or data.get("group")]
        if self.instance.pk is not None:
            holders.append(grant_holder(self.instance))
        for holder in holders:
            refusal = own_grant_refusal(self.actor, holder)
            if refusal is not None:
                raise forms.ValidationError(refusal)
        return data

    @property
    def holder(self) -> Holder:
        holder: Holder = self.cleaned_data["user"] or self.cleaned_data["group"]
        return holder


def _lines(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def _names_field(model: type[Service] | type[Environment], help_text: str) -> Any:
    return forms.ModelMultipleChoiceField(
        model.objects.all(), to_field_name="name", required=False, help_text=help_text
    )


# Which form fields feed each kind's config; the rest are ignored for that kind.
KIND_FIELDS: dict[str, list[str]] = {
    "unconditional": ["except_services", "except_environments"],
    "time_window": ["days", "start", "end", "timezone"],
    "branch": ["patterns"],
    "concurrency": ["max_in_progress", "concurrency_except_services"],
    "ci_status": ["required_contexts"],
    "single_region": [],
    "promotion": ["from_environment", "min_minutes"],
}


class BlockerForm(forms.ModelForm[Blocker]):
    except_services = _names_field(Service, "Unconditional: these services are not blocked.")
    except_environments = _names_field(
        Environment, "Unconditional: these environments are not blocked."
    )
    days = forms.TypedMultipleChoiceField(
        choices=list(enumerate(bc.DAY_NAMES)),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Time window: the days the window starts on.",
    )
    start = forms.TimeField(required=False, help_text="Time window: HH:MM.")
    end = forms.TimeField(
        required=False,
        help_text="Time window: HH:MM, inclusive. Earlier than start means the window crosses "
        "midnight into the next day (Friday 22:00-02:00 ends Saturday 02:00).",
    )
    timezone = forms.CharField(
        required=False, initial="UTC", help_text="Time window: an IANA name such as Europe/Berlin."
    )
    patterns = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Branch allow-list: one pattern per line, * and ? wildcards (release/*).",
    )
    max_in_progress = forms.IntegerField(
        required=False, min_value=1, help_text="Concurrency: at most this many in progress."
    )
    concurrency_except_services = _names_field(
        Service, "Concurrency: deployments of these services are not counted."
    )
    required_contexts = forms.CharField(
        required=False,
        help_text="CI status: contexts that must pass, comma separated (jenkins/unit). "
        "Empty: at least one status and every reported status passing.",
    )
    from_environment = forms.ModelChoiceField(
        Environment.objects.all(),
        to_field_name="name",
        required=False,
        help_text="Promotion: the version must have succeeded here first.",
    )
    min_minutes = forms.IntegerField(
        required=False, min_value=0, help_text="Promotion: at least this many minutes ago."
    )

    class Meta:
        model = Blocker
        fields = [
            "name",
            "kind",
            "active",
            "overridable",
            "service",
            "environment",
            "availability",
            "group_name",
            "exempt_users",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial.update(_initial_from_config(self.instance.kind, self.instance.config))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if not kind:
            return data
        config = _config_from_form(kind, data)
        try:
            bc.parse(kind, config)
        except bc.ConfigError as exc:
            raise forms.ValidationError(
                f"The {Blocker.Kind(kind).label} settings: {exc}."
            ) from None
        self.instance.config = config
        return data


def _names(values: Any) -> list[str]:
    return [v.name for v in values or []]


def _config_from_form(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON config of a kind from the form's kind-specific fields."""
    match kind:
        case "unconditional":
            return {
                "except_services": _names(data.get("except_services")),
                "except_environments": _names(data.get("except_environments")),
            }
        case "time_window":
            start, end = data.get("start"), data.get("end")
            return {
                "days": data.get("days") or [],
                "start": f"{start:%H:%M}" if start else "",
                "end": f"{end:%H:%M}" if end else "",
                "timezone": data.get("timezone") or "",
            }
        case "branch":
            return {"patterns": _lines(data.get("patterns") or "")}
        case "concurrency":
            return {
                "max_in_progress": data.get("max_in_progress"),
                "except_services": _names(data.get("concurrency_except_services")),
            }
        case "ci_status":
            return {"required_contexts": _lines(data.get("required_contexts") or "")}
        case "promotion":
            source = data.get("from_environment")
            return {
                "from_environment": source.name if source else "",
                "min_minutes": data.get("min_minutes") or 0,
            }
    return {}


def _initial_from_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Form initial values from a stored config (best effort: a broken config shows empty)."""
    if not isinstance(config, dict):
        return {}
    initial = dict(config)
    if kind == "concurrency":
        initial["concurrency_except_services"] = config.get("except_services", [])
    if kind in ("branch", "ci_status"):
        key = "patterns" if kind == "branch" else "required_contexts"
        value = config.get(key)
        initial[key] = "\n".join(value) if isinstance(value, list) else ""
    return initial
