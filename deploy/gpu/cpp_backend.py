"""Build and place the C++ Treelite backend (deploy/gpu/treelite_backend/).

    python -m deploy.gpu.cpp_backend build [--out var/treelite-backend]

The small-request path of a GPU host: a Triton backend in the server process that scores a
version's ``model.tl`` with Treelite's CPU predictor, so that a one-row request pays neither
the python backend's IPC nor a GPU launch (docs/gpu-serving.md). It compiles with the host's
C++ compiler (``$CXX``, default ``c++``) against nothing but libdl: the server provides the
Triton symbols, and libtreelite.so is opened at model load from the config parameter
``treelite_library``, which :func:`treelite_library` finds in the installed treelite wheel.

Triton looks for ``libtriton_<backend>.so`` in the model's version directory, then in the
model directory, then in its backend directory: :func:`install` copies the library into a
model directory, so the server needs no backend directory of its own for it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "treelite_backend"  # treelite_backend.cc (scoring), forward.cc (to the GPU model)
BACKEND = "scorer_treelite"  # the config's `backend:`; Triton loads libtriton_<backend>.so
LIBRARY = f"libtriton_{BACKEND}.so"
DEFAULT_OUT = HERE.parents[1] / "var" / "treelite-backend"


def treelite_library() -> Path:
    """libtreelite.so of the installed treelite package (what the backend dlopens)."""
    spec = importlib.util.find_spec("treelite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("treelite is not installed (pip install treelite; the 'train' extra)")
    path = Path(next(iter(spec.submodule_search_locations))) / "lib" / "libtreelite.so"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the treelite package has no libtreelite.so")
    return path


def build(out: Path = DEFAULT_OUT) -> Path:
    """The backend library in ``out``, compiled unless one newer than the source is there."""
    library = out / LIBRARY
    sources = sorted(SOURCES.glob("*.cc"))
    newest = max(p.stat().st_mtime for p in SOURCES.iterdir() if p.suffix in (".cc", ".h"))
    if library.is_file() and library.stat().st_mtime >= newest:
        return library
    out.mkdir(parents=True, exist_ok=True)
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise FileNotFoundError(f"no C++ compiler {compiler!r} (set CXX, or apt-get install g++)")
    partial = library.with_suffix(".partial")
    subprocess.run([compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra",
                    "-Werror", "-o", str(partial), *map(str, sources), "-ldl"], check=True)
    partial.replace(library)  # a server never loads a half-written library
    return library


def install(model_dir: Path, library: Path) -> None:
    """Put the backend library where Triton looks first for ``model_dir``'s backend."""
    shutil.copy2(library, model_dir / LIBRARY)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="compile the backend library unless it is up to date")
    cmd.add_argument("--out", type=Path, default=DEFAULT_OUT,
                     help=f"directory for {LIBRARY} (default: var/treelite-backend)")
    args = parser.parse_args(argv)
    print(build(args.out))


if __name__ == "__main__":
    main()
