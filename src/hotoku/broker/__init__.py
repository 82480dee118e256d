"""The data linkage platform (都市OS): an NGSI-LD context broker.

The public face of this district is :func:`hotoku.broker.api.create_broker_app`
and the storage interface in :mod:`hotoku.broker.store.base`.
"""
