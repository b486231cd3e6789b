"""Fault injection: make an actor's handler raise, to test what supervision promises.

Theory of operation. `PLASM_FAULTS` (read at import; inherited by test daemons) or
`arm()` names failure points as ``Actor.Message=N`` pairs, comma-separated, e.g.
``PLASM_FAULTS="ExecutorActor.ExecuteJob=1,JournalActor.FinishJob=2"``: the next N
deliveries of that message type to that actor class raise `InjectedFault` before the
handler runs, exactly as a bug in the handler would. ``N`` may be ``*`` (always), or
``hang``: the handler blocks (a lost message, a stuck call) until `disarm()` or
`HANG_S`. With nothing armed the mailbox pays one attribute read per message.

This is for tests and for operators reproducing a report; production never sets it.
"""

from __future__ import annotations

import os
import threading

from plasm.actors.errors import ActorLayerError


class InjectedFault(ActorLayerError):
    """A failure injected with PLASM_FAULTS or `arm()`: a stand-in for a handler's bug."""


HANG_S = 300.0
ALWAYS, HANG = -1, -2

_lock = threading.Lock()
_points: dict[tuple[str, str], int] = {}  # remaining trips; ALWAYS; HANG
_released = threading.Event()
_hanging = 0
armed = False


def parse(spec: str) -> dict[tuple[str, str], int]:
    """``"A.M=1,B.N=*"`` -> {("A", "M"): 1, ("B", "N"): -1}; a bad item raises ValueError."""
    points: dict[tuple[str, str], int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        where, _, count = item.partition("=")
        actor, _, message = where.partition(".")
        if not actor or not message or not count:
            raise ValueError(f"a fault point is Actor.Message=N (N a count or *), not {item!r}")
        special = {"*": ALWAYS, "hang": HANG}
        points[(actor, message)] = special[count] if count in special else int(count)
    return points


def arm(spec: str) -> None:
    """Add the fault points of `spec` (see `parse`)."""
    global armed
    with _lock:
        _points.update(parse(spec))
        armed = bool(_points)
        _released.clear()


def disarm() -> None:
    """Clear every point and let hung handlers go on."""
    global armed
    with _lock:
        _points.clear()
        armed = False
    _released.set()


def hanging() -> int:
    """How many handlers a `hang` point holds right now."""
    return _hanging


def trip(actor: str, message: str) -> None:
    """Raise InjectedFault (or hang) if a point for (actor, message) has trips left."""
    global armed, _hanging
    with _lock:
        left = _points.get((actor, message))
        if left is None:
            return
        if left == HANG:
            _hanging += 1
        elif left == 1:
            del _points[(actor, message)]
            armed = bool(_points)
        elif left > 1:
            _points[(actor, message)] = left - 1
    if left != HANG:
        raise InjectedFault(f"fault injected into {actor} on {message} (PLASM_FAULTS)")
    _released.wait(HANG_S)
    with _lock:
        _hanging -= 1


if os.environ.get("PLASM_FAULTS"):
    arm(os.environ["PLASM_FAULTS"])
