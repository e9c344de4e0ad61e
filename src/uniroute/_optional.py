"""Optional dependencies: import one, or say which extra installs it.

The core install (``pip install uniroute``) is the engine and the CLI. Each front
door's SDK comes with an extra (``[litellm]``, ``[langchain]``, ``[proxy]``,
``[eval]``, ``[local]``, ``[redis]``); a module that needs one calls :func:`require` at its top,
so a missing extra is a :class:`~uniroute.exceptions.MissingExtraError` (an ``ImportError``)
that names the install command instead of a bare ``ModuleNotFoundError`` from deep inside;
the CLI prints it as one line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import MissingExtraError

EXTRAS = ("litellm", "langchain", "proxy", "eval", "local", "redis")


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` and return it, or raise MissingExtraError naming ``uniroute[extra]``.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"litellm"`` or ``"langchain_core.language_models"``.
    extra : str
        The uniroute extra that installs it; one of :data:`EXTRAS`.

    Examples
    --------
    >>> require("json", "litellm").__name__
    'json'
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; uniroute's extras are {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        # Only a missing optional package is translated; a module that is installed but
        # fails inside (its own broken import) keeps its own traceback.
        if not (module == missing or module.startswith(missing + ".")):
            raise
        raise MissingExtraError(
            f"{module} is not installed; this part of uniroute needs it: pip install 'uniroute[{extra}]'",
            name=module,
        ) from exc
