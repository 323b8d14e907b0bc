"""Settings from the environment (DABIAO_*), refused at start when a value is bad."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CAMPAIGN = Path(__file__).parent / "campaigns" / "changzhou-2022.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DABIAO_", extra="ignore")

    database_url: str = "sqlite:///./dabiao.db"
    # a PostgreSQL hot standby of database_url for dashboards, lists, exports and task lists (None: all on
    # the primary). The thresholds below are local settings: the plan says nothing about replicas.
    read_database_url: str | None = None
    replica_lag_notice_seconds: float = Field(default=10, ge=0)  # "lags": pages then say 数据截至 HH:MM:SS
    replica_max_lag_seconds: float = Field(default=60, gt=0)  # further behind: reads go to the primary
    replica_check_seconds: float = Field(default=1, gt=0, le=60)  # how often the standby's lag is measured
    replica_retry_seconds: float = Field(default=15, gt=0, le=3600)  # after a failure: primary only, then try again
    replica_connect_timeout_seconds: int = Field(default=2, ge=2, le=60)  # libpq's least is 2 s
    campaign_file: Path = DEFAULT_CAMPAIGN
    data_dir: Path = Path("./data")
    timezone: str = "Asia/Shanghai"

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    mail_from: str = "dabiao@localhost"
    mail_dir: Path = Path("./mail")
    smtp_timeout_seconds: float = Field(default=30, gt=0)

    # outbox dispatch: retries with exponential backoff and jitter, then `failed`. With a 60 s base doubling
    # to a 6 h cap, 16 attempts ride out a mail-server outage of about two days before mail counts as failed.
    outbox_max_attempts: int = Field(default=16, ge=1, le=100)
    outbox_backoff_seconds: float = Field(default=60, gt=0)
    outbox_backoff_max_seconds: float = Field(default=6 * 3600, gt=0)
    dispatch_batch: int = Field(default=200, ge=1, le=10_000)

    # the scheduler is only a clock: when (local time) the daily jobs start, how often dispatch runs
    sweep_time: str = Field(default="02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    digest_time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    dispatch_interval_seconds: int = Field(default=5, ge=1, le=3600)

    # where people reach the pages (links in digests)
    public_url: str = "http://127.0.0.1:8000"

    # accounts: bearer tokens, and slowing down then locking out repeated failed logins (local settings: the
    # plan sets no numbers for sign-in)
    token_ttl_minutes: int = Field(default=8 * 60, ge=1, le=30 * 24 * 60)
    login_lock_after: int = Field(default=5, ge=1, le=100)  # failures of one account from one address
    login_source_lock_after: int = Field(default=30, ge=1, le=10_000)  # failures per address, any accounts
    # one account from every address: locked only after this many failures from at least this many addresses,
    # and then only for the addresses that failed (its owner still signs in from an address that has not)
    login_account_lock_after: int = Field(default=50, ge=1, le=100_000)
    login_account_lock_sources: int = Field(default=5, ge=1, le=10_000)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_delay_seconds: float = Field(default=0.5, ge=0, le=10)  # doubled per failure after the first
    login_delay_max_seconds: float = Field(default=4.0, ge=0, le=60)

    # reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated; default:
    # none, so the client's address is the connection's own)
    trusted_proxies: str = ""
    # cookies carry `Secure` unless this is false (plain http, as `make demo` serves)
    cookie_secure: bool = True
    # when set, /metrics answers only requests with `Authorization: Bearer <this token>`
    metrics_token: str | None = None

    # evidence uploads
    upload_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("DABIAO_DATABASE_URL must start with sqlite:// or postgresql+psycopg://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("read_database_url")
    @classmethod
    def _standby(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("DABIAO_READ_DATABASE_URL must be a PostgreSQL standby (postgresql+psycopg://)")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @model_validator(mode="after")
    def _standby_of_postgres(self) -> Settings:
        if self.read_database_url and not self.database_url.startswith("postgresql"):
            raise ValueError("DABIAO_READ_DATABASE_URL needs DABIAO_DATABASE_URL on PostgreSQL (a standby of it)")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"DABIAO_TRUSTED_PROXIES: {item.strip()!r} is not an address or network") from None
        return value

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(i.strip(), strict=False) for i in self.trusted_proxies.split(",") if i.strip()
        )

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
