"""A rule's YAML is read once, with libyaml, and read as pySigma's own ``from_yaml`` reads it.

pySigma's ``SigmaCollection.from_yaml`` is ``from_dicts(list(yaml.safe_load_all(text)))``; the
compiler parses with PyYAML's ``CSafeLoader`` (same resolver and constructors, libyaml's
parser) and builds each variant with ``from_dicts``. YAML's quirks (dates, ``on``/``yes``
booleans, octal, anchors, several documents) must come out the same, an unreadable rule must
give the same reason, and a compile with the pure-Python loader the same IR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection

import scorer.rules.compile as compile_mod
from scorer.rules import compile_rules
from scorer.rules.compile import load_yaml
from scorer.rules.lower import Unsupported
from tests.rules.helpers import rule, write_rules

REGISTRY = "logsource: {category: registry_set, product: windows}"
QUIRKS = [
    rule("sel:\n  Image|endswith: '\\whoami.exe'\ncondition: sel"),
    "title: dates\ndate: 2024-01-02\nmodified: 2024/01/03\nwhen: 2024-01-02 10:00:00\n",
    "title: booleans\non: yes\noff: no\nflags: [On, OFF, y, n, true, ~]\n",
    "title: numbers\noctal: 0o17\nold_octal: 017\nhex: 0x1F\nsexagesimal: 1:30\nfloat: 1e3\nnan: .nan\n",
    "title: anchors\nbase: &b {Image: x.exe}\nsel: *b\nmerged: {<<: *b, CommandLine: y}\n",
    "title: one\n---\ntitle: two\n---\n",
    "title: text\nfolded: >\n  a\n  b\nliteral: |\n  c\n  d\nquoted: 'it''s'\nesc: \"\\t\\u00e9\"\n",
    "title: unicode \u00e9\u4e2d\n",
    "title: tabs\nkey: 'a\tb'\n",
    "- not\n- a mapping\n",
    "",
]


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type: True and 1, a date and its string, differ."""
    if isinstance(value, dict):
        return [(_typed(k), _typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


@pytest.mark.parametrize("text", QUIRKS)
def test_documents_are_those_pysigma_reads(text: str) -> None:
    assert yaml.__with_libyaml__ and compile_mod._FAST_LOADER.__name__ == "CSafeLoader"
    assert _typed(load_yaml(text)) == _typed(list(yaml.safe_load_all(text)))


@pytest.mark.parametrize("text", ["title: x\nid: [unclosed\n", "title: x\nkey:\t'x'\n", "title: x\n  bad: indent\n",
                                  "a: b\n\tc: d\n", "title: !!python/object:os.system x\n"])
def test_unreadable_rule_gives_pysigmas_reason(text: str) -> None:
    with pytest.raises(Exception) as pysigma:
        SigmaCollection.from_yaml(text)
    with pytest.raises(Unsupported) as ours:
        load_yaml(text)
    assert str(ours.value) == f"unreadable rule: {type(pysigma.value).__name__}: {pysigma.value}"


def test_a_tab_libyaml_would_take_is_refused_as_pysigma_refuses_it() -> None:
    text = "title: x\nkey:\t'x'\n"
    assert list(yaml.load_all(text, Loader=yaml.CSafeLoader)) == [{"title": "x", "key": "x"}]
    with pytest.raises(Unsupported, match=r"(?s)unreadable rule: ScannerError: .*cannot start any token"):
        load_yaml(text)


def _compiled(root: Path) -> str:
    compiled, errors = compile_rules(root)
    return json.dumps([compiled.ir_json(), [repr(r) for r in compiled.rules], [repr(e) for e in errors]])


def test_pure_python_loader_compiles_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = {
        "rules/windows/proc.yml": rule("sel:\n  Image|endswith: '\\whoami.exe'\n  CommandLine|contains|all: [a, b]\n"
                                       "filter:\n  ParentImage: 'C:\\x.exe'\ncondition: sel and not filter"),
        "rules/windows/reg.yml": rule("sel:\n  TargetObject|contains: '\\Run\\'\n  Details: 'on'\ncondition: sel",
                                      logsource=REGISTRY, rule_id="00000000-0000-0000-0000-000000000002"),
        "rules/windows/bad.yml": "title: x\nid: [unclosed\n",
        "rules/windows/two.yml": "---\n".join(rule(f"sel:\n  Image: {x}\ncondition: sel") for x in "xy"),
        "rules/linux/lin.yml": rule("sel:\n  Image: x\ncondition: sel", logsource="logsource: {product: linux}"),
    }
    root = write_rules(tmp_path / "src", rules)
    compiled, errors = compile_rules(root)
    assert [r.file for r in compiled.rules] == ["rules/windows/proc.yml", "rules/windows/reg.yml"]
    assert [len(c) for c in compiled.conditions] == [2, 2]  # Sysmon and Security 4688/4657 each
    assert [e.file for e in errors] == ["rules/linux/lin.yml", "rules/windows/bad.yml", "rules/windows/two.yml"]
    fast = _compiled(root)
    monkeypatch.setattr(compile_mod, "_FAST_LOADER", yaml.SafeLoader)
    assert _compiled(root) == fast
