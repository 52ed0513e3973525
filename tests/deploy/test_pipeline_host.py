"""deploy/pipeline_host's carry steps (carry_files.py, carry.py) and the processes bench's
start-up reading, on this host.

The jars are made here with native members for several platforms; the trimmed data copies
are read back by the same reader that checks them; the JRE is jlink'd from this host's JDK
and must run a class of the broker's (kafka-clients' AppInfoParser loads from the jar).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from deploy.gpu.stack import build_native
from deploy.pipeline_host import carry, carry_files
from scorer.bench.processes import Progress
from scorer.bench.realistic import BACKGROUND, background
from scorer.config import data_dir

NATIVES = ("linux/amd64/libzstd-jni.so", "linux/aarch64/libzstd-jni.so", "darwin/x86_64/libzstd-jni.dylib",
           "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so", "org/xerial/snappy/native/Mac/x86/x.jnilib",
           "win/amd64/libzstd-jni.dll", "org/xerial/snappy/native/AIX/ppc64/libsnappyjava.a")


def _jar(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_foreign_native_keeps_the_hosts_libraries_and_every_class() -> None:
    kept = [n for n in NATIVES if not carry_files.foreign_native(n)]
    assert kept == ["linux/amd64/libzstd-jni.so", "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so"]
    assert not carry_files.foreign_native("com/github/luben/zstd/Zstd.class")
    assert not carry_files.foreign_native("META-INF/MANIFEST.MF")


def test_repack_jar_drops_foreign_natives_and_stores_the_rest(tmp_path: Path) -> None:
    members = {"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", "a/B.class": b"\xca\xfe\xba\xbe" * 100,
               **{n: n.encode() * 50 for n in NATIVES}}
    src = _jar(tmp_path / "in.jar", members)
    dst = tmp_path / "out.jar"
    assert carry_files.repack_jar(src, dst) == (4, 5)
    with zipfile.ZipFile(dst) as zf:
        assert zf.namelist() == ["META-INF/MANIFEST.MF", "a/B.class", "linux/amd64/libzstd-jni.so",
                                 "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so"]
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert all(zf.read(n) == members[n] for n in zf.namelist())


def test_kafka_lib_needs_the_resolved_marker_and_copies_it(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    _jar(lib / "zstd-jni.jar", {n: b"x" for n in NATIVES})
    _jar(lib / "tool-only.jar", {"T.class": b"t"})
    with pytest.raises(SystemExit, match="not a resolved Kafka lib"):
        carry_files.kafka_lib(lib, tmp_path / "out")
    (lib / ".complete").write_text("digest-of-the-pom\n")
    done = carry_files.kafka_lib(lib, tmp_path / "out", drop=["tool-only.jar"])
    assert done == {"zstd-jni.jar": (2, 5)}
    assert (tmp_path / "out" / ".complete").read_text() == "digest-of-the-pom\n"
    assert sorted(p.name for p in (tmp_path / "out").glob("*.jar")) == ["zstd-jni.jar"]


@pytest.mark.parametrize("suffix", [".zip", ".gz", ".csv"])
def test_head_lines_keeps_the_container_and_the_first_lines(tmp_path: Path, suffix: str) -> None:
    text = b"".join(b"line %d,%s\n" % (i, b"x" * (i % 7)) for i in range(100))
    src = tmp_path / f"src{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("capture.json", text)
    elif suffix == ".gz":
        src.write_bytes(gzip.compress(text))
    else:
        src.write_bytes(text)
    dst = tmp_path / "out" / src.name
    assert carry_files.head_lines(src, dst, 30) == 30
    assert b"".join(carry_files._lines(dst)) == b"".join(text.splitlines(keepends=True)[:30])
    assert carry_files.head_lines(src, dst, 500) == 100  # shorter than asked: copied whole
    assert b"".join(carry_files._lines(dst)) == text
    if suffix == ".zip":
        with zipfile.ZipFile(dst) as zf:
            assert zf.namelist() == ["capture.json"]
            assert zf.infolist()[0].compress_type == zipfile.ZIP_STORED


def test_trimmed_copy_doubles_until_the_reader_agrees(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "kind" / "campaign").mkdir(parents=True)
    (root / "kind" / "a.csv").write_bytes(b"".join(b"%d\n" % i for i in range(1000)))
    (root / "kind" / "campaign" / "b.csv").write_bytes(b"".join(b"%d\n" % i for i in range(50)))

    def reads(folder: Path) -> list[bytes]:  # a reader that wants the first 300 lines of a.csv, all of b
        return [*list(carry_files._lines(folder / "kind" / "a.csv"))[:300],
                *carry_files._lines(folder / "kind" / "campaign" / "b.csv")]

    want = reads(root)
    lines = carry_files.trimmed_copy(root, ["kind/a.csv", "kind/campaign"], tmp_path / "out",
                                     lambda d: reads(d) == want, start=40)
    assert lines == 320
    assert reads(tmp_path / "out") == want
    with pytest.raises(SystemExit, match="even when copied whole"):
        carry_files.trimmed_copy(root, ["kind/a.csv"], tmp_path / "never", lambda d: False, start=400)


@pytest.mark.data
def test_carry_data_gives_the_realistic_streams_events(tmp_path: Path) -> None:
    lines = carry.carry_data(data_dir(), tmp_path)
    assert set(lines) == {"netflow", "siem", "edr"}
    for kind, names in BACKGROUND.items():
        assert carry._encoded(background(tmp_path, kind, 5000)) == carry._encoded(
            background(data_dir(), kind, 5000))
        for name in names:
            assert (tmp_path / name).exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jlink") is None, reason="needs a JDK's jlink")
def test_jlink_runtime_runs_a_class_of_the_broker(tmp_path: Path) -> None:
    java = carry_files.jlink(carry_files.JRE_MODULES, tmp_path / "jre")
    modules = subprocess.run([str(java), "--list-modules"], capture_output=True, text=True, check=True).stdout
    listed = {m.split("@")[0] for m in modules.split()}
    assert set(carry_files.JRE_MODULES) <= listed and "jdk.compiler" not in listed  # the rest: what they require
    clients = sorted(carry.KAFKA_LIB.glob("kafka-clients-*.jar"))
    if clients:  # kafka.sh resolve has run on this host
        probe = "org.apache.kafka.common.utils.internals.AppInfoParser"
        loaded = subprocess.run([str(java), "-verbose:class", "-cp", str(clients[0]), probe],
                                capture_output=True, text=True)
        assert f"{probe} source:" in loaded.stdout


def test_progress_summary_reads_start_up_and_the_steady_rate() -> None:
    progress = Progress()
    progress.seen = [(0.2, 0.0), (2.0, 0.0), (3.0, 100.0), (4.0, 300.0), (5.0, 600.0), (6.0, 800.0), (7.0, 1000.0)]
    assert progress.summary(1000) == {"first_record_s": 3.0, "quarter_s": 4.0, "three_quarters_s": 6.0,
                                      "steady_events_per_s": 250}
    progress.seen = [(0.2, 0.0)]
    assert progress.summary(1000) == {"first_record_s": None, "quarter_s": None, "three_quarters_s": None,
                                      "steady_events_per_s": None}


# pyenv's shim is on PATH even where no 3.12 is selected: the installed version first
PY312 = next(iter(sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))), None) or shutil.which("python3.12")


def test_build_native_refuses_another_python(tmp_path: Path) -> None:
    import sys

    if sys.version_info[:2] == (3, 12):
        pytest.skip("this interpreter is the device's version")
    with pytest.raises(SystemExit, match=r"is not Python 3\.12"):
        build_native(sys.executable, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(PY312 is None or shutil.which("cc") is None, reason="needs a Python 3.12 and a C compiler")
def test_build_native_leaves_cpythons_asserts_out(tmp_path: Path) -> None:
    built = build_native(str(PY312), tmp_path)
    assert sorted(p.name.split(".")[0] for p in built) == sorted(p.stem for p in Path("scorer/native").glob("_*.c"))
    # CPython's inline helpers (PyTuple_GET_SIZE, ...) assert unless -DNDEBUG: every such assert
    # compiled in calls glibc's __assert_fail (the C sources call assert() nowhere themselves)
    assert all(b"__assert_fail" not in p.read_bytes() for p in built)


def test_head_packs_heads_scorer_and_the_headers(tmp_path: Path) -> None:
    import sysconfig
    import tarfile

    out = tmp_path / "head.tar.xz"
    carry.head(out, str(PY312) if PY312 else "python3")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        revision = tar.extractfile("REVISION")
        assert revision is not None
        rev = revision.read().decode().strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
    assert rev == head.stdout.strip()
    assert {"scorer/native/_rules.c", "scorer/cli.py", "include/Python.h"} <= names
    assert sysconfig.get_paths()["include"]  # the headers came from the given Python's sysconfig
