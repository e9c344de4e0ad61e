"""docs/architecture.md names only things that exist: every `uniroute.…` in backticks imports, every
`tests/…` path (and ::test) is there; and the Examples blocks in the docstrings still run."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
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


def _public_callables() -> list[tuple[str, object]]:
    """The front door's public functions, classes and their public methods."""
    found: list[tuple[str, object]] = []
    modules = ["uniroute", "uniroute.onboarding", "uniroute.stores"]
    modules += [m for m in ("uniroute.integrations.litellm",) if importlib.util.find_spec("litellm")]
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if (isinstance(obj, type) and issubclass(obj, BaseException)) or not callable(obj):
                continue
            found.append((f"{module_name}.{name}", obj))
            if isinstance(obj, type):
                for attr, value in vars(obj).items():
                    function = getattr(value, "__func__", value)
                    if not attr.startswith("_") and inspect.isfunction(function):
                        found.append((f"{module_name}.{name}.{attr}", function))
                    elif not attr.startswith("_") and isinstance(value, property):
                        found.append((f"{module_name}.{name}.{attr}", value))
    return found


def _documented_parameters(doc: str) -> list[str] | None:
    """Names listed in a numpydoc ``Parameters`` section (None without one)."""
    lines = inspect.cleandoc(doc).splitlines()
    if "Parameters" not in lines:
        return None
    start = lines.index("Parameters") + 2
    names: list[str] = []
    for line, below in zip(lines[start:], [*lines[start + 1 :], ""]):
        if line and not line[0].isspace():
            entry = re.fullmatch(r"(\*{0,2}\w+(?:, \*{0,2}\w+)*)(?: : .*)?", line)
            if entry is None or below.startswith("---"):  # prose or the next section's header
                break
            names += [name.lstrip("*") for name in entry.group(1).split(", ")]
    return names


@pytest.mark.parametrize(
    ("dotted", "obj"), _public_callables(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_parameters_sections_match_the_signature(dotted, obj):
    """A ``Parameters`` section names every parameter of the signature, and only those."""
    documented = _documented_parameters(obj.__doc__ or "")
    if documented is None or isinstance(obj, property):
        return
    signature = inspect.signature(obj)
    expected = [name for name in signature.parameters if name not in ("self", "cls")]
    assert sorted(documented) == sorted(expected), f"{dotted}: documented {documented}, signature {expected}"


@pytest.mark.parametrize(
    ("dotted", "obj"), _public_callables(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_public_names_have_a_summary(dotted, obj):
    """Every public function, class, method and property says what it is (inherited docstrings count)."""
    owner, attr = dotted.rsplit(".", 1)
    cls = resolve(owner)
    if isinstance(obj, property):
        inherited = (vars(base)[attr].__doc__ for base in cls.__mro__ if attr in vars(base))
        doc = next((d for d in inherited if d), None)
    else:
        doc = inspect.getdoc(getattr(cls, attr) if isinstance(cls, type) else obj)
    assert doc and doc.strip(), f"{dotted} has no docstring"


def test_litellm_record_feedback_states_the_redis_decision_ttl():
    """Another replica knows a decision for the store's ``decision_ttl``, not the router's 1 h."""
    pytest.importorskip("litellm")
    from uniroute.integrations.litellm import record_feedback
    from uniroute.stores.redis import RedisFeedbackStore

    default = inspect.signature(RedisFeedbackStore).parameters["decision_ttl"].default
    doc = " ".join((record_feedback.__doc__ or "").split())
    assert f"``decision_ttl`` ({default:.0f} s by default)" in doc
