"""A model version's own compiled trees: ``compiled_trees.so``, built when the version is
packaged (``scorer models package``) or when the models image is built (``build.sh models``
runs ``python -m scorer.inference.compiled_shipped add``), so a host without a C compiler
(the scorer image) still scores with compiled trees.

The library is code the scorer will load, from a directory the release tooling writes, so
it is loaded only when it provably belongs to that version's ``model.tl`` and to this host:

- ``compiled_trees.so`` and its manifest ``compiled_trees.json`` are listed in the version's
  ``SHA256SUMS`` (so signed with it when signing is configured: scorer.supply.signing), and
  their bytes, as read for loading, match the listed digests;
- the manifest names the sha256 of the checkpoint it was compiled from, which must be the
  ``model.tl`` just verified, and of the library itself;
- it was built for this machine (``platform.machine()``), this C library (glibc, a version
  no newer than this host's: glibc runs what older ones built) and the loader's ABI
  (tl2cgen 1.x, the generated ``predict``/``get_num_*`` functions scorer.native._trees calls).

Bytes checked are the bytes loaded: they go into an anonymous memory file (memfd) and
dlopen opens that, so the file cannot be swapped between the check and the load. A
library refused here is not loaded at all; scorer.inference.compiled then compiles the
checkpoint itself where it can, else ONNX Runtime scores, and says which and why. After
loading, the library still has to agree with ONNX Runtime on the check rows, as any other.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)

LIBRARY = "compiled_trees.so"
MANIFEST = "compiled_trees.json"
ABI = "tl2cgen-1"  # what scorer.native._trees dlsym()s: tl2cgen 1.x's generated functions
PROC_FDS = "/proc/self/fd"  # where a memory file has a path dlopen can open


class Refused(Exception):
    """The version's library must not be loaded; ``reason`` is a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """What a library was built from and for (``compiled_trees.json``)."""

    checkpoint_sha256: str
    library_sha256: str
    abi: str
    tl2cgen: str
    treelite: str
    machine: str
    libc: str
    libc_version: str
    compiler: str
    flags: list[str]


def host() -> tuple[str, str, str]:
    """(machine, C library, its version) of this process, as a manifest records them."""
    libc, version = platform.libc_ver()
    return platform.machine(), libc, version


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def platform_problem(manifest: Manifest) -> str | None:
    """Why a library with ``manifest`` cannot run here, or None."""
    machine, libc, version = host()
    if manifest.abi != ABI or _version_tuple(manifest.tl2cgen)[:1] != (1,):
        return f"built for the {manifest.abi!r} ABI by tl2cgen {manifest.tl2cgen}, the loader takes {ABI!r}"
    if manifest.machine != machine:
        return f"built for {manifest.machine}, this host is {machine}"
    if manifest.libc != libc or not libc:
        return f"built against {manifest.libc or 'an unknown C library'}, this host has {libc or 'another'}"
    if _version_tuple(manifest.libc_version) > _version_tuple(version):
        return f"built against {libc} {manifest.libc_version}, newer than this host's {version}"
    return None


def verified_library(version_dir: Path, checkpoint: bytes, listed: dict[str, str]) -> tuple[bytes, Manifest] | None:
    """The bytes of ``version_dir``'s library and its manifest, every check above passed;
    None when the version carries no library. ``checkpoint``: the ``model.tl`` bytes already
    verified against ``listed`` (the version's SHA256SUMS). Raises Refused."""
    library, manifest_path = version_dir / LIBRARY, version_dir / MANIFEST
    if not library.exists() and not manifest_path.exists():
        return None
    blobs: dict[str, bytes] = {}
    for path in (library, manifest_path):
        digest = listed.get(path.name)
        if digest is None:
            raise Refused("library_integrity", f"{path}: not listed in SHA256SUMS (it must come with the version)")
        try:
            blobs[path.name] = path.read_bytes()
        except OSError as exc:
            raise Refused("library_integrity", f"{path}: {exc}") from None
        if hashlib.sha256(blobs[path.name]).hexdigest() != digest:
            raise Refused("library_integrity", f"{path}: sha256 does not match SHA256SUMS")
    try:
        manifest = msgspec.json.decode(blobs[MANIFEST], type=Manifest)
    except msgspec.DecodeError as exc:
        raise Refused("library_integrity", f"{manifest_path}: {exc}") from None
    if manifest.checkpoint_sha256 != hashlib.sha256(checkpoint).hexdigest():
        raise Refused("library_model", f"{library}: compiled from another checkpoint than this version's model.tl")
    if manifest.library_sha256 != hashlib.sha256(blobs[LIBRARY]).hexdigest():
        raise Refused("library_integrity", f"{library}: not the library {MANIFEST} describes")
    problem = platform_problem(manifest)
    if problem:
        raise Refused("library_platform", f"{library}: {problem}")
    return blobs[LIBRARY], manifest


