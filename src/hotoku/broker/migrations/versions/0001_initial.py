"""The broker's first schema: entities, geo index, history, subscriptions, outbox, contexts, credentials.

Revision ID: 0001
Revises:
"""

from alembic import op

from hotoku.broker.store.schema import metadata

revision = "0001"
down_revision = None


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    if bind.dialect.name == "sqlite":
        # An R*Tree mirrors geo_index, kept in step by triggers, so a bbox search is a tree walk.
        op.execute("CREATE VIRTUAL TABLE geo_rtree USING rtree(rid, minx, maxx, miny, maxy)")
        op.execute(
            "CREATE TRIGGER geo_index_ai AFTER INSERT ON geo_index BEGIN "
            "INSERT INTO geo_rtree VALUES (new.rid, new.minx, new.maxx, new.miny, new.maxy); END"
        )
        op.execute("CREATE TRIGGER geo_index_ad AFTER DELETE ON geo_index BEGIN "
                   "DELETE FROM geo_rtree WHERE rid = old.rid; END")
    else:
        op.execute("CREATE INDEX ix_geo_box ON geo_index USING gist (box(point(minx, miny), point(maxx, maxy)))")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS geo_rtree")
    metadata.drop_all(bind)
