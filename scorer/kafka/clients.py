"""aiokafka clients built from :class:`KafkaSettings`: the one place their options are chosen.

Every client gets the same connection and security options (:func:`security_options`: TLS
context, SASL with the password from a ``SecretStr`` or a file, masked in logs from then
on). The roles differ only where the comments say why:

- :func:`make_consumer`: a member of the consumer group (the scoring loop, the profile
  worker), committing by hand after its outputs are acknowledged;
- :func:`make_reader`: no group, nothing committed; reads whole partitions it assigns
  itself (the control topic, profile topics, recorded topics);
- :func:`make_producer`: idempotent, every ack from all in-sync replicas;
- :func:`admin_client`: an admin client started and closed around a block.

All of them take who leads what from most brokers, never from one that may be a stale
leader (:mod:`scorer.kafka.view`).

``**extra`` overrides an option for one caller (a benchmark's own producer, say). A client
whose start fails over TLS says why the broker refused it (:func:`tls_refusal`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import conn as _aiokafka_conn
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, NodeNotReadyError, RequestTimedOutError

from scorer.config import KafkaSettings
from scorer.kafka import codec, connection
from scorer.kafka.redact import redact_in_logs
from scorer.kafka.view import use_majority_view
from scorer.tls import handshake_refusal

log = logging.getLogger(__name__)

# aiokafka reads each response with its connection's StreamReader, whose flow control pauses
# the socket whenever more than twice this limit (64 KiB by default) is buffered and resumes
# it when the reader waits: a multi-MB fetch response went through a pause and a resume (two
# epoll_ctl calls and a task wake-up) per 256 KiB read, ~1.5% of a drain's CPU
# (docs/benchmarks.md section 39). aiokafka awaits each whole response anyway, and keeps one
# fetch in flight per broker, so what is buffered stays bounded by one response
# (fetch_max_bytes): the limit only decides how often the socket is paused on the way.
_aiokafka_conn.READER_LIMIT = max(_aiokafka_conn.READER_LIMIT, 16 * 2**20)


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """The TLS context of every client: the pinned CA, hostname checks, and the client
    certificate the broker asks for under mutual TLS."""
    ctx = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    ctx.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile:
        ctx.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None)
    return ctx


def security_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by consumers, producers and admin clients."""
    opts: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        opts["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        opts["sasl_mechanism"] = kafka.sasl_mechanism or "SCRAM-SHA-512"
        opts["sasl_plain_username"] = kafka.sasl_username
        opts["sasl_plain_password"] = password = kafka.password()
        if password:
            redact_in_logs(password)
    return opts


async def tls_refusal(kafka: KafkaSettings) -> str | None:
    """Why the first bootstrap broker refuses this client's TLS, or None (not TLS, or no
    TLS refusal seen): aiokafka reports a refused client certificate as a closed connection."""
    if kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    host, _, port = kafka.bootstrap_servers.split(",")[0].strip().rpartition(":")
    if not port.isdigit():
        return None
    context = ssl_context(kafka)
    return await handshake_refusal(host.strip("[]"), int(port), context, client_certificate=kafka.ssl_certfile)


@contextlib.asynccontextmanager
async def _tls_explained(kafka: KafkaSettings) -> AsyncIterator[None]:
    """Around a client's start: a connection failure that TLS explains says so."""
    try:
        yield
    except KafkaConnectionError as exc:
        reason = await tls_refusal(kafka)
        if reason is None:
            raise
        raise KafkaConnectionError(f"{exc.args[0] if exc.args else 'connection failed'}: {reason}") from exc


class _Explained:
    """What the consumer and producer add to aiokafka's: a stale leader's view never wins
    (scorer.kafka.view), and a start refused over TLS says why."""

    _scorer_kafka: KafkaSettings

    def _scorer_client(self, client: Any, kafka: KafkaSettings) -> None:
        use_majority_view(client)
        codec.install()
        connection.install()
        self._scorer_kafka = kafka

    async def start(self) -> None:
        async with _tls_explained(self._scorer_kafka):
            await super().start()  # type: ignore[misc]


class _Consumer(_Explained, AIOKafkaConsumer):  # type: ignore[misc]
    def __init__(self, *topics: str, kafka: KafkaSettings, **options: Any) -> None:
        super().__init__(*topics, **options)
        self._scorer_client(self._client, kafka)


class _Producer(_Explained, AIOKafkaProducer):  # type: ignore[misc]
    def __init__(self, *, kafka: KafkaSettings, **options: Any) -> None:
        super().__init__(**options)
        self._scorer_client(self.client, kafka)


class _Admin(AIOKafkaAdminClient):  # type: ignore[misc]
    async def _send_request(self, request: Any, node_id: int | None = None) -> Any:
        """A request any broker can answer (``node_id`` None) goes to the next broker while
        one does not answer: aiokafka sends it to one random broker, which may be one that
        just died and is still listed (a command run then would fail with NodeNotReady)."""
        if node_id is not None:
            return await super()._send_request(request, node_id)
        nodes = [b.nodeId for b in self._client.cluster.brokers()]
        random.shuffle(nodes)
        for node in nodes[:-1]:
            try:
                return await super()._send_request(request, node)
            except (NodeNotReadyError, RequestTimedOutError, KafkaConnectionError) as exc:
                log.info("broker %s did not answer %s (%r): asking another", node, type(request).__name__, exc)
        return await super()._send_request(request, nodes[-1] if nodes else None)


def make_consumer(kafka: KafkaSettings, topics: Sequence[str], **extra: Any) -> AIOKafkaConsumer:
    """A consumer-group member; offsets are committed by the caller, never automatically."""
    options: dict[str, Any] = {
        "group_id": kafka.group_id,
        "group_instance_id": kafka.group_instance_id,
        "client_id": kafka.client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # Exactly-once producers upstream (or our own transactions): never read aborted records.
        "isolation_level": "read_committed",
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": max(1000, kafka.session_timeout_ms // 5),
        "max_partition_fetch_bytes": kafka.max_partition_fetch_bytes,
        "fetch_max_wait_ms": 100,
        "metadata_max_age_ms": kafka.metadata_max_age_ms,
        "check_crcs": kafka.check_crcs,
    }
    return _Consumer(*topics, kafka=kafka, **(options | security_options(kafka) | extra))


def make_reader(kafka: KafkaSettings, role: str, **extra: Any) -> AIOKafkaConsumer:
    """A group-less consumer: every process reads the whole of what it assigns, commits nothing.

    ``role`` names it to the broker (``<client_id>-<role>``: quotas and request logs tell the
    readers of one process apart).
    """
    options: dict[str, Any] = {
        "client_id": f"{kafka.client_id}-{role}",
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",  # a compacted topic's state starts at its beginning
        "isolation_level": "read_committed",
        "max_partition_fetch_bytes": kafka.max_partition_fetch_bytes,
        "metadata_max_age_ms": kafka.metadata_max_age_ms,
        "check_crcs": kafka.check_crcs,
    }
    return _Consumer(kafka=kafka, **(options | security_options(kafka) | extra))


def make_producer(kafka: KafkaSettings, *, transactional_id: str | None = None, **extra: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        "client_id": kafka.client_id,
        "acks": "all",
        "enable_idempotence": True,
        # Batches are built per partition by send_batched(): waiting to fill them only adds latency.
        "linger_ms": 0,
        "max_request_size": 4 * 1024 * 1024,
        "max_batch_size": 512 * 1024,
        "compression_type": None,
        "metadata_max_age_ms": kafka.metadata_max_age_ms,
    }
    if transactional_id:
        options["transactional_id"] = transactional_id
    return _Producer(kafka=kafka, **(options | security_options(kafka) | extra))


@contextlib.asynccontextmanager
async def admin_client(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client, started for the block and closed after it (a failed start included)."""
    admin = _Admin(**security_options(kafka))
    use_majority_view(admin._client)
    codec.install()
    connection.install()
    try:
        async with _tls_explained(kafka):
            await admin.start()
        yield admin
    finally:
        await admin.close()


# What a command-line entry point reports as "cannot talk to Kafka" (wrong credentials, an
# untrusted CA, an unreachable broker): one line, no traceback.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (KafkaError, ssl.SSLError, ConnectionError)


def connection_failure(exc: BaseException) -> str:
    """The one-line reason for one of :data:`CONNECTION_ERRORS` (aiokafka's messages carry
    neither passwords nor key material, so the text is safe to print)."""
    name = type(exc).__name__
    return str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
