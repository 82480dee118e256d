"""NGSI-LD geo-queries (ETSI GS CIM 009 clause 4.10) over GeoJSON (RFC 7946).

Pure code: parse the query parameters, give the store a bbox for its spatial
index, then refine candidates exactly with shapely.  Relations are evaluated on
lon/lat as GeoJSON prescribes; ``near`` uses metres on a sphere via an
azimuthal-equidistant plane centred on the query geometry, which is exact
(= haversine) from a Point query and far under 1 % off at town scale otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape as _to_shapely
from shapely.geometry.base import BaseGeometry

from hotoku.broker.errors import BadRequestData

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
GEORELS = ("near", "within", "contains", "intersects", "equals", "disjoint", "overlaps")
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
_TYPE_BY_LOWER = {t.lower(): t for t in GEOMETRY_TYPES}
_BBOX_MARGIN = 1.05  # slack so that projection error can never drop a true match
Bounds = tuple[float, float, float, float]
Stored = dict[str, Any] | BaseGeometry | None
_Projector = Callable[[np.ndarray], np.ndarray]


def _bad(field_name: str, problem: str) -> BadRequestData:
    return BadRequestData(f"{field_name}: {problem}", field=field_name)


def validate_geometry(obj: Any, field: str) -> dict[str, Any]:
    """Check a GeoJSON geometry (returned unchanged) so clients learn which ring or position is wrong,
    instead of shapely silently building nonsense."""
    if not isinstance(obj, dict):
        raise _bad(field, "a GeoJSON geometry must be a JSON object")
    gtype = obj.get("type")
    if gtype == "GeometryCollection":
        members = obj.get("geometries")
        if not isinstance(members, list) or not members:
            raise _bad(field, "GeometryCollection needs a non-empty 'geometries' array")
        for member in members:
            if isinstance(member, dict) and member.get("type") == "GeometryCollection":
                raise _bad(field, "nested GeometryCollections are not supported")
            validate_geometry(member, field)
        return obj
    if gtype not in GEOMETRY_TYPES:
        raise _bad(field, f"unsupported geometry type {gtype!r}")
    if "coordinates" not in obj:
        raise _bad(field, f"{gtype} has no 'coordinates'")
    _CHECKS[gtype](obj["coordinates"], field, gtype)
    return obj


def _position(p: Any, field: str, where: str) -> None:
    if not isinstance(p, list) or not 2 <= len(p) <= 3:
        raise _bad(field, f"{where} must be a position [lon, lat] or [lon, lat, alt]")
    for v in p:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _bad(field, f"{where} has a non-numeric coordinate {v!r}")
    if not -180 <= p[0] <= 180:
        raise _bad(field, f"{where} has longitude {p[0]} outside [-180, 180]")
    if not -90 <= p[1] <= 90:
        raise _bad(field, f"{where} has latitude {p[1]} outside [-90, 90]")


def _positions(ps: Any, field: str, where: str, minimum: int) -> None:
    if not isinstance(ps, list) or len(ps) < minimum:
        raise _bad(field, f"{where} must be an array of at least {minimum} positions")
    for i, p in enumerate(ps):
        _position(p, field, f"{where} position {i}")


def _ring(ps: Any, field: str, where: str) -> None:
    _positions(ps, field, where, 4)
    if ps[0] != ps[-1]:
        raise _bad(field, f"{where} is not closed")


_Check = Callable[[Any, str, str], None]


def _multi(check: _Check, part: str) -> _Check:
    def run(items: Any, field: str, where: str) -> None:
        if not isinstance(items, list) or not items:
            raise _bad(field, f"{where} must be a non-empty array")
        for i, item in enumerate(items):
            check(item, field, f"{where} {part} {i}")

    return run


_line = partial(_positions, minimum=2)
_polygon = _multi(_ring, "ring")
_CHECKS: dict[str, _Check] = {
    "Point": _position,
    "MultiPoint": partial(_positions, minimum=1),
    "LineString": _line,
    "MultiLineString": _multi(_line, "line"),
    "Polygon": _polygon,
    "MultiPolygon": _multi(_polygon, "polygon"),
}


def _walk(coords: Any) -> Iterable[Sequence[float]]:
    if coords and isinstance(coords[0], (int, float)):
        yield coords
    else:
        for c in coords:
            yield from _walk(c)


def bbox(geometry: dict[str, Any]) -> Bounds:
    """(minx, miny, maxx, maxy) of a validated geometry, without building a shapely object."""
    parts = geometry["geometries"] if geometry["type"] == "GeometryCollection" else [geometry]
    pts = np.array([p[:2] for g in parts for p in _walk(g["coordinates"])], dtype=float)
    (minx, miny), (maxx, maxy) = pts.min(axis=0).tolist(), pts.max(axis=0).tolist()
    return (minx, miny, maxx, maxy)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two lon/lat positions."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


def _aeqd(lon0: float, lat0: float) -> _Projector:
    """Azimuthal-equidistant projection (metres) centred on (lon0, lat0); its radius is the
    haversine distance, so distances from the centre are exactly the great-circle ones."""
    lam0, phi0 = math.radians(lon0), math.radians(lat0)
    sin0, cos0 = math.sin(phi0), math.cos(phi0)

    def project(xy: np.ndarray) -> np.ndarray:
        lam, phi = np.radians(xy[:, 0]), np.radians(xy[:, 1])
        dlam = (lam - lam0 + math.pi) % (2 * math.pi) - math.pi
        cos_phi = np.cos(phi)
        a = np.sin((phi - phi0) / 2) ** 2 + cos0 * cos_phi * np.sin(dlam / 2) ** 2
        c = 2 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        sin_c = np.sin(c)
        k = EARTH_RADIUS_M * np.where(sin_c > 1e-12, c / np.where(sin_c > 1e-12, sin_c, 1.0), 1.0)
        x = k * cos_phi * np.sin(dlam)
        y = k * (cos0 * np.sin(phi) - sin0 * cos_phi * np.cos(dlam))
        return np.column_stack((x, y))

    return project


@dataclass(frozen=True)
class GeoQuery:
    """A parsed geo-query; the shapely forms are built once and prepared for reuse."""

    georel: str
    geometry: dict[str, Any] = field(hash=False)
    geoproperty: str = "location"
    min_distance: float | None = None
    max_distance: float | None = None
    shape: BaseGeometry = field(init=False, repr=False, compare=False)
    plane: BaseGeometry = field(init=False, repr=False, compare=False)
    project: _Projector = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        has_distance = self.min_distance is not None or self.max_distance is not None
        if self.georel not in GEORELS or has_distance != (self.georel == "near"):
            raise _bad("georel", f"{self.georel!r} needs a distance if and only if it is 'near'")
        geom = _to_shapely(self.geometry)
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        if self.geometry["type"] == "Point":
            lon0, lat0 = self.geometry["coordinates"][:2]
        else:
            minx, miny, maxx, maxy = geom.bounds
            lon0, lat0 = (minx + maxx) / 2, (miny + maxy) / 2
        project = _aeqd(lon0, lat0)
        plane = shapely.transform(geom, project)
        shapely.prepare([geom, plane])
        for name, value in (("shape", geom), ("plane", plane), ("project", project)):
            object.__setattr__(self, name, value)


def parse_geo_query(
    georel: str | None,
    geometry: str | None,
    coordinates: str | dict[str, Any] | list[Any] | None,
    geoproperty: str | None,
) -> GeoQuery | None:
    """Build a GeoQuery from HTTP parameters, a query body or a subscription's geoQ.

    All four absent: None.  Partial or malformed: BadRequestData naming the parameter.
    """
    if georel is None and geometry is None and coordinates is None and geoproperty is None:
        return None
    if georel is None:
        raise _bad("georel", "required when geometry, coordinates or geoproperty is given")
    rel, min_d, max_d = _parse_georel(georel)
    geom = _parse_geometry(geometry, coordinates)
    prop = "location" if geoproperty is None else geoproperty
    if not isinstance(prop, str) or not prop.strip():
        raise _bad("geoproperty", "must be a non-empty attribute name")
    return GeoQuery(rel, geom, prop.strip(), min_d, max_d)


def _parse_georel(text: Any) -> tuple[str, float | None, float | None]:
    if not isinstance(text, str):
        raise _bad("georel", "must be a string")
    rel, *mods = [p.strip() for p in text.split(";")]
    if rel not in GEORELS:
        raise _bad("georel", f"unknown relation {rel!r}; expected one of {', '.join(GEORELS)}")
    if rel != "near":
        if mods:
            raise _bad("georel", f"{rel} takes no modifiers, got {';'.join(mods)!r}")
        return rel, None, None
    if not mods:
        raise _bad("georel", "near needs ;maxDistance==<metres> or ;minDistance==<metres>")
    dist: dict[str, float] = {}
    for mod in mods:
        name, sep, value = (part.strip() for part in mod.partition("=="))
        if not sep or name not in ("maxDistance", "minDistance") or name in dist:
            raise _bad("georel", f"expected one maxDistance==<m> and/or minDistance==<m>, got {mod!r}")
        try:
            dist[name] = float(value)
        except ValueError:
            dist[name] = math.nan
        if not math.isfinite(dist[name]) or dist[name] < 0:
            raise _bad("georel", f"{name} must be a non-negative number of metres, got {value!r}")
    lo, hi = dist.get("minDistance"), dist.get("maxDistance")
    if lo is not None and hi is not None and lo > hi:
        raise _bad("georel", "minDistance exceeds maxDistance")
    return rel, lo, hi


def _parse_geometry(geometry: Any, coordinates: Any) -> dict[str, Any]:
    if isinstance(coordinates, dict):  # a whole GeoJSON geometry object
        gtype = coordinates.get("type")
        if geometry is not None and str(geometry).strip().lower() != str(gtype).lower():
            raise _bad("geometry", f"{geometry!r} does not match the coordinates' type {gtype!r}")
        geometry, coordinates = gtype, coordinates.get("coordinates")
    if geometry is None:
        raise _bad("geometry", "required with georel")
    if coordinates is None:
        raise _bad("coordinates", "required with georel")
    gtype = _TYPE_BY_LOWER.get(str(geometry).strip().lower())
    if gtype is None:
        raise _bad("geometry", f"unsupported {geometry!r}; expected one of {', '.join(GEOMETRY_TYPES)}")
    if isinstance(coordinates, str):
        text = coordinates.strip()
        if not text.startswith("["):  # tolerate a bare "lon,lat"
            text = f"[{text}]"
        try:
            coordinates = json.loads(text)
        except ValueError:
            raise _bad("coordinates", f"not a JSON array: {coordinates!r}") from None
    if not isinstance(coordinates, list):
        raise _bad("coordinates", "must be a JSON array")
    return validate_geometry({"type": gtype, "coordinates": coordinates}, "coordinates")


def query_bbox(q: GeoQuery) -> Bounds | None:
    """A degree box that every match's bbox intersects (None: unrestricted), for the store's index."""
    if q.georel == "disjoint" or (q.georel == "near" and q.max_distance is None):
        return None
    minx, miny, maxx, maxy = (float(v) for v in q.shape.bounds)
    if q.georel != "near":
        return (minx, miny, maxx, maxy)
    delta = math.degrees(q.max_distance * _BBOX_MARGIN / EARTH_RADIUS_M) + 1e-9
    if delta >= 90:
        return (-180.0, -90.0, 180.0, 90.0)
    lo, hi = max(miny - delta, -90.0), min(maxy + delta, 90.0)
    # Widest longitude span of a spherical cap of radius delta centred at latitude phi.
    phi = math.radians(max(abs(miny), abs(maxy)))
    s = math.sin(math.radians(delta)) / max(math.cos(phi), 1e-300)
    dlon = math.degrees(math.asin(s)) if s < 1 else 360.0
    if minx - dlon < -180 or maxx + dlon > 180:
        return (-180.0, lo, 180.0, hi)
    return (minx - dlon, lo, maxx + dlon, hi)


_UNPARSEABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, shapely.errors.ShapelyError)


def _shape_of(stored: Stored) -> BaseGeometry | None:
    if stored is None or isinstance(stored, BaseGeometry):
        return stored
    try:
        return _to_shapely(stored)
    except _UNPARSEABLE:
        return None  # unparseable stored data never matches


def _shapes(stored: Iterable[Stored]) -> np.ndarray:
    """Candidates as a shapely array; Point dicts, the common case, are built in one C call."""
    items = list(stored)
    arr = np.empty(len(items), dtype=object)
    pts = [i for i, g in enumerate(items) if isinstance(g, dict) and g.get("type") == "Point"]
    try:
        arr[pts] = shapely.points([items[i]["coordinates"][:2] for i in pts]) if pts else []
    except _UNPARSEABLE:
        pts = []
    done = set(pts)
    arr[:] = [arr[i] if i in done else _shape_of(g) for i, g in enumerate(items)]
    broken = ~shapely.is_valid(arr) & ~shapely.is_missing(arr)
    if broken.any():
        arr[broken] = shapely.make_valid(arr[broken])
    return arr


def _distances(q: GeoQuery, arr: np.ndarray) -> np.ndarray:
    d = shapely.distance(q.plane, shapely.transform(arr, q.project))
    return np.where(np.isnan(d), np.inf, d)


# The query goes first so its prepared form speeds up every test:
# "stored within query" == "query contains stored" and vice versa.
_PREDICATES: dict[str, Callable[[BaseGeometry, np.ndarray], np.ndarray]] = {
    "within": shapely.contains,
    "contains": shapely.within,
    "intersects": shapely.intersects,
    "equals": shapely.equals,
    "disjoint": shapely.disjoint,
    "overlaps": shapely.overlaps,
}


def distances_m(q: GeoQuery, stored: Iterable[Stored]) -> np.ndarray:
    """Metres from the query geometry to each stored one (inf when missing)."""
    return _distances(q, _shapes(stored))


def distance_m(q: GeoQuery, stored: Stored) -> float:
    """Metres from the query geometry to one stored geometry, for ordering by distance."""
    return float(distances_m(q, [stored])[0])


def matches_many(q: GeoQuery, stored: Iterable[Stored]) -> list[bool]:
    """The exact geo predicate over many candidates at once (missing → False)."""
    arr = _shapes(stored)
    if q.georel == "near":
        d = _distances(q, arr)
        ok = np.isfinite(d)
        if q.max_distance is not None:
            ok &= d <= q.max_distance
        if q.min_distance is not None:
            ok &= d >= q.min_distance
    else:
        ok = _PREDICATES[q.georel](q.shape, arr) & ~shapely.is_missing(arr)
    return [bool(v) for v in ok]


def matches(q: GeoQuery, stored: Stored) -> bool:
    """The exact geo predicate for one stored geometry (GeoJSON dict or shapely)."""
    return matches_many(q, [stored])[0]
