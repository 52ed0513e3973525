"""What the device machine needs to run the pipeline (broker, scorer, benches), as one archive.

    python -m deploy.pipeline_host.carry build --out var/pipeline_host/carry.tar.xz \\
        [--python ~/.pyenv/versions/3.12.1/bin/python3.12]   # a Python 3.12 with headers
    python -m deploy.pipeline_host.carry budget --carry var/pipeline_host/carry.tar.xz

The device machine has no network, a Python 3.12 (numpy, onnxruntime, psutil, prometheus-client,
pyyaml, grpcio, httpx, rich ...) and no Java. The archive holds:

- ``jre/``: a jlink'd runtime of this machine's JDK 17 with the modules the broker uses
  (:data:`carry_files.JRE_MODULES`);
- ``kafka/lib/``: kafka.sh's resolved Kafka jars (``KAFKA_CACHE=<unpacked>/kafka``) but
  :data:`DROP_JARS`, other platforms' natives dropped from zstd-jni, snappy-java and lz4-java,
  every jar stored uncompressed so that xz packs the classes together;
- ``site/``: the cp312 wheels the scorer, ``scorer bench`` and its Quix baseline import that
  the image lacks (:data:`WHEELS`), unpacked and pruned as deploy/gpu/stack.py does;
- ``native/``: the scorer's C extensions built for Python 3.12 (copied into scorer/native there);
- ``data/``: the realistic stream's background files (``SCORER_DATA_DIR``): the shared data
  folder beside the checkout does not travel.

deploy/pipeline_host/study.sh unpacks it and runs the study in one device call.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import msgspec

from deploy.gpu import stack, stack_files
from deploy.gpu.stack import build_native
from deploy.pipeline_host import carry_files
from scorer.bench.realistic import BACKGROUND, background, realistic_templates
from scorer.config import data_dir
from scorer.events.structs import Event, EventKind

ROOT = Path(__file__).resolve().parents[2]
# Pinned to this checkout's .venv, for cp312. The image has numpy, onnxruntime, psutil, pyyaml,
# prometheus-client, grpcio, protobuf, httpx, rich, requests, attrs, packaging, typing-extensions,
# ml-dtypes, urllib3, certifi, scipy, jinja2, pyparsing. Checked by importing every module the
# study runs from a Python 3.12 holding only those, with this list's site/ first on the path.
WHEELS = (
    "aiokafka==0.14.0", "async-timeout==5.0.1", "msgspec==0.23.0",
    "pydantic==2.13.5", "pydantic-core==2.46.5", "pydantic-settings==2.15.0", "python-dotenv==1.2.4",
    "annotated-types==0.8.0", "typing-inspection==0.4.5",
    # the rule engine (scorer/rules), the model signatures (scorer/supply), the compiled trees
    "pyahocorasick==2.3.1", "google-re2==1.1.20251105", "hyperscan==0.9.1", "cryptography==50.0.2", "cffi==2.1.1",
    "pysigma==1.5.1", "pysigma-pipeline-sysmon==2.0.0", "pysigma-pipeline-windows==2.0.1",
    "treelite==4.8.1", "tl2cgen==1.0.0", "tritonclient==2.73.0", "python-rapidjson==1.25",
    # scorer bench's quix-app baseline (quixstreams imports confluent-kafka's schema registry client)
    "orjson==3.13.0", "jsonlines==4.0.0",
    "jsonpath-ng==1.17.0", "jsonschema==4.26.0", "referencing==0.37.0", "jsonschema-specifications==2025.9.1",
    "rpds-py==2026.9.1", "cachetools==8.0.2", "authlib==1.9.10", "joserfc==1.8.0", "fastavro==1.13.1",
)
# The quix-app baseline's largest packages (~10 MiB of the archive): `build --without-quix` leaves
# them out when the working tree leaves too little of a call's 64 MiB (the processes and latency
# parts run without them; the drain part's quix-app runner does not).
QUIX = ("quixstreams==3.28.1", "confluent-kafka==2.12.2", "rocksdict==0.3.29")
# Jars the broker runs without: the broker started and served scorer bench's passthrough,
# scorer-compiled and quix-app drains and a two-worker group (topic creation, produce, fetch,
# group joins, offset commits) from a lib without them (2026-12-05). scala-reflect is scala-
# logging's compile-time macro support, jose4j is OAuth (no such listener here), the YAML pair is
# a log4j configuration format kafka.sh does not write. Without commons-validator the storage
# format fails, without HdrHistogram the broker: those stay.
DROP_JARS = ("scala-reflect-2.13.18.jar", "jose4j-0.9.6.jar", "snakeyaml-2.5.jar", "jackson-dataformat-yaml-2.21.7.jar")
KAFKA_LIB = Path.home() / ".cache" / "scorer" / "kafka" / "4.4.0" / "lib"


def download(wheels: Path, requirements: tuple[str, ...]) -> list[Path]:
    """The pinned cp312 wheels of ``requirements`` in ``wheels`` (pip skips those already there)."""
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           stack.PYTHON, "--implementation", "cp", "-d", str(wheels)]
    for platform in stack.PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run([*cmd, *requirements], check=True)
    return sorted(wheels.glob("*.whl"))


def assemble(work: Path, wheels: list[Path], python: str, kafka: Path, data: Path,
             jre_compress: int, requirements: tuple[str, ...] = (*WHEELS, *QUIX)) -> dict[str, object]:
    """``work``/jre, kafka/lib, site, native, data; returns what went in (also ``work``/carry.json)."""
    java = carry_files.jlink(carry_files.JRE_MODULES, work / "jre", jre_compress)
    jars = carry_files.kafka_lib(kafka, work / "kafka" / "lib", DROP_JARS)
    site = work / "site"
    for requirement in requirements:
        stack_files.unpack_wheel(stack.wheel_of(requirement, wheels), site)
    stack_files.prune(site, stack.PYTHON)
    # libjvm.so comes with its symbol table (4 of its 24 MB)
    stripped = stack_files.strip_symbols([*stack_files.elf_files(site), *stack_files.elf_files(work / "jre")])
    native = build_native(python, work / "native")
    lines = carry_data(data, work / "data")
    linked = stack_files.link_duplicates(work)
    parts = {name: round(stack_files.tree_bytes(work / name) / 2**20, 2) for name in ("jre", "kafka", "site", "native",
                                                                                    "data")}
    manifest: dict[str, object] = {
        "java": subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr.splitlines()[0],
        "jre_modules": list(carry_files.JRE_MODULES), "jre_compress": jre_compress,
        "jars": {name: {"kept": k, "dropped_natives": d} for name, (k, d) in jars.items()},
        "jars_dropped": list(DROP_JARS), "wheels": list(requirements), "elf_stripped": len(stripped),
        "duplicates_linked": linked,
        "native": [p.name for p in native], "data_lines": lines, "mib_unpacked": parts,
    }
    (work / "carry.json").write_text(json.dumps(manifest, indent=1))
    print(f"unpacked MiB: {parts}")
    return manifest


def head(out: Path, python: str) -> None:
    """``out``: HEAD's scorer/ (``git archive``) and ``python``'s C headers (include/). Other
    sessions edit the checkout while a study runs and a device call sends the working tree as it
    is, uncommitted edits included: study.sh puts HEAD's scorer/ in its place there and builds
    its extensions with the host's compiler against these headers, so that the Python and the C
    measured are one commit's."""
    found = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"], check=True,
                           capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(f"git -C {ROOT} archive HEAD scorer | tar -x -C {tmp}", shell=True, check=True)
        (Path(tmp) / "REVISION").write_text(rev + "\n")
        shutil.copytree(found, Path(tmp) / "include")
        subprocess.run(["tar", "-C", tmp, "-cJf", str(out), "scorer", "include", "REVISION"], check=True)
    print(f"{out}: HEAD {rev}, {out.stat().st_size / 2**20:.2f} MiB")


