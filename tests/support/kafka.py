"""A real local Apache Kafka broker for tests, started through deploy/local/kafka.sh.

    broker = KafkaBroker.start(workdir=tmp_path)          # free ports, fresh data dir
    broker.create_topic("events.netflow", partitions=3)
    ... AIOKafkaProducer(bootstrap_servers=broker.bootstrap) ...
    broker.restart()                                       # same ports, same data
    broker.stop()

With ``sasl_ssl=True`` the broker also listens with SASL_SSL (SCRAM-SHA-512 over TLS, a
self-signed CA generated into the data dir): see ``sasl_ssl_bootstrap``, ``ssl_context()``,
``scram_user`` and ``scram_password``. With ``mtls=True`` it also listens with SSL and
requires a client certificate signed by ``ssl_client_ca`` (mutual TLS, no SASL): see
``ssl_bootstrap`` and ``mtls_client_config()``.

The jars are resolved with Maven once and cached (KAFKA_CACHE, default
~/.cache/scorer/kafka/<version>), so only the first start on a machine takes long.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from tests.support import markers

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "deploy" / "local" / "kafka.sh"

# The first start on a fresh machine resolves the jars with mvn; allow for that.
START_TIMEOUT_S = float(os.environ.get("SCORER_TEST_KAFKA_START_TIMEOUT", "600"))

T = TypeVar("T")
P = ParamSpec("P")


def file_tail(path: Path, lines: int) -> str:
    """The last lines of a server log, or "" when there is none (yet)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_script(argv: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """A deploy/local launcher script, its output captured (the callers add the logs to its error)."""
    return subprocess.run(
        argv, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
    )


def kcat_path() -> str | None:
    """Path of the kcat (formerly kafkacat) binary, or None."""
    return shutil.which("kcat") or shutil.which("kafkacat")


def kcat_available() -> bool:
    return kcat_path() is not None


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def synced(coroutine_function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The same call, run to completion from sync code (:func:`run_sync`)."""

    @functools.wraps(coroutine_function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(coroutine_function(*args, **kwargs))

    return call


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, name="kafka-admin-sync")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


class KafkaScriptError(RuntimeError):
    pass


@dataclass
class KafkaBroker:
    port: int
    controller_port: int
    data_dir: Path
    sasl_ssl_port: int | None = None
    scram_user: str = "scorer"
    scram_password: str = "scorer-secret"
    extra_props: Mapping[str, str] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    ssl_port: int | None = None
    ssl_client_ca: Path | None = None  # None: the broker's own generated CA (ca_file)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(
        cls,
        port: int | None = None,
        workdir: Path | None = None,
        *,
        controller_port: int | None = None,
        sasl_ssl: bool = False,
        sasl_ssl_port: int | None = None,
        extra_props: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        mtls: bool = False,
        ssl_client_ca: Path | None = None,
    ) -> KafkaBroker:
        """Start a broker on ``port`` (a free one when None) with a fresh data dir in
        ``workdir`` (a new temporary directory when None); return once it answers.
        ``mtls``: an SSL listener too, on a free port, that accepts only clients with a
        certificate signed by ``ssl_client_ca`` (PEM)."""
        markers.require("kafka", "a Kafka broker started")
        wanted = [port, controller_port, sasl_ssl_port if sasl_ssl else None]
        picked = iter(free_ports(sum(1 for p in wanted if p is None) + int(mtls)))
        port = port if port is not None else next(picked)
        controller_port = controller_port if controller_port is not None else next(picked)
        if sasl_ssl and sasl_ssl_port is None:
            sasl_ssl_port = next(picked)
        ssl_port = next(picked) if mtls else None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="scorer-kafka-"))
            # Nobody else knows this dir: a benchmark's broker would leave GBs behind.
            atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        workdir.mkdir(parents=True, exist_ok=True)
        data_dir = Path(tempfile.mkdtemp(prefix=f"kafka-{port}-", dir=workdir))
        broker = cls(
            port=port,
            controller_port=controller_port,
            data_dir=data_dir,
            sasl_ssl_port=sasl_ssl_port if sasl_ssl else None,
            extra_props=dict(extra_props or {}),
            extra_env=dict(extra_env or {}),
            ssl_port=ssl_port,
            ssl_client_ca=ssl_client_ca if mtls else None,
        )
        broker._script("start", timeout=START_TIMEOUT_S)
        return broker

    def stop(self) -> None:
        self._script("stop", timeout=120)

    def restart(self) -> None:
        """Stop and start again on the same ports and data dir (data survives)."""
        self.stop()
        self._script("start", timeout=START_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL the broker (crash); ``restart()`` or ``start_again()`` brings it back."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        self._script("stop", timeout=60)

    def start_again(self) -> None:
        self._script("start", timeout=START_TIMEOUT_S)

    def is_running(self) -> bool:
        return self._script("status", check=False, timeout=30).returncode == 0

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def __enter__(self) -> KafkaBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        if self.sasl_ssl_port is None:
            raise RuntimeError("broker was started without sasl_ssl=True")
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        """The mutual-TLS listener (SSL, a client certificate required)."""
        if self.ssl_port is None:
            raise RuntimeError("broker was started without mtls=True")
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def ca_file(self) -> Path:
        """The generated CA certificate that signed the broker's TLS certificate."""
        return self.data_dir / "tls" / "ca.crt"

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.check_hostname = True
        return ctx

    def sasl_client_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka producers, consumers and admin clients."""
        return {
            "bootstrap_servers": self.sasl_ssl_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.scram_user,
            "sasl_plain_password": self.scram_password,
            "ssl_context": self.ssl_context(),
        }

    def mtls_client_config(self, certfile: Path | None, keyfile: Path | None) -> dict[str, Any]:
        """aiokafka keyword arguments for the SSL listener, presenting ``certfile`` (None:
        no client certificate, which the listener refuses)."""
        ctx = self.ssl_context()
        if certfile is not None:
            ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile is not None else None)
        return {"bootstrap_servers": self.ssl_bootstrap, "security_protocol": "SSL", "ssl_context": ctx}

    # ------------------------------------------------------------------ admin
    async def acreate_topic(
        self,
        name: str,
        partitions: int = 3,
        *,
        replication_factor: int = 1,
        config: Mapping[str, str] | None = None,
    ) -> None:
        from scorer.config import KafkaSettings
        from scorer.kafka import TopicSpec, ensure_topics

        # Returns once every partition has a leader: creation is asynchronous in the broker.
        spec = TopicSpec(name, partitions, replication_factor, dict(config or {}))
        if (await ensure_topics(KafkaSettings(bootstrap_servers=self.bootstrap), [spec]))[name] != partitions:
            raise TimeoutError(f"topic {name} did not get {partitions} partitions with leaders")

    # Create a topic and wait for it (sync; safe to call inside a running loop).
    create_topic = synced(acreate_topic)

    # ------------------------------------------------------------------ internals
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["KAFKA_PORT"] = str(self.port)
        env["KAFKA_CONTROLLER_PORT"] = str(self.controller_port)
        env["KAFKA_DATA_DIR"] = str(self.data_dir)
        env["KAFKA_SCRAM_USER"] = self.scram_user
        env["KAFKA_SCRAM_PASSWORD"] = self.scram_password
        if self.sasl_ssl_port is not None:
            env["KAFKA_SASL_SSL_PORT"] = str(self.sasl_ssl_port)
        else:
            env.pop("KAFKA_SASL_SSL_PORT", None)
        if self.ssl_port is not None:
            env["KAFKA_SSL_PORT"] = str(self.ssl_port)
        else:
            env.pop("KAFKA_SSL_PORT", None)
        if self.ssl_client_ca is not None:
            env["KAFKA_SSL_CLIENT_CA"] = str(self.ssl_client_ca)
        else:
            env.pop("KAFKA_SSL_CLIENT_CA", None)
        if self.extra_props:
            env["KAFKA_EXTRA_PROPS"] = "\n".join(f"{k}={v}" for k, v in self.extra_props.items())
        return env

    def log_tail(self, lines: int = 50) -> str:
        return file_tail(self.data_dir / "server.log", lines)

    def _script(self, command: str, *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = run_script([str(KAFKA_SH), command], self.env(), timeout)
        if check and proc.returncode != 0:
            raise KafkaScriptError(
                f"kafka.sh {command} failed (rc={proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"\n--- server.log tail ---\n{self.log_tail()}"
            )
        return proc


# What the ``start_kafka`` fixture is: :meth:`KafkaBroker.start`.
StartKafka = Callable[..., KafkaBroker]
