"""The soak's fault cycle: scorer kill -9, broker restart (clean, then kill -9 on the next
turn), Triton restart, model promote and rollback through ``scorer models``; each recorded
in the report with when it began, how long it took and whether it went through."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deploy.soak.report import Report
from deploy.soak.services import ROOT, Broker, Scorer, Triton

CYCLE = ("scorer_kill", "broker_restart", "triton_restart", "promote", "rollback")
KINDS = ("siem", "netflow", "edr")


class Faults:
    def __init__(self, scorer: Scorer, broker: Broker, triton: Triton | None, report: Report, repo: Path) -> None:
        self.scorer, self.broker, self.triton, self.report, self.repo = scorer, broker, triton, report, repo
        self.t0 = time.monotonic()
        self._broker_turn = 0
        self._kinds = itertools.cycle(KINDS)
        self._kind = KINDS[0]

    async def wait_ready(self, timeout: float = 300.0, remedies: int = 1) -> None:
        """Until the scorer serves; a scorer that cannot start gets, ``remedies`` times, what an
        operator would do: a clean restart of the broker, recorded as a finding.

        Why: Kafka 4.4's group coordinator can stay FAILED after a ``kill -9`` restart of a
        lone broker ("state machine ... out of sync with the underlying log", then "No in-memory
        snapshot for epoch 0"): its transaction markers are never written, so every new
        transactional producer waits on CONCURRENT_TRANSACTIONS and the scorer exits after its
        bounded start. No client can finish that for the broker.
        """
        while True:
            deadline = time.monotonic() + timeout
            while not await asyncio.to_thread(self.scorer.ready):
                if self.scorer.pid is None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            else:
                return
            why = "exited at start" if self.scorer.pid is None else f"not ready after {timeout:.0f} s"
            if remedies == 0:
                raise SystemExit(f"soak: scorer {why}; see {self.scorer.log}")
            remedies -= 1
            began = time.monotonic()
            self.scorer.stop()
            await asyncio.to_thread(self.broker.stop)
            await asyncio.to_thread(self.broker.start)
            self._record("broker_remedy", began, False,
                         f"scorer {why}; broker restarted (clean); its log: {self.broker.coordinator_errors()}")
            self.scorer.start()

    async def cycle(self, end: float, every: float, steady_s: float) -> None:
        """Faults every ``every`` seconds until ``end`` (monotonic); a scorer that exited on
        its own is recorded and started again (that is a finding, not a fault)."""
        faults = itertools.cycle(CYCLE)
        next_at = time.monotonic() + every
        while time.monotonic() < end:
            await asyncio.sleep(1)
            if self.scorer.pid is None:
                self._record("scorer_exited", time.monotonic(), False, f"rc {self.scorer.stop()}")
                self.scorer.start()
                await self.wait_ready()
            if time.monotonic() < next_at:
                continue
            next_at += every
            fault = next(faults)
            if fault == "scorer_kill" and time.monotonic() > end - steady_s:
                fault = next(faults)
            await self.inject(fault)

    async def inject(self, fault: str) -> None:
        began = time.monotonic()
        ok, detail = True, ""
        try:
            if fault == "scorer_kill":
                self.scorer.kill()
                self.scorer.start()
                await self.wait_ready()
            elif fault == "broker_restart":
                self._broker_turn += 1
                crash = self._broker_turn % 2 == 0
                detail = "kill -9" if crash else "clean"
                await asyncio.to_thread(self.broker.kill if crash else self.broker.stop)
                await asyncio.to_thread(self.broker.start)
            elif fault == "triton_restart":
                if self.triton is None:
                    return
                await asyncio.to_thread(self.triton.stop)
                await asyncio.to_thread(self.triton.start)
            elif fault == "promote":
                self._kind = next(self._kinds)
                ok, detail = await self._models("promote", "--version", "2")
            elif fault == "rollback":
                ok, detail = await self._models("rollback")
        except Exception as exc:  # a fault that failed is a finding for the report, not the end of the soak
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self._record(fault, began, ok, detail)

    async def _models(self, action: str, *extra: str) -> tuple[bool, str]:
        cmd = [
            sys.executable,
            "-m",
            "scorer.cli",
            "models",
            action,
            "--kind",
            self._kind,
            "--repo",
            str(self.repo),
            *extra,
            "--reason",
            "soak",
            "--issued-by",
            "soak",
            "--wait",
            "120",
        ]
        proc = await asyncio.to_thread(
            subprocess.run, cmd, env=self.scorer.env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        out = (proc.stdout + proc.stderr).strip().splitlines()
        return proc.returncode == 0, f"{self._kind}: rc {proc.returncode}: {' | '.join(out[-3:])}"

    def _record(self, fault: str, began: float, ok: bool, detail: str) -> None:
        entry: dict[str, Any] = {
            "t": round(began - self.t0, 1),
            "fault": fault,
            "seconds": round(time.monotonic() - began, 1),
            "ok": ok,
            "detail": detail,
        }
        self.report.faults.append(entry)
        print(f"soak: {entry}", flush=True)
