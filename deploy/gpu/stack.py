"""The GPU host's packages as one archive that fits a device call (64 MiB with the working tree).

    python -m deploy.gpu.stack build --out var/stack.tar.xz [--python python3.12] \
        [--carry var/dev/feats.npz]          # downloads, unpacks, prunes, strips, packs
    python -m deploy.gpu.stack budget --carry var/stack.tar.xz var/dev/feats.npz

The device machine has no network and runs the image's Python 3.12 with CuPy, numpy,
onnxruntime, grpcio and protobuf; what it lacks travels as ``STACK.tar.xz``, which
deploy/gpu/bench.sh and batch1.sh unpack to /tmp/stack: ``site/`` (on PYTHONPATH), ``pa/``
(perf_analyzer, from the tritonclient 2.51 wheel: later wheels dropped it) and ``native/`` (the
scorer's C extensions built for that Python, copied into scorer/native/ there).

As wheels the set is ~190 MB. What makes it fit (docs/gpu-serving.md, "Found along the way"):
C/C++ headers, cmake files, Cython sources and pip's RECORD files dropped; pytriton's python
backend stubs for other Pythons (and the libpython 3.13 one of them carries) dropped;
libicudata (29 MB of ICU data nothing in this server reads, but libxml2 -> libicuuc links it)
replaced by a library defining only its symbol; every ELF file that still has a symbol table
``strip --strip-unneeded``; identical files (the RAPIDS wheels' libgomp copies) hard-linked;
xz with a dictionary larger than the archive (a 64 MiB one gave 1.5 MB more).
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from deploy.gpu import stack_files

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "3.12"  # the device image's python3 (/opt/torch/.venv, 3.12.3)
WHEELS = (
    "nvforest-cu13==26.10.0", "libnvforest-cu13==26.10.0", "pylibraft-cu13==26.10.0", "libraft-cu13==26.10.0",
    "rmm-cu13==26.10.0", "librmm-cu13==26.10.0", "rapids-logger==0.3.0",
    "treelite==4.8.1", "tl2cgen==1.0.0",
    "nvidia-pytriton==0.7.0", "tritonclient==2.73.0", "python-rapidjson==1.25", "msgspec==0.23.0",
    # the launcher verifies checksums through scorer.supply.signing; cryptography's bindings load cffi's
    "cryptography==50.0.2", "cffi==2.1.1",
)
PERF_ANALYZER = "tritonclient==2.51.0"  # only its bin/perf_analyzer is kept
PLATFORMS = ("manylinux_2_35_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
LIMIT = 64 * 1024 * 1024  # what one device call carries: working tree + carried paths
DICT = 192 * 1024 * 1024


def download(wheels: Path) -> list[Path]:
    """The pinned wheels in ``wheels`` (pip skips those already there)."""
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           PYTHON, "--implementation", "cp", "-d", str(wheels)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run([*cmd, *WHEELS], check=True)
    subprocess.run([*cmd, PERF_ANALYZER], check=True)  # alone: pip refuses two tritonclient pins in one call
    return sorted(wheels.glob("*.whl"))


def wheel_of(requirement: str, wheels: list[Path]) -> Path:
    name, version = requirement.split("==")
    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"
    found = [w for w in wheels if w.name.lower().startswith(stem)]
    if len(found) != 1:
        raise SystemExit(f"{requirement}: expected one wheel, found {[w.name for w in found]}")
    return found[0]


def build_native(python: str, out: Path, source: Path = ROOT, include: str | None = None) -> list[Path]:
    """scorer/native's extensions for ``python`` (``source``'s, against ``include``: by default
    that Python's headers) as setup.py builds them: setuptools puts the interpreter's CFLAGS first
    (``-DNDEBUG`` among them), then setup.py's flags. Without NDEBUG the asserts in CPython's inline
    headers stay in, and one that holds on 3.11 aborted the scorer on the device's 3.12."""
    probe = "import sysconfig as s; print(s.get_config_var('CFLAGS')); print(s.get_paths()['include']); " \
            "print(s.get_config_var('EXT_SUFFIX'))"
    cflags, found, suffix = subprocess.run([python, "-c", probe], check=True, capture_output=True,
                                           text=True).stdout.splitlines()
    include = include or found
    if not suffix.startswith(f".cpython-{PYTHON.replace('.', '')}-"):
        raise SystemExit(f"{python} is not Python {PYTHON} ({suffix}): the device image runs {PYTHON}")
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for c in sorted((source / "scorer" / "native").glob("_*.c")):  # each is one extension (setup.py)
        target = out / f"{c.stem}{suffix}"
        subprocess.run([os.environ.get("CC", "cc"), *cflags.split(), "-fPIC", "-O2", "-std=c11", "-Wall", "-Werror",
                        "-shared", f"-I{include}", "-o", str(target), str(c), "-ldl"], check=True)
        built.append(target)
    return built


