"""The error tree: every error class the package defines is in uniroute.exceptions, under the root,
exported from ``uniroute``, and drawn in the module docstring as it is."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import re
import warnings

import pytest

import uniroute
from uniroute import exceptions


def _all_modules() -> list[str]:
    names = ["uniroute"]
    for info in pkgutil.walk_packages(uniroute.__path__, "uniroute."):
        names.append(info.name)
    return sorted(names)


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in _all_modules():
            module = importlib.import_module(name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__.startswith("uniroute"):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_the_walk_sees_the_whole_package():
    modules = _all_modules()
    assert {"uniroute.cli", "uniroute.engine.router", "uniroute.onboarding.graders"} <= set(modules)
    assert any(m.startswith("uniroute.integrations.litellm") for m in modules)
    assert "uniroute.exceptions.StateError" in _error_classes()


def test_every_error_class_is_in_exceptions_under_the_root_and_exported():
    """Public errors live in exceptions.py and are exported; a private one (``_Name``, an internal
    signal that is caught inside the package) may live where it is used, but still derives from the
    root so that a leak is caught by ``except UniRouteError``."""
    wrong = []
    for qualified, cls in _error_classes().items():
        if not issubclass(cls, uniroute.UniRouteError):
            wrong.append(f"{qualified} does not derive from UniRouteError")
        if cls.__name__.startswith("_"):
            continue
        if cls.__module__ != "uniroute.exceptions":
            wrong.append(f"{qualified}: define it in uniroute/exceptions.py (or make it private)")
        if cls.__name__ not in uniroute.__all__ or getattr(uniroute, cls.__name__, None) is not cls:
            wrong.append(f"{qualified} is not exported from uniroute")
    assert wrong == []


def _drawn_tree() -> dict[str, str | None]:
    """Class -> parent, as drawn in the exceptions docstring."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in exceptions.__doc__.splitlines():
        match = re.match(r"^ {4}((?:[│ ]   )*)(?:[├└]── )?([A-Z]\w+Error)\b", line)
        if not match:
            continue
        depth = len(match.group(1)) // 4 + (1 if "──" in line else 0)
        stack = [(d, n) for d, n in stack if d < depth]
        parents[match.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, match.group(2)))
    return parents


def test_the_docstring_tree_is_the_class_tree():
    drawn = _drawn_tree()
    defined = {
        cls.__name__: cls
        for cls in vars(exceptions).values()
        if inspect.isclass(cls) and issubclass(cls, exceptions.UniRouteError)
    }
    assert set(drawn) == set(defined)
    for name, parent in drawn.items():
        cls = defined[name]
        uniroute_bases = [b.__name__ for b in cls.__bases__ if issubclass(b, exceptions.UniRouteError)]
        assert uniroute_bases == ([parent] if parent else []), f"{name} is drawn under {parent}"
    for line in exceptions.__doc__.splitlines():
        also = re.search(r"(\w+Error) \(also (\w+)\)", line)
        if also:
            assert issubclass(defined[also.group(1)], getattr(builtins, also.group(2)))


def test_the_old_root_spelling_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="UniRouteError"):
        assert exceptions.UnirouteError is exceptions.UniRouteError
    with pytest.raises(AttributeError):
        _ = exceptions.NoSuchError
