"""Onboarding a new model without retraining: validation sets, graders, runner, replay server.

Importing this package loads no LLM SDK; LiteLLM is imported by the functions
that call a model.
"""

from .graders import GRADERS, ExtractingGrader, Grader, GradingError, make_grader
from .replay_server import ReplayData, ReplayServer
from .runner import CallSettings, OnboardingError, OnboardResult, estimate, onboard, settings_from_config
from .validation import ValidationItem, build_validation, load_validation, save_validation

__all__ = [
    "GRADERS",
    "CallSettings",
    "ExtractingGrader",
    "Grader",
    "GradingError",
    "OnboardResult",
    "OnboardingError",
    "ReplayData",
    "ReplayServer",
    "ValidationItem",
    "build_validation",
    "estimate",
    "load_validation",
    "make_grader",
    "onboard",
    "save_validation",
    "settings_from_config",
]
