"""Configuration: frozen pydantic-settings models, env ``SCORER_*`` and an optional YAML file.

Nested fields use ``__``: ``SCORER_KAFKA__BOOTSTRAP_SERVERS=broker:9092``,
``SCORER_INFERENCE__BACKEND=onnxruntime``. ``SCORER_CONFIG=/etc/scorer.yaml`` (or
``scorer run --config``) names a YAML file; environment variables win over the file.
Secrets are ``SecretStr`` and may come from files (``*_file`` fields), so they never
appear in logs, metrics or ``repr``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from scorer.errors import ConfigError
from scorer.events.structs import EventKind

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(BaseModel):
    model_config = _FROZEN

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "scorer"
    group_id: str = "scorer"
    # Static group membership (KIP-345): a process restarted with the same instance id (e.g.
    # a StatefulSet pod name) takes its partitions back at once instead of waiting a session
    # timeout for the dead member to expire. Must be unique per live process.
    group_instance_id: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    transactional: bool = False
    session_timeout_ms: int = 10_000
    max_partition_fetch_bytes: int = 1 << 20
    # aiokafka re-reads metadata on leadership errors only, else at this age. A leader cut off
    # from its followers and the controller keeps answering NotEnoughReplicas (retriable, not
    # a metadata error) after the cluster has moved leadership: until the next refresh every
    # send retries into it. Kafka's default of 5 minutes would stall the scorer that long.
    metadata_max_age_ms: int = Field(default=30_000, ge=1_000)
    # Of the topics the service creates itself (an existing topic is never changed). None:
    # min(3, the brokers in the cluster). Such a topic gets min.insync.replicas one less (at
    # least 1): an acked write is on two brokers of three, and one broker may be down.
    replication_factor: int | None = Field(default=None, ge=1)
    # CRC32C of every fetched record batch, in aiokafka's table-driven code: 0.3-1.0 us of the
    # ~3.3 us an event's consumption costs (docs/benchmarks.md section 24). Off by default, as
    # in librdkafka: the broker checks each batch's CRC when it is produced and TCP checks the
    # wire: what is left is disk corruption on the broker, whose values mostly fail decoding
    # (dead letters with the reason). On where that trade is not wanted.
    check_crcs: bool = False

    def password(self) -> str | None:
        if self.sasl_password is not None:
            return self.sasl_password.get_secret_value()
        if self.sasl_password_file is not None:
            return self.sasl_password_file.read_text().strip()
        return None


class TopicSettings(BaseModel):
    model_config = _FROZEN

    netflow: str = "events.netflow"
    edr: str = "events.edr"
    siem: str = "events.siem"
    alerts_prefix: str = "alerts."
    dead_letter: str = "events.dlq"
    # Past this size (value + key + headers) a dead letter keeps a prefix of the original value
    # and its size and sha256: keep it under the dead-letter topic's max.message.bytes.
    dead_letter_max_bytes: int = 1_000_000
    # When set, every scored event's score goes here too (for evaluation and shadowing).
    scores: str | None = None

    def input_topics(self, kinds: tuple[EventKind, ...]) -> dict[str, EventKind]:
        return {getattr(self, k.value): k for k in kinds}

    def alert_topic(self, kind: EventKind) -> str:
        return f"{self.alerts_prefix}{kind.value}"


class BatchSettings(BaseModel):
    model_config = _FROZEN

    max_records: int = Field(default=4096, ge=1, le=100_000)
    max_wait_ms: int = Field(default=5, ge=0, le=10_000)
    max_record_bytes: int = Field(default=256 * 1024, ge=1024)
    # Batches handed to the producer but not yet acknowledged+committed (pipelining depth).
    max_inflight: int = Field(default=4, ge=1, le=64)


class InferenceSettings(BaseModel):
    model_config = _FROZEN

    backend: Literal["triton", "onnxruntime"] = "triton"
    triton_url: str = "127.0.0.1:8001"
    triton_timeout_s: float = 2.0
    # gRPC over TLS to Triton (PEM file paths; a client key/cert pair only for mutual TLS).
    triton_ssl: bool = False
    triton_root_certificates: Path | None = None
    triton_private_key: Path | None = None
    triton_certificate_chain: Path | None = None
    # Triton on this host: tensors through POSIX shared memory, up to this many requests in
    # flight, each with its own regions (scorer/inference/triton_shm.py; docs/gpu-serving.md).
    triton_shared_memory: bool = False
    triton_max_in_flight: int = Field(default=8, ge=1)
    model_repository: Path = Path("model_repository")
    # What to do when Triton is down: score in process, or stop consuming until it is back.
    on_triton_outage: Literal["fallback", "pause"] = "fallback"
    # In-process ONNX Runtime: calls of at least this many rows run in a worker thread
    # (without the GIL), overlapping the next kind's features; smaller ones run inline.
    # Worth it only with an idle core: on the 2-core dev box, shared with the broker,
    # inline was faster (docs/benchmarks.md), so the default keeps pipeline batches inline.
    offload_rows: int = Field(default=65_536, ge=1)
    # What scores in process (the onnxruntime backend, Triton's fallback): ONNX Runtime; the
    # version's tree ensemble vectorized over rows (scorer/inference/vectorized.py: AVX-512 or
    # AVX2, nothing to build); or its trees compiled to C (model.tl -> tl2cgen -> the host's cc:
    # seconds per version the first time on a host, then cached; scorer/inference/compiled.py).
    # Each is checked against ONNX Runtime at load; a version the engine cannot score falls
    # back to ONNX Runtime with a WARNING (docs/benchmarks.md sections 19, 24, 39). auto:
    # vectorized, else compiled where the host can build it, else ONNX Runtime.
    in_process_engine: Literal["auto", "onnxruntime", "compiled", "vectorized"] = "auto"
    # Where compiled libraries are cached, by content (None: ~/.cache/scorer/compiled-trees).
    compiled_cache: Path | None = None
    # With Triton and on_triton_outage=fallback: calls of fewer rows are scored in process (the
    # same version) even while Triton is up; a small call's gRPC round trip costs more than
    # scoring its rows here (scorer/inference/failover.py). 0: every call goes to Triton.
    in_process_below_rows: int = Field(default=0, ge=0)
    models: dict[str, str] = {
        "netflow": "netflow_classifier",
        "edr": "edr_classifier",
        "siem": "siem_classifier",
    }
    versions: dict[str, str] = {}


class ProfileSettings(BaseModel):
    """Where feature set v2 reads entity profiles (docs/profiles.md).

    ``local``: computed in this process from the events it scores (exact, but partition-local
    and lost on restart: the embedded default). ``topic``: a read-only view of the compacted
    ``<topic_prefix><kind>`` topics that the stream workers (``python -m streams``) publish.
    """

    model_config = _FROZEN

    source: Literal["local", "topic"] = "local"
    topic_prefix: str = "profiles."
    max_entries: int = Field(default=500_000, ge=1)  # keys held by the view, all kinds together
    catch_up_timeout_s: float = 60.0  # read new profile partitions to their end before scoring them
    # "assigned": the view reads only the profile partitions of the scorer's input partitions
    # (the job co-partitions them); "all": every partition, for topics that are not co-partitioned.
    partitions: Literal["assigned", "all"] = "assigned"


class LifecycleSettings(BaseModel):
    """The model lifecycle (docs/model-lifecycle.md): control plane topics and model loading."""

    model_config = _FROZEN

    enabled: bool = True
    control_topic: str = "scorer.control"
    status_topic: str = "scorer.status"
    shadow_topic: str = "scorer.shadow"
    # Run before asking Triton to load a new version, when Triton does not read the model
    # repository itself. Locally: deploy/local/triton.py sync --repository ... --workdir ...
    sync_command: list[str] = []
    sync_timeout_s: float = 60.0
    # How often each process checks that Triton still serves its versions (a restarted
    # Triton loads its config's version policy, not what the control topic names).
    reconcile_s: float = 5.0
    # A version no state keeps any more leaves Triton this long after the switch that
    # retired it: Triton is shared, and a scorer still applying the state may use it.
    retire_grace_s: float = Field(default=60.0, ge=0.0)


class RuleSettings(BaseModel):
    """Detection rules (Sigma) run on every EDR event before its features (docs/rules.md)."""

    model_config = _FROZEN

    enabled: bool = True
    repository: Path = Path("rule_repository")
    pack: str = "sigma_windows"
    version: str = ""  # empty: the highest version in the repository


class IncidentSettings(BaseModel):
    """The incident stage, ``python -m streams incidents`` (docs/incidents.md): its topics
    and the episode policy of :class:`scorer.incidents.Policy` (finding time, seconds)."""

    model_config = _FROZEN

    topic: str = "incidents"  # OCSF Incident Findings, keyed by incident uid
    keyed_topic: str = "incidents.keyed"  # finding digests re-keyed by correlation entity
    state_topic: str = "incidents.state"  # compacted changelog, co-partitioned with keyed_topic
    links_topic: str = "incidents.links"  # compacted: address -> host
    suppressions_topic: str = "incidents.suppressions"  # compacted: rule id -> rule
    suppressed_topic: str = "incidents.suppressed"  # findings a rule muted, with the rule
    dead_letter: str = "incidents.dlq"  # findings that name no entity, undecodable records
    partitions: int = Field(default=3, ge=1)  # of keyed_topic and state_topic when created here
    suppressions_file: Path | None = None
    quiet_s: float = Field(default=3600.0, gt=0)
    max_span_s: float = Field(default=86_400.0, gt=0)
    update_interval_s: float = Field(default=300.0, ge=0)
    sample: int = Field(default=32, ge=2)
    max_items: int = Field(default=64, ge=1)
    max_open: int = Field(default=20_000, ge=1)
    max_future_s: float = Field(default=3600.0, ge=0)
    recent_uids: int = Field(default=32_768, ge=0)  # finding uids remembered to drop re-published duplicates
    max_links: int = Field(default=100_000, ge=1)
    assignee_group: str = "SOC"


class HttpSettings(BaseModel):
    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = 9400
    # A listening socket inherited from the supervisor of `scorer run --processes N`, served
    # instead of binding host:port: the supervisor holds each worker's port for its whole life,
    # so no other process takes it before the worker starts or between its restarts.
    fd: int | None = None


class Settings(BaseSettings):
    """All settings of one scorer process."""

    model_config = SettingsConfigDict(
        env_prefix="SCORER_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    kinds: tuple[EventKind, ...] = (EventKind.NETFLOW, EventKind.EDR, EventKind.SIEM)
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    batch: BatchSettings = BatchSettings()
    inference: InferenceSettings = InferenceSettings()
    http: HttpSettings = HttpSettings()
    profiles: ProfileSettings = ProfileSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    rules: RuleSettings = RuleSettings()
    incidents: IncidentSettings = IncidentSettings()
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls), file_secret_settings)


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("SCORER_CONFIG")
        if not path:
            return {}
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        return data


def data_dir() -> Path:
    """The labelled data folder training, replay tools and tests read: ``$SCORER_DATA_DIR``,
    by default ``shared/data`` beside the repository (``../shared/data``)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("SCORER_DATA_DIR", default))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    if config_file is not None:
        os.environ["SCORER_CONFIG"] = str(config_file)
    return Settings(**overrides)
