"""The soak's real services: one Kafka broker (deploy/local/kafka.sh), tritonserver
(deploy/local/triton.py) and ``scorer run`` as a subprocess configured by ``SCORER_*``
environment variables, plus what the sampler reads from each (/proc, /metrics)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy.local import triton as launcher
from scorer.shutdown import stop_process

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int | None) -> int:
    """Resident pages (statm's second field) in bytes; 0 for no process."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") if pid else 0
    except (OSError, IndexError, ValueError):
        return 0


def open_fds(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    """True until the process is gone or a zombie (its listening ports are closed by then)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] not in "ZX"
    except OSError:
        return False


@dataclass
class Broker:
    port: int
    data_dir: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, command: str) -> None:
        # The controller port must stay the same across restarts: it is in the formatted quorum.
        controller = (self.data_dir.parent / "controller.port").read_text().strip()
        env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": controller,
            "KAFKA_DATA_DIR": str(self.data_dir),
        }
        proc = subprocess.run(
            [str(KAFKA_SH), command],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kafka.sh {command}: rc {proc.returncode}: {proc.stderr.strip()[-500:]}")

    def start(self) -> None:
        marker = self.data_dir.parent / "controller.port"
        if not marker.is_file():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(str(free_port()))
        # A port the killed broker held may take a moment to be free again: try a few times.
        for attempt in range(10):
            try:
                self._script("start")
                return
            except RuntimeError:
                if attempt == 9:
                    raise
                time.sleep(3)

    def stop(self) -> None:
        self._script("stop")

    def coordinator_errors(self) -> str:
        """How often the broker's log says its group coordinator lost its state, for the report."""
        log = self.data_dir / "server.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        return (f"{text.count('is out of sync with the underlying log')} coordinator out-of-sync reloads, "
                f"{text.count('context is in FAILED state')} FAILED")

    def kill(self) -> None:
        """SIGKILL (a crash: log recovery on the next start), and wait until it is gone."""
        if (pid := self.pid()) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self._script("stop")

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass
class Triton:
    repository: Path
    workdir: Path
    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0

    def __post_init__(self) -> None:
        # Picked now, not at start: the scorer's environment (its Triton URL) is built first.
        if not self.grpc_port:
            self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()

    def start(self) -> None:
        launcher.serve(
            self.repository,
            self.workdir,
            grpc_port=self.grpc_port,
            http_port=self.http_port,
            metrics_port=self.metrics_port,
        )
        launcher.wait(self.workdir, timeout_s=300)

    def stop(self) -> None:
        launcher.stop(self.workdir)

    def pid(self) -> int | None:
        state = launcher._state(self.workdir.resolve())
        return int(state["pid"]) if state else None

    def sync_command(self) -> list[str]:
        return [
            sys.executable,
            str(Path(launcher.__file__)),
            "sync",
            "--repository",
            str(self.repository),
            "--workdir",
            str(self.workdir),
        ]


class Scorer:
    """``scorer run`` with one env across restarts (its stable client id keeps the
    transactional id, so a restart fences the killed producer)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "scorer.cli", "run"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        return stop_process(self.proc, grace_s=60)

    def metrics(self) -> str:
        try:
            url = f"http://127.0.0.1:{self.env['SCORER_HTTP__PORT']}/metrics"
            with urllib.request.urlopen(url, timeout=5) as resp:
                return str(resp.read().decode())
        except OSError:
            return ""

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.env['SCORER_HTTP__PORT']}/readyz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return int(resp.status) == 200
        except OSError:
            return False
