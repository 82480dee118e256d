"""The broker's tables, shared by both backends and by the migrations.

Every table carries ``tenant`` in its key: tenants never see each other's rows.
Instants are stored as UTC ISO 8601 text, which sorts correctly as text on both
backends. JSON is TEXT on SQLite and JSONB on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
Json = JSON().with_variant(JSONB(), "postgresql")
SeqId = BigInteger().with_variant(Integer(), "sqlite")

entities = Table(
    "entities", metadata,
    Column("tenant", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("types", Json),  # all types when there is more than one
    Column("scopes", Json),
    Column("created_at", Text, nullable=False),
    Column("modified_at", Text, nullable=False),
    Column("attrs", Json, nullable=False),
    Index("ix_entities_type", "tenant", "type", "id"),
)

# Bounding boxes of every entity's GeoProperties (default instance): the index
# a geo-query narrows its candidates with. SQLite adds an R*Tree beside it.
geo_index = Table(
    "geo_index", metadata,
    Column("rid", SeqId, primary_key=True, autoincrement=True),
    Column("tenant", Text, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("attr", Text, nullable=False),
    Column("minx", Float, nullable=False),
    Column("miny", Float, nullable=False),
    Column("maxx", Float, nullable=False),
    Column("maxy", Float, nullable=False),
    Index("ix_geo_entity", "tenant", "entity_id"),
)

# Every attribute instance ever written: the temporal API reads this.
attr_history = Table(
    "attr_history", metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("tenant", Text, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("attr", Text, nullable=False),
    Column("dataset_id", Text),
    Column("observed_at", Text),
    Column("created_at", Text, nullable=False),
    Column("modified_at", Text, nullable=False),
    Column("instance", Json, nullable=False),
    # Two indexes only: every history row pays for each one on the write path. Time windows
    # are filtered within one entity's attribute, which the first index already narrows to.
    Index("ix_hist_entity_attr", "tenant", "entity_id", "attr"),
    Index("ix_hist_type", "tenant", "entity_type", "entity_id"),
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("tenant", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("body", Json, nullable=False),  # the subscription, expanded
    Column("status", Json, nullable=False),  # timesSent, lastNotification, lastSuccess, lastFailure
    Column("created_at", Text, nullable=False),
    Column("modified_at", Text, nullable=False),
)

# Pending notifications, written in the same transaction as the change that
# caused them, so none is lost if the server stops before delivering it.
outbox = Table(
    "outbox", metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("tenant", Text, nullable=False),
    Column("subscription_id", Text, nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),  # epoch seconds of the next attempt
    Column("claimed_until", Float, nullable=False, default=0.0),
    Index("ix_outbox_due", "next_at"),
)

jsonld_contexts = Table(
    "jsonld_contexts", metadata,
    Column("id", Text, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),  # hosted | cached
    Column("body", Json, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("hits", Integer, nullable=False, default=0),
)

credentials = Table(
    "credentials", metadata,
    Column("key_hash", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("tenants", Json, nullable=False),  # ["*"] for all
    Column("created_at", Text, nullable=False),
)
