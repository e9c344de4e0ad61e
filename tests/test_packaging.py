"""The wheel built from pyproject.toml holds the files that are not Python modules: the judge
prompts (listed as package data) and ``py.typed`` (PEP 561: type checkers use uniroute's own
hints; setuptools >= 69 ships it unlisted)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_type_marker_and_the_judge_prompts(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    build = f"from setuptools import build_meta; print(build_meta.build_wheel({str(tmp_path)!r}))"
    done = subprocess.run(
        [sys.executable, "-c", build], cwd=source, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with zipfile.ZipFile(tmp_path / done.stdout.strip().splitlines()[-1]) as wheel:
        names = set(wheel.namelist())
    prompts = {
        p.relative_to(ROOT / "src").as_posix()
        for p in (ROOT / "src/uniroute/build/judge_prompts").glob("*.txt")
    }
    assert "uniroute/py.typed" in names
    assert prompts and prompts <= names
