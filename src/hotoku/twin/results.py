"""Results of a run: KPIs (units in their names) and the time series as a DataFrame."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from hotoku.town import Scenario
from hotoku.twin.bookings import Bookings
from hotoku.twin.controller import SystemInfo
from hotoku.twin.dispatch import GRID_CAP, REASONS
from hotoku.twin.fleet import TripTotals
from hotoku.twin.grid import monthly_peaks_kw
from hotoku.twin.inputs import Inputs
from hotoku.twin.recorder import Recorder
from hotoku.twin.storage import equivalent_full_cycles

EPS = 1e-6


@dataclass
class Results:
    """What one controller did over the simulated period (``steps`` steps done)."""

    scenario: Scenario
    controller: str
    inputs: Inputs
    system: SystemInfo
    rec: Recorder
    trips: TripTotals
    steps: int
    runtime_s: float
    device_ids: list[str]
    car_of: np.ndarray | None = None  # each booking's car as realised in the run (-1: refused); None: as planned

    @property
    def bookings(self) -> Bookings:
        """The bookings with the cars that served them in this run."""
        b = self.inputs.bookings
        return b if self.car_of is None else replace(b, car=self.car_of)

    def col(self, name: str) -> np.ndarray:
        return self.rec.col[name][: self.steps]

    def kwh(self, name: str) -> float:
        return float(self.col(name).sum() * self.system.step_h)

    @cached_property
    def kpis(self) -> dict[str, float]:
        """Headline figures; ratios in 0..1."""
        dt, n, s = self.system.step_h, self.steps, self.system
        loads = self.kwh("load_served_kw")
        trip = float(self.col("trip_kwh").sum())
        green = self.kwh("green_served_kw") + float(self.col("trip_green_kwh").sum())
        consumption = loads + self.kwh("car_charge_kw") - self.kwh("car_discharge_kw")
        imp, exp = self.kwh("grid_import_kw"), self.kwh("grid_export_kw")
        pv = self.kwh("pv_available_kw")
        curtail = self.kwh("curtailment_kw")
        months = (self.inputs.grid.times_local[:n].year * 100 + self.inputs.grid.times_local[:n].month).to_numpy()
        demand_charge = self.scenario.grid.tariff.demand_charge_jpy_per_kw_month * float(
            monthly_peaks_kw(self.col("grid_import_kw"), months).sum()) if n else 0.0
        b = self.bookings
        in_period = b.start_step < n
        started, failed = self.trips.started, self.trips.failed
        down = self.col("grid_up") < 0.5
        served = self.rec.shelter_served_kw[:n]
        powered = (served >= self.rec.shelter_demand_kw[:n] - EPS) & down[:, None]
        req = self.rec.clip_requested_kw[:n]
        capped = self.rec.clip_reason[:n] == GRID_CAP  # moved by grid-limit mode, as commanded: not a clip
        clipped = (self.rec.clip_reason[:n] != 0) & ~capped
        kwp = self.scenario.pv_kwp
        out: dict[str, float] = {
            "green_share": green / (loads + trip) if loads + trip > 0 else 0.0,
            "self_sufficiency": max(0.0, 1 - imp / consumption) if consumption > 0 else 0.0,
            "self_consumption": min(1.0, max(0.0, (pv - curtail - exp) / pv)) if pv > 0 else 0.0,
            "consumption_kwh": consumption,
            "pv_generation_kwh": pv,
            "grid_import_kwh": imp,
            "grid_export_kwh": exp,
            "co2_t": float(self.col("co2_kg").sum()) / 1000,
            "cost_jpy": float(self.col("cost_jpy").sum()) + demand_charge,
            "peak_import_kw": float(self.col("grid_import_kw").max()) if n else 0.0,
            "curtailment_kwh": curtail,
            "unserved_kwh": self.kwh("unserved_kw"),
            "battery_cycles": equivalent_full_cycles(self.kwh("battery_discharge_kw"),
                                                     float(s.battery_capacity_kwh.sum())),
            "booking_requests": int(in_period.sum()),
            "rejected_requests": int((in_period & (b.car < 0)).sum()),
            "rejected_when_made": self.trips.rejected,  # of those: refused live (no car could serve them then)
            "reassigned_bookings": self.trips.reassigned,
            "bookings": started,
            "failed_bookings": failed,
            "service_level": (started - failed) / started if started else 1.0,
            "unmet_km": self.trips.km_unmet,
            "ev_km": self.trips.km_requested - self.trips.km_unmet,
            "ev_charge_kwh": self.kwh("car_charge_kw"),
            "v2g_kwh": self.kwh("car_discharge_kw"),
            "pv_kwp": kwp,
            "pv_yield_kwh_per_kwp": pv / kwp if kwp else 0.0,
            "outage_h": float(down.sum() * dt),
            "clipped_commands": int(clipped.sum()),
            "clipped_kwh": float((np.abs(req - self.rec.clip_applied_kw[:n]) * clipped).sum() * dt),
            "grid_cap_kwh": float((np.abs(req - self.rec.clip_applied_kw[:n]) * capped).sum() * dt),
            "runtime_s": self.runtime_s,
        }
        for i, sh in enumerate(self.scenario.loads.shelters):
            out[f"shelter_{sh.id}_powered_h"] = float(powered[:, i].sum() * dt)
        return out

    def series(self) -> pd.DataFrame:
        """One row per step (index: step start, UTC); columns carry their units."""
        n, s, r = self.steps, self.system, self.rec
        df = pd.DataFrame({k: v[:n] for k, v in r.col.items()}, index=self.inputs.grid.times_utc[:n])
        df.index.name = "time"
        df["temp_air_c"] = self.inputs.temp_air_c[:n]
        df["ghi_w_m2"] = self.inputs.ghi_w_m2[:n]
        cap = s.battery_capacity_kwh
        df["battery_soc_mean"] = r.battery_soc[:n] @ cap / cap.sum() if cap.sum() else 0.0
        df["car_soc_mean"] = r.car_soc[:n].mean(axis=1) if len(s.car_ids) else 0.0
        for i, b in enumerate(s.battery_ids):
            df[f"battery_{b}_kw"] = r.battery_kw[:n, i]
            df[f"battery_{b}_soc"] = r.battery_soc[:n, i]
        for i, site in enumerate(s.site_ids):
            df[f"site_{site}_pv_used_kw"] = r.site_pv_used_kw[:n, i]
            df[f"site_{site}_flow_kw"] = r.site_flow_kw[:n, i]
            df[f"site_{site}_compute_kw"] = r.compute_served_kw[:n, i]
        for i, sh in enumerate(self.scenario.loads.shelters):
            df[f"shelter_{sh.id}_served_kw"] = r.shelter_served_kw[:n, i]
        for i, car in enumerate(s.car_ids):
            df[f"car_{car}_soc"] = r.car_soc[:n, i]
        return df

    def clipped_commands(self) -> pd.DataFrame:
        """Every command the twin changed: time, device, requested and applied kW, reason (grid-limit moves
        included, as "grid cap")."""
        t, d = np.nonzero(self.rec.clip_reason[: self.steps])
        return pd.DataFrame({
            "time": self.inputs.grid.times_utc[t], "device": np.array(self.device_ids, dtype=object)[d],
            "requested_kw": self.rec.clip_requested_kw[t, d], "applied_kw": self.rec.clip_applied_kw[t, d],
            "reason": np.array(REASONS, dtype=object)[self.rec.clip_reason[t, d]]})
