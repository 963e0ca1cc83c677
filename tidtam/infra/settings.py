"""One validated Settings object for the whole process (prefix ``TIDTAM_``)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_KEY = 32  # characters of the key that signs sessions, outside demo mode
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
PLACEHOLDERS = {"", "changeme", "change-me", "changethis", "secret", "xxx", "todo", "placeholder"}


class SettingsError(ValueError):
    """A setting that must not reach production (placeholder secret, bad value)."""


class Settings(BaseSettings):
    """Everything configurable, read from the environment or a ``.env`` file.

    Each secret may also come from a file: ``TIDTAM_SMTP_PASSWORD_FILE=/run/secrets/smtp``.
    """

    model_config = SettingsConfigDict(env_prefix="TIDTAM_", env_file=".env", extra="ignore")

    demo: bool = False
    data_dir: Path = Path("./var")
    database_url: str | None = None
    timezone: str = "Asia/Bangkok"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr("")
    # Development: the web pages' templates re-read when their files change (Jinja's auto_reload;
    # each render then checks every template it uses on disk). Off: read once per process.
    templates_auto_reload: bool = False

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_from: str = "tidtam <tidtam@localhost>"
    # The name tidtam gives in SMTP's HELO/EHLO; unset: this machine's name, looked up once per
    # process (notifications.mail.default_helo), never once per e-mail.
    smtp_helo: str | None = Field(None, pattern=r"^[A-Za-z0-9.\-]+$|^\[[0-9A-Fa-f.:]+\]$",
                                  max_length=255)

    line_channel_access_token: SecretStr | None = None
    line_channel_secret: SecretStr | None = None
    line_api_base: str = "https://api.line.me"

    # Where the pump sends the Prefect events (Prefect's own variable, as every Prefect client
    # reads it; `tidtam serve` sets it to the server it found or started). Unset: the events
    # stay queued in the outbox, visible, until a pump that has it sends them.
    prefect_api_url: str | None = Field(
        None, validation_alias=AliasChoices("prefect_api_url", "PREFECT_API_URL"))

    # The database connections one process may hold: a pool of this many kept open, and up to
    # this many more opened under load (README "Running it for a whole country": the sum over
    # every process must stay under PostgreSQL's max_connections). A request that finds all of
    # them busy waits at most db_pool_timeout seconds, then is answered 503 with Retry-After.
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(10, ge=0)
    db_pool_timeout: float = Field(10.0, gt=0)

    pump_interval_seconds: float = 5.0
    # LINE push messages the Official Account may send in a calendar month (Asia/Bangkok): 300
    # is LINE Thailand's free (Communication) plan; set your plan's. A grouped delivery (a
    # person's reminders of the day, one Flex push) counts once. Past line_quota_threshold of
    # it, reminder-3 and reminder-1 go by e-mail to whoever has one, and the coordinators are
    # told once that month. 0: no quota kept.
    # One message a person a day per channel (a Flex carousel, one e-mail) for the reminders;
    # false: each reminder row is its own message (tests of row-level delivery across processes).
    pump_group_reminders: bool = True
    line_monthly_quota: int = Field(300, ge=0)
    line_quota_threshold: float = Field(0.8, gt=0, le=1)
    # LINE pushes in flight at once, spread over this many HTTP clients (httpx's pool slows
    # down with many connections), and never more than this many started in any second.
    pump_line_concurrency: int = Field(50, ge=1)
    pump_line_shards: int = Field(10, ge=1)
    pump_line_requests_per_second: float = Field(2000.0, gt=1)
    demo_now: datetime | None = None  # demo only: the clock starts at this instant and runs on
    # demo only: the real instant at which the demo clock read ``demo_now`` (tidtam serve sets
    # it for every process it starts, so they agree); unset, each process starts its own.
    demo_epoch: datetime | None = None
    # demo only: the address the web app may listen on besides loopback (the demo's session key
    # is public, so by default a demo is reachable from this machine only).
    demo_bind: str | None = None

    # Sessions and sign-in (README "Accounts and sign-in"): a browser session ends after this
    # many idle minutes, and any session or API token this many hours after sign-in.
    session_idle_minutes: int = Field(60, ge=1)
    session_max_hours: float = Field(12.0, gt=0)
    # A password-reset link works once, for this many minutes.
    reset_link_minutes: int = Field(30, ge=1)
    # Wrong passwords allowed per account (and per client address) within the window; the next
    # is answered 429 with Retry-After. From the third failure on, each waits twice as long.
    login_window_minutes: int = Field(15, ge=1)
    login_max_failures: int = Field(10, ge=1)
    login_max_failures_per_address: int = Field(50, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, values: dict) -> dict:
        """Let ``X_FILE`` hold the path of a file whose content is ``X`` (Docker/systemd secrets)."""
        import os

        for name in ("secret_key", "smtp_password", "line_channel_access_token",
                     "line_channel_secret"):
            path = os.environ.get(f"TIDTAM_{name.upper()}_FILE")
            if path and not values.get(name):
                values[name] = Path(path).read_text(encoding="utf-8").strip()
        return values

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_variables(cls, values: dict) -> dict:
        """A mistyped TIDTAM_ variable would silently fall back to a default: refuse it."""
        import os

        known = {f"TIDTAM_{name.upper()}" for name in cls.model_fields}
        known |= {f"{name}_FILE" for name in known} | {"TIDTAM_HOME"}
        unknown = sorted(k for k in os.environ if k.startswith("TIDTAM_") and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; see README "
                                f"'Configuration' (ไม่รู้จักค่าตั้ง {', '.join(unknown)})")
        return values

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        """Outside demo mode, a missing or placeholder secret stops the process at start-up."""
        ZoneInfo(self.timezone)  # raises on an unknown zone
        if self.demo_now is not None and (not self.demo or self.demo_now.tzinfo is None):
            raise SettingsError("TIDTAM_DEMO_NOW needs TIDTAM_DEMO=1 and a time zone, e.g. "
                                "2024-07-16T10:00:00+07:00 (ใช้ได้เฉพาะโหมดสาธิต และต้องระบุเขตเวลา)")
        if self.demo_epoch is not None and (self.demo_now is None
                                            or self.demo_epoch.tzinfo is None):
            raise SettingsError("TIDTAM_DEMO_EPOCH needs TIDTAM_DEMO_NOW and a time zone "
                                "(ต้องใช้คู่กับ TIDTAM_DEMO_NOW และต้องระบุเขตเวลา)")
        if self.demo:
            return self
        problems = []
        for name in ("secret_key", "smtp_password", "line_channel_access_token",
                     "line_channel_secret"):
            value = getattr(self, name)
            if value is not None and value.get_secret_value() and _is_placeholder(value):
                problems.append(f"TIDTAM_{name.upper()} is a placeholder; set the real value "
                                f"or leave it unset (ค่าลับเป็นค่าตัวอย่าง)")
        key = self.secret_key.get_secret_value()
        if key and len(key) < MIN_SECRET_KEY:
            problems.append(f"TIDTAM_SECRET_KEY is {len(key)} characters; use at least "
                            f"{MIN_SECRET_KEY} random ones, e.g. `openssl rand -base64 48` "
                            f"(กุญแจลับต้องยาวอย่างน้อย {MIN_SECRET_KEY} ตัวอักษร)")
        if self.demo_bind:
            problems.append("TIDTAM_DEMO_BIND is for demo mode only (ใช้ได้เฉพาะโหมดสาธิต)")
        if problems:
            raise SettingsError("Refusing to start / ไม่สามารถเริ่มระบบ: " + "; ".join(problems))
        return self

    def check_bind(self, host: str) -> None:
        """A demo listens on loopback only, unless TIDTAM_DEMO_BIND names this address."""
        if self.demo and host not in LOOPBACK and host != self.demo_bind:
            raise SettingsError(
                f"demo mode listens on 127.0.0.1 only: its session key is public. To show it on "
                f"{host} anyway, set TIDTAM_DEMO_BIND={host} (โหมดสาธิตเปิดได้เฉพาะ 127.0.0.1 "
                f"เพราะกุญแจลับเป็นค่าสาธารณะ หากจำเป็นให้ตั้ง TIDTAM_DEMO_BIND={host})")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        """The database URL; by default a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tidtam.db').resolve()}"

    @property
    def session_secret(self) -> str:
        """The key that signs session cookies; a fixed one only in demo mode."""
        value = self.secret_key.get_secret_value()
        if value:
            return value
        if self.demo:
            return "tidtam-demo-only-session-key-not-for-production"
        raise SettingsError(
            "TIDTAM_SECRET_KEY is not set: the web app needs it outside demo mode "
            "(ต้องตั้งค่า TIDTAM_SECRET_KEY ก่อนเปิดเว็บ เว้นแต่โหมดสาธิต TIDTAM_DEMO=1)")


def _is_placeholder(value: SecretStr) -> bool:
    raw = value.get_secret_value().strip()
    return raw.lower() in PLACEHOLDERS or (len(raw) < 16 and raw.lower().startswith("change"))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
