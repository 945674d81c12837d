"""Every SKYCART_* setting, typed and validated, read once at start-up."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# An offline-sale batch at its largest (500 sales of 50 items) is well under this.
OFFLINE_BATCH_BYTES = 4 * 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SKYCART_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./skycart.db"
    # As ECS injects it from Secrets Manager: {"username", "password", "host", "port", "dbname"}.
    # Defines the database URL unless SKYCART_DATABASE_URL is given too.
    db_secret: SecretStr | None = None
    # The secret's ARN: after a password rotation, a refused login re-reads it and reconnects.
    db_secret_arn: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # A database that is away costs a request at most about these (MySQL): waiting for a pooled
    # connection, opening a new one, and waiting for any one answer (a stalled server, a lock held).
    # Past them the request is answered 503 `service_unavailable` with Retry-After.
    database_pool_timeout_seconds: float = Field(default=2, gt=0, le=60)
    database_connect_timeout_seconds: int = Field(default=2, ge=1, le=60)
    database_statement_timeout_seconds: float = Field(default=2.5, gt=0, le=300)
    # A statement waits this long for a row another transaction holds (MySQL's innodb_lock_wait_timeout),
    # then fails cleanly: e.g. a second try with an order's Idempotency-Key while the first still runs.
    database_lock_wait_seconds: int = Field(default=2, ge=1, le=60)
    # SQLite waits this long for a competing writer before it reports "database is locked".
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    redis_url: str | None = None
    # Product images go to this S3 bucket when set, else to the folder `assets_dir` (served at /assets/).
    assets_bucket: str | None = None
    assets_dir: Path = Path("./assets")
    # A CDN (or any server) in front of the bucket or folder: image URLs become this + "/" + key, unsigned.
    assets_base_url: str | None = None
    # How long a presigned image URL stays valid; one is reused for at most half of this.
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Larger images are refused before decoding (decompression bombs); at most Pillow's own threshold.
    max_image_pixels: int = Field(default=50_000_000, ge=1, le=89_478_485)
    max_images_per_product: int = Field(default=10, ge=1, le=100)
    aws_endpoint_url: str | None = None
    # SKYCART_AWS_REGION, else AWS_REGION (which ECS sets in every task); None: boto3's own chain
    # (AWS_DEFAULT_REGION, the AWS config file), see platform/aws.py.
    aws_region: str | None = Field(default=None, validation_alias=AliasChoices("SKYCART_AWS_REGION", "AWS_REGION"))
    log_group: str | None = None
    log_level: str = "INFO"
    # How often batched log lines are sent to CloudWatch Logs (when SKYCART_LOG_GROUP is set).
    log_send_seconds: float = Field(default=5.0, gt=0, le=60)
    # A revoked key stops working everywhere within this many seconds (DESIGN.md promises 5).
    key_cache_seconds: float = Field(default=2.0, ge=0, le=5)
    # A menu (stock figures included) is at most this stale in any process; 0 turns the cache off.
    menu_cache_seconds: float = Field(default=1.0, ge=0, le=1)
    # A console sign-in lasts this long (or until sign-out, or its key is revoked).
    web_session_hours: float = Field(default=8.0, gt=0, le=720)
    payment_provider: str = "sandbox"
    # How long the sandbox takes to authorize `tok_slow`, as a real provider's round trip can (200-2,000 ms).
    sandbox_slow_seconds: float = Field(default=2.0, ge=0, le=30)
    max_import_rows: int = Field(default=10_000, ge=1)
    # A request body may be this large (413 past it, counted while it is read, before it is parsed); an
    # import `max_request_bytes`, an image upload `max_image_bytes`, an offline-sale batch OFFLINE_BATCH_BYTES.
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # A client must send a request's headers within this, and each part of its body within `body_timeout_seconds`.
    header_timeout_seconds: float = Field(default=10, gt=0, le=120)
    body_timeout_seconds: float = Field(default=30, gt=0, le=300)
    # Open connections a worker serves at once; past this it answers 503 at once (asgi.TimedHttpProtocol).
    max_connections_per_worker: int = Field(default=1000, ge=10)
    # An order request gives up its Idempotency-Key after this (503, retry with the same key); a key left
    # "in progress" by a crashed process may be taken over after it too.
    idempotency_lock_seconds: int = Field(default=15, ge=1, le=600)
    metering_flush_seconds: float = Field(default=5.0, gt=0, le=300)
    # Unflushed usage rows kept while the database is unreachable; past this the oldest are dropped.
    metering_max_pending_rows: int = Field(default=200_000, ge=100)
    usage_minute_retention_days: int = Field(default=14, ge=1)
    # Events are listed by GET /v1/events, and their webhook deliveries retried, for this long.
    events_retention_days: int = Field(default=30, ge=1, le=3650)
    usage_hour_retention_days: int = Field(default=400, ge=1)
    default_plan: str = "standard"
    # A month stays open this long after it ends (late usage, offline sales); then its statement is final.
    billing_grace_hours: int = Field(default=72, ge=0, le=24 * 27)
    # An offline sale must be dated in its flight's window: from this long before scheduled departure...
    offline_sale_before_departure_hours: float = Field(default=6, ge=0, le=72)
    # ...to this long after it.
    offline_sale_after_departure_hours: float = Field(default=24, ge=1, le=168)
    # Like every cached piece of configuration, a plan change reaches every process within this.
    plan_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # How much of an airline's rate a process leases from Redis at once.
    limiter_lease_seconds: float = Field(default=0.05, gt=0, le=1)
    # Kill switches for operations and benchmarks; both on in normal service.
    metering_enabled: bool = True
    limits_enabled: bool = True
    access_log: bool = True
    # EMF lines (CloudWatch metrics extracted from log lines): only where a log group extracts them (ECS).
    emf_metrics: bool = False
    # Webhooks. Their signing secrets are sealed (Fernet) with these keys, comma-separated, the first
    # sealing new ones; without any, a key file next to a SQLite database is made and used.
    webhook_secrets_keys: SecretStr | None = None
    # Development and tests only: deliver to http:// URLs, and to loopback or private addresses.
    webhooks_allow_http: bool = False
    webhooks_allow_private: bool = False
    # After the n-th failed attempt a delivery waits the n-th of these (then the last, again and again),
    # each with up to 20 % of jitter, until `webhook_give_up_seconds` after it was made: then it is failed.
    webhook_retry_seconds: list[float] = Field(default=[5, 30, 120, 600, 3600, 10800], min_length=1)
    webhook_give_up_seconds: float = Field(default=24 * 3600, gt=0)
    # An endpoint whose every delivery failed for this long is disabled.
    webhook_disable_after_seconds: float = Field(default=24 * 3600, gt=0)
    # How often a process checks airlines' usage against the 80 % and 100 % quota thresholds.
    usage_alert_seconds: float = Field(default=60, gt=0, le=3600)
    # How often an idle process looks for events to dispatch and deliveries due.
    webhook_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme in ("sqlite", "sqlite+pysqlite"):
            return "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if scheme in ("mysql", "mysql+pymysql", "mariadb"):
            return "mysql+asyncmy://" + value.split("://", 1)[1]
        if scheme not in ("sqlite+aiosqlite", "mysql+asyncmy", "mysql+aiomysql"):
            raise ValueError(f"unsupported database URL scheme {scheme!r}")
        return value

    @model_validator(mode="after")
    def _url_from_secret(self) -> Settings:
        if self.db_secret is not None and "database_url" not in self.model_fields_set:
            self.database_url = mysql_url(parse_db_secret(self.db_secret.get_secret_value()))
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


# What a production task must be given (the task definition sets each; tests/container checks it does):
# the database and how to follow its password rotation, the shared Redis, the bucket, the log group, EMF.
# Everything else has a default that holds in production; the region comes from the standard chain.
PRODUCTION_SETTINGS = ("db_secret", "db_secret_arn", "redis_url", "assets_bucket", "log_group", "emf_metrics")


class ConfigError(Exception):
    """A setting that cannot be used; its message never contains the setting's value."""


def parse_db_secret(raw: str) -> dict[str, Any]:
    try:
        secret = json.loads(raw)
        return {key: secret[key] for key in ("username", "password", "host")} | {
            "port": int(secret.get("port", 3306)),
            "dbname": secret.get("dbname", "skycart"),
        }
    except (ValueError, KeyError, TypeError):
        # Not a ValueError, so pydantic does not wrap it in an error that echoes the input (the secret).
        raise ConfigError("the database secret is not JSON with username, password and host") from None


def mysql_url(secret: dict[str, Any]) -> str:
    user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
    return f"mysql+asyncmy://{user}:{password}@{secret['host']}:{secret['port']}/{secret['dbname']}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
