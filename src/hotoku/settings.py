"""All settings in one place, read from ``HOTOKU_*`` environment variables.

Embedded defaults everywhere (a SQLite file under ``data_dir``), so that
``hotoku up`` runs on a bare machine; one setting switches to the real engine
(``HOTOKU_DATABASE_URL=postgresql://...``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTOKU_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where embedded state (SQLite file, credentials) lives.")
    database_url: str | None = Field(
        None, description="sqlite:///path.db or postgresql://user@host:port/db; default: SQLite in data_dir."
    )
    host: str = "127.0.0.1"
    port: int = 1026
    workers: int = Field(1, description="API worker processes (PostgreSQL recommended above 1).")
    admin_token: str | None = Field(None, description="Admin bearer token; generated on first start if unset.")
    jwt_secret: str | None = Field(None, description="HS256 secret for JWT bearer tokens; generated if unset.")
    anonymous_read: bool = Field(True, description="Allow reads of open data without a token.")
    max_body_bytes: int = Field(16 * 1024 * 1024, description="Largest request body accepted.")
    max_batch: int = Field(10_000, description="Most entities in one batch operation.")
    max_limit: int = Field(1000, description="Largest page size a query may ask for.")
    context_fetch_timeout_s: float = 2.0
    notify_timeout_s: float = 5.0
    notify_max_attempts: int = 8

    twin_enabled: bool = Field(True, description="`hotoku up` runs the town twin live against the broker.")
    twin_scenario: str = Field("odawara-zero-carbon-town", description="Shipped scenario name or YAML path.")
    twin_speed: float = Field(60.0, description="Simulated seconds per wall-clock second.")
    twin_controller: str = Field("hotoku", description="Controller that drives the live twin (the orchestrator).")
    twin_town: str = Field("odawara", description="Town part of the twin's entity ids.")
    twin_seed: int = 1

    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'hotoku.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
