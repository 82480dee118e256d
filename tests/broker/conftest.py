"""Broker fixtures: a real ``hotoku serve`` on each storage backend."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/server.py is a helper, not a package module; pytest's default (prepend) import mode
# already puts tests/ on sys.path for tests/conftest.py, but say so rather than rely on it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server import LiveServer

LIVE_TOKEN = "live-admin-token"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A running server with ``.url``, ``.token``, ``.kill()``, ``.restart()``; stopped afterwards.

    For PostgreSQL the ``pg_url`` schema is requested first so that it is dropped only
    after the server (and its connections) are gone.
    """
    db = (f"sqlite:///{tmp_path / 'hotoku.db'}" if request.param == "sqlite"
          else request.getfixturevalue("pg_url"))
    server = LiveServer(db, tmp_path / "data", LIVE_TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()
