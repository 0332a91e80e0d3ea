"""The one settings object of cptqa (pydantic-settings, environment prefix CPTQA_).

Built once at the edge (CLI entry or `create_app`) and handed down; `ingest` and `index` never
read the environment. Every default makes `cptqa serve` work bare from a checkout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index import DEFAULT_MODEL
from index.encoder import default_cache_dir


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
    body_read_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a whole request body may take to arrive "
        "(408 and the connection closed above).",
    )
    pdf_max_pages: int = Field(
        5000,
        ge=1,
        description="Pages a PDF may have to be indexed; a longer one is skipped by name.",
    )
    parse_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds `cptqa ingest` may spend parsing one HTML or PDF file before it "
        "skips it by name.",
    )
    max_header_bytes: int = Field(
        16_384,
        ge=1024,
        description="Largest request line plus headers accepted (431 and the connection closed "
        "above).",
    )
    max_headers: int = Field(100, ge=10, description="Most request headers accepted (431 above).")
    header_read_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a connection may take to send a request's headers before it is "
        "closed.",
    )
    keep_alive_timeout: int = Field(
        5, ge=1, description="Seconds an idle keep-alive connection is kept open."
    )
    max_connections: int = Field(
        256,
        ge=1,
        description="Connections (or requests in progress) per server process; above it "
        "requests get 503 and the server logs 'Exceeded concurrency limit.'.",
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxy addresses whose X-Forwarded-For / X-Forwarded-Proto are believed, "
        "comma-separated (or `*`); empty (the default) believes none, so the client address "
        "is always the TCP peer.",
    )
    current_year: int | None = Field(
        None,
        ge=1990,
        le=2100,
        description="The year code statuses are judged as of (a question naming an earlier "
        "date of service is judged as of that year); unset: the newest year the corpus speaks "
        "for or the code history knows.",
    )
    batch_size: int = Field(
        8,
        ge=1,
        le=1024,
        description="Embedding batch size at ingest (8 was fastest on 2 cores: bench/scale.py).",
    )
    query_threads: int = Field(
        1, ge=1, le=256, description="CPU threads the model uses per question when serving."
    )
    solo_query_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="CPU threads for a question that arrives while no other is being encoded "
        "(ONNX encoders): 0 means this process's share of the cores (all of them divided by "
        "CPTQA_WORKERS). At or below query_threads it is off, which saves the second copy of "
        "the model (about 110 MB).",
    )
    encoder: Literal["onnx", "onnx-int8", "torch"] = Field(
        "onnx",
        description="Question encoder when serving: the snapshot's ONNX export of the model "
        "(fp32), its int8 quantisation, or the model in torch. All give the same vectors to "
        "within cosine 0.999 (onnx) or ~0.99 (int8); see the README's figures.",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where the model's ONNX export is cached between ingests "
        "(default ~/.cache/cptqa).",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster that `cptqa ingest` runs its load, chunk, code and embedding "
        "stages on (host:port of the head node, or `auto` for the cluster running on this "
        "machine); unset: ingest here. Needs the extra `pip install 'cptqa[ray]'`; "
        "`cptqa ingest --ray ADDRESS` overrides it.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Server processes for `cptqa serve`; they share the snapshot's "
        "memory-mapped files.",
    )
    log_level: str = Field("info", description="Log level of the service and CLI.")
    reload_interval: float = Field(
        10.0,
        ge=0,
        description="Seconds between checks for a newly published snapshot while serving; "
        "0 turns watching off (POST /v1/admin/reload still works).",
    )
    api_key: SecretStr | None = Field(
        None,
        description="When set, every endpoint but /healthz, /readyz and the page needs it, sent as "
        "`Authorization: Bearer <key>` or `X-API-Key: <key>` (401 otherwise). At least 16 "
        "characters.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API from other sites, comma-separated "
        "or a JSON list (e.g. `https://chat.example.org`); empty (the default) allows none.",
    )
    rate_limit_per_minute: int = Field(
        1200,
        ge=0,
        description="Requests per minute one client address may make, sustained (token bucket; "
        "0 turns the limit off; 429 above). The default only stops a runaway loop.",
    )
    rate_limit_burst: int = Field(
        100, ge=1, description="Requests one client address may make at once before the rate holds."
    )
    access_log: bool = Field(
        True, description="Log one JSON line per request (request id, route, status, duration)."
    )
    prefetch: bool = Field(
        True,
        description="When a snapshot loads, read its files once in the background, so that "
        "the kernel's page cache holds them and the first questions do not wait on the disk.",
    )

    @field_validator("api_key")
    @classmethod
    def _refuse_weak_keys(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty CPTQA_API_KEY= means "no key", not "the empty key".
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError(
                "CPTQA_API_KEY is shorter than 16 characters; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @field_validator("ray_address", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            well_formed = parts.scheme in ("http", "https") and parts.netloc
            if origin != "*" and (not well_formed or parts.path or parts.query or parts.fragment):
                raise ValueError(
                    f"CPTQA_CORS_ORIGINS: {origin!r} is not an origin; write scheme://host[:port] "
                    "with no path or trailing slash, e.g. https://chat.example.org"
                )
        return origins
