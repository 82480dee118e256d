"""The broker's internal entity form, shared by the pure core and the stores.

An entity's attributes are kept expanded (full IRIs as keys) and normalized:
``attrs[iri]`` is a list of attribute instances, the default instance (no
datasetId) first, so the query compiler can address ``[0]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Instance = dict[str, Any]

#: Members of an attribute instance that are not sub-attributes.
INSTANCE_MEMBERS = frozenset(
    {
        "type", "value", "object", "languageMap", "vocab", "valueList", "objectList", "json",
        "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "instanceId", "deletedAt",
        "objectType", "lang", "previousValue", "previousObject", "previousLanguageMap",
        "previousVocab", "previousValueList", "previousObjectList", "previousJson",
    }
)
#: The member that holds each attribute kind's target.
TARGET_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
    "JsonProperty": "json",
}
ATTRIBUTE_TYPES = frozenset(TARGET_MEMBER)
NULL_URI = "urn:ngsi-ld:null"


@dataclass
class Entity:
    id: str
    types: list[str]
    attrs: dict[str, list[Instance]] = field(default_factory=dict)
    scopes: list[str] | None = None
    created_at: str | None = None
    modified_at: str | None = None

    @property
    def type(self) -> str:
        return self.types[0]


def now_iso() -> str:
    """UTC timestamp with millisecond precision, as NGSI-LD prints it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def dataset_key(inst: Instance) -> str | None:
    return inst.get("datasetId")


def sort_instances(instances: list[Instance]) -> list[Instance]:
    """Default instance first, so SQL can address it as element 0."""
    return sorted(instances, key=lambda i: (i.get("datasetId") is not None, i.get("datasetId") or ""))
