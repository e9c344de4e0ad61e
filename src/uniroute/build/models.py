"""The models a router is built over: the deployments of a LiteLLM model group, or ``--model`` strings.

Each becomes a :class:`Deployment`: the profile name the router stores, how to
call it (:class:`~uniroute.onboarding.CallSettings`) and its own prices if it has
them. Profile names are chosen so the front doors find them with no extra
configuration (see :func:`profile_name`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import InputError
from ..onboarding.pricing import Prices
from ..onboarding.settings import (
    CallSettings,
    _env_refs,
    read_model_list,
    settings_from_config,
    settings_from_deployment,
)

PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")


@dataclass
class Deployment:
    """One model to profile: ``name`` (its profile), ``settings`` (how to call it), ``prices`` ($/token)."""

    name: str
    settings: CallSettings
    prices: Prices | None = None
    label: str = ""


def profile_name(deployment: Mapping[str, Any]) -> str:
    """The profile a LiteLLM deployment gets, one the LiteLLM front door maps back to it.

    ``model_info.uniroute_profile`` if set, else ``model_info.base_model``, else
    ``litellm_params.base_model``, else ``litellm_params.model`` without its provider
    prefix (``openai/gpt-4o-mini`` -> ``gpt-4o-mini``, ``openai/mistralai/mixtral-8x7b``
    -> ``mistralai/mixtral-8x7b``). The LiteLLM front door
    (:meth:`~uniroute.integrations.litellm.DeploymentRanker.profile_of`) tries these
    names; a LangChain ``UniRouteChatModel`` takes its children keyed by them.
    """
    info = deployment.get("model_info") or {}
    params = _resolved_names(deployment)
    for name in (info.get("uniroute_profile"), info.get("base_model"), params.get("base_model")):
        if isinstance(name, str) and name:
            return name
    return model_profile_name(str(params.get("model", "")))


def _resolved_names(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """``litellm_params.model`` and ``base_model`` with ``os.environ/NAME`` resolved, as LiteLLM's Router
    resolves them (so the front door sees the value, not the reference)."""
    raw = deployment.get("litellm_params") or {}
    where = f"deployment {deployment.get('model_name')!r}"
    return {k: _env_refs(raw[k], f"{where}: {k}") for k in ("base_model", "model") if k in raw}


def model_profile_name(model: str) -> str:
    """A LiteLLM model string without its provider prefix (``openai/gpt-4o`` -> ``gpt-4o``)."""
    provider, sep, rest = model.partition("/")
    return rest if sep and rest else provider


def deployment_prices(deployment: Mapping[str, Any], where: str) -> Prices | None:
    """``(input, output)`` $ per token from ``model_info`` or ``litellm_params``, if both are given."""
    for section in ("model_info", "litellm_params"):
        values = deployment.get(section) or {}
        if any(k in values for k in PRICE_KEYS):
            try:
                return float(values[PRICE_KEYS[0]]), float(values[PRICE_KEYS[1]])
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(
                    f"{where}: {section} needs both input_cost_per_token and output_cost_per_token "
                    f"as numbers ($ per token): {exc}"
                ) from exc
    return None


def base_model_prices(deployment: Mapping[str, Any]) -> Prices | None:
    """LiteLLM's per-token prices of the deployment's ``base_model`` (as LiteLLM prices Azure deployments)."""
    info = deployment.get("model_info") or {}
    base = info.get("base_model") or _resolved_names(deployment).get("base_model")
    if not isinstance(base, str) or not base:
        return None
    from .._optional import require

    litellm = require("litellm", "litellm")
    try:
        known = litellm.get_model_info(model=base)
        return float(known["input_cost_per_token"]), float(known["output_cost_per_token"])
    except Exception:
        return None


def config_deployment(
    config: str | Path, model_name: str, **overrides: Any
) -> tuple[CallSettings, Prices | None]:
    """How to call deployment ``model_name`` of a LiteLLM ``config``, and its prices as a build takes them.

    Prices: the deployment's own per-token prices, else LiteLLM's prices of its
    ``base_model``, else None (LiteLLM's prices of the model called). The price keys are
    not passed to the call. ``overrides`` set :class:`~uniroute.onboarding.CallSettings` fields.
    """
    settings = settings_from_config(config, model_name, **overrides)  # refuses an unknown name, listing them
    raw = next(d for d in read_model_list(config) if d.get("model_name") == model_name)
    settings.params = {k: v for k, v in settings.params.items() if k not in PRICE_KEYS}  # priced here
    return settings, deployment_prices(raw, f"{config}: {model_name!r}") or base_model_prices(raw)


def deployments_from_config(
    path: str | Path, group: str, **overrides: Any
) -> tuple[list[Deployment], list[str]]:
    """Every deployment of model group ``group`` in a LiteLLM ``config.yaml``.

    ``os.environ/NAME`` values are resolved as LiteLLM resolves them (a variable
    that is not set is an error naming it). Prices: the deployment's own per-token
    prices, else LiteLLM's prices of its ``base_model``, else (None) LiteLLM's prices of
    the model called. Router-only ``litellm_params`` (prices,
    ``rpm``, ``base_model``...) are not passed to the call. Deployments that map to
    the same profile are the same model: the first is called, the others are
    returned as notes, as are wildcard deployments (``openai/*``: no one model), left out.
    """
    deployments = read_model_list(path)
    chosen = [d for d in deployments if d.get("model_name") == group]
    if not chosen:
        groups = sorted({str(d.get("model_name")) for d in deployments})
        raise InputError(f"{path}: no deployment in model group {group!r}; groups: {groups}")
    out: list[Deployment] = []
    notes: list[str] = []
    for i, raw in enumerate(chosen):
        where = f"{path}: {group!r} deployment {i + 1}"
        settings = settings_from_deployment(raw, str(path), **overrides)
        settings.params = {k: v for k, v in settings.params.items() if k not in PRICE_KEYS}  # priced here
        name = profile_name(raw)
        label = f"{group}[{i + 1}] {settings.model}" + (
            f" @ {settings.api_base}" if settings.api_base else ""
        )
        if "*" in settings.model:
            notes.append(f"{label} is a wildcard deployment, no one model to profile; left out")
            continue
        same = next((d for d in out if d.name == name), None)
        if same is not None:
            notes.append(
                f"{label} has the same profile {name!r} as {same.label}; called once, as {same.label}"
            )
            continue
        prices = deployment_prices(raw, where) or base_model_prices(raw)
        out.append(Deployment(name, settings, prices, label))
    return out, notes


def deployments_from_models(models: Sequence[str], **settings: Any) -> list[Deployment]:
    """Deployments from ``--model`` strings: ``MODEL`` (profile: MODEL minus provider) or ``NAME=MODEL``.

    ``settings`` are :class:`CallSettings` fields shared by all (``api_base``,
    ``api_key``, ``params``...); ``None`` values are ignored. Prices come from
    LiteLLM's price map.
    """
    out: list[Deployment] = []
    for spec in models:
        name, sep, model = spec.partition("=")
        if not sep:
            name, model = model_profile_name(spec), spec
        if not name or not model:
            raise InputError(f"--model {spec!r}: give a LiteLLM model string, or NAME=MODEL")
        if any(d.name == name for d in out):
            raise InputError(f"--model {spec!r}: profile {name!r} is given twice; name one with NAME=MODEL")
        given = {k: v for k, v in settings.items() if v is not None}
        params = dict(given.pop("params", {}))
        out.append(Deployment(name, CallSettings(model, params=params, **given), None, model))
    return out
