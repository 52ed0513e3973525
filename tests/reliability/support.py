"""Shared helpers of the fault-injection tests: `scorer run` processes, paced event streams,
RSS sampling and the ledger that proves nothing was lost.

Every scorer under test is a real ``python -m scorer.cli run`` subprocess configured by
``SCORER_*`` environment variables (as in production), so ``kill -9`` and RSS measure the
real thing, not a coroutine inside pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Float64, Int16, Int32, Schema, String
from aiokafka.structs import ConsumerRecord

from scorer.events.structs import EventKind
from tests.support.kafka import KafkaBroker, free_ports
from tests.support.paths import MODEL_REPOSITORY, ROOT
from tests.support.samples import SAMPLES
from tests.support.triton import TritonServer, _launcher

Record = tuple[EventKind, bytes, bytes, str]  # (kind, key, value, uid)
BAD_EVERY = 40  # one hostile record in 40: dead letters are part of "nothing lost"
_UID_IN_BYTES = re.compile(rb'"uid":\s*"([^"]+)"')


def seed() -> int:
    """Random seed of the fault schedule; SCORER_RELIABILITY_SEED replays a run."""
    value = int(os.environ.get("SCORER_RELIABILITY_SEED", str(random.SystemRandom().randrange(1 << 30))))
    print(f"\nreliability seed {value} (SCORER_RELIABILITY_SEED={value} reproduces the schedule)")
    return value


@functools.cache
def usable_kinds() -> tuple[EventKind, ...]:
    """The kinds whose shipped model loads against the scorer's feature contract right now.

    A colleague may be republishing a model (its feature contract briefly in flux); a fault
    test must not fail for that, but it says loudly which kinds it left out.
    SCORER_RELIABILITY_KINDS="edr,siem" pins the kinds explicitly.
    """
    from scorer.features import feature_set
    from scorer.inference.repository import load_version
    from scorer.pipeline.scoring import KindRuntime

    pinned = os.environ.get("SCORER_RELIABILITY_KINDS")
    if pinned:
        return tuple(EventKind(k.strip()) for k in pinned.split(",") if k.strip())
    kinds: list[EventKind] = []
    for kind in EventKind:
        try:
            card = load_version(MODEL_REPOSITORY, f"{kind.value}_classifier").card
            KindRuntime.build(kind, feature_set(kind), card)
        except Exception as exc:  # any load failure: leave the kind out, visibly
            print(f"\nWARNING: kind {kind.value} left out of the reliability tests: {exc}")
            continue
        kinds.append(kind)
    return tuple(kinds)


# --------------------------------------------------------------------------- topics and env
@dataclass(frozen=True)
class Topics:
    prefix: str
    kinds: tuple[EventKind, ...]

    def input(self, kind: EventKind) -> str:
        return f"{self.prefix}.events.{kind.value}"

    def alerts(self, kind: EventKind) -> str:
        return f"{self.prefix}.alerts.{kind.value}"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def scores(self) -> str:
        return f"{self.prefix}.scores"

    def all_outputs(self) -> list[str]:
        return [self.scores, self.dlq, *(self.alerts(k) for k in self.kinds)]

    def env(self) -> dict[str, str]:
        env = {f"SCORER_TOPICS__{k.value.upper()}": self.input(k) for k in EventKind}
        env.update({
            "SCORER_KINDS": json.dumps([k.value for k in self.kinds]),
            "SCORER_TOPICS__ALERTS_PREFIX": f"{self.prefix}.alerts.",
            "SCORER_TOPICS__DEAD_LETTER": self.dlq,
            "SCORER_TOPICS__SCORES": self.scores,
        })
        return env


async def new_topics(kafka: KafkaBroker, kinds: Sequence[EventKind] | None = None, partitions: int = 3) -> Topics:
    """Fresh, uniquely named topics (inputs and outputs) for one test."""
    topics = Topics(f"r{uuid.uuid4().hex[:8]}", tuple(kinds or usable_kinds()))
    names = [topics.input(k) for k in topics.kinds] + topics.all_outputs()
    await asyncio.gather(*(kafka.acreate_topic(n, partitions) for n in names))
    return topics


def scorer_env(bootstrap: str, topics: Topics, **extra: str) -> dict[str, str]:
    """Environment of one `scorer run`: ONNX Runtime, small batches; ``extra`` overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")}
    env.update(topics.env())
    env.update({
        "SCORER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SCORER_KAFKA__GROUP_ID": f"{topics.prefix}-group",
        "SCORER_KAFKA__CLIENT_ID": f"{topics.prefix}-scorer",
        "SCORER_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "SCORER_BATCH__MAX_RECORDS": "64",
        "SCORER_INFERENCE__BACKEND": "onnxruntime",
        "SCORER_INFERENCE__MODEL_REPOSITORY": str(MODEL_REPOSITORY),
        "SCORER_HTTP__PORT": str(free_ports(1)[0]),
    })
    env.update(extra)
    return env


