"""The permission rule, as pure functions over grant holdings (no database access here).

THE RULE (also shown in the admin):
  1. Superusers may do everything; inactive or anonymous users may do nothing.
  2. Only grants held by the user, or by one of the user's Django groups, for the asked verb
     count. A grant *matches* a target when its scope covers it:
       - (service, environment) pair: that service in that environment;
       - environment: every service in that environment, and the environment itself;
       - service: that service in every environment, and the service itself;
       - availability: every service in every environment of that availability, and those
         environments themselves.
     A question about a service alone (no environment) is matched only by service grants; a
     question about an environment alone only by environment and availability grants.
  3. Among matching grants the most specific scope decides. The total order is
       pair (4) > environment (3) > service (2) > availability (1).
     Environment outranks service because an environment is the security boundary (a
     cluster/namespace, production or not): a DENY on "production-eu" must hold even for the
     owners of a service who were allowed that service everywhere. To let them in there
     anyway, grant the (service, environment) pair.
  4. At equal specificity DENY wins, whether it is held by the user or by a group.
  5. No matching grant means refused.
  6. ``view`` (seeing deployments, manifests, variables, snapshots, diffs and history of a
     service in an environment) is implied by every other verb: an ALLOW of deploy, cancel,
     restart, view_logs, exec, override_blockers or manage counts as an ALLOW of view at the
     same scope, so granting deploy alone is enough to see what one deploys. Only a DENY of
     ``view`` itself denies view (a DENY of deploy in production must not hide production from
     those who may read it). Rules 3 and 4 then apply as for any verb: a DENY of view on an
     environment beats a deploy ALLOW on its availability; a (service, environment) ALLOW of
     deploy beats a DENY of view on the environment. A DENY of view hides, it does not take
     away other verbs: deny those as well to take them away.

The original Apollo said in a comment that DENY is always stronger, yet at the pair level it
kept the first (ALLOW) permission, and it ranked service-only and environment-only grants equal.
Rule 4 holds at every level here and rule 3 gives a total order.
"""

from collections import defaultdict
from dataclasses import dataclass
from enum import IntEnum
from itertools import repeat
from typing import Literal

from permissions.verbs import Effect, Verb

HolderKind = Literal["user", "group"]


class Specificity(IntEnum):
    AVAILABILITY = 1
    SERVICE = 2
    ENVIRONMENT = 3
    PAIR = 4


@dataclass(frozen=True)
class Holding:
    """One holder holding one verb on one grant, flattened with the grant's scope."""

    grant_id: int
    effect: str
    service_id: int | None
    service_name: str | None
    environment_id: int | None
    environment_name: str | None
    availability: str
    holder_kind: HolderKind
    holder_id: int
    holder_name: str

    @property
    def specificity(self) -> Specificity:
        if self.service_id is not None and self.environment_id is not None:
            return Specificity.PAIR
        if self.environment_id is not None:
            return Specificity.ENVIRONMENT
        if self.service_id is not None:
            return Specificity.SERVICE
        return Specificity.AVAILABILITY

    @property
    def scope_text(self) -> str:
        match self.specificity:
            case Specificity.PAIR:
                return f"service {self.service_name} in environment {self.environment_name}"
            case Specificity.ENVIRONMENT:
                return f"environment {self.environment_name}"
            case Specificity.SERVICE:
                return f"service {self.service_name}"
        return f"availability {self.availability}"

    @property
    def text(self) -> str:
        return f"{self.effect} on {self.scope_text} to {self.holder_kind} {self.holder_name}"


@dataclass(frozen=True)
class Target:
    """What a question is about: a service, an environment, both, or neither."""

    service_id: int | None = None
    service_name: str = ""
    environment_id: int | None = None
    environment_name: str = ""
    availability: str = ""

    @property
    def text(self) -> str:
        if self.service_id is not None and self.environment_id is not None:
            return f"{self.service_name} in {self.environment_name}"
        return self.service_name or self.environment_name or "anything"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    deciding_grant: Holding | None = None


# How each verb reads in a sentence: "bob may not <phrase> checkout in production".
PHRASES: dict[Verb, str] = {
    Verb.VIEW: "view",
    Verb.DEPLOY: "deploy",
    Verb.CANCEL: "cancel deployments of",
    Verb.RESTART: "restart",
    Verb.VIEW_LOGS: "view logs of",
    Verb.EXEC: "exec into",
    Verb.OVERRIDE_BLOCKERS: "override blockers for",
    Verb.MANAGE: "manage",
}


def sentence(who: str, verb: Verb, target: Target, *, allowed: bool, why: str) -> str:
    may = "may" if allowed else "may not"
    return f"{who} {may} {PHRASES[verb]} {target.text}: {why}"


