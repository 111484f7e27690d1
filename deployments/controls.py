"""An action control as a page shows it (issue 13): "Every action control is shown only when
the action is possible for this user now, or disabled with the reason".

A control is hidden when the user may never do the action on this page (they hold its verb
nowhere), disabled with the reason when they could but not now (the verb held elsewhere, a
blocker, a deployment in progress, a lock, a finished request), enabled otherwise. The
reasons are the sentences the services refuse with, so a page and the server agree.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    shown: bool
    allowed: bool
    reason: str = ""

    @property
    def disabled(self) -> bool:
        return self.shown and not self.allowed


HIDDEN = Control(shown=False, allowed=False)
ALLOWED = Control(shown=True, allowed=True)


def disabled(reason: str) -> Control:
    return Control(shown=True, allowed=False, reason=reason)
