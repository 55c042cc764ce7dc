"""Settings, read from the environment and `.env`, with the names of the DESIGN contract.

`load_settings()` is the only entry point: it turns pydantic's validation report into one
`SettingsError` line per problem that names the environment variable, never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

AVANSER_DEFAULT_URL = "https://tapi-sandbox.avanser.com/v1/"  # HOST of seed 001
EXOTEL_DEFAULT_URL = "https://leadassist.exotel.in/v1/"  # the base of every URL in seed 002
SLACK_DEFAULT_URL = "https://slack.com/api/"


class SettingsError(Exception):
    """A setting is missing or has a value Switchboard cannot use."""


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_FORMAT = "like Mon-Fri 08:00-18:00 Australia/Sydney"


@dataclass(frozen=True)
class BusinessHours:
    """`Mon-Fri 08:00-18:00 Australia/Sydney`: the days (0 = Monday), opening and closing minute, the zone."""

    days: frozenset[int]
    opens: int  # minutes after midnight
    closes: int
    zone: str

    @classmethod
    def parse(cls, text: str) -> BusinessHours:
        """`Mon-Fri 08:00-18:00 Australia/Sydney`; days as a range or a list (`Mon,Wed,Fri`)."""
        parts = text.split()
        if len(parts) != 3:
            raise ValueError(f"must look {HOURS_FORMAT} (got {text!r})")
        days: set[int] = set()
        for piece in parts[0].lower().split(","):
            first, _, last = piece.partition("-")
            if first[:3] not in DAYS or (last and last[:3] not in DAYS):
                raise ValueError(f"days must be Mon … Sun, e.g. Mon-Fri (got {parts[0]!r})")
            start, end = DAYS.index(first[:3]), DAYS.index((last or first)[:3])
            days.update(d % 7 for d in range(start, end + 1 if end >= start else end + 8))
        match = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", parts[1])
        if not match:
            raise ValueError(f"hours must look like 08:00-18:00 (got {parts[1]!r})")
        opens, closes = int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])
        if not (0 <= opens < closes <= 24 * 60 and int(match[2]) < 60 and int(match[4]) < 60):
            raise ValueError(f"the opening time must come before the closing time on the same day (got {parts[1]!r})")
        try:
            ZoneInfo(parts[2])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{parts[2]!r} isn't a time zone such as Australia/Sydney") from None
        return cls(frozenset(days), opens, closes, parts[2])

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def is_open(self, epoch: float) -> bool:
        local = datetime.fromtimestamp(epoch, self.tz)
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.opens <= minute < self.closes

    def next_open(self, epoch: float) -> float:
        """`epoch` itself while open, else the next opening time (in the zone's own clock, DST included)."""
        if self.is_open(epoch):
            return epoch
        local = datetime.fromtimestamp(epoch, self.tz)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            if day.weekday() not in self.days:
                continue
            opening = datetime(day.year, day.month, day.day, self.opens // 60, self.opens % 60, tzinfo=self.tz)
            if opening.timestamp() > epoch:
                return opening.timestamp()
        return epoch  # no open day at all: never wait

    def describe(self) -> str:
        return f"{_hhmm(self.opens)}–{_hhmm(self.closes)} {self.zone}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _env(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name))


class Settings(BaseSettings):
    """Every setting Switchboard reads; the attribute names are internal, the aliases are the contract."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=False
    )

    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = Field(default=SLACK_DEFAULT_URL, validation_alias=AliasChoices("SLACK_API_URL"))
    # Many workspaces (Slack's OAuth install flow): with both set, SLACK_BOT_TOKEN is not needed.
    slack_client_id: str | None = _env("SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = _env("SLACK_CLIENT_SECRET")
    # How long an uninstalled workspace's data is kept before it is purged (30d, 12h, seconds).
    retention: float = Field(default=30 * 86400.0, gt=0, validation_alias=AliasChoices("SWITCHBOARD_RETENTION"))

    avanser_api_url: str = Field(default=AVANSER_DEFAULT_URL, validation_alias=AliasChoices("AVANSER_API_URL"))
    avanser_username: str | None = _env("AVANSER_USERNAME")
    avanser_password: SecretStr | None = _env("AVANSER_PASSWORD")

    exotel_api_url: str = Field(default=EXOTEL_DEFAULT_URL, validation_alias=AliasChoices("EXOTEL_API_URL"))
    exotel_account_sid: str | None = _env("EXOTEL_ACCOUNT_SID")
    exotel_api_key: str | None = _env("EXOTEL_API_KEY")
    exotel_api_token: SecretStr | None = _env("EXOTEL_API_TOKEN")

    dtl_api_url: str | None = _env("DTL_API_URL")
    dtl_username: str | None = _env("DTL_USERNAME")
    dtl_password: SecretStr | None = _env("DTL_PASSWORD")

    # A file path (SQLite) or postgresql://user:password@host:port/db (several replicas).
    db: str = Field(default="./switchboard.db", validation_alias=AliasChoices("SWITCHBOARD_DB"))
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("SWITCHBOARD_HOST"))
    port: int = Field(default=3000, ge=0, le=65535, validation_alias=AliasChoices("SWITCHBOARD_PORT"))
    public_url: str | None = _env("SWITCHBOARD_PUBLIC_URL")
    webhook_token: SecretStr | None = _env("SWITCHBOARD_WEBHOOK_TOKEN")
    metrics_token: SecretStr | None = _env("SWITCHBOARD_METRICS_TOKEN")
    admins: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias=AliasChoices("SWITCHBOARD_ADMINS")
    )
    approvals_channel: str | None = _env("SWITCHBOARD_APPROVALS_CHANNEL")
    alerts_channel: str | None = _env("SWITCHBOARD_ALERTS_CHANNEL")
    country: str = Field(default="AU", validation_alias=AliasChoices("SWITCHBOARD_COUNTRY"))
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("SWITCHBOARD_LOG_LEVEL"))
    recording_hosts: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias=AliasChoices("SWITCHBOARD_RECORDING_HOSTS")
    )
    recording_max_mb: float = Field(
        default=20.0, gt=0, le=1000, validation_alias=AliasChoices("SWITCHBOARD_RECORDING_MAX_MB")
    )
    caller_id: str | None = _env("SWITCHBOARD_CALLER_ID")
    vn_reminder: float = Field(default=900.0, gt=0, validation_alias=AliasChoices("SWITCHBOARD_VN_REMINDER"))
    propagation: float = Field(default=420.0, gt=0, validation_alias=AliasChoices("SWITCHBOARD_PROPAGATION"))
    callback_wait: float = Field(default=600.0, gt=0, validation_alias=AliasChoices("SWITCHBOARD_CALLBACK_WAIT"))
    call_countries: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias=AliasChoices("SWITCHBOARD_CALL_COUNTRIES")
    )
    call_limit: Annotated[tuple[int, int], NoDecode] = Field(
        default=(10, 600), validation_alias=AliasChoices("SWITCHBOARD_CALL_LIMIT")
    )
    call_limit_team: Annotated[tuple[int, int], NoDecode] = Field(
        default=(100, 3600), validation_alias=AliasChoices("SWITCHBOARD_CALL_LIMIT_TEAM")
    )
    bridge_others: Literal["admins", "everyone"] = Field(
        default="admins", validation_alias=AliasChoices("SWITCHBOARD_BRIDGE_OTHERS")
    )
    claim_within: float = Field(default=900.0, ge=0, validation_alias=AliasChoices("SWITCHBOARD_CLAIM_WITHIN"))
    business_hours: Annotated[BusinessHours | None, NoDecode] = Field(
        default=None, validation_alias=AliasChoices("SWITCHBOARD_BUSINESS_HOURS")
    )
    # AVANSER's data feed (seed 000): unset URL = the feed is off.
    avanser_feed_url: str | None = _env("AVANSER_FEED_URL")
    avanser_feed_username: str | None = _env("AVANSER_FEED_USERNAME")
    avanser_feed_password: SecretStr | None = _env("AVANSER_FEED_PASSWORD")
    feed_interval: float = Field(default=300.0, ge=10, validation_alias=AliasChoices("SWITCHBOARD_FEED_INTERVAL"))

    @field_validator(
        "slack_api_url", "avanser_api_url", "exotel_api_url", "dtl_api_url", "public_url", "avanser_feed_url"
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value == "" else value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL (got {value!r})")
        return value

    @field_validator("slack_api_url", "avanser_api_url", "exotel_api_url")
    @classmethod
    def _trailing_slash(cls, value: str | None) -> str | None:
        # Clients join paths onto these bases; a missing slash would drop the last segment.
        if value and not value.endswith("/"):
            return value + "/"
        return value

    @field_validator("db")
    @classmethod
    def _db(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must be a file path or a postgresql:// URL")
        if value.startswith(("postgresql://", "postgres://")):
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 — raises on a port that isn't a number
            except ValueError:
                parts = None
            if parts is None or not parts.hostname or not parts.path.strip("/"):
                scheme = value.split("://", 1)[0]
                raise ValueError(
                    f"must look like {scheme}://user:password@host:5432/database (host and database name needed)"
                )
        elif "://" in value:
            raise ValueError(f"must be a file path or a postgresql:// URL (got a {value.split('://', 1)[0]}:// URL)")
        return value

    @property
    def db_is_postgres(self) -> bool:
        return self.db.startswith(("postgresql://", "postgres://"))

    @property
    def db_path(self) -> Path:
        """The SQLite file (only meaningful when `SWITCHBOARD_DB` is not a PostgreSQL URL)."""
        return Path(self.db)

    @property
    def db_password(self) -> str | None:
        if not self.db_is_postgres:
            return None
        from urllib.parse import unquote, urlsplit

        password = urlsplit(self.db).password
        return unquote(password) if password else None

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValueError(f"must be a phone number in international form, e.g. +61290081596 (got {value!r})")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("call_countries", mode="before")
    @classmethod
    def _countries(cls, value: Any) -> Any:
        if isinstance(value, str):
            codes = frozenset(p.strip().upper() for p in value.replace(",", " ").split() if p.strip())
            bad = sorted(c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS)
            if bad:
                raise ValueError(f"must be two-letter country codes such as AU,NZ (got {', '.join(bad)})")
            return codes
        return value

    @field_validator("business_hours", mode="before")
    @classmethod
    def _business_hours(cls, value: Any) -> Any:
        if isinstance(value, str):
            return BusinessHours.parse(value) if value.strip() else None
        return value

    @field_validator("vn_reminder", "propagation", "claim_within", "retention", mode="before")
    @classmethod
    def _reminder(cls, value: Any) -> Any:
        """`15m`, `2h`, `1d` or seconds."""
        if isinstance(value, str) and value.strip()[-1:] in ("s", "m", "h", "d"):
            number = value.strip()[:-1]
            if not number.replace(".", "", 1).isdigit():
                raise ValueError(f"must look like 15m, 2h or 1d (got {value!r})")
            return float(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[value.strip()[-1]]
        return value

    @field_validator("feed_interval", mode="before")
    @classmethod
    def _feed_interval(cls, value: Any) -> Any:
        """`5m`, `30s`, `1h` or seconds (at least 10 s)."""
        return cls._reminder(value)

    @field_validator("call_limit", "call_limit_team", mode="before")
    @classmethod
    def _call_limit(cls, value: Any) -> Any:
        """`10/10m`: at most 10 calls per user per 10 minutes (units s, m, h)."""
        if not isinstance(value, str):
            return value

        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*([smh]?)\s*", value)
        if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            raise ValueError(f"must look like 10/10m: calls per window (got {value!r})")
        seconds = int(match.group(2)) * {"s": 1, "m": 60, "h": 3600, "": 60}[match.group(3)]
        return (int(match.group(1)), seconds)

    @field_validator("admins", "recording_hosts", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part for part in value.replace(",", " ").split() if part)
        return value

    @field_validator("admins")
    @classmethod
    def _admin_ids(cls, value: frozenset[str]) -> frozenset[str]:
        for user_id in value:
            if not (user_id[:1] in ("U", "W") and user_id[1:].isalnum()):
                raise ValueError(f"must be Slack user ids like U012AB3CD, separated by commas (got {user_id!r})")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"must be a two-letter country code such as AU or IN (got {value!r})")
        return code

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR (got {value!r})")
        return level

    def recording_allowed(self, url: str | None) -> bool:
        """Whether Switchboard may fetch a recording from `url` to upload it to Slack.

        The same parser as the fetch itself (`bot.recordings`), which checks it again, with the
        addresses the host resolves to, when it fetches.
        """
        from bot.recordings import parse_recording_url

        return parse_recording_url(url, self.recording_hosts) is not None

    @property
    def recording_max_bytes(self) -> int:
        return int(self.recording_max_mb * 1024 * 1024)

    # -- what is configured ---------------------------------------------------------------

    @property
    def avanser_configured(self) -> bool:
        return bool(self.avanser_username and self.avanser_password)

    @property
    def exotel_configured(self) -> bool:
        return bool(self.exotel_account_sid and self.exotel_api_key and self.exotel_api_token)

    @property
    def feed_configured(self) -> bool:
        return bool(self.avanser_feed_url)

    @property
    def dtl_configured(self) -> bool:
        return bool(self.dtl_api_url and self.dtl_username and self.dtl_password)

    @property
    def many_workspaces(self) -> bool:
        """Installed through Slack's OAuth flow (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET), one token per workspace."""
        return bool(self.slack_client_id and self.slack_client_secret and self.slack_client_secret.get_secret_value())

    def require_slack(self) -> None:
        """Raise SettingsError unless the settings needed to talk to Slack are present."""
        needed: list[tuple[str, SecretStr | None]] = [("SLACK_SIGNING_SECRET", self.slack_signing_secret)]
        if not self.many_workspaces:
            needed.insert(0, ("SLACK_BOT_TOKEN", self.slack_bot_token))
        if self.slack_client_id and not self.many_workspaces:
            raise SettingsError(
                "SLACK_CLIENT_SECRET: not set. With SLACK_CLIENT_ID it comes from your Slack app's 'Basic Information'"
                " page (App Credentials)."
            )
        missing = [name for name, value in needed if value is None or not value.get_secret_value()]
        if missing:
            raise SettingsError(
                f"{', '.join(missing)}: not set. Copy them from your Slack app's 'Basic Information' "
                "and 'OAuth & Permissions' pages into the environment or .env (or set SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET to install into many workspaces)."
            )


def _alias_of(field_name: str) -> str:
    field = Settings.model_fields[field_name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field_name.upper()


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad setting, naming the environment variable."""
    lines = []
    for problem in error.errors():
        location = problem.get("loc", ())
        name = str(location[0]) if location else "settings"
        if name in Settings.model_fields:
            name = _alias_of(name)
        message = problem.get("msg", "invalid value")
        message = message.removeprefix("Value error, ")
        given = problem.get("input")
        if problem.get("type", "").startswith(("int_", "greater_than", "less_than")):
            message = f"{message} (got {given!r})"
        lines.append(f"{name}: {message}")
    return "; ".join(lines)


def load_settings(env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Read settings from the environment and `env_file`; keyword overrides use the contract names."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
