"""Geo-query core: hand-checked distances and relations around Odawara, plus parsing/validation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from hotoku.broker.errors import BadRequestData
from hotoku.broker.geo import (
    GeoQuery,
    bbox,
    distance_m,
    haversine_m,
    matches,
    matches_many,
    parse_geo_query,
    query_bbox,
    validate_geometry,
)

LON, LAT = 139.155, 35.256  # Odawara
DLAT_500M = 0.0044966  # 500 m / 6371 km in degrees of latitude, by hand
H = 0.005  # half-side of the test square, degrees


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def box(minx: float, miny: float, maxx: float, maxy: float) -> dict[str, Any]:
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def metres_east(m: float, lat: float = LAT) -> float:
    """Degrees of longitude spanning m metres at latitude lat."""
    return DLAT_500M * m / 500 / math.cos(math.radians(lat))


SQUARE = box(LON - H, LAT - H, LON + H, LAT + H)
P0, P500 = point(LON, LAT), point(LON, LAT + DLAT_500M)


def q(georel: str, geom: dict[str, Any]) -> GeoQuery:
    found = parse_geo_query(georel, geom["type"], geom["coordinates"], None)
    assert found is not None
    return found


# ------------------------------------------------------------------ near


def test_two_points_500m_apart() -> None:
    assert haversine_m(LON, LAT, LON, LAT + DLAT_500M) == pytest.approx(500, abs=0.01)
    assert distance_m(q("near;maxDistance==1", P0), P500) == pytest.approx(500, abs=0.01)
    assert not matches(q("near;maxDistance==499", P0), P500)
    assert matches(q("near;maxDistance==501", P0), P500)
    assert matches(q("near;minDistance==499", P0), P500)
    assert not matches(q("near;minDistance==501", P0), P500)
    assert matches(q("near;minDistance==400;maxDistance==600", P0), P500)
    assert not matches(q("near;minDistance==501;maxDistance==600", P0), P500)


def test_east_west_500m_uses_latitude() -> None:
    east = point(LON + metres_east(500), LAT)
    assert distance_m(q("near;maxDistance==1", P0), east) == pytest.approx(500, abs=0.05)
    # The same longitude offset spans 500 / cos(35.256°) ≈ 500 / 0.8166 ≈ 612.3 m on the equator.
    assert haversine_m(0, 0, metres_east(500), 0) == pytest.approx(612.3, abs=0.5)


def test_near_polygon_query_measures_to_the_edge() -> None:
    outside = point(LON + H + metres_east(300), LAT)  # 300 m east of the east edge
    assert distance_m(q("near;maxDistance==1", SQUARE), outside) == pytest.approx(300, rel=0.01)
    assert matches(q("near;maxDistance==303", SQUARE), outside)
    assert not matches(q("near;maxDistance==297", SQUARE), outside)
    assert distance_m(q("near;maxDistance==1", SQUARE), P0) == 0  # inside
    assert not matches(q("near;minDistance==1", SQUARE), P0)


def test_near_multipoint_query_and_stored() -> None:
    query = {"type": "MultiPoint", "coordinates": [[LON + 1, LAT], [LON, LAT]]}
    assert matches(q("near;maxDistance==501", query), P500)
    assert not matches(q("near;maxDistance==499", query), P500)
    stored = {"type": "MultiPoint", "coordinates": [[LON + 1, LAT + 1], P500["coordinates"]]}
    assert matches(q("near;maxDistance==501", P0), stored)
    assert not matches(q("near;maxDistance==499", P0), stored)


# ------------------------------------------------------------------ relations

INNER = box(LON - H / 2, LAT - H / 2, LON + H / 2, LAT + H / 2)
OUTER = box(LON - 2 * H, LAT - 2 * H, LON + 2 * H, LAT + 2 * H)
SHIFTED = box(LON, LAT, LON + 2 * H, LAT + 2 * H)  # overlaps SQUARE's NE quarter
FAR = box(LON + 3 * H, LAT + 3 * H, LON + 4 * H, LAT + 4 * H)
ROTATED = {"type": "Polygon", "coordinates": [SQUARE["coordinates"][0][2:] + SQUARE["coordinates"][0][1:3]]}
CROSSING = {"type": "LineString", "coordinates": [[LON - 2 * H, LAT], [LON + 2 * H, LAT]]}
INSIDE_LINE = {"type": "LineString", "coordinates": [[LON - H / 2, LAT], [LON + H / 2, LAT]]}
MP_HALF = {"type": "MultiPoint", "coordinates": [[LON, LAT], [LON + 3 * H, LAT]]}
MP_IN = {"type": "MultiPoint", "coordinates": [[LON, LAT], [LON + H / 2, LAT]]}


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (P0, {"within", "intersects"}),
        (INNER, {"within", "intersects"}),
        (OUTER, {"contains", "intersects"}),
        (SHIFTED, {"intersects", "overlaps"}),
        (FAR, {"disjoint"}),
        (ROTATED, {"within", "contains", "intersects", "equals"}),
        (CROSSING, {"intersects"}),
        (INSIDE_LINE, {"within", "intersects"}),
        (MP_HALF, {"intersects"}),
        (MP_IN, {"within", "intersects"}),
    ],
)
def test_relations_against_square(stored: dict[str, Any], expected: set[str]) -> None:
    rels = ("within", "contains", "intersects", "equals", "disjoint", "overlaps")
    got = {rel for rel in rels if matches(q(rel, SQUARE), stored)}
    assert got == expected


def test_linestring_crossing_polygon_query() -> None:
    assert matches(q("intersects", CROSSING), SQUARE)
    assert matches(q("contains", INSIDE_LINE), SQUARE)  # the square contains the line
    assert not matches(q("contains", CROSSING), SQUARE)


def test_matches_many_agrees_with_matches_and_skips_missing() -> None:
    stored = [P0, P500, SQUARE, FAR, CROSSING, MP_HALF, None, {"type": "Point"}]
    for georel in ("near;maxDistance==600", "near;minDistance==100", "within", "disjoint", "intersects"):
        query = q(georel, INNER)
        many = matches_many(query, stored)
        assert many == [matches(query, s) for s in stored]
        assert many[-2:] == [False, False]


# ------------------------------------------------------------------ query_bbox


def _inside(b: tuple[float, float, float, float], lon: float, lat: float) -> bool:
    return b[0] <= lon <= b[2] and b[1] <= lat <= b[3]


@pytest.mark.parametrize(
    ("georel", "geom", "span_m"),
    [
        ("near;maxDistance==2000", P0, 4000),
        ("near;maxDistance==750", SQUARE, 1500),
        ("near;maxDistance==300", CROSSING, 600),
        ("within", SQUARE, 0),
        ("intersects", OUTER, 0),
    ],
)
def test_query_bbox_encloses_every_match(georel: str, geom: dict[str, Any], span_m: float) -> None:
    rng = np.random.default_rng(2011)
    pts = [point(LON + dx, LAT + dy) for dx, dy in rng.uniform(-0.05, 0.05, size=(4000, 2))]
    query = q(georel, geom)
    qb = query_bbox(query)
    assert qb is not None
    hits = [p for p, ok in zip(pts, matches_many(query, pts), strict=True) if ok]
    assert len(hits) > 20
    assert all(_inside(qb, *p["coordinates"]) for p in hits)
    # Conservative but not sloppy: at most ~6 % wider than the geometry plus the distance.
    gb = bbox(geom)
    assert (qb[3] - qb[1]) <= (gb[3] - gb[1]) + span_m * 1.06 * DLAT_500M / 500


def test_query_bbox_unrestricted_cases() -> None:
    assert query_bbox(q("disjoint", SQUARE)) is None
    assert query_bbox(q("near;minDistance==10", P0)) is None
    polar = query_bbox(q("near;maxDistance==100000", point(0, 89.5)))  # the cap covers the pole
    assert polar is not None and polar[0::2] == (-180.0, 180.0) and polar[3] == 90.0 and polar[1] < 88.6
    wrapped = query_bbox(q("near;maxDistance==1000", point(179.999, 0)))
    assert wrapped is not None and wrapped[0] == -180.0 and wrapped[2] == 180.0


# ------------------------------------------------------------------ validation

OPEN_RING = [[0, 0], [1, 0], [1, 1], [0, 1]]


@pytest.mark.parametrize(
    ("geom", "problem"),
    [
        ("nope", "must be a JSON object"),
        ({"type": "Circle", "coordinates": [0, 0]}, "unsupported geometry type 'Circle'"),
        ({"type": "Point"}, "Point has no 'coordinates'"),
        (point(200, 0), "Point has longitude 200 outside [-180, 180]"),
        (point(0, -91), "Point has latitude -91 outside [-90, 90]"),
        ({"type": "Point", "coordinates": [0, "1"]}, "non-numeric"),
        ({"type": "Point", "coordinates": [True, 1]}, "non-numeric"),
        ({"type": "Point", "coordinates": [1]}, "must be a position"),
        ({"type": "LineString", "coordinates": [[0, 0]]}, "LineString must be an array of at least 2"),
        ({"type": "Polygon", "coordinates": [OPEN_RING]}, "Polygon ring 0 is not closed"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
            "Polygon ring 0 must be an array of at least",
        ),
        ({"type": "Polygon", "coordinates": []}, "Polygon must be a non-empty array"),
        (
            {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"], [OPEN_RING]]},
            "MultiPolygon polygon 1 ring 0 is not closed",
        ),
        ({"type": "MultiPoint", "coordinates": [[0, 0], [0, 95]]}, "MultiPoint position 1 has latitude 95"),
        ({"type": "MultiLineString", "coordinates": [[[0, 0]]]}, "MultiLineString line 0 must be an array"),
        ({"type": "GeometryCollection", "geometries": []}, "non-empty 'geometries'"),
    ],
)
def test_validation_errors_name_field_and_problem(geom: Any, problem: str) -> None:
    with pytest.raises(BadRequestData) as err:
        validate_geometry(geom, "location.value")
    assert err.value.field == "location.value"
    assert err.value.detail.startswith("location.value: ")
    assert problem in err.value.detail


def test_valid_geometries_pass_and_bbox() -> None:
    gc = {"type": "GeometryCollection", "geometries": [P0, CROSSING]}
    for geom in (P0, SQUARE, CROSSING, MP_HALF, gc, {"type": "Point", "coordinates": [LON, LAT, 12.5]}):
        assert validate_geometry(geom, "location.value") is geom
    assert bbox(SQUARE) == (LON - H, LAT - H, LON + H, LAT + H)
    assert bbox(gc) == (LON - 2 * H, LAT, LON + 2 * H, LAT)


# ------------------------------------------------------------------ parsing


def test_parse_forms() -> None:
    assert parse_geo_query(None, None, None, None) is None
    from_get = parse_geo_query("near;maxDistance==500", "Point", "[139.155,35.256]", None)
    assert from_get == GeoQuery("near", P0, "location", None, 500.0)
    assert parse_geo_query(" near ; maxDistance==500 ", "point", "139.155, 35.256", None) == from_get
    assert parse_geo_query("near;maxDistance==500", "Point", [139.155, 35.256], None) == from_get
    assert parse_geo_query("near;maxDistance==500", None, P0, None) == from_get
    assert hash(from_get) == hash(parse_geo_query("near;maxDistance==500", "Point", [LON, LAT], None))
    custom = parse_geo_query("within", "Polygon", SQUARE["coordinates"], "https://ex.org/area")
    assert custom is not None and custom.geoproperty == "https://ex.org/area"
    assert custom.min_distance is None and custom.max_distance is None


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "geoproperty", "field"),
    [
        (None, "Point", "[0,0]", None, "georel"),
        (None, None, None, "location", "georel"),
        ("nearby", "Point", "[0,0]", None, "georel"),
        ("near", "Point", "[0,0]", None, "georel"),
        ("near;maxDistance=500", "Point", "[0,0]", None, "georel"),
        ("near;maxDistance==abc", "Point", "[0,0]", None, "georel"),
        ("near;maxDistance==-1", "Point", "[0,0]", None, "georel"),
        ("near;maxDistance==nan", "Point", "[0,0]", None, "georel"),
        ("near;radius==5", "Point", "[0,0]", None, "georel"),
        ("near;maxDistance==5;maxDistance==6", "Point", "[0,0]", None, "georel"),
        ("near;minDistance==9;maxDistance==5", "Point", "[0,0]", None, "georel"),
        ("within;maxDistance==5", "Point", "[0,0]", None, "georel"),
        ("", "Point", "[0,0]", None, "georel"),
        ("within", None, "[0,0]", None, "geometry"),
        ("within", "Circle", "[0,0]", None, "geometry"),
        ("within", "GeometryCollection", "[]", None, "geometry"),
        ("within", "LineString", P0, None, "geometry"),
        ("within", "Point", None, None, "coordinates"),
        ("within", "Point", "[0,0", None, "coordinates"),
        ("within", "Point", "[0,200]", None, "coordinates"),
        ("within", "Point", 7, None, "coordinates"),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", None, "coordinates"),
        ("within", "Point", "[0,0]", " ", "geoproperty"),
    ],
)
def test_parse_errors_name_the_parameter(
    georel: str | None, geometry: str | None, coordinates: Any, geoproperty: str | None, field: str
) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_geo_query(georel, geometry, coordinates, geoproperty)
    assert err.value.field == field
    assert err.value.detail.startswith(f"{field}: ")
