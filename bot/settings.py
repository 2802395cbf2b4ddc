"""Every setting the bot reads from the environment, with its default and meaning.

This is the only module that reads ``os.environ`` for the bot's own settings.
``load()`` reads them afresh at each call (a test or a parent process may
change the environment); ``load(mapping)`` reads a given mapping only.
``python -m bot.run.serve`` hands the resolved values to its child processes
(``as_environ``), so the Rasa server, the action server and the chat page see
the same ones, and the profile's endpoints file can expand them
(``endpoint_variables``).

Paths of the project's own files (data, var, models) are constants here too.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import (
    BaseSettings,
    Field,
    SecretStr,
    ValidationError,
    root_validator,
    validator,
)
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
KNOWLEDGE_DIR = DATA_DIR / "knowledge"
VAR_DIR = PROJECT_ROOT / "var"
MODELS_DIR = PROJECT_ROOT / "models"
SPACY_PIPELINE_DIR = VAR_DIR / "spacy" / "en_isotretinoin_lookup"
PROFILES = ("embedded", "production")


class SettingsError(ValueError):
    """A setting has a value the bot cannot use; the message names it."""


class Settings(BaseSettings):
    """The bot's settings; each field's ``env`` is its environment variable.

    Read them with ``load()``, which also reports unusable values by name.
    """

    # -- Servers (``make run`` starts all three on these addresses) ----------
    rasa_host: str = Field(
        "127.0.0.1", env="RASA_HOST", description="address the Rasa server binds"
    )
    rasa_port: int = Field(5005, env="RASA_PORT", description="the Rasa server's port")
    rasa_public_url: str = Field(
        "",
        env="RASA_PUBLIC_URL",
        description="the Rasa server's origin as browsers reach it behind a proxy "
        "(default http://RASA_HOST:RASA_PORT)",
    )
    actions_host: str = Field(
        "127.0.0.1", env="ACTIONS_HOST", description="address the action server binds"
    )
    actions_port: int = Field(
        5055, env="ACTIONS_PORT", description="the action server's port"
    )
    web_host: str = Field(
        "127.0.0.1", env="WEB_HOST", description="address the chat page's server binds"
    )
    web_port: int = Field(8080, env="WEB_PORT", description="the chat page's port")
    web_public_url: str = Field(
        "",
        env="WEB_PUBLIC_URL",
        description="the chat page's origin behind a proxy (the only origin the "
        "socket.io channel then accepts)",
    )

    # -- Profile -------------------------------------------------------------
    profile: str = Field(
        "embedded",
        env="BOT_PROFILE",
        description="embedded: SQLite files under var/, one process of each "
        "server; production: PostgreSQL (BOT_DATABASE_URL, BOT_TRACKER_URL) and "
        "a Redis lock store (REDIS_URL), for several replicas "
        "(endpoints.production.yml)",
    )
    tracker_url: str = Field(
        "",
        env="BOT_TRACKER_URL",
        description="production: SQLAlchemy URL of Rasa's conversation store on "
        "PostgreSQL (default: BOT_DATABASE_URL)",
    )
    redis_url: str = Field(
        "",
        env="REDIS_URL",
        description="production: the Redis that serialises each conversation's "
        "messages across replicas, redis://[:password@]host:port/db",
    )
    actions_url: str = Field(
        "",
        env="ACTIONS_URL",
        description="the action server's webhook as the Rasa server reaches it "
        "(default http://ACTIONS_HOST:ACTIONS_PORT/webhook)",
    )

    run_state_file: Path = Field(
        VAR_DIR / "run-state.json",
        env="BOT_RUN_STATE",
        description="`make run`: each server's process id and restart count",
    )

    # -- make cluster (bot/run/cluster.py) -----------------------------------
    lb_port: int = Field(
        5080, env="LB_PORT", description="the cluster's load balancer (nginx) port"
    )
    cluster_replicas: int = Field(
        2,
        env="BOT_CLUSTER_REPLICAS",
        description="Rasa servers, and action servers, that `make cluster` starts",
    )
    cluster_dir: Path = Field(
        VAR_DIR / "cluster",
        env="BOT_CLUSTER_DIR",
        description="the cluster's nginx configuration, logs and state.json",
    )

    rasa_api_token: SecretStr = Field(
        SecretStr(""),
        env="RASA_API_TOKEN",
        description="turns on Rasa's HTTP API (/status, /conversations, /model ...) "
        "and requires this token (?token=...) on every call; empty: the API is off",
    )
    dependency_check_s: float = Field(
        15.0,
        env="BOT_DEPENDENCY_CHECK_S",
        description="how often the Rasa server checks its conversation store, "
        "lock store and database, logging each outage and recovery once",
    )

    # -- Rate limits (bot/channels/limits.py) ---------------------------------
    rate_per_sender: int = Field(
        20,
        env="BOT_RATE_PER_SENDER",
        description="messages a conversation may send per window before a "
        "polite 'please wait' (a flagged message is never limited)",
    )
    rate_per_address: int = Field(
        60,
        env="BOT_RATE_PER_ADDRESS",
        description="messages one network address may send per window",
    )
    rate_window_s: float = Field(
        60.0, env="BOT_RATE_WINDOW_S", description="the rate limits' window"
    )

    # -- Storage -------------------------------------------------------------
    database_url: str = Field(
        "",
        env="BOT_DATABASE_URL",
        description="SQLAlchemy URL of the bot's own database: knowledge base, "
        "handoffs, SMS state (default: SQLite var/bot.db)",
    )
    tracker_db: Path = Field(
        VAR_DIR / "conversations.db",
        env="BOT_TRACKER_DB",
        description="SQLite file of Rasa's conversation store (endpoints.yml)",
    )
    tracker_timeout_s: float = Field(
        30.0,
        env="BOT_TRACKER_TIMEOUT_S",
        description="seconds one read or write of a PostgreSQL conversation store "
        "may take before Rasa answers that message from memory (a hung database)",
    )
    handoff_spool: Path = Field(
        VAR_DIR / "handoff-spool.jsonl",
        env="BOT_HANDOFF_SPOOL",
        description="file that keeps handoffs the database could not take",
    )
    sms_spool: Path | None = Field(
        None,
        env="BOT_SMS_SPOOL",
        description="file that keeps SMS opt-outs and call-back numbers the "
        "database could not take (default: sms-spool.jsonl beside BOT_HANDOFF_SPOOL)",
    )
    retention_days: int = Field(
        90,
        env="BOT_RETENTION_DAYS",
        description="`make purge` deletes conversations, SMS records and handoff "
        "texts older than this many days",
    )
    clinic_file: Path = Field(
        DATA_DIR / "clinic.yml",
        env="BOT_CLINIC_FILE",
        description="the clinic's details",
    )
    model: Path | None = Field(
        None,
        env="BOT_MODEL",
        description="a trained model file (default: the one for the current inputs)",
    )

    # -- The crisis path and staff alerts ------------------------------------
    crisis_reply_wait_s: float = Field(
        3.0,
        env="BOT_CRISIS_REPLY_WAIT_S",
        description="longest wait for the bot's crisis reply before a channel "
        "sends its own (988, 911) and stores the handoff itself",
    )
    reply_wait_s: float = Field(
        30.0,
        env="BOT_REPLY_WAIT_S",
        description="longest wait for any other reply before the channel says the "
        "bot is unavailable and gives the clinic's phone",
    )
    safety_answer_timeout_s: float = Field(
        300.0,
        env="BOT_SAFETY_ANSWER_TIMEOUT_S",
        description="how long the direct safety question may stay unanswered "
        "before its handoff becomes a crisis",
    )
    handoff_webhook_url: str = Field(
        "",
        env="HANDOFF_WEBHOOK_URL",
        description="where staff alerts are posted (Slack/Teams-style webhook); "
        "empty: alerts are only listed by ``python -m bot.staff``",
    )
    handoff_retry_base_s: float = Field(
        15.0,
        env="HANDOFF_RETRY_BASE_S",
        description="first delay before an alert that failed is tried again "
        "(then x2, x4, ... x40)",
    )
    handoff_retry_interval_s: float = Field(
        2.0,
        env="HANDOFF_RETRY_INTERVAL_S",
        description="how often the alerts worker (python -m bot.safety.alerts) "
        "looks for alerts to send: the longest a new crisis waits for its alert",
    )

    # -- SMS through Twilio (without all of these the SMS webhook answers 503)
    twilio_account_sid: str = Field("", env="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr = Field(
        SecretStr(""), env="TWILIO_AUTH_TOKEN", description="signs Twilio's webhooks"
    )
    twilio_from_number: str = Field(
        "", env="TWILIO_FROM_NUMBER", description="the clinic's SMS number"
    )
    twilio_api_base_url: str = Field(
        "", env="TWILIO_API_BASE_URL", description="default: Twilio's API"
    )
    sms_webhook_url: str = Field(
        "",
        env="SMS_WEBHOOK_URL",
        description="the public URL Twilio posts to (part of the signature)",
    )
    sms_sender_key: SecretStr = Field(
        SecretStr(""),
        env="SMS_SENDER_KEY",
        description="secret of the keyed hash that turns a number into a sender id",
    )
    sms_contact_key: SecretStr = Field(
        SecretStr(""),
        env="SMS_CONTACT_KEY",
        description="Fernet key that encrypts call-back numbers",
    )

    class Config:
        case_sensitive = True
        extra = "ignore"
        allow_mutation = False  # one instance is shared (see load)

    @validator("profile")
    def _known_profile(cls, value: str) -> str:  # noqa: N805
        if value not in PROFILES:
            raise ValueError(f"must be one of {', '.join(PROFILES)}")
        return value

    @root_validator(skip_on_failure=True)
    def _production_needs_servers(cls, values: dict) -> dict:  # noqa: N805
        """The production profile never falls back to the embedded files."""
        if values.get("profile") != "production":
            return values
        if not values.get("database_url", "").startswith("postgresql"):
            raise ValueError(
                "BOT_PROFILE=production needs BOT_DATABASE_URL on PostgreSQL "
                "(postgresql+psycopg2://user:password@host:port/database)"
            )
        tracker = values.get("tracker_url") or values["database_url"]
        if not tracker.startswith("postgresql"):
            raise ValueError("BOT_TRACKER_URL must be a PostgreSQL URL")
        if not values.get("redis_url", "").startswith("redis://"):
            raise ValueError(
                "BOT_PROFILE=production needs REDIS_URL (redis://host:port/db)"
            )
        return values

    @validator("rasa_api_token")
    def _long_token(cls, value: SecretStr) -> SecretStr:  # noqa: N805
        secret = value.get_secret_value()
        if secret and (len(secret) < 24 or secret != secret.strip()):
            raise ValueError(
                "must be at least 24 characters without spaces around it "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @validator("dependency_check_s", "tracker_timeout_s")
    def _positive_interval(cls, value: float) -> float:  # noqa: N805
        if value <= 0:
            raise ValueError("must be more than 0 seconds")
        return value

    @property
    def production(self) -> bool:
        return self.profile == "production"

    @property
    def endpoints_file(self) -> Path:
        """Rasa's endpoints for this profile (``--endpoints``)."""
        name = "endpoints.production.yml" if self.production else "endpoints.yml"
        return PROJECT_ROOT / name

    def endpoint_variables(self) -> dict[str, str]:
        """What the endpoints file expands: the action server's URL and, in
        production, the parts of the tracker store's and Redis's URLs (Rasa's
        SQL tracker store and lock stores take host, port, ... separately)."""
        variables = {
            "ACTIONS_URL": self.actions_url
            or f"http://{self.actions_host}:{self.actions_port}/webhook"
        }
        if not self.production:
            return variables
        tracker = make_url(self.tracker_url or self.database_url)
        redis = urlsplit(self.redis_url)
        variables.update(
            TRACKER_HOST=tracker.host or "127.0.0.1",
            TRACKER_PORT=str(tracker.port or 5432),
            TRACKER_DB=tracker.database or "",
            TRACKER_USER=tracker.username or "",
            TRACKER_PASSWORD=tracker.password or "",
            LOCK_REDIS_HOST=redis.hostname or "127.0.0.1",
            LOCK_REDIS_PORT=str(redis.port or 6379),
            LOCK_REDIS_DB=redis.path.lstrip("/") or "0",
            LOCK_REDIS_PASSWORD=redis.password or "",
        )
        return variables

    @property
    def sms_state_spool(self) -> Path:
        """``BOT_SMS_SPOOL``, or ``sms-spool.jsonl`` beside the handoff spool."""
        return self.sms_spool or self.handoff_spool.with_name("sms-spool.jsonl")

    @property
    def bot_database_url(self) -> str:
        """``BOT_DATABASE_URL``, or the embedded SQLite file."""
        return self.database_url or f"sqlite:///{VAR_DIR / 'bot.db'}"

    def as_environ(self) -> dict[str, str]:
        """Every setting as the environment variable a child process reads."""
        environ = {}
        for field in self.__fields__.values():
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "on" if value else "off"
            environ[env_name(field.name)] = str(value)
        return {**environ, **self.endpoint_variables()}


