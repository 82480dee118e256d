"""hotoku.energy: forecasts, the dispatch LP, the MPC controller ``hotoku`` and the clairvoyant bound.

Offline::

    from hotoku.energy import Orchestrator, run_clairvoyant
    res = run(Simulation(scenario, days=30), Orchestrator("green"))
    bound = run_clairvoyant(Simulation(scenario, days=30))

Imports ``hotoku.town`` and the twin's controller interface (and the twin itself to run the clairvoyant).
"""

from hotoku.energy.audit import BookingAudit, audit_bookings
from hotoku.energy.clairvoyant import Clairvoyant, run_clairvoyant
from hotoku.energy.objective import Mode, Weights, weights_for
from hotoku.energy.orchestrator import Orchestrator
from hotoku.energy.outage import OutageWarning, warnings_for

__all__ = [
    "BookingAudit",
    "Clairvoyant",
    "Mode",
    "Orchestrator",
    "OutageWarning",
    "Weights",
    "audit_bookings",
    "run_clairvoyant",
    "warnings_for",
    "weights_for",
]
