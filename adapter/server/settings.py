"""Server settings: environment variables ``TRIAL2FHIR_*`` (pydantic-settings), overridden by CLI flags.

Lists (``TRIAL2FHIR_WRITE_TOKENS``, ``TRIAL2FHIR_CORS_ORIGINS``, ``TRIAL2FHIR_LOAD`` ...) are
comma-separated, not JSON, so a shell user can write ``TRIAL2FHIR_WRITE_TOKENS=tok1,tok2``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DB = "sqlite:///trial2fhir.sqlite3"
"""A file in the working directory: zero set-up, and a second run finds the same database."""

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAL2FHIR_", extra="ignore", validate_default=True)

    db: str = Field(
        DEFAULT_DB, description="sqlite:///path (default: a file in the working directory) or postgresql://..."
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="Server processes (use PostgreSQL for more than one).")
    load: CommaList = Field(default_factory=list, description="Records to convert and store before serving.")
    fixtures: bool = Field(True, description="Preload the repository fixtures when nothing else is loaded.")
    public_base_url: str | None = Field(None, description="Externally visible origin, e.g. https://fhir.example.org.")

    write_tokens: CommaList = Field(default_factory=list, description="Bearer tokens allowed to write.")
    read_tokens: CommaList = Field(default_factory=list, description="Bearer tokens allowed to read (when closed).")
    open_reads: bool = Field(True, description="Reads need no token (study definitions are public).")
    authenticator: str | None = Field(
        None, description="module:factory returning an extra Authenticator (e.g. SMART Backend Services JWTs)."
    )
    cors_origins: CommaList = Field(default_factory=list, description="Allowed CORS origins ('*' for any).")

    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(100, ge=8)
    default_count: int = Field(20, ge=1)
    max_count: int = Field(500, ge=1)
    max_include: int = Field(2000, ge=0, description="Most resources _include/_revinclude add to one page.")
    snapshot_limit: int = Field(10_000, ge=100, description="Search results kept for stable paging.")
    page_ttl_s: float = Field(3600.0, gt=0, description="How long paging links stay stable.")
    history_limit: int = Field(100, ge=1)
    db_pool_size: int = Field(8, ge=1)
    db_timeout_s: float = Field(30.0, gt=0)
    gzip: bool = True
    log_level: str = "info"

    @field_validator("load", "write_tokens", "read_tokens", "cors_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("db")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty database URL")
        return value.strip()