class _FromMapping(Settings):
    """Settings from the mapping ``load`` was given, validated, and nothing else."""

    class Config:
        @classmethod
        def customise_sources(cls, init_settings, env_settings, file_secret_settings):
            return (init_settings,)


def env_name(field_name: str) -> str:
    return next(iter(Settings.__fields__[field_name].field_info.extra["env_names"]))


_ENV_NAMES = tuple(env_name(name) for name in Settings.__fields__)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the process environment, or from ``environ`` only.

    A variable set to the empty string counts as not set. The result is
    immutable and shared by every call that sees the same values (reading
    them costs a few microseconds, so hot paths may call this per message).
    Raises ``SettingsError`` naming each variable whose value is unusable.
    """
    environ = os.environ if environ is None else environ
    return _load(tuple(environ.get(variable, "") for variable in _ENV_NAMES))


@functools.lru_cache(maxsize=64)
def _load(values: tuple[str, ...]) -> Settings:
    given = {
        name: value
        for name, value in zip(Settings.__fields__, values, strict=True)
        if value != ""
    }
    try:
        return _FromMapping(**given)
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            name = str(problem["loc"][0])
            if name == "__root__":  # a rule across settings: its text names them
                problems.append(problem["msg"])
                continue
            label = env_name(name) if name in Settings.__fields__ else name
            problems.append(f"{label}: {problem['msg']}")
        raise SettingsError("; ".join(problems)) from None


def database_url() -> str:
    """The SQLAlchemy URL of the bot's own database (knowledge base, handoffs)."""
    return load().bot_database_url


def clinic_file() -> Path:
    """The clinic's details: ``BOT_CLINIC_FILE`` or ``data/clinic.yml``."""
    return load().clinic_file


def describe() -> str:
    """A table of every setting, its variable, default and meaning."""
    lines = []
    for field in Settings.__fields__.values():
        default = field.default
        if isinstance(default, SecretStr):
            default = ""
        if isinstance(default, Path) and default.is_relative_to(PROJECT_ROOT):
            default = default.relative_to(PROJECT_ROOT)
        meaning = field.field_info.description or ""
        lines.append(f"{env_name(field.name):28} {str(default)!r:32} {meaning}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe())
