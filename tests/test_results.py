import json

import pytest

from harness.results import (
    SCHEMA_VERSION,
    ResultsError,
    load_results,
    new_results,
    write_results,
)

ENV = {"python": "3.11"}


def test_new_results_hold_every_required_key(tmp_path):
    doc = new_results("smoke", ENV)
    for key in ("schema_version", "environment", "model", "agreement", "latency", "localization", "recommendation"):
        assert key in doc
    path = write_results(tmp_path / "results.json", doc)
    assert load_results(path) == doc


def test_missing_file(tmp_path):
    with pytest.raises(ResultsError, match="no such file"):
        load_results(tmp_path / "nope.json")


def test_truncated_file(tmp_path):
    p = tmp_path / "r.json"
    text = json.dumps(new_results("smoke", ENV))
    p.write_text(text[: len(text) // 2])
    with pytest.raises(ResultsError, match="truncated or corrupt"):
        load_results(p)


def test_unknown_schema_version(tmp_path):
    doc = new_results("smoke", ENV)
    doc["schema_version"] = SCHEMA_VERSION + 1
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match="schema_version"):
        load_results(p)


def test_missing_section_is_named(tmp_path):
    doc = new_results("smoke", ENV)
    del doc["latency"]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=r"missing top-level keys \['latency'\]"):
        load_results(p)


def test_write_refuses_an_invalid_document_and_leaves_nothing(tmp_path):
    with pytest.raises(ResultsError):
        write_results(tmp_path / "r.json", {"schema_version": SCHEMA_VERSION})
    assert list(tmp_path.iterdir()) == []
