"""A model version's trees compiled to a shared library: tl2cgen turns ``model.tl`` (the
Treelite checkpoint shipped beside ``model.onnx``) into C, the host's C compiler turns that
into ``model_compiled.so``.

Both the in-process engine (:mod:`scorer.inference.compiled`) and the GPU host's C++ Triton
backend (deploy/gpu/compiled_model.py) score with it: the compiled trees are straight-line
compares and adds, 0.8 µs a row where ONNX Runtime's tree interpreter takes 2.2-2.6 µs
(docs/benchmarks.md section 19).

Libraries are built where they run, by that host's compiler, and cached by content (the
checkpoint's bytes, tl2cgen's version, the compiler and its flags), so a version compiles
once per host. Several processes may build the same version at once: each compiles in a
private directory under the cache and renames it into place; the first rename wins and the
others use the winner's library, so nobody ever opens a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

LIBRARY = "model_compiled.so"
CHECKPOINT = "model.tl"
# As tl2cgen's own gcc recipe (contrib/gcc.py), which its predictor is tested with; the
# optimization level is the caller's (deploy/gpu: -O3, as that recipe; the in-process engine
# its own, OPTIMIZE below).
FLAGS = ("-std=c99", "-fPIC", "-shared")
CFLAGS = ("-O3", *FLAGS)
# The in-process engine's level, for the libraries it builds and those packaged with a
# version (scorer.inference.compiled_shipped). -Os, not tl2cgen's -O3: the libraries are 30%
# smaller (netflow 110 KB, siem 294 KB) and cheaper a row, in the pipeline's inference stage
# 1.8-2.1 µs/event at 50-record batches against 2.7 with -O3 (1.0 against 1.3-1.4 at 2,048),
# this box's gcc (benchmarks.md, 19).
OPTIMIZE = "-Os"


class BuildError(Exception):
    """The library cannot be built here (no tl2cgen, no compiler, a failed compile)."""


class NoToolchain(BuildError):
    """No tl2cgen or no C compiler on this host: the usual state of a plain install."""


def default_cache() -> Path:
    """Per user, outside the package: ``$XDG_CACHE_HOME/scorer/compiled-trees`` (~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scorer" / "compiled-trees"


def tl2cgen_version() -> str:
    import tl2cgen

    return str(tl2cgen.__version__)


def compiler() -> str:
    """``$CC``, else the first of cc, gcc, clang on the PATH."""
    return os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), "cc")


def build(checkpoint: Path | bytes, cache: Path | None = None, optimize: str = "-O3") -> Path:
    """The compiled library of ``checkpoint`` (a Treelite ``model.tl``, or its bytes, e.g.
    those just checked against SHA256SUMS), built with ``optimize`` unless the cache holds
    one for the same bytes, tl2cgen and compiler flags. Raises BuildError when it cannot be
    built."""
    data = checkpoint.read_bytes() if isinstance(checkpoint, Path) else checkpoint
    cache = cache or default_cache()
    try:
        version = tl2cgen_version()
    except ImportError:
        raise NoToolchain("tl2cgen is not installed (pip install 'scorer[compiled]')") from None
    cc, flags = compiler(), (optimize, *FLAGS)
    key = hashlib.sha256(data)
    key.update(f"{version} {cc} {' '.join(flags)}".encode())
    final = cache / key.hexdigest()[:24]
    if (final / LIBRARY).is_file():
        return final / LIBRARY
    if shutil.which(cc) is None:
        raise NoToolchain(f"no C compiler {cc!r} (set CC, or apt-get install gcc)")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    except OSError as exc:  # e.g. a read-only home: set inference.compiled_cache
        raise BuildError(f"cannot build in the cache {cache}: {exc}") from None
    # The service's first start on a host waits for this (seconds a model): say why.
    log.info("compiling trees (%d-byte checkpoint) with %s %s into %s: once per model version and host",
             len(data), cc, optimize, cache)
    try:
        _compile(data, [cc, *flags], work)
        try:
            work.rename(final)
        except OSError:
            if not (final / LIBRARY).is_file():  # not a concurrent winner: a real failure
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already when the rename won
    return final / LIBRARY


def _compile(data: bytes, command: list[str], work: Path) -> None:
    import tl2cgen
    import treelite

    source = work / "src"
    # tl2cgen prints its native library's log lines to stdout (a command's output: `scorer
    # demo`, JSON reports) and warns that its bundled Treelite is older than the checkpoint's
    # writer (harmless: the library is checked against ONNX Runtime before it scores): both
    # go to this module's DEBUG log instead.
    with contextlib.redirect_stdout(io.StringIO()) as said, warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            model = treelite.Model.deserialize_bytes(data)
            # One source file: parallel_comp splits it for faster builds of huge ensembles only.
            tl2cgen.generate_c_code(model, str(source), params={})
        except Exception as exc:  # treelite and tl2cgen raise their own untyped errors
            raise BuildError(f"tl2cgen cannot generate C from the checkpoint: {exc}") from None
    for line in [*said.getvalue().splitlines(), *(str(w.message) for w in warned)]:
        log.debug("tl2cgen: %s", line.strip())
    run = subprocess.run([*command, "-o", str(work / LIBRARY), *sorted(map(str, source.glob("*.c"))), "-lm"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise BuildError(f"{command[0]} failed ({run.returncode}): {run.stderr[-500:]}")
    shutil.rmtree(source)


@dataclass(frozen=True)
class Agreement:
    rows: int
    max_abs_diff: float
    decisions_differ: int  # rows alerting on one side of the threshold only, away from it

    def ok(self, tolerance: float = 1e-5) -> bool:
        return self.max_abs_diff <= tolerance and self.decisions_differ == 0


def agreement(got: npt.NDArray[np.float32], want: npt.NDArray[np.float32], threshold: float,
              tolerance: float = 1e-5) -> Agreement:
    """Scores ``got`` against the reference ``want`` (P(malicious) per row), and the alert
    decisions at ``threshold`` of rows further than ``tolerance`` from it (a row on the
    threshold may fall either way in any engine: summation order alone moves it by ~1e-7).
    A NaN score anywhere counts as an infinite difference."""
    a, b = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    if a.shape != b.shape:
        return Agreement(len(b), float("inf"), len(b))
    diff = float(np.max(np.abs(a - b))) if len(b) else 0.0
    clear = np.abs(b - threshold) > tolerance
    return Agreement(len(b), diff if diff == diff else float("inf"),
                     int(np.count_nonzero(((a >= threshold) != (b >= threshold)) & clear)))
