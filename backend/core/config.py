"""Settings from the environment (prefix ``LINLI_``)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-secret-change-me"
DEFAULT_OA_TOKEN = "linli-oa-token"
# The demo WeChat credentials: fine for the fake server, never for a real account.
DEMO_WECHAT_VALUES = frozenset({"wx_mp_demo", "mp-demo-secret", "wx_oa_demo", "oa-demo-secret"})
DEFAULT_SQLITE_URL = "sqlite://./var/linli.sqlite3"
WECHAT_API_BASE = "https://api.weixin.qq.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=".env", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    database_url: str = DEFAULT_SQLITE_URL
    redis_url: str | None = None
    redis_prefix: str = "linli:"
    # Redis must answer fast or be skipped: a read or connect slower than this counts as
    # down, and after a failure Redis is left alone for the pause before one probe.
    redis_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    redis_pause_seconds: float = Field(default=5.0, ge=0, le=300)
    # PostgreSQL cancels a statement running longer than this (0 = never).
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    secret_key: str = DEFAULT_SECRET
    timezone: str = "Asia/Shanghai"
    public_base_url: str = "http://127.0.0.1:8000"
    # Proxies whose X-Forwarded-For is believed (the client IP feeds the per-IP rate limit).
    forwarded_allow_ips: str = "127.0.0.1"
    # How long `linli serve` keeps an idle connection open. It must outlast every client
    # that reuses connections (nginx's upstream keepalive_timeout is 60 s, httpx's 5 s):
    # when the server closes first, a request already on its way on that connection is
    # lost, and nginx does not retry a POST, so a booking would answer 502.
    keepalive_seconds: int = Field(default=75, ge=1, le=3600)

    wechat_api_base: str = WECHAT_API_BASE
    mp_appid: str = "wx_mp_demo"
    mp_secret: str = "mp-demo-secret"
    oa_appid: str = "wx_oa_demo"
    oa_secret: str = "oa-demo-secret"
    oa_token: str = DEFAULT_OA_TOKEN
    oa_aes_key: str | None = None
    wecom_webhook_base: str = "https://qyapi.weixin.qq.com"
    # template key -> WeChat template id; one map per channel because the ids differ.
    subscribe_templates: dict[str, str] = Field(
        default_factory=lambda: {
            k: f"mp-tmpl-{k}" for k in ("notice", "booking", "reminder", "wish", "reward")
        }
    )
    oa_templates: dict[str, str] = Field(
        default_factory=lambda: {
            k: f"oa-tmpl-{k}" for k in ("notice", "booking", "reminder", "wish", "reward")
        }
    )

    token_ttl_seconds: int = 7200
    session_ttl_seconds: int = 7 * 24 * 3600
    rate_limits: str = "on"
    rate_limit_user_per_minute: int = 120
    rate_limit_ip_per_minute: int = 600
    idempotency_ttl_seconds: int = 48 * 3600
    # A request that died mid-way (process killed) holds its key this long, then a retry runs.
    idempotency_lease_seconds: int = Field(default=60, ge=1)

    # Rotating check-in codes (activities, service posts): this many wrong codes from one
    # person for one subject within a lockout window of these minutes refuse that person's
    # check-in there until the window ends, so six digits cannot be guessed by trying.
    checkin_max_failures: int = Field(default=5, ge=1, le=100)
    checkin_lockout_minutes: int = Field(default=15, ge=1, le=1440)

    # Retention (the bot's nightly purge): days after which a delivered or given-up outbox
    # message loses its context (the row stays for counts), after which it is deleted, after
    # which a usage counter is deleted, and after which a closed, withdrawn, removed or
    # rejected wish loses its address and fulfilment photo.
    retention_outbox_context_days: int = Field(default=30, ge=1)
    retention_outbox_days: int = Field(default=400, ge=1)
    retention_usage_counter_days: int = Field(default=60, ge=1)
    retention_wish_days: int = Field(default=90, ge=1)

    outbox_batch_size: int = 50
    outbox_lease_seconds: int = 60
    outbox_max_attempts: int = 8
    bot_poll_seconds: float = 1.0
    # Where `linli bot` serves its own /metrics ("host:port"; empty: not served). The app's
    # /metrics cannot show them: the bot is another process, often another container.
    bot_metrics_address: str = ""
    # Notices: recipients written to the outbox per batch, batches per scheduler round, WeChat
    # sends per second per app id (all bot processes together, 0 = no limit) and messages
    # per minute per WeCom group robot (WeCom's own limit is 20).
    notice_fanout_batch_size: int = Field(default=500, ge=1, le=10_000)
    notice_fanout_max_batches: int = Field(default=20, ge=1)
    wechat_sends_per_second: int = Field(default=500, ge=0)
    wecom_robot_per_minute: int = Field(default=20, ge=1, le=20)

    # Micro-wishes: open claims one person may hold, days a claim may stay unfulfilled
    # (sooner if the wish is needed earlier), points for a confirmed wish.
    wish_claim_limit: int = Field(default=3, ge=1)
    wish_claim_days: int = Field(default=7, ge=1)
    # Against claim → release → claim churn (reading one poster after another): minutes a
    # person waits after giving a claim back, and claims one person may make per local day.
    # Wishes and two-way board items one person may post per local day.
    wish_claim_cooldown_minutes: int = Field(default=30, ge=0, le=10_080)
    wish_claims_per_day: int = Field(default=5, ge=1, le=100)
    wishes_per_day: int = Field(default=3, ge=1, le=100)
    board_items_per_day: int = Field(default=10, ge=1, le=1000)
    # TEST ONLY: the claim's guarded UPDATE becomes read-check-write, for the race test's
    # control case. Refused when env is prod (backend.core.unguarded).
    test_unguarded_claim: bool = False

    # Activities: active bookings per person per category and calendar month (a category
    # not listed has no limit), the no-show rule (this many in the window blocks booking of
    # high-demand activities for the block), and the Redis sold-out gate (on|off).
    activity_monthly_limits: dict[str, int] = Field(default_factory=lambda: {"午间一小时": 4})
    no_show_limit: int = Field(default=3, ge=1)
    no_show_window_days: int = Field(default=90, ge=1)
    no_show_block_days: int = Field(default=30, ge=1)
    activity_gate: Literal["on", "off"] = "on"
    # TEST ONLY: the seat's guarded UPDATE becomes read-check-write, so the booking race
    # test's control case can show the race is real. Refused when env is prod.
    test_unguarded_booking: bool = False

    # Party members (在职党员): service minutes credited per person and local day, longest
    # check-in before it counts as forgotten, points per credited hour, the skills offered
    # on the report-in form (free text may add others).
    party_daily_minutes_cap: int = Field(default=480, ge=1, le=1440)
    party_session_max_minutes: int = Field(default=720, ge=1)
    party_skills: list[str] = Field(
        default_factory=lambda: [
            "文明劝导",
            "环境绿化",
            "垃圾分类",
            "助老帮困",
            "治安巡逻",
            "法律咨询",
            "医疗健康",
            "心理疏导",
            "文化教育",
            "信息技术",
            "政策宣讲",
            "应急救护",
        ]
    )
    # TEST ONLY: a post claim becomes read-check-write (no guarded UPDATE, no lock on the
    # member's registration, no one-post-per-term key), so the claim race tests' control
    # cases can show the races are real. Refused when env is prod.
    test_unguarded_post_claim: bool = False
    log_level: str = "INFO"

    # Points earned in year Y expire at the end of year Y + points_expiry_years (local time).
    points_expiry_years: int = Field(default=1, ge=0, le=10)
    # Days a redemption waits for pickup (a reward may set its own), and the reminder lead.
    points_pickup_days: int = Field(default=7, ge=1, le=90)
    points_pickup_reminder_hours: int = Field(default=24, ge=1, le=240)
    # TEST ONLY: a redemption's guarded statements become read-check-write, so the redeem
    # race tests' control cases can show the races are real. Refused when env is prod.
    test_unguarded_redeem: bool = False

    @field_validator("bot_metrics_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        value = value.strip()
        host, _, port = value.rpartition(":")
        if value and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("LINLI_BOT_METRICS_ADDRESS must be host:port, e.g. 127.0.0.1:9100")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _normalise_switch(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"on", "off"}:
            raise ValueError("LINLI_RATE_LIMITS must be 'on' or 'off'")
        return value

    @field_validator("oa_aes_key")
    @classmethod
    def _check_aes_key(cls, value: str | None) -> str | None:
        # WeChat's EncodingAESKey is 43 base64 characters; wechatpy asserts on anything else.
        if not value:
            return None
        if not re.fullmatch(r"[A-Za-z0-9+/]{43}", value):
            raise ValueError("LINLI_OA_AES_KEY must be the 43-character EncodingAESKey")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_values_in_prod(self) -> Settings:
        if self.env != "prod":
            return self
        problems = []
        if self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32:
            problems.append(
                "LINLI_SECRET_KEY must be set to a random value of at least 32 characters"
            )
        if not self.oa_token or self.oa_token == DEFAULT_OA_TOKEN:
            problems.append(
                "LINLI_OA_TOKEN must be the token set in the official account's console"
            )
        for name in ("mp_appid", "mp_secret", "oa_appid", "oa_secret"):
            value = getattr(self, name)
            if not value or value in DEMO_WECHAT_VALUES:
                problems.append(
                    f"LINLI_{name.upper()} must be the real value, not empty or the demo one"
                )
        if not _is_public_https(self.public_base_url):
            problems.append(
                "LINLI_PUBLIC_BASE_URL must be the public https:// address, not localhost"
            )
        for race in ("claim", "booking", "post_claim", "redeem"):
            name = f"test_unguarded_{race}"
            if getattr(self, name):
                problems.append(
                    f"LINLI_{name.upper()} is for tests only, never with LINLI_ENV=prod"
                )
        if problems:
            raise ValueError("; ".join(problems) + " (LINLI_ENV=prod)")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def rate_limits_enabled(self) -> bool:
        return self.rate_limits == "on"

    def ensure_var_dir(self) -> None:
        """Create the directory of a SQLite database file so a fresh checkout just runs."""
        if self.is_sqlite and ":memory:" not in self.database_url:
            path = self.database_url.split("://", 1)[1].split("?", 1)[0]
            Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _is_public_https(url: str) -> bool:
    parsed = urlsplit(url.strip())
    host = (parsed.hostname or "").lower()
    local = (
        host in ("localhost", "0.0.0.0", "::1")
        or host.startswith("127.")
        or host.endswith(".localhost")
    )
    return parsed.scheme == "https" and bool(host) and not local


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between apps)."""
    get_settings.cache_clear()
