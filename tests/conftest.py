"""Shared fixtures: both storage backends, real servers, fail-not-skip in CI."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

PG_URL = os.environ.get("HOTOKU_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MQTT_URL = os.environ.get("HOTOKU_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
ADMIN = "test-admin-token"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(url: str, default_port: int) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def need_server(kind: str) -> None:
    """Skip (on a developer machine) or fail (in CI) when a real server is missing."""
    url, port, env = (PG_URL, 5432, "HOTOKU_TEST_PG_URL") if kind == "postgres" else (MQTT_URL, 1883,
                                                                                     "HOTOKU_TEST_MQTT_URL")
    if _reachable(url, port):
        return
    msg = f"{kind} not reachable at {url}: start one, or point {env} at it, to run these tests"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    need_server("postgres")
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def mqtt_url() -> str:
    need_server("mqtt")
    return MQTT_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hotoku.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def settings(database_url: str, tmp_path: Path):
    from hotoku.settings import Settings

    return Settings(data_dir=tmp_path, database_url=database_url, admin_token=ADMIN, jwt_secret="test-jwt-secret")


@pytest.fixture
def client(settings):
    """A TestClient on the broker app, on each backend in turn; writes carry the admin token."""
    from fastapi.testclient import TestClient

    from hotoku.broker.api import create_broker_app

    app = create_broker_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c