def assemble(wheels: list[Path], work: Path, python: str | None) -> None:
    """``work``/site, pa, native: the wheels unpacked and pruned, perf_analyzer, the extensions."""
    site = work / "site"
    for requirement in WHEELS:
        stack_files.unpack_wheel(wheel_of(requirement, wheels), site)
    print(f"unpacked: {stack_files.tree_bytes(site) / 1e6:.1f} MB")
    stack_files.prune(site, PYTHON)
    stack_files.stub_icudata(site)
    pa = stack_files.extract_member(wheel_of(PERF_ANALYZER, wheels), "/bin/perf_analyzer", work / "pa")
    stripped = stack_files.strip_symbols([pa, *stack_files.elf_files(site)])
    linked = stack_files.link_duplicates(work)
    print(f"pruned, {len(stripped)} files stripped, {linked} duplicates linked: "
          f"{stack_files.tree_bytes(work) / 1e6:.1f} MB")
    if python:
        build_native(python, work / "native")


def pack(work: Path, out: Path) -> None:
    """``work``'s folders as one tar.xz, members sorted and with fixed owners and times (the
    same wheels give the same bytes)."""
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": DICT}]
    partial = out.with_suffix(".partial")

    def normal(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    with lzma.open(partial, "wb", format=lzma.FORMAT_XZ, filters=filters) as xz, \
            tarfile.open(fileobj=xz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in work.rglob("*") if not p.is_dir()):
            tar.add(path, arcname=str(path.relative_to(work)), recursive=False, filter=normal)
    partial.replace(out)


def budget(carry: list[Path]) -> int:
    """Bytes left of one call's 64 MiB after the working tree and ``carry``; prints the parts."""
    tree = stack_files.working_tree_bytes(ROOT)
    carried = {p: p.stat().st_size for p in carry}
    left = LIMIT - tree - sum(carried.values())
    print(f"working tree (tracked + untracked, not ignored): {tree / 2**20:.2f} MiB")
    for path, size in carried.items():
        print(f"carry {path}: {size / 2**20:.2f} MiB")
    print(f"left of {LIMIT / 2**20:.0f} MiB: {left / 2**20:.2f} MiB" + ("" if left >= 0 else "  (DOES NOT FIT)"))
    return left


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download, unpack, prune, strip, pack; then the budget")
    b.add_argument("--out", type=Path, default=ROOT / "var" / "stack.tar.xz")
    b.add_argument("--wheels", type=Path, default=ROOT / "var" / "wheels", help="wheel cache")
    b.add_argument("--python", default="python3.12", help="a Python 3.12 with headers, for scorer/native "
                   "('' to leave the extensions out: the compiled in-process engine then falls back)")
    b.add_argument("--carry", type=Path, nargs="*", default=[], help="other carried paths, for the budget")
    g = sub.add_parser("budget", help="what is left of a call's 64 MiB")
    g.add_argument("--carry", type=Path, nargs="*", default=[])
    args = p.parse_args(argv)
    if args.command == "budget":
        raise SystemExit(0 if budget(args.carry) >= 0 else 1)
    wheels = download(args.wheels)
    with tempfile.TemporaryDirectory(prefix="stack-", dir=args.out.parent) as tmp:
        assemble(wheels, Path(tmp), args.python or None)
        pack(Path(tmp), args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB ({args.out.stat().st_size / 2**20:.2f} MiB), "
          f"sha256 {digest}")
    raise SystemExit(0 if budget([args.out, *args.carry]) >= 0 else 1)


if __name__ == "__main__":
    main()
