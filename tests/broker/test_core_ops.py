"""The pure core: payload normalization, entity operations and rendering, without HTTP or SQL."""

from __future__ import annotations

import pytest

from hotoku.broker import ops
from hotoku.broker.context import ContextResolver
from hotoku.broker.errors import AlreadyExists, BadRequestData, ResourceNotFound
from hotoku.broker.normalize import parse_attributes, parse_entity
from hotoku.broker.render import View, render_entity

T0, T1 = "2030-04-01T00:00:00.000Z", "2030-04-01T00:15:00.000Z"
TERMS = ContextResolver().resolve(None)
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def ev(**attrs: object):
    return parse_entity({"id": "urn:ngsi-ld:Vehicle:odawara:leaf-01", "type": "Vehicle", **attrs}, TERMS, now=T0)


def test_concise_input_is_normalized_and_expanded() -> None:
    e = ev(soc=0.8, owner={"object": "urn:ngsi-ld:Organisation:rexev"},
           name={"languageMap": {"ja": "リーフ", "en": "Leaf"}},
           location={"type": "Point", "coordinates": [139.15, 35.25]})
    assert e.types == [VOCAB + "Vehicle"]
    assert e.attrs[VOCAB + "soc"][0]["type"] == "Property"
    assert e.attrs[VOCAB + "owner"][0]["type"] == "Relationship"
    assert e.attrs[VOCAB + "name"][0]["type"] == "LanguageProperty"
    assert e.attrs["https://uri.etsi.org/ngsi-ld/location"][0]["type"] == "GeoProperty"


@pytest.mark.parametrize(("payload", "field"), [
    ({"soc": {"type": "Property"}}, "soc.value"),
    ({"owner": {"type": "Relationship", "object": "not a uri"}}, "owner.object"),
    ({"soc": {"value": 1, "observedAt": "yesterday"}}, "soc.observedAt"),
    ({"soc": {"type": "Magic", "value": 1}}, "soc.type"),
    ({"soc": [{"value": 1, "datasetId": "urn:a"}, {"value": 2, "datasetId": "urn:a"}]}, "soc"),
])
def test_bad_attributes_name_their_field(payload: dict, field: str) -> None:
    with pytest.raises(BadRequestData) as err:
        ev(**payload)
    assert err.value.field == field


def test_datasets_keep_the_default_instance_first() -> None:
    e = ev(power=[{"value": 3, "datasetId": "urn:ngsi-ld:Dataset:forecast"}, {"value": 2}])
    assert [i.get("datasetId") for i in e.attrs[VOCAB + "power"]] == [None, "urn:ngsi-ld:Dataset:forecast"]


def test_create_twice_is_refused() -> None:
    first = ops.create(None, ev(soc=0.5))
    with pytest.raises(AlreadyExists):
        ops.create(first.after, ev(soc=0.5))


def test_merge_keeps_created_at_and_merges_sub_attributes() -> None:
    before = ev(soc={"value": 0.5, "quality": {"value": "measured"}}).attrs
    base = ops.create(None, ev()).after
    assert base is not None
    base.attrs = before
    patch = parse_entity({"id": base.id, "soc": {"value": 0.6}}, TERMS, now=T1, require_type=False)
    ch = ops.merge_entity(base, patch, T1)
    soc = ch.after.attrs[VOCAB + "soc"][0]  # type: ignore[union-attr]
    assert soc["value"] == 0.6 and soc["createdAt"] == T0 and soc["modifiedAt"] == T1
    assert soc[VOCAB + "quality"]["value"] == "measured"
    assert ch.changed_attrs == {VOCAB + "soc"}


def test_update_only_touches_existing_attributes() -> None:
    base = ops.create(None, ev(soc=0.5)).after
    attrs = parse_attributes({"soc": 0.9, "range": 200}, TERMS, now=T1)
    ch = ops.update_attrs(base, base.id, attrs, T1)  # type: ignore[union-attr]
    assert ch.not_updated == [(VOCAB + "range", "attribute does not exist")]
    assert ch.after.attrs[VOCAB + "soc"][0]["value"] == 0.9  # type: ignore[union-attr]


def test_delete_missing_dataset_is_not_found() -> None:
    base = ops.create(None, ev(soc=0.5)).after
    with pytest.raises(ResourceNotFound):
        ops.delete_attr(base, base.id, VOCAB + "soc", T1, dataset_id="urn:ngsi-ld:Dataset:x")  # type: ignore[union-attr]


def test_render_formats_and_language_pick() -> None:
    e = ops.create(None, ev(soc=0.8, name={"languageMap": {"ja": "リーフ", "en": "Leaf"}})).after
    assert e is not None
    kv = render_entity(e, TERMS, View(fmt="keyValues", lang="ja"))
    assert kv == {"id": e.id, "type": "Vehicle", "soc": 0.8, "name": "リーフ"}
    concise = render_entity(e, TERMS, View(fmt="concise"))
    assert concise["soc"] == 0.8 and concise["name"] == {"languageMap": {"ja": "リーフ", "en": "Leaf"}}
    normalized = render_entity(e, TERMS, View(sys_attrs=True, attrs=frozenset({VOCAB + "soc"})))
    assert set(normalized) == {"id", "type", "soc", "createdAt", "modifiedAt"}
    assert normalized["soc"]["createdAt"] == T0
