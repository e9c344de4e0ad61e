"""``uniroute.onboarding.settings``: call settings from arguments and from a LiteLLM config."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from onboarding_fakes import FakeLLMServer, completion

from uniroute import InputError
from uniroute.onboarding import CallSettings, settings_from_config
from uniroute.onboarding.client import complete


def answer(prompt: str, attempt: int, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
    return 200, completion("yes"), 0.0


@pytest.mark.integration
def test_a_deployments_max_retries_is_the_retry_policy_not_a_call_argument(
    fake_server, tmp_path: Path
) -> None:
    server: FakeLLMServer = fake_server(answer)
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: cheap\n"
        "    litellm_params:\n"
        "      model: openai/newbie\n"
        f"      api_base: {server.url}\n"
        "      api_key: sk-test\n"
        "      max_retries: 2\n"
    )
    settings = settings_from_config(config, "cheap")
    assert settings.max_retries == 2 and "max_retries" not in settings.params
    settings.check()
    # before, max_retries went to litellm.acompletion beside the runner's own: every call a TypeError
    response, error = asyncio.run(complete(settings, [{"role": "user", "content": "Arithmetic: 1 + 1?"}]))
    assert error is None and response is not None and server.total_calls == 1
    assert settings_from_config(config, "cheap", max_retries=0).max_retries == 0  # the CLI's option wins


@pytest.mark.parametrize("key", ["timeout", "max_retries"])
def test_a_call_parameter_the_runner_sets_itself_is_refused(key: str) -> None:
    with pytest.raises(InputError, match=rf"{key} may not be a call parameter.*--{key.replace('_', '-')}"):
        CallSettings("openai/x", params={key: 3}).check()


def test_the_routers_own_keys_are_neither_sent_nor_part_of_the_cache_key(tmp_path: Path) -> None:
    # before: rpm, order, weight... went into the call's params, so editing rpm in config.yaml between
    # an interrupted onboarding run and its rerun changed every cache key and paid every prompt again
    def config(rpm: int) -> Path:
        path = tmp_path / f"config-{rpm}.yaml"
        path.write_text(
            "model_list:\n"
            "  - model_name: cheap\n"
            "    litellm_params:\n"
            "      model: openai/newbie\n"
            f"      rpm: {rpm}\n"
            "      tpm: 100000\n"
            "      order: 2\n"
            "      weight: 3\n"
            "      temperature: 0.2\n"
            "      input_cost_per_token: 1.0e-07\n"
            "      output_cost_per_token: 2.0e-07\n"
        )
        return path

    slow, fast = settings_from_config(config(10), "cheap"), settings_from_config(config(600), "cheap")
    # call arguments stay, prices too (LiteLLM prices the answer with them)
    assert slow.params == {"temperature": 0.2, "input_cost_per_token": 1e-07, "output_cost_per_token": 2e-07}
    messages = [{"role": "user", "content": "Arithmetic: 1 + 1?"}]
    assert slow.cache_key(messages) == fast.cache_key(messages)


def test_a_config_is_read_as_utf8_whatever_the_locale(
    tmp_path: Path, in_ascii_locale: Callable[..., str]
) -> None:
    """YAML is UTF-8: a config with a non-ASCII name or comment (examples/own_workload's has λ) was read
    in the locale's encoding, a UnicodeDecodeError under an ASCII locale and mojibake under latin-1."""
    config = tmp_path / "config.yaml"
    config.write_bytes(
        "# λ of the operating points\nmodel_list:\n  - model_name: café\n"
        "    litellm_params: {model: openai/café, api_key: k}\n".encode()
    )
    code = "import sys; from uniroute.onboarding import settings_from_config as s; "
    code += "print(ascii(s(sys.argv[1], 'caf\\xe9').model))"
    assert in_ascii_locale(code, str(config)).strip() == ascii("openai/café")
