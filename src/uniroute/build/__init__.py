"""Build a router from a prompt log and a model list (``uniroute build``, issue 11).

:func:`build` reads a log of real prompts (:mod:`.prompts`) and the deployments of a
LiteLLM model group or a list of models (:mod:`.models`), fits the cluster map,
samples a validation set per cluster (:mod:`.sampling`), calls every model through
the onboarding runner, grades the answers against the log's references or with a
judge (:mod:`.judges`), and writes the router state and its report
(:mod:`.pipeline` holds the steps).

Importing this package is cheap: each public name is imported from its module on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from .judges import JUDGES, AbsoluteJudge, PairwiseJudge, Verdict
    from .models import Deployment, deployments_from_config, deployments_from_models, profile_name
    from .pipeline import BuildResult, abuild, build
    from .prompts import LoggedPrompt, PromptLog, read_prompt_log

_WHERE = {
    "JUDGES": ".judges",
    "AbsoluteJudge": ".judges",
    "PairwiseJudge": ".judges",
    "Verdict": ".judges",
    "Deployment": ".models",
    "deployments_from_config": ".models",
    "deployments_from_models": ".models",
    "profile_name": ".models",
    "BuildResult": ".pipeline",
    "abuild": ".pipeline",
    "build": ".pipeline",
    "LoggedPrompt": ".prompts",
    "PromptLog": ".prompts",
    "read_prompt_log": ".prompts",
}

__all__ = [
    "JUDGES",
    "AbsoluteJudge",
    "BuildResult",
    "Deployment",
    "LoggedPrompt",
    "PairwiseJudge",
    "PromptLog",
    "Verdict",
    "abuild",
    "build",
    "deployments_from_config",
    "deployments_from_models",
    "profile_name",
    "read_prompt_log",
]


__getattr__, __dir__ = attach(__name__, _WHERE)
