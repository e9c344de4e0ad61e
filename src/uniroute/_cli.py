"""Helpers for ``uniroute`` subcommands: registry-backed choices, loaded on first use.

Subcommand modules (``uniroute/cli.py``, ``onboarding/cli.py``, ``evaluation/cli.py``)
build their parsers on every ``uniroute`` call, ``uniroute --help`` included. A
registry module may import numpy, so a choice list is a :class:`RegistryChoices`:
argparse reads it only when that subcommand parses a value or prints its own help.
Add such options with :func:`add_registry_option` (it gives a metavar, which keeps
argparse from listing the choices while the parser is built). This module imports
nothing but the standard library.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any


def add_registry_option(
    parser: argparse.ArgumentParser, *flags: str, registry: str, help: str = "", **kwargs: Any
) -> argparse.Action:
    """``parser.add_argument(*flags, choices=<keys of registry>)``, the registry imported on first use.

    ``registry`` is ``"package.module:ATTRIBUTE"``, e.g. ``"uniroute.engine.embedders:EMBEDDERS"``.
    The help lists the choices (``%(choices)s``), read only when that help is printed.
    """
    module, _, attribute = registry.partition(":")
    kwargs.setdefault("metavar", "NAME")
    text = f"{help}; " if help else ""
    default = " (default: %(default)s)" if kwargs.get("default") is not None else ""
    return parser.add_argument(
        *flags,
        choices=RegistryChoices(module, attribute),
        help=f"{text}one of %(choices)s{default}",
        **kwargs,
    )


def whole_number(minimum: int) -> Callable[[str], int]:
    """The argparse type of a count option (``--clusters``, ``--bootstrap``): a whole number >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse


positive_int = whole_number(1)


def output_directory(text: str) -> Path:
    """An ``--out DIR`` value, refused at once if it names an existing file (before any work is done)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a file; give a directory to write into (created if missing)"
        )
    return path


class RegistryChoices:
    """The keys of ``module.attribute`` (a registry dict), as argparse ``choices``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_registry_option(parser, "--kind", registry="uniroute.engine.embedders:EMBEDDERS")
    >>> parser.parse_args(["--kind", "hashing"]).kind
    'hashing'
    """

    def __init__(self, module: str, attribute: str):
        self.module = module
        self.attribute = attribute

    def _registry(self) -> Mapping[str, Any]:
        registry: Mapping[str, Any] = getattr(importlib.import_module(self.module), self.attribute)
        return registry

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._registry()))

    def __contains__(self, name: object) -> bool:
        return name in self._registry()

    def __len__(self) -> int:
        return len(self._registry())

    def __repr__(self) -> str:
        return f"RegistryChoices({self.module}.{self.attribute})"
