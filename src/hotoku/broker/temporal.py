"""The temporal API's pure core (clauses 4.5.7, 4.5.9, 4.5.19, 5.5.8-5.5.11, 6.3.10).

Parsing and validating temporal query parameters, and turning history rows (as
the store selects them) into the three temporal representations. No SQL here:
the store hands over :class:`HistRow` / :class:`AggRow` and this module only
shapes them, so the rules are testable without a database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hotoku.broker.errors import BadRequestData, OperationNotSupported
from hotoku.broker.model import NULL_URI, TARGET_MEMBER, Instance
from hotoku.broker.normalize import Terms, check_datetime, check_uri, parse_instance, parse_types
from hotoku.broker.render import View, render_instance

TIMERELS = ("before", "after", "between")
TIME_PROPERTIES = {"observedAt": "observed_at", "createdAt": "created_at", "modifiedAt": "modified_at"}
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
INSTANCE_PREFIX = "urn:ngsi-ld:attribute:instance:"
#: The member of the simplified representation (4.5.9) holding each target member's pairs.
PLURAL = {"value": "values", "object": "objects", "languageMap": "languageMaps", "vocab": "vocabs",
          "valueList": "valueLists", "objectList": "objectLists", "json": "jsons"}
_DURATION = re.compile(r"^P(?:(\d+)W|(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?"
                       r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?)$")
_BAD_NAME = set("<>\"'=;()& ?/#")


@dataclass(frozen=True)
class TemporalQuery:
    """A validated temporal query; instants are in the stored form (UTC, ms, 'Z'), so they compare as text."""

    timerel: str | None = None
    time_at: str | None = None
    end_time_at: str | None = None
    timeproperty: str = "observedAt"
    last_n: int | None = None

    @property
    def column(self) -> str:
        return TIME_PROPERTIES[self.timeproperty]


@dataclass(frozen=True)
class Aggregation:
    methods: tuple[str, ...]
    period_ms: int  # 0: one period spanning the whole time range
    duration: str


@dataclass
class HistRow:
    """One attribute instance from the history: ``t`` is the chosen time property, ``tk`` the sort key."""

    seq: int
    entity_id: str
    attr: str
    dataset_id: str | None
    t: str | None
    tk: str
    instance: Instance


@dataclass
class AggRow:
    """The aggregates of one (entity, attribute, datasetId, period) computed by the store."""

    entity_id: str
    attr: str
    dataset_id: str | None
    bucket: int
    values: dict[str, Any]


# --- parameters --------------------------------------------------------------------------------------
def parse_temporal_query(timerel: str | None = None, time_at: str | None = None, end_time_at: str | None = None,
                         timeproperty: str | None = None, last_n: Any = None) -> TemporalQuery:
    """Validate the temporal query; every error names the parameter at fault."""
    if timerel is not None and timerel not in TIMERELS:
        raise BadRequestData(f"timerel must be before, after or between, not {timerel!r}", field="timerel")
    if timerel and not time_at:
        raise BadRequestData(f"timerel={timerel} needs timeAt", field="timeAt")
    if time_at and not timerel:
        raise BadRequestData("timeAt needs timerel (before, after or between)", field="timerel")
    at = check_datetime(time_at, "timeAt") if time_at else None
    end = None
    if timerel == "between":
        if not end_time_at:
            raise BadRequestData("timerel=between needs endTimeAt", field="endTimeAt")
        end = check_datetime(end_time_at, "endTimeAt")
        if at is not None and end <= at:
            raise BadRequestData("endTimeAt must be after timeAt", field="endTimeAt")
    prop = timeproperty or "observedAt"
    if prop not in TIME_PROPERTIES:
        raise BadRequestData(f"timeproperty must be observedAt, createdAt or modifiedAt, not {prop!r}",
                             field="timeproperty")
    n = None
    if last_n is not None:
        try:
            n = int(last_n)
        except (TypeError, ValueError):
            n = 0
        if n <= 0 or isinstance(last_n, bool):
            raise BadRequestData(f"lastN must be a positive integer, not {last_n!r}", field="lastN")
    return TemporalQuery(timerel, at, end, prop, n)


def parse_duration_ms(text: str) -> int:
    """ISO 8601 duration → milliseconds. Years and months have no fixed length, so they are refused."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData(f"aggrPeriodDuration must be an ISO 8601 duration like PT1H or P1D, not {text!r}",
                             field="aggrPeriodDuration")
    weeks, years, months, days, hours, minutes, seconds = m.groups()
    if (years and int(years)) or (months and int(months)):
        raise OperationNotSupported("aggrPeriodDuration: years and months are not supported (use days)",
                                    field="aggrPeriodDuration")
    total = (int(weeks or 0) * 7 + int(days or 0)) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60
    return round((total + float(seconds or 0)) * 1000)


