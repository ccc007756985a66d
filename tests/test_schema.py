"""The spec format's JSON Schema: generated from the validator's tables, kept in
docs/, met by every shipped spec and by random valid specs, failed by typical
mistakes; and ``rnngraph schema`` / ``rnngraph --version``."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest
import yaml
from hypothesis import given, settings

import rnngraph as rg
import rnngraph.spec.model
from rnngraph.cli import main
from rnngraph.spec.schema import schema_text, spec_schema

jsonschema = pytest.importorskip("jsonschema", reason="the schema extra: pip install -e '.[schema]'")

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from test_executor import random_specs  # noqa: E402

ROOT = pathlib.Path(__file__).parent.parent
SPECS = sorted(ROOT.glob("specs/*.yaml"))
MODELINE = "# yaml-language-server: $schema=../docs/rnngraph.schema.json"


@pytest.fixture(scope="module")
def validator():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def messages(validator, data) -> list:
    return [e.message for e in validator.iter_errors(data)]


def test_docs_copy_is_current():
    """docs/rnngraph.schema.json is what `rnngraph schema` prints (regenerate: rnngraph schema > docs/...)."""
    assert (ROOT / "docs" / "rnngraph.schema.json").read_text() == schema_text()


def test_schema_command_prints_it(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == spec_schema()


def test_version_flag_prints_the_package_version(capsys):
    from importlib.metadata import version
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnngraph {version('rnngraph')}"


@pytest.mark.parametrize("path", SPECS + sorted(ROOT.glob("benchmarks/specs/*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_spec_validates(path, validator):
    rg.load_spec(path)                                     # the validator accepts it
    assert messages(validator, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_spec_names_the_schema_on_its_first_line(path):
    assert path.read_text().splitlines()[0] == MODELINE
    assert (path.parent / "../docs/rnngraph.schema.json").resolve().is_file()


@settings(max_examples=60, deadline=None)
@given(random_specs())
def test_random_valid_specs_validate(validator, data):
    rg.parse_spec(yaml.safe_dump(data, sort_keys=False))
    assert messages(validator, data) == []


@pytest.mark.parametrize("train", [{"optimizer": {"betas": [0.9, 0.99]}}, {"optimizer": "sgd"},
                                   {"optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True}},
                                   {"clip": None, "early_stopping": {"metric": "accuracy", "threshold": ">= 0.9"}}])
def test_optional_forms_validate(validator, train):
    data = {**BASE, "train": train}
    rg.parse_spec(yaml.safe_dump(data, sort_keys=False))
    assert messages(validator, data) == []


def test_expanded_specs_validate(validator):
    """`rnngraph expand` output (names with '/') is a valid spec too."""
    for path in SPECS:
        text = rg.load_spec(path).expanded().to_yaml()
        assert messages(validator, yaml.safe_load(text)) == [], path


BASE = {"rnngraph": 1, "nodes": {"x": {"role": "input", "size": 2}, "h": {"size": 3, "activation": "tanh"},
                                 "y": {"role": "output", "size": 1}},
        "edges": [{"from": "x", "to": "h"}, {"from": "h", "to": "h", "delay": 1}, {"from": "h", "to": "y"}],
        "task": {"generator": "adding", "T": 20}, "train": {"optimizer": {"name": "adam", "lr": 0.01}}}


def changed(path: tuple, value):
    data = json.loads(json.dumps(BASE))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def test_base_spec_is_valid(validator):
    rg.parse_spec(yaml.safe_dump(BASE, sort_keys=False))
    assert messages(validator, BASE) == []


@pytest.mark.parametrize("path, value, pattern", [
    (("colour",), "red", "Additional properties"),                         # unknown top-level key
    (("nodes", "h", "sise"), 3, "Additional properties"),                  # unknown node key
    (("nodes", "h", "size"), "three", "is not of type 'integer'"),         # wrong type
    (("nodes", "h", "size"), 0, "less than the minimum"),
    (("nodes", "h", "activation"), "tanhh", "is not one of"),              # bad enum value
    (("nodes", "h", "role"), "outptu", "is not one of"),
    (("nodes", "b"), {"type": "lstm", "size": 2, "variant": "peephole"}, "is not one of"),
    (("nodes", "b"), {"type": "lstmm", "size": 2}, "is not one of"),
    (("nodes", "bad name"), {"size": 2}, "does not match"),
    (("edges", 0, "weight"), "full", "is not one of"),
    (("edges", 0, "delay"), 1.5, "is not of type 'integer'"),
    (("edges", 0, "init"), "uniform(-1)", "not valid under any"),
    (("edges", 0, "to_node"), "h", "Additional properties"),
    (("train", "loss"), "l2", "is not one of"),
    (("train", "optimizer", "momentum"), 0.9, "Additional properties"),    # adam takes no momentum
    (("train", "epoch"), 3, "Additional properties"),
    (("task", "generator"), "addng", "is not one of"),
    (("task", "T"), "long", "is not of type 'integer'"),
    (("task", "lenght"), 3, "Additional properties"),
    (("rnngraph",), 2, "was expected"),
    (("dtype",), "float16", "is not one of"),
    (("expect",), {"accuracy": "about 0.9"}, "does not match"),
])
def test_typical_mistakes_fail_the_schema_and_the_validator(validator, path, value, pattern):
    data = changed(path, value)
    found = messages(validator, data)
    assert any(pattern in m for m in found), found
    with pytest.raises(rg.SpecError):
        rg.parse_spec(yaml.safe_dump(data, sort_keys=False))


def test_a_table_key_without_a_schema_entry_fails_the_build(monkeypatch):
    """The schema follows the validator's tables: a key added there needs its entry here."""
    monkeypatch.setattr(rnngraph.spec.model, "EDGE_KEYS", rnngraph.spec.model.EDGE_KEYS + ("colour",))
    with pytest.raises(KeyError, match="colour"):
        spec_schema()


def test_a_choice_added_to_a_table_appears_in_the_schema(monkeypatch):
    monkeypatch.setattr(rnngraph.spec.model, "WEIGHTS", rnngraph.spec.model.WEIGHTS + ("banded",))
    assert "banded" in spec_schema()["$defs"]["edge"]["properties"]["weight"]["enum"]
