"""File steps of deploy/pipeline_host/carry.py: a minimal JRE, the broker's jars, the bench's data.

Each step works on paths it is given and knows nothing of the rest of the carry, so the tests
(tests/deploy/test_pipeline_host.py) run them on small jars and folders made there.
"""

from __future__ import annotations

import gzip
import itertools
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# What the broker's jars need of the JDK (``jdeps --print-module-deps`` on each jar), plus what
# they reach by reflection or service lookup: log4j's configuration (java.xml, java.naming),
# the OS metrics Kafka reads (jdk.management), java.sql's types that log4j-core and jackson
# name, and the elliptic curves a TLS listener would ask for. java.desktop (java.beans, the
# largest of them) because log4j-core's LoggerContext fires a PropertyChangeEvent at start:
# without it the storage format fails with NoClassDefFoundError.
JRE_MODULES = ("java.base", "java.logging", "java.management", "jdk.management", "java.naming", "java.xml",
               "java.security.jgss", "java.security.sasl", "java.sql", "jdk.unsupported", "jdk.crypto.ec",
               "java.desktop")
# Native members of a jar (zstd-jni, snappy-java, lz4-java ship one per platform).
NATIVE_SUFFIXES = (".so", ".dylib", ".dll", ".jnilib", ".a")
# The device machine's platform as those jars spell it in their paths.
HOST_PLATFORM = ("linux/amd64/", "Linux/x86_64/")


def jlink(modules: Iterable[str], out: Path, compress: int = 0, jlink_bin: str = "jlink") -> Path:
    """A runtime of ``modules`` at ``out`` (replaced), without debug symbols, man pages and
    headers; returns its java. ``compress`` 0 leaves the classes uncompressed in lib/modules,
    which xz over the whole carry packs smaller than jlink's own zip level 2 (carry.py says by
    how much)."""
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([jlink_bin, "--add-modules", ",".join(modules), "--strip-debug", "--no-man-pages",
                    "--no-header-files", f"--compress={compress}", "--output", str(out)], check=True)
    return out / "bin" / "java"


def foreign_native(name: str, host: tuple[str, ...] = HOST_PLATFORM) -> bool:
    """True for a jar member that is a native library for another platform than ``host``."""
    return name.endswith(NATIVE_SUFFIXES) and not any(part in name for part in host)


def repack_jar(src: Path, dst: Path, host: tuple[str, ...] = HOST_PLATFORM) -> tuple[int, int]:
    """``src`` to ``dst`` without other platforms' natives, every member stored uncompressed
    (xz over the carry finds the redundancy across classes that per-member deflate hides).
    Members keep their order, names and times; returns (members kept, members dropped)."""
    kept = dropped = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if foreign_native(info.filename, host):
                dropped += 1
                continue
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            copy.compress_type = zipfile.ZIP_STORED
            zout.writestr(copy, zin.read(info) if not info.is_dir() else b"")
            kept += 1
    return kept, dropped


def kafka_lib(lib: Path, out: Path, drop: Iterable[str] = ()) -> dict[str, tuple[int, int]]:
    """``lib``'s jars (kafka.sh's resolved cache) repacked into ``out``, with its ``.complete``
    marker (kafka.sh then takes the folder as resolved and never calls maven); jars named in
    ``drop`` left out. Returns each jar's (kept, dropped) members."""
    marker = lib / ".complete"
    if not marker.is_file():
        raise SystemExit(f"{lib}: not a resolved Kafka lib (run deploy/local/kafka.sh resolve)")
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    skip = set(drop)
    for jar in sorted(lib.glob("*.jar")):
        if jar.name not in skip:
            done[jar.name] = repack_jar(jar, out / jar.name)
    shutil.copy2(marker, out / ".complete")
    return done


def _lines(src: Path) -> Iterator[bytes]:
    if src.suffix == ".zip":
        with zipfile.ZipFile(src) as zf:
            (member,) = zf.namelist()  # OTRF's campaign zips hold one JSON-lines file
            with zf.open(member) as fh:
                yield from fh
    elif src.suffix == ".gz":
        with gzip.open(src, "rb") as fh:
            yield from fh
    else:
        with open(src, "rb") as fh:
            yield from fh


def head_lines(src: Path, dst: Path, lines: int) -> int:
    """The first ``lines`` lines of ``src`` (a zip of one member, a .gz or a plain file) to
    ``dst`` in the same container, uncompressed inside it (a stored zip member, gzip level 0):
    xz over the carry packs text far smaller than the deflate it replaces. Returns the lines
    written (fewer where ``src`` has fewer)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    head = list(itertools.islice(_lines(src), lines))
    if src.suffix == ".zip":
        with zipfile.ZipFile(src) as zf:
            info = zf.infolist()[0]
        copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
        with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
            zout.writestr(copy, b"".join(head))
    elif src.suffix == ".gz":
        with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=0, mtime=0) as fh:
            fh.write(b"".join(head))
    else:
        dst.write_bytes(b"".join(head))
    return len(head)


def trimmed_copy(src_root: Path, names: Iterable[str], out: Path, same: Callable[[Path], bool],
                 start: int = 4000) -> int:
    """``names`` (files or folders under ``src_root``) cut to their first N lines under ``out``,
    N doubling from ``start`` until ``same(out)`` says a reader of ``out`` gets what it got from
    ``src_root`` (a file shorter than N is copied whole, so the loop ends); returns N."""
    files = [f for name in names for f in ([src_root / name] if (src_root / name).is_file()
                                           else sorted(p for p in (src_root / name).rglob("*") if p.is_file()))]
    lines = start
    while True:
        whole = [head_lines(f, out / f.relative_to(src_root), lines) < lines for f in files]
        if same(out):
            return lines
        if all(whole):
            raise SystemExit(f"{names}: read differently even when copied whole")
        lines *= 2
