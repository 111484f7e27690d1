"""The history page's filters: validated and turned into selectors.HistoryFilters."""

import html
from functools import lru_cache
from typing import Any

from django import forms
from django.contrib.auth.models import AnonymousUser, User
from django.forms.utils import flatatt
from django.forms.widgets import Input
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from deployments.models import Service
from deployments.selectors import HistoryFilters, KnownNames
from deployments.status import Status
from environments.models import Environment
from history.selectors import ALL_EVENTS, KINDS, EventFilters, filter_options, read_catalogue
from permissions.selectors import Visibility, visibility


class QuickSelect(forms.Select):
    """A <select> built in Python. Django renders every option through a template of its own:
    with 500 services and 50 environments, the form's four selects took 19.3 ms with Django's
    Select, 5.1 ms as a {% for %} loop in a template, 2.3 ms here (CPU, same process, 2026-11)."""

    # The names to offer after "any", when set: each name its option's value and label, shown
    # as it is, without the normalisation Django's `choices` setter applies (40 % of the form's
    # construction at 550 options). The field still validates against its own queryset.
    names: tuple[str, ...] | None = None

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        chosen = {str(v) for v in self.format_value(value)}
        if self.names is not None:
            options = _with_chosen(self.names, chosen)
        else:
            options = [
                _option(str(option), str(label), str(option) in chosen)
                for option, label in self.choices
            ]
        final_attrs = flatatt(self.build_attrs(self.attrs, attrs))
        return format_html(
            '<select name="{}"{}>{}</select>',
            name,
            final_attrs,
            mark_safe("".join(options)),  # noqa: S308 -- every value and label is escaped
        )


def _option(value_text: str, label_text: str, selected: bool) -> str:
    # html.escape (what django.utils.html.escape calls, without its lazy-string wrapper),
    # once when the label is the value (names): 550 options' escapes were 4 % of the page.
    shown = html.escape(value_text)
    label = shown if label_text == value_text else html.escape(label_text)
    return f'<option value="{shown}"{SELECTED if selected else ""}>{label}</option>'


ANY = ("", "any")  # the option before the names


@lru_cache(maxsize=64)
def _unselected(names: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, int]]:
    """The options' markup ("any", then the names), none selected, and where each value is.
    Keyed by the names themselves (those the request read), so never stale: a service added
    or renamed is a new key. Kept for its measured gain: the service and environment selects
    (550 options) rendered in 0.22 ms CPU, 0.06 ms from here (same process, 2026-11); keyed
    by the names rather than (value, label) pairs, the form and its selects took 0.9-1.0 ms
    rather than 1.0. A few readers' subsets in 64 entries."""
    rows = (ANY, *((n, n) for n in names))
    positions = {value_text: i for i, (value_text, _) in enumerate(rows)}
    return tuple(_option(v, label, False) for v, label in rows), positions


def _with_chosen(names: tuple[str, ...], chosen: set[str]) -> list[str]:
    markup, positions = _unselected(names)
    options = list(markup)
    for value_text in chosen:
        if (i := positions.get(value_text)) is not None:
            label = ANY[1] if i == 0 else value_text
            options[i] = _option(value_text, label, True)
    return options


SELECTED = mark_safe(" selected")


def _input(widget: Input, name: str, value: Any, attrs: dict[str, Any] | None) -> SafeString:
    """What Django's input.html renders for the widget, built in Python: the form's five
    inputs through the template engine were ~0.6 ms of a History page (CPU, 2026-11)."""
    shown = widget.format_value(value)
    final_attrs = widget.build_attrs(widget.attrs, attrs)
    markup = "".join(_attribute(k, v) for k, v in final_attrs.items())
    return format_html(
        '<input type="{}" name="{}"{}{}>',
        widget.input_type,
        name,
        "" if shown is None else format_html(' value="{}"', shown),
        mark_safe(markup),  # noqa: S308 -- each name and value escaped by format_html
    )


def _attribute(name: str, value: Any) -> str:
    # As django/forms/widgets/attrs.html, in the widget's order (flatatt would sort them).
    if value is False:
        return ""
    return format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)


class QuickTextInput(forms.TextInput):
    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        return _input(self, name, value, attrs)


class QuickDateInput(forms.DateInput):
    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        return _input(self, name, value, attrs)


class NameChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """A choice by name answered from the (name, id) pairs the form read for its options, when
    it read them: the same pairs as the select offers, so the same visibility, and no second
    query for the one chosen (Django's ModelChoiceField reads it again by name). The chosen
    row comes back as `.only("name")` would give it: its id and name, the rest deferred."""

    ids_by_name: dict[str, int] | None = None

    def to_python(self, value: Any) -> Any:
        if self.ids_by_name is None or value in self.empty_values:
            return super().to_python(value)
        self.validate_no_null_characters(value)
        pk = self.ids_by_name.get(str(value))
        if pk is None:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )
        rows: Any = self.queryset
        return rows.model.from_db(rows.db, ["id", "name"], [pk, str(value)])


