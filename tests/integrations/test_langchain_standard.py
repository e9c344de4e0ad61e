"""The langchain-tests standard suites, run against UniRouteChatModel.

Two configurations: in-process fake children (:class:`EchoChatModel`), and
``langchain_openai.ChatOpenAI`` children talking HTTP to a fake OpenAI-compatible
server on 127.0.0.1. Sockets may connect to 127.0.0.1 only (pytest-socket).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_fakes import EchoChatModel, serve_openai
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from uniroute import Router
from uniroute.integrations.langchain import UniRouteChatModel

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

PROFILES = ("mathbot", "poet", "big")


class _UniRouteParams:
    """Init params over the ``toy_router`` fixture, with in-process fake children."""

    router: Router

    @pytest.fixture(autouse=True)
    def _use_toy_router(self, toy_router: Router) -> None:
        self.router = toy_router

    @property
    def chat_model_class(self) -> type[UniRouteChatModel]:
        return UniRouteChatModel

    def children(self) -> dict[str, Any]:
        return {name: EchoChatModel(model_name=f"echo-{name}") for name in PROFILES}

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"models": self.children(), "state": self.router}

    @property
    def supports_anthropic_inputs(self) -> bool:
        """Histories with Anthropic content blocks (tool_use, thinking) are routed on their text
        and reach the child unchanged; the fakes and ChatOpenAI accept them."""
        return True

    @property
    def model_override_value(self) -> str:
        """``model=<profile>`` pins a child; its response model_name contains the profile."""
        return "poet"


class TestUniRouteChatModelUnit(_UniRouteParams, ChatModelUnitTests):
    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # api_key, timeout and max_retries are client settings of each child;
        # UniRouteChatModel refuses them with a message saying so (tested in
        # test_langchain.py). temperature, max_tokens and stop are accepted.
        params = super().standard_chat_model_params
        return {k: v for k, v in params.items() if k not in ("api_key", "timeout", "max_retries")}


class TestUniRouteChatModelIntegration(_UniRouteParams, ChatModelIntegrationTests):
    pass


@pytest.fixture(scope="module")
def openai_base_url() -> Iterator[str]:
    with serve_openai() as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"


@pytest.mark.integration
class TestUniRouteChatModelOverHTTP(_UniRouteParams, ChatModelIntegrationTests):
    """Children are ChatOpenAI clients of the fake OpenAI-compatible server."""

    base_url: str

    @pytest.fixture(autouse=True)
    def _use_server(self, openai_base_url: str) -> None:
        self.base_url = openai_base_url

    def children(self) -> dict[str, Any]:
        from langchain_openai import ChatOpenAI

        return {
            name: ChatOpenAI(
                model=f"{name}-1",
                base_url=self.base_url,
                api_key="not-a-real-key",
                stream_usage=True,
                max_retries=0,
                timeout=10,
            )
            for name in PROFILES
        }
