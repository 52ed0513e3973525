"""A version's trees compiled to a shared library (scorer.inference.compiled_build builds it:
tl2cgen turns ``model.tl`` into C, the host's C compiler that into ``model_compiled.so``),
which the C++ backend opens at load and scores small requests with
(treelite_backend/compiled_model.h).

    python -m deploy.gpu.compiled_model build model_repository/netflow_classifier/1/model.tl

Why: Treelite's GTIL interprets the trees and sets up every call, 25-45 µs of a one-row
request in the server on the H200 host; the compiled trees are straight-line compares and
adds (docs/gpu-serving.md, run 13). The library is built where it runs, by that host's
compiler (as cpp_backend builds the backend itself), and cached by the checkpoint's content,
so a version is compiled once per host whatever the number of served names. The scorer's
in-process engine builds the same libraries the same way (its cache is per user).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scorer.inference import compiled_build
from scorer.inference.compiled_build import CFLAGS, LIBRARY, Agreement, agreement, tl2cgen_version

__all__ = ["CFLAGS", "DEFAULT_CACHE", "LIBRARY", "Agreement", "agreement", "build", "tl2cgen_version"]

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE.parents[1] / "var" / "treelite-backend" / "compiled"


def build(checkpoint: Path, cache: Path = DEFAULT_CACHE, optimize: str = "-O3") -> Path:
    """The compiled library of ``checkpoint``, in deploy/gpu's cache (the served repository
    links to it); built unless the cache holds one for the same bytes, compiler and flags."""
    return compiled_build.build(checkpoint, cache, optimize)


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
