"""hotoku.twin: a digital twin of a town's energy and EV fleet — weather, demand, trips, physics, KPIs.

Imports only ``hotoku.town``. Models are plain vectorised functions; the simulator composes them.

Offline::

    from hotoku.town import load_scenario
    from hotoku.twin import Simulation, make_controller, run
    res = run(Simulation(load_scenario("odawara-zero-carbon-town"), days=7), make_controller("tou"))
    res.kpis["green_share"]

Live (one step at a time; the runner publishes ``StepResult`` and feeds setpoints from the broker)::

    sim = Simulation(scenario, seed=1, start="2030-01-01", days=1)
    while not sim.done:
        obs = sim.observation()
        result = sim.step(Setpoints.from_ids(sim.system, {"battery:community": -50.0}))
"""

from hotoku.twin.controller import NO_DEPARTURE, Controller, Forecast, Observation, Setpoints, SystemInfo
from hotoku.twin.registry import (
    BASELINES,
    ENTRY_POINT_GROUP,
    available_controllers,
    make_controller,
    register_controller,
)
from hotoku.twin.results import Results
from hotoku.twin.simulation import Clip, Simulation, StepResult, run

__all__ = [
    "BASELINES",
    "ENTRY_POINT_GROUP",
    "NO_DEPARTURE",
    "Clip",
    "Controller",
    "Forecast",
    "Observation",
    "Results",
    "Setpoints",
    "Simulation",
    "StepResult",
    "SystemInfo",
    "available_controllers",
    "make_controller",
    "register_controller",
    "run",
]
