"""Controllers found by name: the built-in baselines, those registered in code, and plug-ins.

A package adds a controller without forking hotoku by declaring an entry point in the
``hotoku.controllers`` group whose value is a zero-argument factory (usually the class)::

    [project.entry-points."hotoku.controllers"]
    my-mpc = "mytown.control:MyMPC"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from hotoku.twin.controller import Controller

ENTRY_POINT_GROUP = "hotoku.controllers"
BASELINES = ("uncontrolled", "tou", "pv-following")
_registered: dict[str, Callable[[], Controller]] = {}


def register_controller(name: str, factory: Callable[[], Controller]) -> None:
    """Make a controller available by ``name`` in this process (tests, notebooks)."""
    _registered[name] = factory


def available_controllers() -> dict[str, Callable[[], Controller]]:
    """Name → factory for every controller known: baselines, entry points, then code registrations."""
    from hotoku.twin import baselines

    found: dict[str, Callable[[], Controller]] = {
        "uncontrolled": baselines.Uncontrolled, "tou": baselines.TimeOfUse, "pv-following": baselines.PVFollowing}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, _lazy(ep))  # loaded lazily: a broken plug-in fails only when chosen
    found.update(_registered)
    return found


def make_controller(name: str) -> Controller:
    """A fresh controller by name; the error lists the names available."""
    known = available_controllers()
    if name not in known:
        raise KeyError(f"no controller named {name!r}; available: {', '.join(sorted(known))}")
    made = known[name]()
    if isinstance(made, type) or not isinstance(made, Controller):
        raise TypeError(f"controller {name!r} has no decide(obs) method")
    return made


def _lazy(ep: EntryPoint) -> Callable[[], Controller]:
    def factory() -> Controller:
        return ep.load()()

    return factory
