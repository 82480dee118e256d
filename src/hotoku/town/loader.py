"""Reading scenarios: shipped ones by name, a user's by path; errors name the file, field and problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from hotoku.town.scenario import Problem, Scenario

SHIPPED_DIR = Path(__file__).parent / "scenarios"
ENTRY_POINT_GROUP = "hotoku.scenarios"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``problems`` says what to fix, field by field."""

    def __init__(self, path: str | Path, problems: list[Problem]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    title: str
    path: Path


def scenario_paths() -> list[Path]:
    """Shipped scenario files, then those that installed plug-ins add (entry points ``hotoku.scenarios``).

    A plug-in's entry point is a callable returning YAML paths or folders of them.
    """
    paths = sorted(SHIPPED_DIR.glob("*.yaml"))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found: Iterable[str | Path] = ep.load()()
        for p in map(Path, found):
            paths.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return paths


def list_scenarios() -> list[ScenarioInfo]:
    """Name and title of each available scenario (read without full validation, so one bad file shows)."""
    out = []
    for p in scenario_paths():
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            raw = {}
        out.append(ScenarioInfo(str(raw.get("name", p.stem)), str(raw.get("title", "")), p))
    return out


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else the available scenario of that name."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ScenarioError(p, [Problem("", "no such file")])
        return p
    for info in list_scenarios():
        if info.name == str(name_or_path) or info.path.stem == str(name_or_path):
            return info.path
    names = ", ".join(i.name for i in list_scenarios())
    raise ScenarioError(str(name_or_path), [Problem("", f"no such scenario file or name; shipped: {names}")])


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read, validate and return a scenario; raise :class:`ScenarioError` naming every problem found."""
    path = resolve_scenario(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(path, [Problem(where, f"not valid YAML: {getattr(e, 'problem', e)}")]) from e
    return parse_scenario(raw, path)


def parse_scenario(raw: Any, path: str | Path = "<scenario>") -> Scenario:
    """Validate an already-parsed mapping (``path`` is used in messages and to find series files)."""
    if not isinstance(raw, dict):
        raise ScenarioError(path, [Problem("", "the file must hold a mapping of fields (name:, location:, ...)")])
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as e:
        raise ScenarioError(path, [_problem(err) for err in e.errors()]) from e
    base = Path(path).parent
    series: dict[str, pd.Series] = {}
    for field, column in (("price_series_file", "price_jpy_per_kwh"), ("co2_series_file", "co2_kg_per_kwh")):
        name = getattr(scenario.grid, field)
        if name:
            series[column] = read_hourly_series(base / name, column, f"grid.{field}", path,
                                                scenario.location.timezone)
    return scenario.with_series(series) if series else scenario


def read_hourly_series(file: Path, column: str, field: str, scenario_path: str | Path, timezone: str) -> pd.Series:
    """A CSV with columns ``time`` and ``column``; times without a zone are read in the town's zone."""
    try:
        df = pd.read_csv(file)
    except (OSError, ValueError) as e:
        raise ScenarioError(scenario_path, [Problem(field, f"cannot read {file}: {e}")]) from e
    missing = [c for c in ("time", column) if c not in df.columns]
    if missing:
        raise ScenarioError(scenario_path, [Problem(field, f"{file} lacks column(s) {', '.join(missing)}")])
    try:
        t = pd.to_datetime(df["time"])
        t = t.dt.tz_localize(timezone) if t.dt.tz is None else t
        values = pd.to_numeric(df[column])
    except (ValueError, TypeError) as e:
        raise ScenarioError(scenario_path, [Problem(field, f"{file}: {e}")]) from e
    return pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(t).tz_convert("UTC"), name=column)


def _problem(err: Any) -> Problem:
    loc = ""
    for part in err.get("loc", ()):
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if not loc and ": " in msg:  # cross-field checks put the path in front of the message
        loc, msg = msg.split(": ", 1)
    if err.get("type") == "extra_forbidden":
        msg = "unknown field (check the spelling; see the shipped scenarios for the fields a block takes)"
    elif err.get("type") == "missing":
        msg = "required field is missing"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    return Problem(loc, msg)
