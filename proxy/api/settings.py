"""Settings of the /api/v1 surface (NIMBUS_* variables the core Settings do not know about)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Knobs of the resource API; read once per process."""

    model_config = SettingsConfigDict(
        env_prefix="NIMBUS_", env_file=".env", extra="ignore", frozen=True
    )

    bulk_max: int = Field(500, ge=1, le=10_000)  # rows per bulk request / CSV import
    api_default_limit: int = Field(10, ge=1, le=100)
    # A CSV import's upload cap (streamed; NIMBUS_MAX_BODY_BYTES caps every other body).
    import_max_bytes: int = Field(16_777_216, ge=1024)


@lru_cache(maxsize=1)
def api_settings() -> ApiSettings:
    """The process's ApiSettings."""
    return ApiSettings()
