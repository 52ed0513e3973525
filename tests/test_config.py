"""`scorer run` configuration: YAML file, env over file, secrets that never print."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from scorer.config import load_settings
from scorer.errors import ConfigError
from scorer.kafka import security_options


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("SCORER_"):
            monkeypatch.delenv(name)
    path = tmp_path / "scorer.yaml"
    monkeypatch.setenv("SCORER_CONFIG", str(path))
    return path


def test_yaml_file_then_env_wins(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text(
        "kinds: [netflow, siem]\n"
        "kafka:\n  bootstrap_servers: file:9092\n  group_id: soc-scorers\n"
        "batch:\n  max_records: 256\n"
    )
    monkeypatch.setenv("SCORER_KAFKA__BOOTSTRAP_SERVERS", "env:9093")
    s = load_settings()
    assert [k.value for k in s.kinds] == ["netflow", "siem"]
    assert s.kafka.bootstrap_servers == "env:9093"  # env over file
    assert s.kafka.group_id == "soc-scorers" and s.batch.max_records == 256  # file over default


def test_secrets_from_env_or_file_never_print(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text("s3cr3t-from-file\n")
    config.write_text(
        "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: SCRAM-SHA-512\n"
        f"  sasl_username: scorer\n  sasl_password_file: {secret_file}\n"
    )
    s = load_settings()
    assert s.kafka.password() == "s3cr3t-from-file"
    assert security_options(s.kafka)["sasl_plain_password"] == "s3cr3t-from-file"
    monkeypatch.setenv("SCORER_KAFKA__SASL_PASSWORD", "s3cr3t-from-env")
    s = load_settings()
    assert s.kafka.password() == "s3cr3t-from-env"  # the inline secret wins over the file
    for text in (repr(s), str(s), s.model_dump_json()):
        assert "s3cr3t" not in text


def test_unknown_keys_and_bad_files_are_clear_errors(config: Path) -> None:
    config.write_text("kafka:\n  bootstrap_server: typo:9092\n")
    with pytest.raises(ValidationError, match="bootstrap_server"):
        load_settings()
    config.write_text("kafka: [unclosed\n")
    with pytest.raises(ConfigError, match=str(config)):
        load_settings()
    config.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings()
