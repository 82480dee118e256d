"""Controllers are found by name: baselines, code registrations and entry-point plug-ins."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from hotoku.twin import (
    BASELINES,
    Observation,
    Setpoints,
    available_controllers,
    make_controller,
    register_controller,
    registry,
)


class Idle:
    def decide(self, obs: Observation) -> Setpoints:
        return Setpoints()


def test_baselines_are_available() -> None:
    assert set(BASELINES) <= set(available_controllers())
    for name in BASELINES:
        assert hasattr(make_controller(name), "decide")


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="pv-following"):
        make_controller("nope")


def test_register_in_code() -> None:
    register_controller("idle-test", Idle)
    assert isinstance(make_controller("idle-test"), Idle)


def test_entry_point_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint(name="plugged", value=f"{__name__}:Idle", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    assert isinstance(make_controller("plugged"), Idle)


def test_a_class_without_decide_is_refused() -> None:
    register_controller("broken-test", object)
    with pytest.raises(TypeError, match="decide"):
        make_controller("broken-test")
