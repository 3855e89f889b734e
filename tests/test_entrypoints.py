"""devserver.entrypoints finds what importlib.metadata finds, for a millisecond instead of tens."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from devserver import entrypoints


@pytest.mark.parametrize("group", ["devserver.dashboard", "console_scripts", "pytest11"])
def test_same_values_as_importlib_metadata(group: str) -> None:
    assert sorted(entrypoints.values(group)) == sorted(entry.value for entry in entry_points(group=group))


def test_first_distribution_of_a_name_on_the_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, value in ((first, "one:run"), (second, "two:run")):
        meta = folder / "Some_Plugin-1.0.dist-info"
        meta.mkdir(parents=True)
        (meta / "entry_points.txt").write_text(f"[other]\nx = no:no\n\n[demo.group]\nplugin = {value}\n")
    (second / "another-2.0.dist-info").mkdir()
    (second / "another-2.0.dist-info" / "entry_points.txt").write_text("[demo.group]\n# a comment\nmore = three:run [extra]\n")
    monkeypatch.setattr(sys, "path", [str(first), str(second)])
    assert entrypoints.values("demo.group") == ["one:run", "three:run [extra]"]
    assert entrypoints.values("missing.group") == []


def test_load_follows_module_and_attributes() -> None:
    assert entrypoints.load("devserver.entrypoints:values") is entrypoints.values
    assert entrypoints.load("os.path:join [extra]") is __import__("os").path.join
    with pytest.raises(ImportError):
        entrypoints.load("devserver.entrypoints:nothing_here")
    with pytest.raises(ImportError):
        entrypoints.load("no_such_module_anywhere:run")
