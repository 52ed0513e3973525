"""Signed model versions and rule packs (scorer/supply/signing.py): what a trusted key lets
load, and what it stops that checksums alone do not.

The attacks: a model changed and its SHA256SUMS computed again (checksums pass; only the
signature catches it), a version re-signed with a key nobody trusts, a signed version
copied under another version number, a file slipped in beside the signed manifest, and no
signature at all. Each is refused by ``load_version`` (what both backends and the Triton
launcher call), by the launcher's mirror, and by rule-pack loading; with no trusted key
configured, unsigned versions load as before (checksums still verified).
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.local import triton as launcher
from scorer.errors import IntegrityError
from scorer.inference.repository import MODEL_FILE, load_version, write_checksums
from scorer.rules.pack import read_pack
from scorer.supply import signing
from scorer.supply.__main__ import main as supply_cli
from tests.support.lifecycle import MODEL, Repo
from tests.support.paths import MODEL_REPOSITORY, RULE_REPOSITORY
from tests.support.rulepacks import PACK, derive, shipped_repository


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A release key (trusted) and a stranger's key (not), with the trust configured."""
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    signing.generate(tmp_path / "release.key", trusted / "release.pub")
    signing.generate(tmp_path / "stranger.key", tmp_path / "stranger.pub")
    monkeypatch.setenv(signing.TRUSTED_KEYS_ENV, str(trusted))
    return tmp_path / "release.key", tmp_path / "stranger.key"


def _copy_model(tmp_path: Path) -> Path:
    """A private copy of one shipped model with its versions (unsigned, as shipped)."""
    repo = tmp_path / "model_repository"
    name = "siem_classifier"
    shutil.copytree(MODEL_REPOSITORY / name, repo / name)
    return repo


def _flip_and_rehash(version: Path) -> None:
    data = bytearray((version / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (version / MODEL_FILE).write_bytes(bytes(data))
    write_checksums(version)  # what an attacker with write access does: checksums pass again


def _resign(key: Path) -> Callable[[Path], object]:
    return lambda version: signing.sign(version, signing.load_private_key(key))


def _tamper_and_resign(version: Path, stranger: Path) -> None:
    _flip_and_rehash(version)
    _resign(stranger)(version)


ATTACKS: dict[str, Callable[[Path, Path], object]] = {
    "re-hashed after tampering": lambda v, _: _flip_and_rehash(v),
    "re-signed with an unknown key": _tamper_and_resign,
    "signature removed": lambda v, _: (v / signing.SIGNATURE).unlink(),
    "file added beside the manifest": lambda v, _: (v / "extra.onnx").write_bytes(b"x"),
}
EXPECTED = {
    "re-hashed after tampering": "does not verify",
    "re-signed with an unknown key": "signed only by untrusted key",
    "signature removed": "refusing an unsigned version",
    "file added beside the manifest": "not covered by the signed",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_tampered_signed_version_is_refused_by_the_loader_and_the_launcher(
    tmp_path: Path, keys: tuple[Path, Path], attack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    release, stranger = keys
    repo = _copy_model(tmp_path)
    version = repo / "siem_classifier" / "1"
    _resign(release)(version)
    assert load_version(repo, "siem_classifier", "1").version == "1"  # signed and trusted: loads
    ATTACKS[attack](version, stranger)
    with pytest.raises(IntegrityError, match=EXPECTED[attack]):
        load_version(repo, "siem_classifier", "1")
    # The Triton launcher mirrors only what verifies: nothing of this model reaches Triton.
    assert launcher.sync_repository(repo, tmp_path / "shim") == []
    assert EXPECTED[attack] in capsys.readouterr().err


def test_a_signed_version_copied_under_another_number_is_refused(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    release, _ = keys
    repo = _copy_model(tmp_path)
    _resign(release)(repo / "siem_classifier" / "1")
    shutil.copytree(repo / "siem_classifier" / "1", repo / "siem_classifier" / "7")
    with pytest.raises(IntegrityError, match="does not verify"):
        load_version(repo, "siem_classifier", "7")


def test_without_trusted_keys_unsigned_versions_load_and_checksums_still_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(signing.TRUSTED_KEYS_ENV, raising=False)
    repo = _copy_model(tmp_path)
    assert load_version(repo, "siem_classifier", "1").version == "1"
    _flip_and_rehash(repo / "siem_classifier" / "1")
    assert load_version(repo, "siem_classifier", "1").version == "1"  # the gap signing closes
    with (repo / "siem_classifier" / "1" / MODEL_FILE).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match="does not match recorded"):
        load_version(repo, "siem_classifier", "1")


def test_a_trust_directory_without_keys_refuses_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(signing.TRUSTED_KEYS_ENV, str(tmp_path / "empty"))
    with pytest.raises(IntegrityError, match=r"no \*\.pub key"):
        load_version(_copy_model(tmp_path), "siem_classifier", "1")


def test_package_signs_with_the_configured_key(
    repo: Repo, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    release, _ = keys
    monkeypatch.setenv(signing.SIGNING_KEY_ENV, str(release))
    version = repo.package()
    assert (version.path / signing.SIGNATURE).is_file()
    assert load_version(repo.path, MODEL, version.version).version == version.version
    monkeypatch.delenv(signing.SIGNING_KEY_ENV)
    unsigned = repo.package()  # no key configured: published unsigned, and refused under trust
    with pytest.raises(IntegrityError, match="unsigned"):
        load_version(repo.path, MODEL, unsigned.version)


def test_key_rotation_old_and_new_signatures_side_by_side(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """Sign with the new key beside the old (--keep-others), trust the new one, retire the old."""
    release, _ = keys
    repo = _copy_model(tmp_path)
    version = repo / "siem_classifier" / "1"
    _resign(release)(version)
    new_key = tmp_path / "release-2027"
    assert supply_cli(["keygen", "--out", str(new_key)]) == 0
    assert stat.S_IMODE(new_key.with_suffix(".key").stat().st_mode) == 0o600
    assert supply_cli(["sign", str(version), "--key", str(new_key.with_suffix(".key")), "--keep-others"]) == 0
    trusted = tmp_path / "trusted"
    assert load_version(repo, "siem_classifier", "1")  # old key still trusted
    shutil.copy(new_key.with_suffix(".pub"), trusted / "release-2027.pub")
    (trusted / "release.pub").unlink()  # the old key retired: the new signature carries it
    assert load_version(repo, "siem_classifier", "1")
    assert supply_cli(["verify", str(version), "--trusted-keys", str(trusted)]) == 0


def test_rule_packs_are_signed_and_checked_the_same_way(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    release, stranger = keys
    pack = tmp_path / "sigma_windows" / "2"
    shutil.copytree(RULE_REPOSITORY / "sigma_windows" / "2", pack)
    with pytest.raises(IntegrityError, match="unsigned"):
        read_pack(pack)
    _resign(release)(pack)
    assert read_pack(pack).manifest["version"]
    _resign(stranger)(pack)
    with pytest.raises(IntegrityError, match="untrusted key"):
        read_pack(pack)


def test_a_rule_pack_written_with_a_configured_key_is_signed(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    release, _ = keys
    repo = shipped_repository(tmp_path)
    _resign(release)(repo / PACK / "1")  # the source the new pack is derived from must load under trust
    monkeypatch.setenv(signing.SIGNING_KEY_ENV, str(release))
    pack = derive(repo, "90")
    assert (pack / signing.SIGNATURE).is_file()
    assert read_pack(pack).manifest["version"] == "90"
