"""Onboarding a new model without retraining: validation sets, graders, runner, replay server.

Importing this package is cheap: each public name is imported from its module on
first use, and LiteLLM only by the functions that call a model.

Modules: :mod:`.validation` (validation sets), :mod:`.graders` (the ``GRADERS``
registry), :mod:`.settings` (how a model is called), :mod:`.client` (one call with
retries), :mod:`.cache` (answers on disk), :mod:`.pricing` ($ and ``--dry-run``),
:mod:`.runner` (:func:`onboard`), :mod:`.report` (rendering), :mod:`.replay_server`,
:mod:`.cli` (the subcommands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from ..exceptions import GradingError, OnboardingError
    from .graders import GRADERS, ExtractingGrader, Grader, make_grader
    from .pricing import Estimate, estimate
    from .replay_server import ReplayData, ReplayServer
    from .runner import OnboardResult, aonboard, onboard
    from .settings import CallSettings, settings_from_config
    from .validation import ValidationItem, build_validation, load_validation, save_validation

_WHERE = {
    "GRADERS": ".graders",
    "ExtractingGrader": ".graders",
    "Grader": ".graders",
    "make_grader": ".graders",
    "GradingError": "..exceptions",
    "OnboardingError": "..exceptions",
    "Estimate": ".pricing",
    "estimate": ".pricing",
    "ReplayData": ".replay_server",
    "ReplayServer": ".replay_server",
    "OnboardResult": ".runner",
    "aonboard": ".runner",
    "onboard": ".runner",
    "CallSettings": ".settings",
    "settings_from_config": ".settings",
    "ValidationItem": ".validation",
    "build_validation": ".validation",
    "load_validation": ".validation",
    "save_validation": ".validation",
}

__all__ = [
    "GRADERS",
    "CallSettings",
    "Estimate",
    "ExtractingGrader",
    "Grader",
    "GradingError",
    "OnboardResult",
    "OnboardingError",
    "ReplayData",
    "ReplayServer",
    "ValidationItem",
    "aonboard",
    "build_validation",
    "estimate",
    "load_validation",
    "make_grader",
    "onboard",
    "save_validation",
    "settings_from_config",
]


__getattr__, __dir__ = attach(__name__, _WHERE)
