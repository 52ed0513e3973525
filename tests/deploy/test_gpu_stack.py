"""deploy/gpu's device stack (stack.py, stack_files.py) and route bench (route_bench.py), on the CPU.

The stack's steps run on small folders and on libraries this host's C compiler builds: a
wheel unpacked as pip lays it out, the pruning rules, the ICU data stub loading with the
symbol libicuuc needs, strip removing a symbol table but not the dynamic symbols, identical
files hard-linked, and the archive unpacking to the same tree. The route bench runs against
the real tritonserver (the router under the production name, Treelite behind it).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy.gpu import bench_common, route_bench, stack, stack_files
from tests.support.gpu import gpu_repository_server

needs_cc = pytest.mark.skipif(shutil.which("cc") is None or shutil.which("strip") is None,
                              reason="needs a C compiler and binutils' strip")


def _library(tmp_path: Path, name: str, source: str, *flags: str) -> Path:
    c = tmp_path / f"{name}.c"
    c.write_text(source)
    out = tmp_path / f"{name}.so"
    subprocess.run(["cc", "-shared", "-fPIC", *flags, "-o", str(out), str(c)], check=True)
    return out


def test_unpack_wheel_lays_out_as_pip_and_keeps_the_executable_bit(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/__init__.py", "x = 1\n")
        run = zipfile.ZipInfo("demo/bin/server")
        run.external_attr = 0o100755 << 16
        zf.writestr(run, "#!/bin/sh\n")
        zf.writestr("demo-1.0.data/purelib/extra/mod.py", "y = 2\n")
        zf.writestr("demo-1.0.data/scripts/tool", "#!/bin/sh\n")
    site = tmp_path / "site"
    stack_files.unpack_wheel(wheel, site)
    assert (site / "demo/__init__.py").read_text() == "x = 1\n"
    assert (site / "extra/mod.py").is_file()  # .data/purelib goes to the top, as pip puts it
    assert not any(p.name == "tool" for p in site.rglob("*"))  # scripts are not site packages
    assert os.access(site / "demo/bin/server", os.X_OK)
    assert not os.access(site / "demo/__init__.py", os.X_OK)


def test_prune_drops_what_the_host_never_reads_and_keeps_the_rest(tmp_path: Path) -> None:
    site = tmp_path / "site"
    keep = ["libraft/lib64/libraft.so", "rmm/__init__.py", "rmm-1.0.dist-info/METADATA",
            f"{stack_files.STUBS}/3.12/triton_python_backend_stub", "nvidia_pytriton.libs/libssl-1.so.3"]
    drop = ["libraft/include/raft/core.hpp", "librmm/lib64/cmake/rmm/rmm-config.cmake", "rmm/_lib/memory.pxd",
            "rmm/_lib/memory.pyx", "rmm-1.0.dist-info/RECORD", "rmm/__pycache__/x.pyc",
            f"{stack_files.STUBS}/3.11/triton_python_backend_stub", "nvidia_pytriton.libs/libpython3-abc.13.so.1.0"]
    for name in keep + drop:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(name)
    stack_files.prune(site, "3.12")
    assert sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()) == sorted(keep)


@needs_cc
def test_icudata_stub_keeps_the_soname_and_defines_the_symbol(tmp_path: Path) -> None:
    libs = tmp_path / "site" / "nvidia_pytriton.libs"
    libs.mkdir(parents=True)
    real = libs / "libicudata-c1404396.so.70.1"
    real.write_bytes(b"\0" * 100_000)  # stands for 29 MB of ICU data
    assert stack_files.stub_icudata(tmp_path / "site") == [real]
    assert real.stat().st_size < 100_000
    lib = ctypes.CDLL(str(real))
    assert ctypes.c_ubyte.in_dll(lib, "icudt70_dat").value == 0
    dynamic = subprocess.run(["readelf", "-d", str(real)], capture_output=True, text=True).stdout
    assert f"[{real.name}]" in dynamic  # the soname libicuuc's NEEDED entry names


@needs_cc
def test_strip_removes_the_symbol_table_and_the_library_still_links(tmp_path: Path) -> None:
    lib = _library(tmp_path, "answer", "int answer(void) { return 42; }\n", "-g")
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF file")
    assert stack_files.has_symtab(lib) and not stack_files.has_symtab(text)
    before = lib.stat().st_size
    assert stack_files.strip_symbols(stack_files.elf_files(tmp_path)) == [lib]
    assert not stack_files.has_symtab(lib) and lib.stat().st_size < before
    assert ctypes.CDLL(str(lib)).answer() == 42  # the dynamic symbol stays
    assert stack_files.strip_symbols([lib]) == []  # nothing left to strip


def test_identical_files_become_hard_links_and_the_archive_keeps_them(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for name, body in (("a/libgomp.so", b"gomp" * 1000), ("b/libgomp.so", b"gomp" * 1000), ("c/other.so", b"x")):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(body)
    assert stack_files.link_duplicates(work) == 1
    assert os.path.samefile(work / "a/libgomp.so", work / "b/libgomp.so")
    assert stack_files.tree_bytes(work) == 4001
    out = tmp_path / "stack.tar.xz"
    stack.pack(work, out)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["b/libgomp.so"].islnk() and members["b/libgomp.so"].linkname == "a/libgomp.so"
        assert {m.mtime for m in members.values()} == {0}
        tar.extractall(tmp_path / "back", filter="tar")
    assert (tmp_path / "back/b/libgomp.so").read_bytes() == b"gomp" * 1000
    first = out.read_bytes()
    stack.pack(work, out)
    assert out.read_bytes() == first  # the same tree packs to the same bytes


def test_wheel_of_picks_the_pinned_version(tmp_path: Path) -> None:
    wheels = [tmp_path / n for n in ("tritonclient-2.51.0-py3-none-manylinux1_x86_64.whl",
                                     "tritonclient-2.73.0-py3-none-any.whl", "rapids_logger-0.3.0-py3-none-any.whl")]
    assert stack.wheel_of("tritonclient==2.51.0", wheels) == wheels[0]
    assert stack.wheel_of("rapids-logger==0.3.0", wheels) == wheels[2]
    with pytest.raises(SystemExit):
        stack.wheel_of("treelite==4.8.1", wheels)


def test_break_even_is_where_triton_stays_faster() -> None:
    def points(p50: dict[int, tuple[float, float]]) -> list[dict[str, Any]]:
        return [{"model": "m", "rows": rows, "route": route, "p50_us": us}
                for rows, pair in p50.items() for route, us in zip(route_bench.ROUTES, pair, strict=True)]

    assert route_bench.break_even(points({1: (3, 100), 64: (80, 120), 255: (300, 150), 1024: (900, 400)}), "m") == 255
    # a size where in process wins again after one where Triton won moves the break-even up
    assert route_bench.break_even(points({1: (3, 100), 64: (200, 120), 255: (300, 400), 1024: (900, 400)}), "m") == 1024
    assert route_bench.break_even(points({1: (3, 100), 4096: (900, 1000)}), "m") is None


@pytest.mark.parametrize("size", [1, 5])
def test_route_inputs_start_at_different_rows(size: int) -> None:
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    calls = route_bench.inputs(x, size, count=4)
    assert [c.shape for c in calls] == [(size, 2)] * 4
    assert len({c[0, 0] for c in calls}) == 4


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The router under the production name, Treelite's reference predictor behind it from
    64 rows; the fixture's name marks its tests gpu, triton."""
    with gpu_repository_server(tmp_path_factory.mktemp("triton-route"), [bench_common.ROUTED, "treelite"],
                               max_batch=4096, large_engine="treelite", small_request_rows=64) as url:
        yield url


def test_route_bench_against_the_router(gpu_server: str, tmp_path: Path) -> None:
    """Both routes of the scorer's FailoverBackend score the same rows alike; each call's scores
    come from the backend its route names (in process: the compiled trees)."""
    feats = tmp_path / "feats.npz"
    bench_common.capture_features(feats)
    args = argparse.Namespace(url=gpu_server, features=feats, repository=route_bench.ROOT / "model_repository",
                              compiled_cache=tmp_path / "cache", models="netflow_classifier", sizes="1,100",
                              rounds=2, duration=0.0, min_calls=3, warmup=1, argv=[])
    report = asyncio.run(route_bench.bench(args))
    assert report["engines"]["netflow_classifier"]["in_process_engine"] == "compiled"
    assert {(p["rows"], p["route"]) for p in report["points"]} == {(1, "in_process"), (1, "triton"),
                                                                    (100, "in_process"), (100, "triton")}
    for point in report["points"]:
        assert point["scored_by"] == (["onnxruntime"] if point["route"] == "in_process" else ["triton"])
        assert point["requests"] == 6 and point["max_abs_diff_between_routes"] < 1e-5
    json.dumps(report)  # the report is what --out writes
