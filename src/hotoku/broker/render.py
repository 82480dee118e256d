"""Render internal entities for clients: normalized, concise, keyValues, GeoJSON.

Compaction goes through the request's cached TermMap, so rendering pays a
dict lookup per name, not JSON-LD processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hotoku.broker.model import INSTANCE_MEMBERS, TARGET_MEMBER, Entity, Instance
from hotoku.broker.normalize import Terms


@dataclass(frozen=True)
class View:
    """How the client asked to see entities."""

    fmt: str = "normalized"  # normalized | concise | keyValues
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None  # expanded IRIs to keep (attrs / pick)
    omit: frozenset[str] = frozenset()
    lang: str | None = None
    geometry_property: str = "location"
    geojson: bool = False


def _lang_pick(lm: dict[str, Any], lang: str) -> tuple[Any, str | None]:
    if lang == "*":
        return lm, None
    for wanted in (t.strip().split(";")[0] for t in lang.split(",")):
        if wanted in lm:
            return lm[wanted], wanted
    if "@none" in lm:
        return lm["@none"], "@none"
    first = next(iter(lm))
    return lm[first], first


def render_instance(inst: Instance, terms: Terms, view: View) -> Any:
    kind = inst.get("type", "Property")
    target = TARGET_MEMBER.get(kind, "value")
    if view.fmt == "keyValues":
        val = inst.get(target)
        if kind == "LanguageProperty" and view.lang:
            return _lang_pick(val, view.lang)[0]
        if kind == "VocabProperty":
            return [terms.compact(v) for v in val] if isinstance(val, list) else terms.compact(val)
        return val
    out: dict[str, Any] = {}
    if kind == "LanguageProperty" and view.lang and view.lang != "*":
        val, tag = _lang_pick(inst["languageMap"], view.lang)
        out["type"] = "Property"
        out["value"] = val
        if tag:
            out["lang"] = tag
    else:
        out["type"] = kind
        val = inst.get(target)
        if kind == "VocabProperty":
            val = [terms.compact(v) for v in val] if isinstance(val, list) else terms.compact(val)
        out[target] = val
    for member, v in inst.items():
        if member in ("type", target):
            continue
        if member in INSTANCE_MEMBERS:
            if member in ("createdAt", "modifiedAt") and not view.sys_attrs:
                continue
            if member == "objectType":
                v = terms.compact(v) if isinstance(v, str) else v
            out[member] = v
        else:
            out[terms.compact(member)] = render_instance(v, terms, view)
    if view.fmt == "concise":
        del out["type"]  # every kind is inferable from its target member
        if "value" in out and len(out) == 1 and not isinstance(out["value"], dict):
            return out["value"]
    return out


def render_entity(e: Entity, terms: Terms, view: View, context: Any = None) -> dict[str, Any]:
    types = [terms.compact(t) for t in e.types]
    out: dict[str, Any] = {"id": e.id, "type": types[0] if len(types) == 1 else types}
    if e.scopes:
        out["scope"] = e.scopes[0] if len(e.scopes) == 1 else e.scopes
    for iri, insts in e.attrs.items():
        if view.attrs is not None and iri not in view.attrs:
            continue
        if iri in view.omit:
            continue
        rendered = [render_instance(i, terms, view) for i in insts]
        if view.fmt == "keyValues":
            out[terms.compact(iri)] = rendered[0]
        else:
            out[terms.compact(iri)] = rendered[0] if len(rendered) == 1 else rendered
    if view.sys_attrs:
        out["createdAt"] = e.created_at
        out["modifiedAt"] = e.modified_at
    if context is not None:
        out["@context"] = context
    return out


def render_feature(e: Entity, terms: Terms, view: View) -> dict[str, Any]:
    """An entity as a GeoJSON Feature (clause 4.5.16)."""
    body = render_entity(e, terms, view)
    geom_insts = e.attrs.get(terms.expand(view.geometry_property)) or []
    geometry = geom_insts[0].get("value") if geom_insts else None
    props = {k: v for k, v in body.items() if k != "id"}
    return {"id": e.id, "type": "Feature", "geometry": geometry, "properties": props}


def render_collection(entities: list[Entity], terms: Terms, view: View, context: Any = None) -> Any:
    if view.geojson:
        fc: dict[str, Any] = {"type": "FeatureCollection",
                              "features": [render_feature(e, terms, view) for e in entities]}
        if context is not None:
            fc["@context"] = context
        return fc
    return [render_entity(e, terms, view, context) for e in entities]
