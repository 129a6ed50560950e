"""Finding the fixture trees the demo simulates."""

from __future__ import annotations

import os

import pytest

from agent.demo import trees


def test_checkout_fixtures_found() -> None:
    base = trees.checkout_fixtures()
    assert base is not None and base.endswith(os.path.join("tests", "fixtures", "sysfs"))


def test_default_trees_in_order() -> None:
    found, notes = trees.find_trees(None)
    assert [t.name for t in found] == ["hgx-h100", "mi300x", "storage-sas", "vm"]
    assert notes == []


def test_named_tree_missing_is_a_note(tmp_path) -> None:
    (tmp_path / "one" / "sys").mkdir(parents=True)
    (tmp_path / "not-a-tree").mkdir()
    found, notes = trees.find_trees(str(tmp_path), ["one", "two"])
    assert [t.name for t in found] == ["one"]
    assert notes == [f"fixture tree 'two' not found under {tmp_path} (found: one)"]


def test_directory_without_default_trees_uses_all(tmp_path) -> None:
    for name in ("b", "a"):
        (tmp_path / name / "proc").mkdir(parents=True)
    found, _ = trees.find_trees(str(tmp_path))
    assert [t.name for t in found] == ["a", "b"]


def test_empty_directory_is_a_note(tmp_path) -> None:
    found, notes = trees.find_trees(str(tmp_path))
    assert found == [] and "holds no sysfs trees" in notes[0]


def test_not_a_directory(tmp_path) -> None:
    with pytest.raises(NotADirectoryError, match="--fixtures .*missing: not a directory"):
        trees.find_trees(str(tmp_path / "missing"))


def test_fixtures_found_in_the_working_directory(tmp_path, monkeypatch) -> None:
    """Installed without its tests (pip install .), the demo finds the trees of the checkout it runs in."""
    monkeypatch.setattr(trees, "__file__", str(tmp_path / "site-packages" / "agent" / "demo" / "trees.py"))
    monkeypatch.chdir(tmp_path)
    assert trees.checkout_fixtures() is None
    (tmp_path / "tests" / "fixtures" / "sysfs").mkdir(parents=True)
    assert trees.checkout_fixtures() == str(tmp_path / "tests" / "fixtures" / "sysfs")
