"""Which build runs: ``devserver --version`` says pure Python or the request path compiled by mypyc (issue 25)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devserver import __version__

ROOT = Path(__file__).resolve().parent.parent


def test_the_checkout_runs_pure_python_and_says_so(tmp_path: Path) -> None:
    # pip install . compiles nothing (docs/bench/compiled.md): the tree's modules are what runs.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "devserver", "--version"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"devserver {__version__} (pure Python)"
    assert not list((ROOT / "devserver").glob("**/*.so")), "a compiled module in the tree would shadow its source"
