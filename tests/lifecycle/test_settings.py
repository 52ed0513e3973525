"""Lifecycle settings are part of the service settings: YAML file and env, env wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.config import load_settings


def test_lifecycle_section_from_yaml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "scorer.yaml"
    config.write_text(
        "lifecycle:\n"
        "  control_topic: team.control\n"
        "  shadow_topic: team.shadow\n"
        "  sync_command: [sh, -c, 'true']\n"
        "  sync_timeout_s: 5\n"
    )
    # Through the env, not load_settings(path), which sets SCORER_CONFIG for good.
    monkeypatch.setenv("SCORER_CONFIG", str(config))
    monkeypatch.setenv("SCORER_LIFECYCLE__SHADOW_TOPIC", "env.shadow")
    monkeypatch.setenv("SCORER_LIFECYCLE__RECONCILE_S", "2.5")
    lc = load_settings().lifecycle
    assert lc.control_topic == "team.control"  # from the file
    assert lc.shadow_topic == "env.shadow"  # env wins over the file
    assert lc.sync_command == ["sh", "-c", "true"] and lc.sync_timeout_s == 5.0
    assert lc.reconcile_s == 2.5 and lc.status_topic == "scorer.status"  # env only, default


def test_lifecycle_env_json_list_and_unknown_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "empty.yaml"))
    (tmp_path / "empty.yaml").write_text("{}\n")
    monkeypatch.setenv("SCORER_LIFECYCLE__SYNC_COMMAND", '["python", "sync.py"]')
    monkeypatch.setenv("SCORER_LIFECYCLE__ENABLED", "false")
    lc = load_settings().lifecycle
    assert lc.sync_command == ["python", "sync.py"] and not lc.enabled
    config = tmp_path / "typo.yaml"
    config.write_text("lifecycle:\n  contrl_topic: x\n")
    monkeypatch.setenv("SCORER_CONFIG", str(config))
    with pytest.raises(ValueError, match="contrl_topic"):
        load_settings()