# --------------------------------------------------------------------------- the scorer process
class ScorerProcess:
    """One `scorer run` subprocess that can be crashed and started again with the same env."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.env['SCORER_HTTP__PORT']}"

    def start(self) -> None:
        assert self.pid is None, "already running"
        with self.log.open("ab") as out:  # one log across restarts: the whole story in one file
            out.write(f"\n===== start {self.starts} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "scorer.cli", "run"], env=self.env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no finally blocks, no commit, no LeaveGroup: a real crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (finish the batch in flight, then exit); the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.http + path, timeout=2) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), ""
        except OSError:
            return 0, ""

    def metric(self, name: str) -> float:
        """Sum of every sample of one metric family on /metrics (0 when not up)."""
        _, text = self.get("/metrics")
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"scorer exited rc={self.proc.returncode}:\n{self.log_tail()}")
            if (await asyncio.to_thread(self.get, "/readyz"))[0] == 200:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"scorer not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class RssWatch:
    """Samples a process's RSS in a thread (the event loop may be busy) until stopped."""

    pid: Callable[[], int | None]
    interval: float = 0.1
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssWatch:
        self._thread = threading.Thread(target=self._run, name="rss-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            pid = self.pid()
            if pid is not None and (rss := rss_bytes(pid)):
                self.samples.append(rss)

    @property
    def peak_mb(self) -> float:
        return max(self.samples, default=0) / 2**20


# --------------------------------------------------------------------------- streams and the ledger
def make_stream(kinds: Sequence[EventKind], tag: str, per_kind: int, *, pad: int = 0) -> list[Record]:
    """``per_kind`` real events of each kind with unique uids, interleaved, with one hostile
    record in BAD_EVERY (truncated JSON or a missing field) that must be dead-lettered.
    ``pad`` adds an unknown field of that many bytes to every event (big records)."""
    per: list[list[Record]] = []
    for kind in kinds:
        sample = SAMPLES[kind]()
        out: list[Record] = []
        for i, (uid, key, value) in zip(range(per_kind), itertools.cycle(sample), strict=False):
            new_uid = f"{uid}#{tag}{i}"
            if i % BAD_EVERY == BAD_EVERY - 1:
                bad = (b'{"uid": "%s", "ts": ' if i % 2 else b'{"uid": "%s", "x": 1}') % new_uid.encode()
                out.append((kind, key, bad, new_uid))
                continue
            doc = json.loads(value)
            doc["uid"] = new_uid
            if pad:
                doc["Pad"] = "p" * pad
            out.append((kind, key, json.dumps(doc).encode(), new_uid))
        per.append(out)
    return [r for group in itertools.zip_longest(*per) for r in group if r is not None]


async def feed(
    client: dict[str, Any], topics: Topics, records: Sequence[Record], *, rate: float,
    progress: list[int] | None = None,
) -> int:
    """Produce ``records`` at about ``rate`` per second (acks=all, idempotent, retried across
    broker restarts); ``progress[0]`` counts what was acknowledged so far."""
    producer = AIOKafkaProducer(**client, acks="all", enable_idempotence=True, linger_ms=5,
                                request_timeout_ms=60_000, retry_backoff_ms=200)
    await producer.start()
    chunk = max(1, int(rate / 10))
    sent = 0
    try:
        for i in range(0, len(records), chunk):
            started = time.monotonic()
            futures = [await producer.send(topics.input(kind), value, key=key)
                       for kind, key, value, _ in records[i:i + chunk]]
            await asyncio.gather(*futures)
            sent += len(futures)
            if progress is not None:
                progress[0] = sent
            await asyncio.sleep(max(0.0, chunk / rate - (time.monotonic() - started)))
    finally:
        await producer.stop()
    return sent


async def read_topics(
    client: dict[str, Any], names: Iterable[str], done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    *, timeout: float = 90.0, isolation: str = "read_committed", settle: float = 1.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on ``names`` from the beginning until ``done(records)`` holds and then
    ``settle`` more seconds with nothing new (so late duplicates are seen too)."""
    consumer = AIOKafkaConsumer(*names, **client, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level=isolation)
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = [m for msgs in batch.values() for m in msgs]
            out.extend(got)
            if got or not done(out):
                quiet_since = None
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                break
    finally:
        await consumer.stop()
    return out


@dataclass
class Ledger:
    """What went in (uids) against what came out (scores by uid, dead letters by the uid in
    their original bytes): proves "consumed = scored + dead-lettered" from outside."""

    expected: set[str]
    scores_topic: str
    dlq_topic: str

    def outcomes(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> Counter[str]:
        seen: Counter[str] = Counter()
        for m in records:
            if m.topic == self.scores_topic and m.value is not None:
                seen[json.loads(m.value)["uid"]] += 1
            elif m.topic == self.dlq_topic and m.value is not None:
                found = _UID_IN_BYTES.search(m.value)
                seen[found.group(1).decode() if found else f"?{m.partition}:{m.offset}"] += 1
        return seen

    def complete(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return self.expected <= set(self.outcomes(records))

    def report(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> LedgerReport:
        seen = self.outcomes(records)
        return LedgerReport(
            inputs=len(self.expected),
            lost=sorted(self.expected - set(seen)),
            unexpected=sorted(set(seen) - self.expected),
            duplicates={u: n - 1 for u, n in seen.items() if n > 1},
        )


@dataclass
class LedgerReport:
    inputs: int
    lost: list[str]
    unexpected: list[str]
    duplicates: dict[str, int]

    @property
    def duplicate_count(self) -> int:
        return sum(self.duplicates.values())

    def __str__(self) -> str:
        return (f"inputs={self.inputs} lost={len(self.lost)} duplicates={self.duplicate_count} "
                f"(uids {len(self.duplicates)}) unexpected={len(self.unexpected)}")


def alert_uids(records: Iterable[ConsumerRecord[bytes, bytes]], prefix: str) -> Counter[str]:
    """Event uid of every alert on ``<prefix>.alerts.*`` (duplicates counted)."""
    return Counter(json.loads(m.value)["unmapped"]["scorer"]["event_uid"]
                   for m in records if m.topic.startswith(f"{prefix}.alerts.") and m.value is not None)


# --------------------------------------------------------------------------- TLS
@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost signed by it (PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=scorer test CA", "-addext", "basicConstraints=critical,CA:TRUE"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "server.ext"],
    ]
    for step in steps:
        subprocess.run(["openssl", *step], cwd=directory, check=True, capture_output=True)
    return TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")


@dataclass
class TlsTritonServer(TritonServer):
    """A tritonserver whose gRPC endpoint speaks TLS only (HTTP stays plain for readiness)."""

    tls: TlsFiles | None = None

    @classmethod
    def start_tls(cls, repository: Path, workdir: Path, tls: TlsFiles) -> TlsTritonServer:
        grpc, http, metrics = free_ports(3)
        server = cls(repository, workdir, grpc, http, metrics, tls=tls)
        server._start(60.0)
        return server

    def _start(self, timeout_s: float) -> None:
        assert self.tls is not None
        launcher = _launcher()
        started = time.monotonic()
        self.pid = launcher.serve(
            self.repository, self.workdir, grpc_port=self.grpc_port, http_port=self.http_port,
            metrics_port=self.metrics_port,
            extra_args=("--grpc-use-ssl=true", f"--grpc-server-cert={self.tls.cert}",
                        f"--grpc-server-key={self.tls.key}", f"--grpc-root-cert={self.tls.ca}"),
        )
        try:
            launcher.wait(self.workdir, timeout_s=timeout_s)
        except SystemExit as exc:
            self.stop()
            tail = self.log.read_text()[-3000:]
            raise RuntimeError(f"tritonserver with TLS failed to start: {exc}\n{tail}") from None
        self.start_seconds = time.monotonic() - started


# --------------------------------------------------------------------------- slow downstream
# aiokafka has no AlterClientQuotas (KIP-546) call, so its v0 wire format is spelled out here:
# a broker-side produce quota is the real way a Kafka cluster slows one client's produce.
class _AlterClientQuotasResponse(Response):  # type: ignore[misc]
    API_KEY = 49
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("entries", Array(("error_code", Int16), ("error_message", String("utf-8")),
                          ("entity", Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8")))))),
    )


class _AlterClientQuotasV0(RequestStruct):  # type: ignore[misc]
    API_KEY = 49
    API_VERSION = 0
    RESPONSE_TYPE = _AlterClientQuotasResponse
    SCHEMA = Schema(
        ("entries", Array(
            ("entity", Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8")))),
            ("ops", Array(("key", String("utf-8")), ("value", Float64), ("remove", Boolean))),
        )),
        ("validate_only", Boolean),
    )


class _AlterClientQuotas(Request[_AlterClientQuotasV0]):  # type: ignore[misc]
    API_KEY = 49

    def __init__(self, client_id: str, byte_rate: float | None) -> None:
        self.client_id = client_id
        self.byte_rate = byte_rate

    def build(self, request_struct_class: type[_AlterClientQuotasV0]) -> _AlterClientQuotasV0:
        op = ("producer_byte_rate", self.byte_rate or 0.0, self.byte_rate is None)
        return request_struct_class([([("client-id", self.client_id)], [op])], False)


async def set_produce_quota(bootstrap: str, client_id: str, byte_rate: float | None) -> None:
    """Throttle every produce request of ``client_id`` to ``byte_rate`` bytes/s on the
    broker (None removes the quota). The broker delays its responses, as a saturated or
    quota-limited downstream cluster does; fetches of the same client are not throttled."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        node = next(iter(client.cluster.brokers())).nodeId
        response = await client.send(node, _AlterClientQuotas(client_id, byte_rate))
        errors = [(e[0], e[1]) for e in response.entries if e[0]]
        assert not errors, f"AlterClientQuotas failed: {errors}"
    finally:
        await client.close()


def plaintext(kafka: KafkaBroker) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.bootstrap}


@contextlib.contextmanager
def stopped_on_exit(proc: ScorerProcess) -> Any:
    """Stop the scorer whatever happens in the test (no stray processes on the 2 cores)."""
    try:
        yield proc
    finally:
        if proc.pid is not None:
            proc.stop(10)
