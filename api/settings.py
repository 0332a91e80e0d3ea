"""The one settings object of cptqa (pydantic-settings, environment prefix CPTQA_).

Built once at the edge (CLI entry or `create_app`) and handed down; `ingest` and `index` never
read the environment. Every default makes `cptqa serve` work bare from a checkout.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from index import DEFAULT_MODEL


class Settings(BaseSettings):
    """Configuration; each field can be set as CPTQA_<NAME> in the environment or `.env`."""

    model_config = SettingsConfigDict(env_prefix="CPTQA_", env_file=".env", extra="ignore")

    corpus_dir: Path = Field(Path("corpus"), description="Folder indexed by default.")
    index_dir: Path = Field(Path(".cptqa/index"), description="Where snapshots are kept.")
    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: the packaged default or a local model directory.",
    )
    host: str = Field("127.0.0.1", description="Address `cptqa serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `cptqa serve` listens on.")
    max_question_chars: int = Field(
        1000, ge=10, le=100_000, description="Longest question accepted (422 above)."
    )
    default_k: int = Field(5, ge=1, description="Passages returned when `k` is not given.")
    max_k: int = Field(50, ge=1, le=1000, description="Largest `k` accepted (422 above).")
    max_body_bytes: int = Field(
        65_536, ge=1024, description="Largest HTTP request body accepted (413 above)."
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Embedding batch size at ingest.")
    log_level: str = Field("info", description="Log level of the service and CLI.")
