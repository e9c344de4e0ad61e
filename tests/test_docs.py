"""docs/architecture.md names only things that exist: every `uniroute.…` in backticks imports, every
`tests/…` path (and ::test) is there; and the Examples blocks in the docstrings still run."""

from __future__ import annotations

import doctest
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


SRC = ROOT / "src"
WITH_EXAMPLES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for path in (SRC / "uniroute").rglob("*.py")
    if ">>> " in path.read_text(encoding="utf-8")
)


def test_modules_with_examples_are_found():
    assert "uniroute.engine.router" in WITH_EXAMPLES and "uniroute.datasets" in WITH_EXAMPLES


@pytest.mark.parametrize("module", WITH_EXAMPLES)
def test_docstring_examples_run(module):
    """The Examples blocks users read still run (those marked ``+SKIP`` need a network or a server)."""
    if module.startswith("uniroute.integrations.litellm"):
        pytest.importorskip("litellm")
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} example(s) in {module} failed (see the output above)"
