"""docs/architecture.md names only things that exist: every `uniroute.…` in backticks imports, every
`tests/…` path (and ::test) is there."""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
CODE = re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8"))
NAMES = sorted({c for c in CODE if re.fullmatch(r"uniroute(\.\w+)+", c)})
TESTS = sorted({c for c in CODE if c.startswith("tests/")})


def resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted`` and get the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_doc_cites_names_and_tests():
    assert len(NAMES) > 30 and len(TESTS) >= 4


@pytest.mark.parametrize("dotted", NAMES)
def test_every_cited_name_exists(dotted):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # a cited name must not be a deprecated alias
        assert resolve(dotted) is not None


@pytest.mark.parametrize("cited", TESTS)
def test_every_cited_test_exists(cited):
    path, _, name = cited.partition("::")
    assert (ROOT / path).is_file()
    if name:
        assert f"def {name}(" in (ROOT / path).read_text(encoding="utf-8")