def carry_data(root: Path, out: Path) -> dict[str, int]:
    """The realistic stream's background files under ``out``, each cut to the lines the stream
    reads of it (checked: ``background()`` of ``out`` gives the same events, byte for byte, as
    of ``root``); returns the lines kept per kind."""
    per_kind = inspect.signature(realistic_templates).parameters["per_kind"].default
    kept = {}
    for kind, names in BACKGROUND.items():
        want = _encoded(background(root, kind, per_kind))

        def same(folder: Path, kind: EventKind = kind, want: list[bytes] = want) -> bool:
            return _encoded(background(folder, kind, per_kind)) == want

        kept[kind.value] = carry_files.trimmed_copy(root, names, out, same)
    return kept


def _encoded(events: list[Event]) -> list[bytes]:
    return [msgspec.json.encode(ev) for ev in events]  # bytes: a NaN field equals itself


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="jlink, repack the jars, download and unpack the wheels, pack; then the budget")
    b.add_argument("--out", type=Path, default=ROOT / "var" / "pipeline_host" / "carry.tar.xz")
    b.add_argument("--wheels", type=Path, default=ROOT / "var" / "pipeline_host" / "wheels", help="wheel cache")
    b.add_argument("--python", default="python3.12", help="a Python 3.12 with headers, for scorer/native")
    b.add_argument("--kafka-lib", type=Path, default=KAFKA_LIB, help="kafka.sh's resolved jars (%(default)s)")
    b.add_argument("--data-dir", type=Path, default=data_dir(), help="the shared data folder (%(default)s)")
    b.add_argument("--jre-compress", type=int, default=0, choices=(0, 1, 2), help="jlink --compress (%(default)s)")
    b.add_argument("--without-quix", action="store_true", help="leave out the quix-app baseline's packages")
    g = sub.add_parser("budget", help="what is left of a call's 64 MiB")
    g.add_argument("--carry", type=Path, nargs="*", default=[])
    h = sub.add_parser("head", help="HEAD's scorer/ and the Python's headers (study.sh builds scorer/native there)")
    h.add_argument("--out", type=Path, default=ROOT / "var" / "pipeline_host" / "head.tar.xz")
    h.add_argument("--python", default="python3.12", help="a Python 3.12 with headers")
    args = p.parse_args(argv)
    if args.command == "budget":
        raise SystemExit(0 if stack.budget(args.carry) >= 0 else 1)
    if args.command == "head":
        head(args.out, args.python)
        return
    requirements = WHEELS if args.without_quix else (*WHEELS, *QUIX)
    wheels = download(args.wheels, requirements)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="carry-", dir=args.out.parent) as tmp:
        assemble(Path(tmp), wheels, args.python, args.kafka_lib, args.data_dir, args.jre_compress, requirements)
        stack.pack(Path(tmp), args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(f"{args.out}: {args.out.stat().st_size / 2**20:.2f} MiB, sha256 {digest}")
    raise SystemExit(0 if stack.budget([args.out]) >= 0 else 1)


if __name__ == "__main__":
    main()
