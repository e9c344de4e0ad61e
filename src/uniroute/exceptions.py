"""Every error uniroute raises on purpose, in one tree.

    UniRouteError
    ├── InputError (also ValueError)      bad argument, prompt, file line or option
    │   ├── UnknownDecisionError          feedback for a decision id this process does not know
    │   └── UnrankedAnswerError           feedback for an answer from a deployment uniroute did not rank
    ├── NotFittedError (also ValueError)  a cluster map or router used before ``fit``
    ├── UnknownModelError (also KeyError) a model name the router has no profile for
    ├── StateError                        a router state on disk that cannot be used
    │   └── EmbedderMismatchError         a state made with another embedder
    ├── OnboardingError                   an onboarding run that stopped (the state is unchanged)
    ├── GradingError                      a grader that could not decide (the result is missing)
    ├── FeedbackUnavailableError          the shared feedback store is unreachable or closed: retry later
    └── MissingExtraError (also ImportError) an optional dependency is not installed: names the extra

Messages name the bad value and say what to do instead.

Translations (the only places a uniroute error becomes something else), each
checked by the tests named:

* LiteLLM (``uniroute.integrations.litellm``): an :class:`InputError` or
  :class:`UnknownModelError` raised while ranking a request becomes
  ``litellm.BadRequestError`` (HTTP 400 on the proxy), message prefixed
  ``uniroute:`` (tests/integrations/test_litellm.py, test_litellm_proxy.py).
* LangChain (``uniroute.integrations.langchain``): bad configuration of
  ``UniRouteChatModel`` raises :class:`InputError`; pydantic's ``ValidationError``
  never reaches the caller (tests/integrations/test_langchain.py).
* The CLI prints any :class:`UniRouteError` as one line, ``uniroute: error: ...``,
  and exits with status 2 (tests/test_cli.py), a :class:`MissingExtraError` included;
  any other ``ImportError`` (a bug, a broken install) keeps its traceback.

A missing optional dependency is a :class:`MissingExtraError`, also an ``ImportError``
(what ``import`` raises), that names the extra to install (:func:`uniroute._optional.require`).

``UnirouteError`` is the old spelling of :class:`UniRouteError` and still works,
with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any


class UniRouteError(Exception):
    """Root of every error uniroute raises on purpose."""


class InputError(UniRouteError, ValueError):
    """An argument, prompt, file or option that uniroute cannot use."""


class UnknownDecisionError(InputError):
    """Feedback named a decision this process does not know (never routed here, evicted or expired)."""


class UnrankedAnswerError(InputError):
    """Feedback for an answer from a deployment uniroute did not rank (a fallback to another group)."""


class NotFittedError(UniRouteError, ValueError):
    """A fitted component was used before ``fit``."""


class UnknownModelError(UniRouteError, KeyError):
    """A model name with no profile in the router."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StateError(UniRouteError):
    """A saved router state that is missing, corrupt, unsafe or from another version."""


class EmbedderMismatchError(StateError):
    """A router state was made with a different embedder than the one given."""


class OnboardingError(UniRouteError):
    """An onboarding run that stopped before writing the state (which is unchanged)."""


class GradingError(UniRouteError):
    """A grader could not decide (e.g. the judge model failed); the result is missing."""


class FeedbackUnavailableError(UniRouteError):
    """Feedback needed the shared feedback store (Redis), which could not be reached or is closed.

    By id, the decision may well be known there (another replica routed it), so this is not
    an :class:`UnknownDecisionError`. A closed store (its replica is shutting down) records
    nothing more. Either way: send the same feedback again later.
    """


class MissingExtraError(UniRouteError, ImportError):
    """An optional dependency is not installed; the message names ``pip install 'uniroute[<extra>]'``.

    Also an ``ImportError``, so ``except ImportError`` around an optional import still catches it.
    """


_DEPRECATED = {"UnirouteError": UniRouteError}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"uniroute.{name} is deprecated; use uniroute.{new.__name__}", DeprecationWarning, stacklevel=2
        )
        return new
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
