"""HTTP adapter of the broker: the NGSI-LD API under /ngsi-ld/v1."""

from hotoku.broker.api.app import create_broker_app

__all__ = ["create_broker_app"]
