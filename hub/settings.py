"""Settings from `HUB_*` environment variables; unset means the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_CONFIG = Path(__file__).parent / "demo" / "config.yaml"


class Settings(BaseSettings):
    """Everything the hub reads from the environment, read once at start-up."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    database_url: str = "sqlite:///./var/hub.db"
    broker_url: str = "memory://"
    config: Path = DEMO_CONFIG
    blob_dir: Path = Path("./var/blobs")
    host: str = "127.0.0.1"
    port: int = 8000
    # HTTPS, and mutual TLS when a client CA is set (hub/tls.py): systems whose
    # config names `tls_subject` are known by their certificate.
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_client_ca: str | None = None
    # Request bodies (hub/api/limits.py): messages and native bodies, and any API
    # body from a caller with a valid key; anything else (no key, a wrong one, the
    # console's forms) gets the anonymous limit before its body is read further.
    max_body_bytes: int = 1_048_576
    max_anonymous_body_bytes: int = 65_536
    # The server's request limits (hub/server.py): a request head (request line and
    # headers) over max_header_bytes gets 431; a head not complete within
    # header_timeout_seconds, or a body not complete within body_timeout_seconds
    # plus one second per min_body_rate bytes received, gets 408 and the connection
    # is closed; past max_connections, new requests get 503.
    max_header_bytes: int = 32_768
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    min_body_rate: int = 8_192
    max_connections: int = 1_000
    # edXML packages (POST /api/v1/edoc/sendEdoc) are spooled to disk, not held:
    # real ones reach hundreds of MB.
    max_document_bytes: int = 512 * 1_048_576
    auto_migrate: bool = True
    queue_prefix: str = "hub"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # `json`: one JSON object per line, with the message's ids (hub/logs.py).
    log_format: Literal["text", "json"] = "text"
    # A worker-role process (no API) serves /metrics on this port when set.
    metrics_port: int | None = None
    # Delivery tuning: how many messages one destination's worker holds at once,
    # and how long a destination may take to answer.
    delivery_prefetch: int = 64
    delivery_timeout: float = 10.0
    retry_poll_seconds: float = 0.5
    # On RabbitMQ, how old a committed but never-confirmed message or job must be
    # before a worker's sweep enqueues it again, and how often the sweep runs.
    recovery_grace_seconds: float = 30.0
    sweep_seconds: float = 10.0
    # Safety net: a message or job waiting this long is enqueued again whatever its
    # mark says (workers drop a second copy of what is already done).
    stuck_seconds: float = 900.0
    # How long a once-per-fleet job's lease lasts (hub/leases.py): a worker that dies
    # holding one (a poller, the sweep) is replaced within this time.
    lease_seconds: float = 15.0

    def secrets(self) -> list[str]:
        """The passwords in the database and broker URLs (a broker URL may list several)."""
        urls = [self.database_url, *self.broker_url.split(";")]
        return [p for p in (urlsplit(u.strip()).password for u in urls) if p]

    def sqlalchemy_url(self) -> str:
        """The database URL with the driver the hub uses (psycopg 3 for PostgreSQL)."""
        url = self.database_url
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain) :]
        return url
