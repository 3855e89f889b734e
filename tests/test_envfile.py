"""The .env files: python-dotenv's syntax, an exported variable wins, a later file wins, an edit applied again."""

from __future__ import annotations

from pathlib import Path

from devserver.settings import envfile


def test_an_exported_variable_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=from-file\nB=from-file\n")
    environ = {"A": "exported"}
    variables = envfile.apply([str(tmp_path / ".env")], environ)
    assert environ["A"] == "exported" and environ["B"] == "from-file"
    assert {(v.name, v.overridden) for v in variables} == {("A", True), ("B", False)}


def test_the_field_s_syntax_quotes_export_multiline_interpolation(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('export A="two words"\nC="line1\nline2"\nD=${A}-d\n# comment\n')
    environ: dict[str, str] = {}
    envfile.apply([str(tmp_path / ".env")], environ)
    assert environ["A"] == "two words" and environ["C"] == "line1\nline2" and environ["D"] == "two words-d"


def test_a_later_file_wins_over_an_earlier_one(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=base\nB=base\n")
    (tmp_path / "local.env").write_text("A=local\n")
    environ: dict[str, str] = {}
    envfile.apply([str(tmp_path / ".env"), str(tmp_path / "local.env")], environ)
    assert environ["A"] == "local" and environ["B"] == "base"


def test_applying_again_takes_back_its_own_values_only(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\nGONE=1\nKEPT=file\n")
    environ = {"KEPT": "exported"}
    envfile.apply([str(env)], environ)
    env.write_text("A=2\nKEPT=file2\n")
    envfile.apply([str(env)], environ)
    assert environ["A"] == "2" and "GONE" not in environ and environ["KEPT"] == "exported"
    env.unlink()
    envfile.apply([str(env)], environ)
    assert environ == {"KEPT": "exported"}
