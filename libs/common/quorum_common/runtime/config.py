"""Typed service configuration from environment variables (pydantic-settings).

Every setting is read from ``QUORUM_<FIELD>`` (e.g. ``QUORUM_KAFKA_BOOTSTRAP_SERVERS``). A service
extends :class:`ServiceSettings` with its own fields. An invalid value stops the service at start
with a message naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from quorum_common.engine_state import MIN_KEY_BYTES

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the environment variable."""


class ServiceSettings(BaseSettings):
    """Settings every service shares."""

    model_config = SettingsConfigDict(env_prefix="QUORUM_", extra="ignore", frozen=True)

    service_name: str = Field("service", description="Name used for the consumer group, metrics and logs.")
    transport: Literal["kafka", "inprocess"] = Field("kafka", description="Which bus runs the service.")
    kafka_bootstrap_servers: str = Field(DEFAULT_BOOTSTRAP, description="Comma-separated host:port list.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(None, description="CA bundle for SSL/SASL_SSL.")
    topic_prefix: str = Field("", description="Prefix of every topic name (isolated replays and tests).")
    delivery: Literal["at_least_once", "exactly_once"] = Field(
        "exactly_once", description="Commit offsets after delivery, or inside a Kafka transaction."
    )
    batch_size: int = Field(500, ge=1, le=100_000, description="Records consumed per batch.")
    commit_every: int = Field(1000, ge=1, le=1_000_000, description="At-least-once: most records handled between "
                              "two offset commits while the consumer is busy (it also commits whenever it catches "
                              "up); a crash may repeat up to this many per partition.")
    commit_interval_ms: int = Field(100, ge=0, le=60_000, description="At-least-once, without lockstep: least time "
                                     "between two commits of a consumer that keeps catching up (fewer commit "
                                     "requests on the broker; a crash may repeat what this window handled).")
    linger_ms: int = Field(1, ge=0, le=1000, description="Producer linger: latency against batching.")
    instance_id: str = Field("0", description="Distinguishes replicas (transactional ids).")
    lockstep: bool = Field(False, description="Deliver in clock-tick phases (deterministic replays): bus/lockstep.py.")
    lockstep_groups: list[str] = Field(
        default_factory=list,
        description="For a lockstep source: the consumer services (JSON list) whose phase reports it waits for "
        "before each clock tick, each only where it may have published (bus/phase_barrier.py).",
    )
    lockstep_timeout_s: float = Field(120.0, gt=0, le=86_400, description="For a lockstep source: how long it "
                                      "waits for the phase reports of a tick before it stops with an error naming "
                                      "the silent services (a consumer that is starting or restarting must fit).")
    lockstep_standby: bool = Field(False, description="For a lockstep replay source: once the replay has ended, stay "
                                   "up and release the commands sent later (an operator's halt) with HEARTBEAT ticks "
                                   "until stopped (bus/standby.py); `make up` and the Helm chart set it.")
    checkpoint_every_days: float = Field(90.0, ge=0, le=36_500, description="Lockstep, for an engine rebuilt from its "
                                         "history after a restart: event-time days between two checkpoints of its "
                                         "state on state.checkpoints (at the first tick then with no work in "
                                         "flight), so a restart rebuilds only the history after the last one "
                                         "(bus/rebuild.py); 0: none, the whole history.")
    checkpoint_key: SecretStr | None = Field(
        None, min_length=MIN_KEY_BYTES, description="Key (at least 16 characters; a Secret) that seals every "
        "checkpoint with an HMAC-SHA256 tag, checked before a restart unpickles one; without it no checkpoints are "
        "written or restored.")
    checkpoint_previous_key: SecretStr | None = Field(
        None, min_length=MIN_KEY_BYTES, description="While the checkpoint key is rotated: the key before it, "
        "accepted on restore (checkpoints are sealed with the current key only), so a restart goes on from a "
        "checkpoint sealed before the rotation instead of the whole history.")
    http_host: str = Field("127.0.0.1", description="Address of /healthz, /readyz and /metrics.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP endpoint; 0 picks a free one.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    otel_exporter: Literal["none", "console"] = Field("none", description="Where finished spans go.")

    def checkpoint_keys(self) -> tuple[bytes | None, bytes | None]:
        """:attr:`checkpoint_key` and :attr:`checkpoint_previous_key` as bytes (None where unset)."""
        key, previous = self.checkpoint_key, self.checkpoint_previous_key
        return (key.get_secret_value().encode() if key else None,
                previous.get_secret_value().encode() if previous else None)

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings for the bootstrap servers and security options."""
        conf = {"bootstrap.servers": self.kafka_bootstrap_servers, "security.protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username or ""
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = self.kafka_ssl_ca_location
        return conf


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Read ``cls`` from the environment; raise :class:`ConfigError` naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        problems = "; ".join(_problem(prefix, err) for err in exc.errors())
        raise ConfigError(f"invalid {cls.__name__}: {problems}") from None


def validation_message(err: Any) -> str:
    """The message of one pydantic validation error, without the ``Value error,`` prefix pydantic puts before the
    message of a validator's ``ValueError``."""
    return str(err["msg"]).removeprefix("Value error, ")


def _problem(prefix: str, err: Any) -> str:
    """One validation error as ``<VARIABLE>: <why>``, or only why for a check across fields (its message names
    them)."""
    name = "_".join(str(p) for p in err["loc"]).upper()
    why = validation_message(err)
    return f"{prefix}{name}: {why}" if name else why


def settings_env(fields: Mapping[str, object]) -> dict[str, str]:
    """The environment that gives a service's process these settings (field name → value): ``QUORUM_<FIELD>``
    set to the value's text (a date as ``YYYY-MM-DD``, a path as itself)."""
    return {f"QUORUM_{field.upper()}": str(value) for field, value in fields.items()}
