"""A self-contained HTML report of one or more runs: inline SVG figures (matplotlib), no network needed.

Figures: a typical and a worst day's energy flows, monthly green share, the import duration curve, fleet
state of charge, and cumulative CO2 against the 2030 carbon-half path (city target: -50 % against FY2013).
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence

import numpy as np

from hotoku.twin.results import Results

HEADLINE = ("green_share", "self_sufficiency", "self_consumption", "grid_import_kwh", "grid_export_kwh", "co2_t",
            "cost_jpy", "peak_import_kw", "curtailment_kwh", "unserved_kwh", "battery_cycles", "bookings",
            "failed_bookings", "service_level", "unmet_km", "pv_yield_kwh_per_kwp", "runtime_s")


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # reproducible files
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def day_flows_svg(res: Results) -> str:
    """Energy flows on a typical day (median PV) and on the worst day (lowest green fraction of supply)."""
    import matplotlib.pyplot as plt

    tz = res.scenario.location.timezone
    df = res.series().tz_convert(tz)
    by_day = df.resample("D")
    pv = by_day["pv_available_kw"].sum()
    green = by_day["green_served_kw"].sum() / by_day["load_served_kw"].sum().replace(0, np.nan)
    typical = pv.index[int(np.argsort(pv.to_numpy())[len(pv) // 2])]
    worst = green.idxmin() if green.notna().any() else typical
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharey=True)
    panels = ((axes[0], typical, "typical day (median PV)"), (axes[1], worst, "worst day (lowest green share)"))
    for ax, day, label in panels:
        d = df.loc[str(day.date())]
        x = d.index.hour + d.index.minute / 60
        ax.stackplot(x, d["pv_used_kw"] - d["grid_export_kw"].clip(upper=d["pv_used_kw"]), d["battery_discharge_kw"],
                     d["car_discharge_kw"], d["grid_import_kw"], labels=["local PV used", "battery", "V2G", "import"],
                     colors=["#f2b701", "#3969ac", "#7f3c8d", "#a5aa99"])
        ax.stackplot(x, -d["grid_export_kw"], -d["battery_charge_kw"], -d["car_charge_kw"],
                     labels=["export", "battery charge", "EV charge"], colors=["#e68310", "#80ba5a", "#11a579"])
        ax.plot(x, d["load_served_kw"], color="black", lw=1.2, label="load served")
        ax.set_title(f"{res.controller}: {label}, {day.date()}", fontsize=9)
        ax.set_xlabel("local hour")
        ax.axhline(0, color="grey", lw=0.5)
    axes[0].set_ylabel("kW")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _svg(fig)


def monthly_green_svg(results: Sequence[Results]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    width = 0.8 / len(results)
    for i, r in enumerate(results):
        df = r.series().tz_convert(r.scenario.location.timezone)
        m = df.resample("MS")
        g = (m["green_served_kw"].sum() / m["load_served_kw"].sum().replace(0, np.nan)).fillna(0)
        ax.bar(np.arange(len(g)) + i * width, g.to_numpy() * 100, width, label=r.controller)
        ax.set_xticks(np.arange(len(g)) + 0.4 - width / 2, [d.strftime("%Y-%m") for d in g.index], fontsize=7)
    ax.set_ylabel("green share of loads, %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return _svg(fig)


def duration_curve_svg(results: Sequence[Results]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    for r in results:
        imp = np.sort(r.col("grid_import_kw"))[::-1]
        idx = np.unique(np.linspace(0, len(imp) - 1, min(len(imp), 600)).astype(int))
        ax.plot(idx * r.system.step_h, imp[idx], label=r.controller)
    ax.set_xlabel("hours at or above")
    ax.set_ylabel("grid import, kW")
    ax.legend(fontsize=8)
    return _svg(fig)


def fleet_soc_svg(results: Sequence[Results]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    for r in results:
        df = r.series().tz_convert(r.scenario.location.timezone)
        d = df["car_soc_mean"].resample("D")
        ax.plot(d.mean().index, d.mean() * 100, label=f"{r.controller} (daily mean)")
        ax.fill_between(d.min().index, d.min() * 100, d.max() * 100, alpha=0.15)
    ax.set_ylabel("fleet mean SOC, %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return _svg(fig)


def co2_path_svg(results: Sequence[Results]) -> str:
    """Cumulative CO2 against all-grid supply at the FY2013 factor and its half (the 2030 carbon-half path)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    r0 = results[0]
    ref_factor = r0.scenario.grid.reference_co2_kg_per_kwh or r0.scenario.grid.co2_kg_per_kwh
    t = r0.inputs.grid.times_utc[: r0.steps].tz_convert(r0.scenario.location.timezone)
    demand_kwh = (r0.col("load_kw") + r0.col("car_charge_kw")) * r0.system.step_h
    ref = np.cumsum(demand_kwh) * ref_factor / 1000
    ax.plot(t, ref, color="grey", ls="--", label=f"all from grid at FY2013 factor {ref_factor} kg/kWh")
    ax.plot(t, ref / 2, color="black", ls=":", label="2030 carbon-half path (-50 %)")
    for r in results:
        ax.plot(t, np.cumsum(r.col("co2_kg")) / 1000, label=r.controller)
    ax.set_ylabel("cumulative CO2, t")
    ax.legend(fontsize=8)
    return _svg(fig)


def _fmt(v: float) -> str:
    if isinstance(v, int) or (float(v).is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"


def render_html(results: Sequence[Results]) -> str:
    """The report as one HTML string (figures inline as SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    r0 = results[0]
    sc = r0.scenario
    keys = [k for k in r0.kpis if k in HEADLINE or k.startswith("shelter_")]
    head = "".join(f"<th>{html.escape(r.controller)}</th>" for r in results)
    rows = "".join(f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{_fmt(r.kpis[k])}</td>" for r in results)
                   + "</tr>" for k in keys)
    grid = r0.inputs.grid
    period = f"{grid.times_local[0]:%Y-%m-%d} for {grid.days:g} days, {grid.step_minutes}-minute steps, " \
             f"seed {r0.inputs.seed}"
    figures = [("Energy flows: a typical and a worst day", "".join(day_flows_svg(r) for r in results)),
               ("Monthly green share", monthly_green_svg(results)),
               ("Grid import duration curve", duration_curve_svg(results))]
    if len(r0.system.car_ids):
        figures.append(("Fleet state of charge", fleet_soc_svg(results)))
    figures.append(("CO2 against the 2030 carbon-half path", co2_path_svg(results)))
    body = "".join(f"<h2>{html.escape(t)}</h2><div class='fig'>{svg}</div>" for t, svg in figures)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(sc.title or sc.name)}: twin report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child{{text-align:left}}.fig svg{{max-width:100%;height:auto}}</style></head>
<body><h1>{html.escape(sc.title or sc.name)}</h1>
<p>{html.escape(sc.description)}</p><p>Simulated {html.escape(period)}.</p>
<h2>Key figures</h2><table><tr><th>KPI</th>{head}</tr>{rows}</table>{body}
<p><small>Generated by hotoku's twin. Ratios are 0..1; energy in kWh, power in kW, money in JPY.</small></p>
</body></html>"""
