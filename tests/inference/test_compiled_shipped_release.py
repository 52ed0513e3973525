"""The release side of a version's compiled trees (scorer.inference.compiled_shipped):
``scorer models package`` writes ``compiled_trees.so`` and its manifest into a tree
version, listed in SHA256SUMS; ``compiled_shipped add`` (``build.sh models``) adds them to a
signed version only with the release key, which re-signs it. Either way, a host without a
compiler then scores the version with that library, as ONNX Runtime does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest

from scorer.errors import IntegrityError, ModelError
from scorer.inference import compiled_shipped
from scorer.inference.base import ModelRef
from scorer.inference.compiled import CompiledTrees
from scorer.inference.compiled_build import CHECKPOINT, OPTIMIZE, agreement
from scorer.inference.compiled_shipped import LIBRARY, MANIFEST
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import listed_checksums, load_version, write_checksums
from scorer.supply import signing
from tests.inference.test_compiled_shipped import NETFLOW, _take_the_toolchain
from tests.support.paths import MODEL_REPOSITORY


def test_signed_versions_carry_their_library_under_the_signature(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The library rides on the version's signature: added to a signed version only by the
    release key (re-signed); then it loads where that key is trusted. Added without
    re-signing, the whole version is refused."""
    monkeypatch.delenv(signing.SIGNING_KEY_ENV, raising=False)
    monkeypatch.delenv(signing.TRUSTED_KEYS_ENV, raising=False)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    signing.generate(tmp_path / "release.key", trusted / "release.pub")
    repo = tmp_path / "repo"
    shutil.copytree(MODEL_REPOSITORY / NETFLOW, repo / NETFLOW)
    version = repo / NETFLOW / "1"
    signing.sign(version, signing.load_private_key(tmp_path / "release.key"))
    with pytest.raises(ModelError, match="signed"):
        compiled_shipped.add(version, OPTIMIZE)
    monkeypatch.setenv(signing.SIGNING_KEY_ENV, str(tmp_path / "release.key"))
    assert compiled_shipped.add(version, OPTIMIZE)
    monkeypatch.delenv(signing.SIGNING_KEY_ENV)
    monkeypatch.setenv(signing.TRUSTED_KEYS_ENV, str(trusted))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    trees = OnnxRuntimeBackend(repo, engine="compiled", compiled_cache=tmp_path / "cache").load(
        ModelRef(NETFLOW)).trees
    assert isinstance(trees, CompiledTrees) and trees.source == "version"
    (version / LIBRARY).write_bytes((version / LIBRARY).read_bytes() + b"\0")
    write_checksums(version)  # checksums rewritten, the signature not
    with pytest.raises(IntegrityError, match="does not verify"):
        load_version(repo, NETFLOW)


def test_scorer_models_package_writes_the_library_with_the_version(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A booster packaged here (tl2cgen and a compiler at hand) carries its compiled trees,
    listed in SHA256SUMS; a host without either scores the version with them."""
    import joblib
    from lightgbm import LGBMClassifier

    from scorer.lifecycle.package import PackageRequest, package
    from tests.support.lifecycle import KIND, MODEL, make_repo, synthetic_golden

    repo = make_repo(tmp_path, synthetic_golden())
    assert LIBRARY not in listed_checksums(repo.production.path), "no trees, no library"
    model = LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1, random_state=0)
    joblib.dump(model.fit(repo.golden.features, repo.golden.labels), tmp_path / "booster.joblib")
    version = package(repo.path, PackageRequest(KIND, tmp_path / "booster.joblib", MODEL, repo.golden,
                                                repo.production))
    listed = listed_checksums(version.path)
    assert {LIBRARY, MANIFEST, CHECKPOINT} <= set(listed)
    manifest = msgspec.json.decode((version.path / MANIFEST).read_bytes(), type=compiled_shipped.Manifest)
    assert manifest.checkpoint_sha256 == listed[CHECKPOINT] and manifest.library_sha256 == listed[LIBRARY]
    assert manifest.flags[0] == OPTIMIZE and compiled_shipped.platform_problem(manifest) is None
    _take_the_toolchain(monkeypatch, tmp_path)
    backend = OnnxRuntimeBackend(repo.path, engine="compiled", compiled_cache=tmp_path / "cache")
    ref = ModelRef(MODEL, version.version)
    trees = backend.load(ref).trees
    assert isinstance(trees, CompiledTrees) and trees.source == "version"
    x = np.ascontiguousarray(repo.golden.features, np.float32)
    reference = OnnxRuntimeBackend(repo.path).load(ref)
    assert agreement(trees.score(x), OnnxRuntimeBackend._run(reference, x), version.card.threshold).ok()
