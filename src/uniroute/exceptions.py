"""Every error uniroute raises on purpose.

    UnirouteError
    ├── InputError (also ValueError)      bad argument, prompt, file line or option
    ├── NotFittedError (also ValueError)  a cluster map or router used before ``fit``
    ├── UnknownModelError (also KeyError) a model name the router has no profile for
    └── StateError                        a router state on disk that cannot be used
        └── EmbedderMismatchError         a state made with another embedder

Messages name the bad value and say what to do instead.
"""

from __future__ import annotations


class UnirouteError(Exception):
    """Root of every error uniroute raises on purpose."""


class InputError(UnirouteError, ValueError):
    """An argument, prompt, file or option that uniroute cannot use."""


class NotFittedError(UnirouteError, ValueError):
    """A fitted component was used before ``fit``."""


class UnknownModelError(UnirouteError, KeyError):
    """A model name with no profile in the router."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StateError(UnirouteError):
    """A saved router state that is missing, corrupt or from another version."""


class EmbedderMismatchError(StateError):
    """A router state was made with a different embedder than the one given."""