class FixedChoiceField(forms.ChoiceField):
    """A ChoiceField whose choices, set once when the module loads, every form shares rather
    than deep-copies: they are held as a tuple (of tuples of strings), so nothing can change
    them in place, and a form that wants others assigns new ones to its own field. The form's
    deep copy of its fields took 0.150 ms CPU, 0.115 with these shared (2026-11): small, but
    paid on every History page."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._choices = self.widget.choices = tuple(self._choices)  # type: ignore[has-type]

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        # Field's copy (widget, validators, messages), without ChoiceField's of the choices.
        field_copy: Any = super(forms.ChoiceField, self).__deepcopy__  # type: ignore[misc]
        return field_copy(memo)


KIND_CHOICES = [
    ("", "deployments"),
    (ALL_EVENTS, "every change and action"),
    *((key, label) for key, (label, _) in KINDS.items()),
]


class HistoryFilterForm(forms.Form):
    kind = FixedChoiceField(choices=KIND_CHOICES, required=False, label="Show", widget=QuickSelect)
    service = NameChoiceField(
        Service.objects.only("name"),
        to_field_name="name",
        required=False,
        empty_label="any",
        widget=QuickSelect,
    )
    environment = NameChoiceField(
        Environment.objects.only("name"),
        to_field_name="name",
        required=False,
        empty_label="any",
        widget=QuickSelect,
    )
    group = forms.CharField(required=False, max_length=40, label="Group", widget=QuickTextInput)
    user = forms.CharField(
        required=False, max_length=150, label="Deployed by", widget=QuickTextInput
    )
    status = FixedChoiceField(
        choices=[("", "any"), *Status.choices], required=False, widget=QuickSelect
    )
    since = forms.DateField(
        required=False, label="From", widget=QuickDateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=QuickDateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=QuickTextInput,
        help_text="Words of the deployment or commit message, a branch, a user name, or a sha "
        "prefix (4+ hex digits).",
    )

    def __init__(
        self,
        *args: Any,
        user: User | AnonymousUser,
        seen: Visibility | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Every service and environment (their names for the options, with what the rules
        # decide over) and the user filter's name resolved, in one statement read before what
        # the reader may view is decided (read_catalogue): it then reads neither table again.
        self._username = self._username_to_find()
        catalogue = read_catalogue(username=self._username, using=Service.objects.db)
        self._user_id = catalogue.user_id
        seen = seen if seen is not None else visibility(user)
        self.seen = seen  # what the page's rows are read with
        # SECURITY: offer (and accept) only the services and environments the user may view.
        services, environments = Service.objects.only("name"), Environment.objects.only("name")
        # A reader who may view every service of some environment may view every service, and
        # with all_pairs every environment: then the hundreds of ids need not be spelled out in
        # the queries (binding them was ~2 ms a page at 500 services).
        service_ids: frozenset[int] | None = None
        environment_ids: frozenset[int] | None = None
        if not (seen.everything or seen.whole_environments):
            service_ids = seen.service_ids
            services = services.filter(pk__in=sorted(service_ids))
        if not (seen.everything or seen.all_pairs):
            environment_ids = seen.environment_ids
            environments = environments.filter(pk__in=sorted(environment_ids))
        service: Any = self.fields["service"]
        service.queryset = services
        environment: Any = self.fields["environment"]
        environment.queryset = environments
        # The options as plain names (the widgets would otherwise build a model instance per
        # option), and the choice answered from the same rows.
        # SECURITY: these pairs are narrowed with the ids that filter the querysets above: a
        # name the reader may not view is not among them and is refused as any unknown name.
        options = filter_options(
            catalogue, service_ids=service_ids, environment_ids=environment_ids
        )
        for field, pairs in ((service, options.services), (environment, options.environments)):
            field.widget.names = tuple(name for name, _ in pairs)
            field.ids_by_name = dict(pairs)
        # Every name, for the page's rows (deployments.selectors.table_rows): the rows are
        # those the reader may view, whatever the options leave out.
        self.names = KnownNames(catalogue.services, catalogue.environments)

    def _username_to_find(self) -> str | None:
        """The user filter's name as clean_user will see it, when it may be looked up with the
        options (a bound form, a value the field will accept); None otherwise."""
        if not self.is_bound:
            return None
        raw = self.fields["user"].widget.value_from_datadict(self.data, self.files, "user")
        username = str(raw or "").strip()
        # The field refuses longer names and NUL (which PostgreSQL refuses in a parameter).
        if not username or len(username) > 150 or "\x00" in username:
            return None
        return username

    def clean_user(self) -> int | None:
        username = str(self.cleaned_data["user"]).strip()
        if not username:
            return None
        # Resolved to an id here so that the page query filters on deployment_user_idx: read
        # with the options when the form could (the same name), else now.
        if username == self._username:
            user_id = self._user_id
        else:
            user_id = User.objects.filter(username=username).values_list("pk", flat=True).first()
        if user_id is None:
            raise forms.ValidationError(f"No user is called '{username}'.")
        return user_id

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "'To' is before 'From'.")
        return data

    @property
    def shows_events(self) -> bool:
        return bool(self.cleaned_data.get("kind"))

    def event_filters(self) -> EventFilters:
        data = self.cleaned_data
        return EventFilters(
            kind=data.get("kind") or ALL_EVENTS,
            service=data.get("service"),
            environment=data.get("environment"),
            actor_id=data.get("user"),
            since=data.get("since"),
            until=data.get("until"),
            text=str(data.get("q") or "").strip(),
        )

    def filters(self) -> HistoryFilters:
        data = self.cleaned_data
        return HistoryFilters(
            service=data.get("service"),
            environment=data.get("environment"),
            group=str(data.get("group") or "").strip(),
            user_id=data.get("user"),
            status=data.get("status") or "",
            since=data.get("since"),
            until=data.get("until"),
            text=str(data.get("q") or "").strip(),
        )
