"""The composition root: settings and secrets in, the running application out.

Districts are wired here and nowhere else; today that is the broker, and the
twin and orchestrator join it as they arrive.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import FastAPI

from hotoku.settings import Settings, get_settings

ADMIN_TOKEN_FILE = "admin.token"
JWT_SECRET_FILE = "jwt.secret"


def _secret_file(path: Path, make: str) -> str:
    """Read a secret kept in the data directory, creating it (mode 600) on first start."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(make)
    return make


def with_secrets(settings: Settings) -> tuple[Settings, bool]:
    """Fill admin token and JWT secret from the environment or the data directory.

    Returns the settings and whether the admin token was created just now.
    """
    created = False
    token = settings.admin_token
    if not token:
        path = settings.data_dir / ADMIN_TOKEN_FILE
        created = not path.exists()
        token = _secret_file(path, "htk_admin_" + secrets.token_urlsafe(24))
    jwt_secret = settings.jwt_secret or _secret_file(settings.data_dir / JWT_SECRET_FILE, secrets.token_hex(32))
    return settings.model_copy(update={"admin_token": token, "jwt_secret": jwt_secret}), created


def create_app(settings: Settings | None = None) -> FastAPI:
    from hotoku.broker.api import create_broker_app

    settings, _ = with_secrets(settings or get_settings())
    return create_broker_app(settings)