class HoldingIndex:
    """Holdings indexed by scope, so that deciding one target costs a few dict lookups.

    The matrix and allowed_targets decide thousands of targets from one query's rows; this
    keeps them linear in the number of targets instead of targets x holdings.
    """

    def __init__(self, holdings: list[Holding]) -> None:
        self._pair: dict[tuple[int, int], list[Holding]] = defaultdict(list)
        self._environment: dict[int, list[Holding]] = defaultdict(list)
        self._service: dict[int, list[Holding]] = defaultdict(list)
        self._availability: dict[str, list[Holding]] = defaultdict(list)
        for holding in holdings:
            self._add(holding)

    def _add(self, h: Holding) -> None:
        match h.specificity:
            case Specificity.PAIR:
                assert h.service_id is not None
                assert h.environment_id is not None
                self._pair[(h.service_id, h.environment_id)].append(h)
            case Specificity.ENVIRONMENT:
                assert h.environment_id is not None
                self._environment[h.environment_id].append(h)
            case Specificity.SERVICE:
                assert h.service_id is not None
                self._service[h.service_id].append(h)
            case Specificity.AVAILABILITY:
                self._availability[h.availability].append(h)

    def named_services(self) -> set[int]:
        """Services some holding names (alone or with an environment)."""
        return set(self._service) | {s for s, _ in self._pair}

    def most_specific(self, target: Target) -> list[Holding]:
        """The matching holdings of the most specific scope that has any (rule 3)."""
        s, e = target.service_id, target.environment_id
        if s is not None and e is not None and self._pair.get((s, e)):
            return self._pair[(s, e)]
        if e is not None and self._environment.get(e):
            return self._environment[e]
        if s is not None and self._service.get(s):
            return self._service[s]
        if e is not None and target.availability:
            return self._availability.get(target.availability, [])
        return []


def allows(index: HoldingIndex, target: Target) -> bool:
    """decide()'s verdict without its sentence: for questions asked thousands of times a page."""
    candidates = index.most_specific(target)
    return bool(candidates) and all(h.effect != Effect.DENY for h in candidates)


def allowed_scopes(
    index: HoldingIndex, services: list[int], environments: list[tuple[int, str]]
) -> tuple[set[tuple[int, int]], set[int]]:
    """The environments where the holdings allow every service (none when there is no
    service), and the other allowed (service, environment) pairs one by one. A service that no
    holding names is decided like any other such service (only environment and availability
    holdings can match it), so each environment costs one decision for all of them plus one per
    named service, not one per service."""
    named = index.named_services()
    plain = [s for s in services if s not in named]
    special = [s for s in services if s in named]
    partial: set[tuple[int, int]] = set()
    whole: set[int] = set()
    for e, availability in environments:
        plain_allowed = bool(plain) and allows(index, Target(plain[0], "", e, "", availability))
        allowed_special = [s for s in special if allows(index, Target(s, "", e, "", availability))]
        if services and (plain_allowed or not plain) and len(allowed_special) == len(special):
            whole.add(e)
            continue
        if plain_allowed:
            partial.update(zip(plain, repeat(e)))
        partial.update(zip(allowed_special, repeat(e)))
    return partial, whole


def allows_somewhere(
    index: HoldingIndex, services: list[int], environments: list[tuple[int, str]]
) -> bool:
    """Whether allowed_scopes would find any allowed pair, stopping at the first one. Services
    that no holding names are decided alike (allowed_scopes), so one of them stands for all."""
    named = index.named_services()
    special = [s for s in services if s in named]
    plain = next((s for s in services if s not in named), None)
    candidates = special if plain is None else [plain, *special]
    return any(
        allows(index, Target(s, "", e, "", availability))
        for e, availability in environments
        for s in candidates
    )


def allowed_pairs(
    index: HoldingIndex, services: list[int], environments: list[tuple[int, str]]
) -> tuple[set[tuple[int, int]], set[int]]:
    """Every (service, environment) the holdings allow, and the environments where they allow
    every service (allowed_scopes, with the whole environments' pairs spelled out)."""
    pairs, whole = allowed_scopes(index, services, environments)
    for e in whole:
        # zip/repeat: the pairs are made in C (500 services x 50 environments is 25,000 pairs;
        # a generator of them was most of the History page's time).
        pairs.update(zip(services, repeat(e)))
    return pairs, whole


def decide(index: HoldingIndex, target: Target, *, who: str, verb: Verb) -> Decision:
    """Rules 3 to 5 for a user who is signed in, active and not a superuser."""
    candidates = index.most_specific(target)
    if not candidates:
        return Decision(False, sentence(who, verb, target, allowed=False, why="no grant matches"))
    denies = [h for h in candidates if h.effect == Effect.DENY]
    # Deterministic choice among ties: the user's own grant before a group's, then oldest.
    deciding = min(denies or candidates, key=lambda h: (h.holder_kind != "user", h.grant_id))
    allowed = not denies
    return Decision(
        allowed, sentence(who, verb, target, allowed=allowed, why=deciding.text), deciding
    )