def memory_file(data: bytes, name: str) -> tuple[int, str, Path | None]:
    """An anonymous file holding ``data``: (its fd, the path dlopen opens it by, a scratch
    directory to remove after unloading or None). The caller keeps the fd open while the
    library is loaded: dlopen finds an already-loaded object by path, and a closed fd's
    number (hence path) is reused. Without /proc (a bare chroot) the bytes go to a file in a
    fresh private (0700) directory instead, whose random name is never reused."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    scratch: Path | None = None
    try:
        if not os.path.exists(f"{PROC_FDS}/{fd}"):
            os.close(fd)
            scratch = Path(tempfile.mkdtemp(prefix="scorer-trees-"))
            fd = os.open(scratch / LIBRARY, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o500)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        os.close(fd)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    return fd, (str(scratch / LIBRARY) if scratch else f"{PROC_FDS}/{fd}"), scratch


def library_files(checkpoint: bytes | None, optimize: str) -> dict[str, bytes]:
    """``{compiled_trees.so, compiled_trees.json}`` for a version whose ``model.tl`` is
    ``checkpoint``, compiled here with ``optimize``; empty (and why, logged) when there is
    no checkpoint or this host cannot build (no tl2cgen or no C compiler)."""
    from scorer.inference.compiled_build import FLAGS, BuildError, build, compiler

    if checkpoint is None:
        return {}
    try:  # through this host's cache: the engine here reuses it, and so does a repeated package
        data = build(checkpoint, None, optimize).read_bytes()
    except (BuildError, OSError) as exc:
        log.info("version written without %s (the scorer compiles it where it runs, or uses ONNX Runtime): %s",
                 LIBRARY, exc)
        return {}
    import tl2cgen
    import treelite

    cc = compiler()
    said = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    machine, libc, libc_version = host()
    manifest = Manifest(checkpoint_sha256=hashlib.sha256(checkpoint).hexdigest(),
                        library_sha256=hashlib.sha256(data).hexdigest(), abi=ABI, tl2cgen=str(tl2cgen.__version__),
                        treelite=str(treelite.__version__), machine=machine, libc=libc, libc_version=libc_version,
                        compiler=(said.splitlines() or [cc])[0], flags=[optimize, *FLAGS])
    return {LIBRARY: data, MANIFEST: msgspec.json.format(msgspec.json.encode(manifest)) + b"\n"}


def add(version_dir: Path, optimize: str) -> bool:
    """Compile ``version_dir``'s checkpoint into its library and list both files in its
    SHA256SUMS (re-signed with ``SCORER_SIGNING__KEY`` when the version was signed); False
    when this host cannot build it. A signed version without that key is refused: its
    signature would no longer cover the directory."""
    from scorer.errors import ModelError
    from scorer.inference.compiled_build import CHECKPOINT
    from scorer.inference.repository import verify_checksums, write_checksums
    from scorer.supply import signing

    verify_checksums(version_dir)  # only a version that verifies gets a library listed beside it
    signed = (version_dir / signing.SIGNATURE).exists()
    if signed and not os.environ.get(signing.SIGNING_KEY_ENV, "").strip():
        raise ModelError(f"{version_dir}: signed; set {signing.SIGNING_KEY_ENV} to re-sign it with its library")
    checkpoint = version_dir / CHECKPOINT
    files = library_files(checkpoint.read_bytes() if checkpoint.is_file() else None, optimize)
    for name, data in files.items():
        (version_dir / name).write_bytes(data)
    if files:
        # the old signature is of other bytes, and SHA256SUMS lists every file but itself
        (version_dir / signing.SIGNATURE).unlink(missing_ok=True)
        write_checksums(version_dir)
        if signed:
            signing.sign_if_configured(version_dir)
    return bool(files)


def main(argv: list[str] | None = None) -> int:
    from scorer.inference.compiled_build import OPTIMIZE

    parser = argparse.ArgumentParser(prog="python -m scorer.inference.compiled_shipped",
                                     description=f"add {LIBRARY} (compiled here) to model versions")
    parser.add_argument("command", choices=["add"])
    parser.add_argument("versions", nargs="+", type=Path, help="version directories (model_repository/<model>/<n>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    missing = [str(v) for v in args.versions if not add(v, OPTIMIZE)]
    for version in args.versions:
        print(f"{version}: {'no library (see above)' if str(version) in missing else LIBRARY}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
