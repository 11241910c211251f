"""Settings from the environment; the database secret from Secrets Manager (cached)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ms8.domain.risk import RiskThresholds


@dataclass(frozen=True)
class Settings:
    """What a function needs to know about its environment."""

    database_url: str | None
    db_secret_arn: str | None
    owner_database_url: str | None
    owner_db_secret_arn: str | None
    reader_database_url: str | None
    reader_db_secret_arn: str | None
    reader_retry_s: int
    connect_timeout_s: int
    secret_max_age_s: int
    reports_bucket: str
    report_link_ttl_s: int
    report_retention_days: int
    s3_endpoint_url: str | None
    service_name: str
    rollup_connections: int


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Read once per container; tests clear the cache with `settings.cache_clear()`."""
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        db_secret_arn=os.environ.get("DB_SECRET_ARN") or None,
        owner_database_url=os.environ.get("OWNER_DATABASE_URL") or None,
        owner_db_secret_arn=os.environ.get("OWNER_DB_SECRET_ARN") or None,
        reader_database_url=os.environ.get("DATABASE_READER_URL") or None,
        reader_db_secret_arn=os.environ.get("DB_READER_SECRET_ARN") or None,
        # After the replica failed, lag-tolerant reads use the writer this long before trying again.
        reader_retry_s=_int("DB_READER_RETRY", 30),
        connect_timeout_s=_int("DB_CONNECT_TIMEOUT", 3),
        secret_max_age_s=_int("DB_SECRET_MAX_AGE", 300),
        reports_bucket=os.environ.get("REPORTS_BUCKET", "ms8-reports-local"),
        report_link_ttl_s=_int("REPORT_LINK_TTL", 900),
        # As the bucket's lifecycle rule: files expire after as many days.
        report_retention_days=_int("REPORT_RETENTION_DAYS", 30),
        s3_endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
        service_name=os.environ.get("POWERTOOLS_SERVICE_NAME", "ms8-learning-analytics"),
        # How many owner connections the rollup job shares its organizations over (1: its own only).
        rollup_connections=max(1, _int("ROLLUP_CONNECTIONS", 1)),
    )


def has_reader() -> bool:
    """Whether a read replica is configured."""
    cfg = settings()
    return bool(cfg.reader_database_url or cfg.reader_db_secret_arn)


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@lru_cache(maxsize=1)
def risk_thresholds() -> RiskThresholds:
    """The at-risk rule's thresholds (RISK_INACTIVE_DAYS, RISK_VELOCITY_DROP, RISK_TARGET_MARGIN)."""
    return RiskThresholds(
        inactive_days=_int("RISK_INACTIVE_DAYS", 7),
        velocity_drop_ratio=_float("RISK_VELOCITY_DROP", 0.5),
        target_margin=_float("RISK_TARGET_MARGIN", 0.1),
    )


def connection_params(kind: str = "runtime") -> dict[str, Any]:
    """psycopg connection parameters: a URL locally, the Secrets Manager secret on AWS.

    `runtime` is the API's RLS-bound role (DATABASE_URL / DB_SECRET_ARN); `owner` is the
    maintenance jobs' role (OWNER_DATABASE_URL / OWNER_DB_SECRET_ARN); `reader` is the runtime
    role on the read replica (DATABASE_READER_URL / DB_READER_SECRET_ARN), for the reads that
    tolerate replication lag. The secret is the RDS
    shape ({host, port, username, password, dbname}); Powertools caches it for
    DB_SECRET_MAX_AGE seconds, so a rotated password is picked up on the next reconnect.
    """
    cfg = settings()
    url, arn, names = {
        "runtime": (cfg.database_url, cfg.db_secret_arn, "DATABASE_URL or DB_SECRET_ARN"),
        "owner": (cfg.owner_database_url, cfg.owner_db_secret_arn, "OWNER_DATABASE_URL or OWNER_DB_SECRET_ARN"),
        "reader": (cfg.reader_database_url, cfg.reader_db_secret_arn, "DATABASE_READER_URL or DB_READER_SECRET_ARN"),
    }[kind]
    if url:
        return {"conninfo": url}
    if not arn:
        raise RuntimeError(f"set {names}")
    from aws_lambda_powertools.utilities import parameters  # boto3: only where secrets are read

    secret: dict[str, Any] = parameters.get_secret(
        arn, transform="json", max_age=cfg.secret_max_age_s
    )
    return {
        "host": secret["host"],
        "port": int(secret.get("port", 5432)),
        "user": secret["username"],
        "password": secret["password"],
        "dbname": secret.get("dbname", "ms8"),
        "sslmode": secret.get("sslmode", "require"),
    }
