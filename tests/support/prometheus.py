"""A real Prometheus (Debian's package, deploy/local/system-deps.sh installs it) for tests.

    server = PrometheusServer.start(workdir, targets={"scorer": ["127.0.0.1:9400"]}, rule_files=[...])
    server.query('sum(rate(scorer_events_consumed_total[15s]))')   # the instant vector's samples
    server.stop()

Free port, data under ``workdir``, 1 s scrape and rule intervals so a test sees series
within seconds of its targets coming up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scorer.shutdown import stop_process
from tests.support import markers
from tests.support.kafka import free_ports

Sample = dict[str, Any]  # {"metric": {...labels}, "value": [ts, "v"]}


class QueryError(AssertionError):
    """Prometheus refused a query (a parse or evaluation error), with its message."""


def prometheus_path() -> str | None:
    return shutil.which("prometheus")


@dataclass
class PrometheusServer:
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, workdir: Path, targets: dict[str, list[str]], rule_files: Sequence[Path] = (),
              timeout_s: float = 60.0) -> PrometheusServer:
        markers.require("prometheus", "starting prometheus")
        binary = prometheus_path()
        if binary is None:
            raise AssertionError("prometheus not installed: run deploy/local/system-deps.sh")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": addrs}]}
                               for job, addrs in targets.items()],
        }
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "prometheus.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
        port = free_ports(1)[0]
        log = (workdir / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        server = cls(workdir, port, proc)
        deadline = time.monotonic() + timeout_s
        while server._get("/-/ready") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"prometheus did not start:\n{server.log_tail()}")
            time.sleep(0.2)
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def api(self, path: str, **params: str) -> Any:
        """``data`` of one /api/v1 call; a refused query raises QueryError with Prometheus' reason."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise QueryError(f"{params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[Sample]:
        data = self.api("query", query=expr)
        return list(data["result"]) if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]

    def query_range(self, expr: str, seconds: float, step_s: float = 1.0) -> list[dict[str, Any]]:
        now = time.time()
        return list(self.api("query_range", query=expr, start=str(now - seconds), end=str(now),
                             step=str(step_s))["result"])

    def stop(self) -> None:
        stop_process(self.proc, 20)

    def log_tail(self, chars: int = 3000) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-chars:] if path.is_file() else ""
