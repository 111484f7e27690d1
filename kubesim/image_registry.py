"""The simulated image registry and per-image container behaviour.

Precedence for an image reference `repo:tag`:
1. behaviour registered through the control API for the exact reference;
2. then for the repository (reference without tag/digest);
3. references marked missing through the control API;
4. in strict mode, anything not registered is missing;
5. otherwise the naming convention: a reference containing `missing` is not in the registry,
   `crashloop` crash-loops, `notready` never becomes ready, `slow` starts slowly.
Images whose reference contains `alpine`, `busybox` or `distroless` have no /bin/bash.
A registered behaviour may also say the image runs a Jolokia agent on a port (`jolokiaPort`),
as a JVM started with the agent does: the pod proxy answers on that port.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

JSON = dict[str, Any]
BEHAVIOURS = ("ok", "missing", "crashloop", "notready", "slow")


@dataclass(frozen=True)
class ImageBehaviour:
    exists: bool = True
    crashloop: bool = False
    # Seconds a crash-looping container runs before exiting with `exit_code`.
    crash_after: float = 1.0
    exit_code: int = 1
    notready: bool = False
    # Extra seconds before the container is ready ("slow" start).
    slow_seconds: float = 0.0
    has_bash: bool = True
    # The port a Jolokia agent listens on in this image (None: no agent).
    jolokia_port: int | None = None

    def to_json(self) -> JSON:
        return {
            "exists": self.exists,
            "crashloop": self.crashloop,
            "crashAfter": self.crash_after,
            "exitCode": self.exit_code,
            "notready": self.notready,
            "slowSeconds": self.slow_seconds,
            "hasBash": self.has_bash,
            "jolokiaPort": self.jolokia_port,
        }


def behaviour_from_json(data: JSON, *, default_slow: float) -> ImageBehaviour:
    """Build a behaviour from the control API body, e.g. {"behaviour": "slow", "seconds": 5}."""
    name = str(data.get("behaviour", "ok"))
    if name not in BEHAVIOURS:
        raise ValueError(f"behaviour must be one of {', '.join(BEHAVIOURS)}")
    seconds = float(data.get("seconds", 0) or 0)
    base = ImageBehaviour(
        exists=name != "missing",
        crashloop=name == "crashloop",
        notready=name == "notready",
        exit_code=int(data.get("exitCode", 1)),
        has_bash=bool(data.get("hasBash", True)),
        jolokia_port=_port(data.get("jolokiaPort")),
    )
    if name == "crashloop" and seconds:
        base = replace(base, crash_after=seconds)
    if name == "slow":
        base = replace(base, slow_seconds=seconds or default_slow)
    return base


def _port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("jolokiaPort must be a port number between 1 and 65535")
    return value


def repository_of(ref: str) -> str:
    if "@" in ref:
        return ref.split("@", 1)[0]
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > last_slash else ref


def image_id(ref: str) -> str:
    digest = hashlib.sha256(ref.encode()).hexdigest()
    return f"{repository_of(ref)}@sha256:{digest}"


@dataclass
class ImageRegistry:
    strict: bool = False
    default_slow_seconds: float = 3.0
    crash_after_seconds: float = 1.0
    known: dict[str, ImageBehaviour] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def register(self, ref: str, behaviour: ImageBehaviour) -> None:
        self.missing.discard(ref)
        self.known[ref] = behaviour

    def mark_missing(self, ref: str) -> None:
        self.known.pop(ref, None)
        self.missing.add(ref)

    def reset(self) -> None:
        self.known.clear()
        self.missing.clear()
        self.strict = False

    def lookup(self, ref: str) -> ImageBehaviour:
        no_bash = any(word in ref for word in ("alpine", "busybox", "distroless"))
        for candidate in (ref, repository_of(ref)):
            if candidate in self.known:
                return self.known[candidate]
        if ref in self.missing:
            return ImageBehaviour(exists=False)
        if self.strict:
            return ImageBehaviour(exists=False)
        return ImageBehaviour(
            exists="missing" not in ref,
            crashloop="crashloop" in ref,
            crash_after=self.crash_after_seconds,
            notready="notready" in ref,
            slow_seconds=self.default_slow_seconds if "slow" in ref else 0.0,
            has_bash=not no_bash,
        )

    def to_json(self) -> JSON:
        return {
            "strict": self.strict,
            "images": {ref: b.to_json() for ref, b in sorted(self.known.items())},
            "missing": sorted(self.missing),
        }
