"""The entity operations of the NGSI-LD API as pure functions.

Each takes the entity as stored (or None) and the parsed request, and returns a
:class:`Change`: the state to store and the attribute instances to record in
the temporal history. The stores only load, lock and write; all rules live here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hotoku.broker.errors import AlreadyExists, BadRequestData, ResourceNotFound
from hotoku.broker.model import INSTANCE_MEMBERS, NULL_URI, TARGET_MEMBER, Entity, Instance, sort_instances


@dataclass
class Change:
    """What one operation does to one entity."""

    id: str
    before: Entity | None
    after: Entity | None  # None: the entity is deleted
    written: list[tuple[str, Instance]] = field(default_factory=list)  # (attr IRI, instance) for history
    deleted: list[tuple[str, str | None]] = field(default_factory=list)  # (attr IRI, datasetId)
    not_updated: list[tuple[str, str]] = field(default_factory=list)  # (attr IRI, reason)

    @property
    def changed_attrs(self) -> set[str]:
        return {a for a, _ in self.written} | {a for a, _ in self.deleted}


def _require(existing: Entity | None, eid: str) -> Entity:
    if existing is None:
        raise ResourceNotFound(f"entity {eid} does not exist", field="id")
    return existing


def _all_written(e: Entity) -> list[tuple[str, Instance]]:
    return [(a, i) for a, insts in e.attrs.items() for i in insts]


def create(existing: Entity | None, new: Entity) -> Change:
    if existing is not None:
        raise AlreadyExists(f"entity {new.id} already exists", field="id")
    return Change(new.id, None, new, _all_written(new))


def replace(existing: Entity | None, new: Entity, now: str, *, must_exist: bool = True) -> Change:
    """Replace the whole entity (PUT, batch upsert with replace)."""
    if existing is None:
        if must_exist:
            _require(existing, new.id)
        return Change(new.id, None, new, _all_written(new))
    after = Entity(new.id, new.types or existing.types, new.attrs, new.scopes, existing.created_at, now)
    gone = [(a, i.get("datasetId")) for a, insts in existing.attrs.items() if a not in new.attrs for i in insts]
    return Change(new.id, existing, after, _all_written(new), gone)


def _merge_types(existing: Entity, new_types: list[str]) -> list[str]:
    return list(dict.fromkeys([*existing.types, *new_types]))


def _index(insts: list[Instance]) -> dict[str | None, Instance]:
    return {i.get("datasetId"): i for i in insts}


def _is_null(inst: Instance) -> bool:
    target = TARGET_MEMBER.get(inst.get("type", "Property"), "value")
    return inst.get(target) == NULL_URI or inst.get("value") == NULL_URI


def merge_instance(old: Instance, patch: Instance, now: str) -> Instance:
    """Merge-patch one attribute instance: patch members win, sub-attributes merge, null deletes."""
    out = copy.deepcopy(old)
    kind = patch.get("type", old.get("type"))
    if kind != old.get("type"):
        for member in TARGET_MEMBER.values():
            out.pop(member, None)
    for member, val in patch.items():
        if member in ("createdAt", "modifiedAt"):
            continue
        if member in INSTANCE_MEMBERS:
            out[member] = val
        elif isinstance(val, dict) and _is_null(val):
            out.pop(member, None)
        elif member in out and isinstance(out[member], dict):
            out[member] = merge_instance(out[member], val, now)
        else:
            out[member] = val
    out["createdAt"] = old.get("createdAt", now)
    out["modifiedAt"] = now
    return out


def _set_instances(after: Entity, iri: str, incoming: list[Instance], *, merge: bool, now: str,
                   change: Change) -> None:
    current = _index(after.attrs.get(iri, []))
    for inst in incoming:
        key = inst.get("datasetId")
        if _is_null(inst):
            if current.pop(key, None) is not None:
                change.deleted.append((iri, key))
            continue
        old = current.get(key)
        if old is None:
            new = inst
        elif merge:
            new = merge_instance(old, inst, now)
        else:
            new = {**inst, "createdAt": old.get("createdAt", now)}
        current[key] = new
        change.written.append((iri, new))
    if current:
        after.attrs[iri] = sort_instances(list(current.values()))
    else:
        after.attrs.pop(iri, None)


def _copy(e: Entity, now: str) -> Entity:
    return Entity(e.id, list(e.types), {a: list(i) for a, i in e.attrs.items()}, e.scopes, e.created_at, now)


def merge_entity(existing: Entity | None, patch: Entity, now: str, *, create_missing: bool = False) -> Change:
    """PATCH /entities/{id} and batch merge: attributes merge, urn:ngsi-ld:null deletes."""
    if existing is None:
        if not create_missing:
            _require(existing, patch.id)
        return Change(patch.id, None, patch, _all_written(patch))
    after = _copy(existing, now)
    after.types = _merge_types(existing, patch.types)
    if patch.scopes is not None:
        after.scopes = patch.scopes
    change = Change(patch.id, existing, after)
    for iri, insts in patch.attrs.items():
        _set_instances(after, iri, insts, merge=True, now=now, change=change)
    return change


def update_entity(existing: Entity | None, patch: Entity, now: str, *, no_overwrite: bool = False) -> Change:
    """Batch upsert/update with update semantics: attributes replaced or added."""
    if existing is None:
        return Change(patch.id, None, patch, _all_written(patch))
    after = _copy(existing, now)
    after.types = _merge_types(existing, patch.types)
    if patch.scopes is not None:
        after.scopes = patch.scopes
    change = Change(patch.id, existing, after)
    for iri, insts in patch.attrs.items():
        if no_overwrite and iri in existing.attrs:
            change.not_updated.append((iri, "attribute exists and noOverwrite was given"))
            continue
        _set_instances(after, iri, insts, merge=False, now=now, change=change)
    return change


def append_attrs(existing: Entity | None, eid: str, attrs: dict[str, list[Instance]], now: str, *,
                 no_overwrite: bool, types: list[str] | None = None) -> Change:
    """POST /entities/{id}/attrs."""
    base = _require(existing, eid)
    patch = Entity(eid, types or [], attrs)
    return update_entity(base, patch, now, no_overwrite=no_overwrite)


def update_attrs(existing: Entity | None, eid: str, attrs: dict[str, list[Instance]], now: str) -> Change:
    """PATCH /entities/{id}/attrs: only attributes that exist are replaced."""
    base = _require(existing, eid)
    after = _copy(base, now)
    change = Change(eid, base, after)
    for iri, insts in attrs.items():
        present = _index(base.attrs.get(iri, []))
        ok = [i for i in insts if i.get("datasetId") in present or _is_null(i)]
        for i in insts:
            if i not in ok:
                change.not_updated.append((iri, "attribute does not exist"))
        if ok:
            _set_instances(after, iri, ok, merge=False, now=now, change=change)
    return change


def patch_attr(existing: Entity | None, eid: str, iri: str, inst: Instance, now: str) -> Change:
    """PATCH /entities/{id}/attrs/{attrId}: partial update of one instance."""
    base = _require(existing, eid)
    key = inst.get("datasetId")
    if key not in _index(base.attrs.get(iri, [])):
        raise ResourceNotFound(f"attribute {iri} (datasetId {key}) not found in {eid}", field="attrId")
    after = _copy(base, now)
    change = Change(eid, base, after)
    _set_instances(after, iri, [inst], merge=True, now=now, change=change)
    return change


def replace_attr(existing: Entity | None, eid: str, iri: str, inst: Instance, now: str) -> Change:
    """PUT /entities/{id}/attrs/{attrId}."""
    base = _require(existing, eid)
    if inst.get("datasetId") not in _index(base.attrs.get(iri, [])):
        raise ResourceNotFound(f"attribute {iri} not found in {eid}", field="attrId")
    after = _copy(base, now)
    change = Change(eid, base, after)
    _set_instances(after, iri, [inst], merge=False, now=now, change=change)
    return change


def delete_attr(existing: Entity | None, eid: str, iri: str, now: str, *, dataset_id: str | None = None,
                delete_all: bool = False) -> Change:
    base = _require(existing, eid)
    insts = base.attrs.get(iri)
    if not insts:
        raise ResourceNotFound(f"attribute {iri} not found in {eid}", field="attrId")
    after = _copy(base, now)
    change = Change(eid, base, after)
    if delete_all:
        keep: list[Instance] = []
    else:
        keep = [i for i in insts if i.get("datasetId") != dataset_id]
        if len(keep) == len(insts):
            raise ResourceNotFound(f"attribute {iri} has no instance with datasetId {dataset_id}",
                                   field="datasetId")
    change.deleted = [(iri, i.get("datasetId")) for i in insts if i not in keep]
    if keep:
        after.attrs[iri] = keep
    else:
        after.attrs.pop(iri)
    return change


def delete_entity(existing: Entity | None, eid: str) -> Change:
    base = _require(existing, eid)
    return Change(eid, base, None, [], [(a, i.get("datasetId")) for a, insts in base.attrs.items() for i in insts])


def check_batch_ids(ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise BadRequestData(f"entity {i} appears twice in one batch", field="id")
        seen.add(i)
