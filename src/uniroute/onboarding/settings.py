"""How the model being onboarded is called: :class:`CallSettings`, from arguments or a LiteLLM config.

The settings also decide which cached answers may be reused (:meth:`CallSettings.cache_key`):
everything that can change an answer is in the key, so a new endpoint or a new
``temperature`` never silently reuses old answers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._optional import require
from ..exceptions import InputError

# acompletion arguments the runner passes on every call, and the setting (CLI option) for each.
_POLICY_PARAMS = {
    "timeout": "CallSettings.timeout (CLI --timeout)",
    "max_retries": "CallSettings.max_retries (CLI --max-retries)",
}


@runtime_checkable
class HasMessages(Protocol):
    """Anything that can give its prompt as OpenAI chat messages."""

    def messages(self) -> list[dict[str, Any]]: ...


@dataclass
class CallSettings:
    """How to call the model being onboarded.

    Parameters
    ----------
    model : str
        LiteLLM model string, e.g. ``"openai/gpt-4o-mini"`` or
        ``"openai/mistralai/mixtral-8x7b-chat"`` with an ``api_base``.
    api_base, api_key : str, optional
    params : dict
        Other ``litellm.acompletion`` arguments (``temperature``, ``max_tokens``...);
        they are part of the cache key.
    timeout : float, default=60
        Seconds per call.
    max_retries : int, default=4
        Retries of a call after a retryable error (429, 5xx, timeout...).
    backoff, backoff_max : float, default=1, 30
        First retry delay and its cap, in seconds; doubles per retry, with jitter.
    concurrency : int, default=8
        Calls in flight at once.
    max_consecutive_failures : int, default=20
        Stop the run after this many failed prompts in a row.
    """

    model: str
    api_base: str | None = None
    api_key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 30.0
    concurrency: int = 8
    max_consecutive_failures: int = 20

    def check(self) -> None:
        """Raise :class:`~uniroute.InputError` on a setting that cannot work."""
        if not isinstance(self.model, str) or not self.model:
            raise InputError(f"model must be a LiteLLM model string, got {self.model!r}")
        if self.concurrency < 1 or self.max_retries < 0 or self.max_consecutive_failures < 1:
            raise InputError("concurrency and max_consecutive_failures must be >= 1, max_retries >= 0")
        if not (self.timeout > 0 and self.backoff >= 0 and self.backoff_max >= 0):
            raise InputError(f"timeout must be > 0 and backoff >= 0, got {self.timeout!r}, {self.backoff!r}")
        clash = sorted(set(self.params) & set(_POLICY_PARAMS))
        if clash:
            raise InputError(
                f"{', '.join(clash)} may not be a call parameter: the runner sets it on every call; "
                f"set {', '.join(_POLICY_PARAMS[k] for k in clash)} instead"
            )

    def call_kwargs(self) -> dict[str, Any]:
        """The ``litellm.acompletion`` arguments other than ``messages`` and the retry/timeout policy."""
        given = {"api_base": self.api_base, "api_key": self.api_key}
        return {"model": self.model} | {k: v for k, v in given.items() if v is not None} | self.params

    def cache_key(self, prompt: Sequence[Mapping[str, Any]] | HasMessages) -> str:
        """Hash of what determines an answer: model, endpoint, every call parameter, messages.

        ``prompt`` is a list of chat messages or anything with ``messages()`` (a
        :class:`~uniroute.onboarding.ValidationItem`). The API key, timeout and
        retry policy are left out: they change whether a call succeeds, not what
        it answers.
        """
        messages = prompt.messages() if isinstance(prompt, HasMessages) else prompt
        payload = {
            "model": self.model,
            "api_base": (self.api_base or "").rstrip("/"),
            "params": self.params,
            "messages": list(messages),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _env_refs(value: Any, where: str = "the config") -> Any:
    """Resolve LiteLLM's ``os.environ/NAME`` references in config values."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value[len("os.environ/") :]
        if name not in os.environ:
            raise InputError(
                f"{where} refers to environment variable {name}, which is not set; export {name} "
                "(a local server without keys takes any non-empty value)"
            )
        return os.environ[name]
    return value


def read_model_list(path: str | Path) -> list[dict[str, Any]]:
    """The ``model_list`` deployments of a LiteLLM ``config.yaml`` (``os.environ/`` not yet resolved)."""
    yaml = require("yaml", "litellm")
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text("utf-8"))  # YAML is UTF-8, whatever the locale
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read LiteLLM config {path}: {exc}") from exc
    deployments = (config or {}).get("model_list") if isinstance(config, dict) else None
    if not isinstance(deployments, list):
        raise InputError(f"{path}: no model_list (a list of deployments) in this LiteLLM config")
    return [d for d in deployments if isinstance(d, dict)]


#: ``litellm_params`` the LiteLLM Router reads itself (limits, load balancing, budgets): not call
#: arguments, and not part of an answer's cache key (editing ``rpm`` must not make a run pay again).
ROUTER_ONLY_KEYS = frozenset(
    {
        "rpm",
        "tpm",
        "max_parallel_requests",
        "weight",
        "order",
        "base_model",
        "region_name",
        "max_budget",
        "budget_duration",
        "mock_response_time",
        "use_in_pass_through",
        "merge_reasoning_content_in_choices",
    }
)


def settings_from_deployment(
    deployment: dict[str, Any], where: str = "config", **overrides: Any
) -> CallSettings:
    """The :class:`CallSettings` of one ``model_list`` entry, ``os.environ/NAME`` values resolved.

    ``overrides`` set :class:`CallSettings` fields; ``None`` values are ignored.
    """
    name = deployment.get("model_name")
    params = {
        k: _env_refs(v, f"{where}: deployment {name!r}: {k}")
        for k, v in (deployment.get("litellm_params") or {}).items()
    }
    if "model" not in params:
        raise InputError(f"{where}: deployment {name!r} has no litellm_params.model")
    params = {k: v for k, v in params.items() if k not in ROUTER_ONLY_KEYS}
    settings = CallSettings(
        model=params.pop("model"),
        api_base=params.pop("api_base", None),
        api_key=params.pop("api_key", None),
    )
    if "timeout" in params:
        settings.timeout = float(params.pop("timeout"))
    if "max_retries" in params:  # LiteLLM's per-deployment retries: the runner's retry policy
        settings.max_retries = int(params.pop("max_retries"))
    settings.params = params
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    return settings


def settings_from_config(path: str | Path, model_name: str, **overrides: Any) -> CallSettings:
    """The :class:`CallSettings` of deployment ``model_name`` in a LiteLLM ``config.yaml``.

    ``overrides`` set :class:`CallSettings` fields; ``None`` values are ignored.
    """
    deployments = read_model_list(path)
    for deployment in deployments:
        if deployment.get("model_name") == model_name:
            return settings_from_deployment(deployment, str(path), **overrides)
    names = [d.get("model_name") for d in deployments]
    raise InputError(f"{path}: no deployment named {model_name!r} in model_list; found {names}")