def parse_aggregation(methods: str | list[str] | None, duration: str | None) -> Aggregation:
    if not methods:
        raise BadRequestData("aggregatedValues needs aggrMethods", field="aggrMethods")
    items = methods.split(",") if isinstance(methods, str) else methods
    names = tuple(dict.fromkeys(str(m).strip() for m in items if str(m).strip()))
    for name in names:
        if name not in AGGR_METHODS:
            raise BadRequestData(f"aggrMethods: unknown method {name!r}; use {', '.join(AGGR_METHODS)}",
                                 field="aggrMethods")
    if not names:
        raise BadRequestData("aggregatedValues needs aggrMethods", field="aggrMethods")
    dur = duration or "PT0S"
    return Aggregation(names, parse_duration_ms(dur), dur)


# --- instants ----------------------------------------------------------------------------------------
def to_datetime(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def to_iso(dt: datetime) -> str:
    u = dt.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def instance_id(seq: int) -> str:
    return f"{INSTANCE_PREFIX}{seq}"


def parse_instance_id(text: str) -> int:
    check_uri(text, "instanceId")
    tail = text.removeprefix(INSTANCE_PREFIX)
    if tail == text or not tail.isdigit():
        raise BadRequestData(f"instanceId must look like {INSTANCE_PREFIX}<n>, not {text!r}", field="instanceId")
    return int(tail)


# --- provision payloads ------------------------------------------------------------------------------
def parse_temporal_attrs(body: dict[str, Any], terms: Terms, *, now: str) -> list[tuple[str, Instance]]:
    """Attributes as arrays of instances (4.5.7); unlike an entity, one datasetId may recur over time."""
    out: list[tuple[str, Instance]] = []
    for name, raw in body.items():
        if name in ("id", "@id", "type", "@type", "scope", "@context", "createdAt", "modifiedAt"):
            continue
        if not name or _BAD_NAME & set(name):
            raise BadRequestData(f"attribute name {name!r} is not allowed", field=name)
        iri = terms.expand(name)
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise BadRequestData(f"{name}: give at least one instance", field=name)
        for i, item in enumerate(items):
            out.append((iri, parse_instance(item, name, terms, now=now, field=f"{name}[{i}]")))
    return out


def parse_temporal_entity(body: Any, terms: Terms, *, now: str) -> tuple[str, list[str], list[tuple[str, Instance]]]:
    if not isinstance(body, dict):
        raise BadRequestData("a temporal entity must be a JSON object", field="body")
    eid = check_uri(body.get("id", body.get("@id")), "id")
    types = parse_types(body.get("type", body.get("@type")), terms)
    return eid, types, parse_temporal_attrs(body, terms, now=now)


# --- paging (6.3.10) ---------------------------------------------------------------------------------
def cap_rows(groups: dict[tuple[str, str], list[HistRow]], cap: int, tq: TemporalQuery
             ) -> tuple[dict[tuple[str, str], list[HistRow]], str | None]:
    """Keep at most ``cap`` instances per attribute, cut at one instant so the page has no holes.

    ``groups`` arrive in fetch order: newest first with lastN, oldest first otherwise. The result is
    oldest first, with the Content-Range value when something was left out (None otherwise).
    """
    desc = tq.last_n is not None
    truncated = [rows for rows in groups.values() if len(rows) > cap]
    if not truncated:
        return {k: (rows[::-1] if desc else rows) for k, rows in groups.items()}, None
    edges = [rows[cap - 1].tk for rows in truncated]
    cut = max(edges) if desc else min(edges)
    kept: dict[tuple[str, str], list[HistRow]] = {}
    for k, rows in groups.items():
        keep = [r for r in rows[:cap] if (r.tk >= cut if desc else r.tk <= cut)]
        if keep:
            kept[k] = keep[::-1] if desc else keep
    times = [r.tk for rows in kept.values() for r in rows]
    if desc:
        start = tq.end_time_at if tq.timerel == "between" else tq.time_at if tq.timerel == "before" else max(times)
    else:
        start = tq.time_at if tq.timerel in ("after", "between") else min(times)
    return kept, f"date-time {start}-{cut}/*"


# --- representations ---------------------------------------------------------------------------------
def _entity_head(eid: str, types: list[str], terms: Terms) -> dict[str, Any]:
    ts = [terms.compact(t) for t in types] or ["Entity"]
    return {"id": eid, "type": ts[0] if len(ts) == 1 else ts}


def _is_deleted(inst: Instance) -> bool:
    return "deletedAt" in inst or inst.get("value") == NULL_URI


def render_temporal(eid: str, types: list[str], rows: list[HistRow], terms: Terms, *, fmt: str,
                    sys_attrs: bool, context: Any = None) -> dict[str, Any]:
    """Normalized / concise (4.5.7) or simplified ``temporalValues`` (4.5.9) form of one entity."""
    out = _entity_head(eid, types, terms)
    by_attr: dict[str, list[HistRow]] = {}
    for r in rows:
        by_attr.setdefault(r.attr, []).append(r)
    view = View(fmt="concise" if fmt == "concise" else "normalized", sys_attrs=sys_attrs)
    for iri, attr_rows in by_attr.items():
        name = terms.compact(iri)
        if fmt == "temporalValues":
            simple = _simplified(attr_rows, terms)
            if simple:
                out[name] = simple[0] if len(simple) == 1 else simple
        else:
            out[name] = [render_instance({**r.instance, "instanceId": instance_id(r.seq)}, terms, view)
                         for r in attr_rows]
    if context is not None:
        out["@context"] = context
    return out


def _simplified(rows: list[HistRow], terms: Terms) -> list[dict[str, Any]]:
    by_ds: dict[str | None, dict[str, Any]] = {}
    for r in rows:
        if _is_deleted(r.instance):
            continue
        kind = r.instance.get("type", "Property")
        member = TARGET_MEMBER.get(kind, "value")
        val = r.instance.get(member)
        if kind == "VocabProperty":
            val = [terms.compact(v) for v in val] if isinstance(val, list) else terms.compact(val)
        entry = by_ds.setdefault(r.dataset_id, {"type": kind})
        entry.setdefault(PLURAL[member], []).append([val, r.t or r.tk])
        if r.dataset_id is not None:
            entry["datasetId"] = r.dataset_id
    return [by_ds[k] for k in sorted(by_ds, key=lambda k: (k is not None, k or ""))]


def period_bounds(start: str, period_ms: int, bucket: int, whole_end: str) -> tuple[str, str]:
    if period_ms == 0:
        return start, whole_end
    begin = to_datetime(start) + timedelta(milliseconds=period_ms * bucket)
    return to_iso(begin), to_iso(begin + timedelta(milliseconds=period_ms))


def aggregate_value(method: str, v: dict[str, Any]) -> Any:
    """One method's result from the store's per-period sums; stddev is the population deviation."""
    if method == "totalCount":
        return v["total"]
    if method == "distinctCount":
        return v["distinct"]
    if v["n"] == 0:
        return None
    if method == "stddev":
        mean = v["sum"] / v["n"]
        return math.sqrt(max(v["sumsq"] / v["n"] - mean * mean, 0.0))
    return v[method]


def render_aggregated(eid: str, types: list[str], rows: list[AggRow], agg: Aggregation, terms: Terms, *,
                      start: str, end: str, last_n: int | None = None, context: Any = None) -> dict[str, Any]:
    """The aggregated temporal representation (4.5.19): per method, ``[value, startAt, endAt]`` per period."""
    out = _entity_head(eid, types, terms)
    grouped: dict[str, dict[str | None, list[AggRow]]] = {}
    for r in rows:
        grouped.setdefault(r.attr, {}).setdefault(r.dataset_id, []).append(r)
    for iri, by_ds in grouped.items():
        entries = []
        for ds in sorted(by_ds, key=lambda k: (k is not None, k or "")):
            buckets = sorted(by_ds[ds], key=lambda r: r.bucket)
            if last_n is not None:
                buckets = buckets[-last_n:]
            entry: dict[str, Any] = {"type": "Property"}
            for method in agg.methods:
                triples = []
                for b in buckets:
                    val = aggregate_value(method, b.values)
                    if val is not None:
                        triples.append([val, *period_bounds(start, agg.period_ms, b.bucket, end)])
                entry[method] = triples
            if ds is not None:
                entry["datasetId"] = ds
            entries.append(entry)
        out[terms.compact(iri)] = entries[0] if len(entries) == 1 else entries
    if context is not None:
        out["@context"] = context
    return out
