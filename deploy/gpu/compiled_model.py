"""A version's trees compiled to a shared library: tl2cgen turns ``model.tl`` into C, the
host's C compiler turns that into ``model_compiled.so``, which the C++ backend opens at load
and scores small requests with (treelite_backend/compiled_model.h).

    python -m deploy.gpu.compiled_model build model_repository/netflow_classifier/1/model.tl

Why: Treelite's GTIL interprets the trees and sets up every call, 25-45 µs of a one-row
request in the server on the H200 host; the compiled trees are straight-line compares and
adds (docs/gpu-serving.md, run 13). The library is built where it runs, by that host's
compiler (as cpp_backend builds the backend itself), and cached by the checkpoint's content,
so a version is compiled once per host whatever the number of served names.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
LIBRARY = "model_compiled.so"  # in a served version's directory, beside model.tl
DEFAULT_CACHE = HERE.parents[1] / "var" / "treelite-backend" / "compiled"
# As tl2cgen's own gcc recipe (contrib/gcc.py), which its predictor is tested with.
CFLAGS = ("-O3", "-std=c99", "-fPIC", "-shared")


def tl2cgen_version() -> str:
    import tl2cgen

    return str(tl2cgen.__version__)


def build(checkpoint: Path, cache: Path = DEFAULT_CACHE) -> Path:
    """The compiled library of ``checkpoint`` (a Treelite ``model.tl``), built unless the cache
    holds one for the same bytes, tl2cgen and compiler flags."""
    import tl2cgen
    import treelite

    compiler = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), "cc")
    key = hashlib.sha256(checkpoint.read_bytes())
    key.update(f"{tl2cgen_version()} {compiler} {' '.join(CFLAGS)}".encode())
    library = cache / key.hexdigest()[:24] / LIBRARY
    if library.is_file():
        return library
    if shutil.which(compiler) is None:
        raise FileNotFoundError(f"no C compiler {compiler!r} (set CC, or apt-get install gcc)")
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tl2cgen-") as work:
        # One source file: parallel_comp splits it for faster builds of huge ensembles only.
        tl2cgen.generate_c_code(treelite.Model.deserialize(str(checkpoint)), work, params={})
        partial = library.with_suffix(".partial")
        subprocess.run([compiler, *CFLAGS, "-o", str(partial), *sorted(map(str, Path(work).glob("*.c"))), "-lm"],
                       check=True)
    partial.replace(library)  # a server never opens a half-written library
    return library


@dataclass(frozen=True)
class Agreement:
    rows: int
    max_abs_diff: float
    decisions_differ: int  # rows alerting on one side of the threshold only, away from it


def agreement(got: npt.NDArray[np.float32], want: npt.NDArray[np.float32], threshold: float,
              tolerance: float = 1e-5) -> Agreement:
    """Scores ``got`` against the reference ``want`` (P(malicious) per row), and the alert
    decisions at ``threshold`` of rows further than ``tolerance`` from it (a row on the
    threshold may fall either way in any engine: summation order alone moves it by ~1e-7)."""
    a, b = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    diff = float(np.max(np.abs(a - b))) if len(b) else 0.0
    clear = np.abs(b - threshold) > tolerance
    return Agreement(len(b), diff, int(np.count_nonzero(((a >= threshold) != (b >= threshold)) & clear)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="compile a checkpoint unless the cache holds it")
    cmd.add_argument("checkpoint", type=Path)
    cmd.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    print(build(args.checkpoint, args.cache))


if __name__ == "__main__":
    main()
