"""The real LiteLLM proxy with examples/litellm_proxy/config.yaml, called with the openai client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from litellm_fakes import MATH_PROMPT, ODD_REQUESTS, POETRY_PROMPT

from uniroute import Router
from uniroute.engine.router import NO_TEXT_NOTE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "litellm_proxy"
LITELLM = Path(sys.executable).parent / "litellm"
MASTER_KEY = "sk-uniroute-test"
START_TIMEOUT = 120.0
LAM = 30.0  # the example's default operating point, "balanced"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _deployment(dep_id: str, profile: str | None, group: str, fail: bool = False) -> dict:
    info = {"id": dep_id} | ({"uniroute_profile": profile} if profile else {})
    reply = "litellm.RateLimitError" if fail else f"[{dep_id}]"
    return {
        "model_name": group,
        "litellm_params": {"model": f"openai/{dep_id}", "api_key": "unused", "mock_response": reply},
        "model_info": info,
    }


def _test_config(tmp: Path) -> Path:
    """The example config plus groups for the failure and no-profile cases."""
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    config["model_list"] += [
        _deployment("plain-1", None, "plain"),
        _deployment("plain-2", None, "plain"),
        _deployment("flaky-mathbot", "mathbot", "flaky", fail=True),
        _deployment("flaky-poet", "poet", "flaky"),
        _deployment("flaky-big", "big", "flaky"),
        _deployment("down-mathbot", "mathbot", "down", fail=True),
        _deployment("down-poet", "poet", "down", fail=True),
    ]
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(config: Path, state: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = dict(
        os.environ, UNIROUTE_STATE=state, LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True"
    )
    process = subprocess.Popen(
        [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=log.parent,
    )
    return process, port


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("litellm-proxy")
    state = tmp / "state"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_state.py"), str(state), "--embedder", "hashing"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = tmp / "proxy.log"
    process, port = _start(_test_config(tmp), str(state), log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"proxy exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            pytest.fail(f"proxy not up after {START_TIMEOUT}s:\n{log.read_text()[-3000:]}")
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}", api_key=MASTER_KEY, max_retries=0, timeout=60
        )
        yield {"client": client, "engine": Router.load(state), "log": log}
    finally:
        _stop(process)


def _expected(engine: Router, prompt, lam: float = LAM, rank: int = 0, group: str = "") -> str:
    ids = {"mathbot": "mathbot", "poet": "poet", "big": "big-eu"}
    if group:
        ids = {name: f"{group}-{name}" for name in ids}
    return ids[engine.route(prompt, lam=lam, candidates=list(ids)).ranking[rank]]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("prompt", [MATH_PROMPT, POETRY_PROMPT])
def test_openai_client_goes_to_engine_first_choice(proxy: dict, prompt: str) -> None:
    raw = proxy["client"].chat.completions.with_raw_response.create(model="demo", messages=user(prompt))
    want = _expected(proxy["engine"], user(prompt))
    assert raw.headers["x-litellm-model-id"] == want
    assert raw.headers["x-uniroute-rank"] == "1"
    assert raw.parse().choices[0].message.content.startswith(f"[{want.split('-')[0]}]")


@pytest.mark.parametrize("prompt", [MATH_PROMPT, POETRY_PROMPT])
def test_streaming_goes_to_engine_first_choice(proxy: dict, prompt: str) -> None:
    with proxy["client"].chat.completions.with_streaming_response.create(
        model="demo", messages=user(prompt), stream=True
    ) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream.parse() if chunk.choices)
        want = _expected(proxy["engine"], user(prompt))
        assert stream.headers["x-litellm-model-id"] == want
        assert f'"deployment":"{want}"' in stream.headers["x-uniroute-decision"]
    assert text.startswith(f"[{want.split('-')[0]}]")


def test_per_request_lambda_and_embeddings(proxy: dict) -> None:
    client = proxy["client"]
    raw = client.chat.completions.with_raw_response.create(
        model="demo",
        messages=user(MATH_PROMPT),
        extra_body={"metadata": {"uniroute": {"operating_point": "best"}}},
    )
    assert raw.headers["x-litellm-model-id"] == _expected(proxy["engine"], user(MATH_PROMPT), lam=0.0)
    for text in (MATH_PROMPT, POETRY_PROMPT):
        raw = client.embeddings.with_raw_response.create(model="demo", input=[text])
        assert raw.headers["x-litellm-model-id"] == _expected(proxy["engine"], text)


@pytest.mark.parametrize("name", list(ODD_REQUESTS))
def test_odd_requests(proxy: dict, name: str) -> None:
    messages = ODD_REQUESTS[name]
    raw = proxy["client"].chat.completions.with_raw_response.create(model="demo", messages=messages)
    assert raw.headers["x-litellm-model-id"] == _expected(proxy["engine"], messages)
    assert (f'"note":"{NO_TEXT_NOTE}"' in raw.headers["x-uniroute-decision"]) == (
        name in {"empty", "image_only"}
    )


@pytest.mark.parametrize(
    ("control", "message"),
    [({"lamda": 0.1}, "unknown key(s) ['lamda']"), ({"lambda": -1}, "must be a finite number >= 0, got -1")],
)
def test_bad_control_is_a_400(proxy: dict, control: dict, message: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        proxy["client"].chat.completions.create(
            model="demo", messages=user(MATH_PROMPT), extra_body={"metadata": {"uniroute": control}}
        )
    assert message in str(info.value)


def test_group_without_profiles_is_left_to_litellm(proxy: dict) -> None:
    raw = proxy["client"].chat.completions.with_raw_response.create(model="plain", messages=user(MATH_PROMPT))
    assert raw.headers["x-litellm-model-id"] in {"plain-1", "plain-2"}
    assert "LiteLLM chose" in raw.headers["x-uniroute-decision"]


def test_failing_first_choice_falls_back_to_next_best(proxy: dict) -> None:
    engine = proxy["engine"]
    assert _expected(engine, user(MATH_PROMPT), group="flaky") == "flaky-mathbot"
    for _ in range(2):  # the first request fails over; the second finds mathbot cooling down
        raw = proxy["client"].chat.completions.with_raw_response.create(
            model="flaky", messages=user(MATH_PROMPT)
        )
        assert raw.headers["x-litellm-model-id"] == _expected(
            engine, user(MATH_PROMPT), rank=1, group="flaky"
        )
        assert raw.headers["x-uniroute-rank"] == "2"


def test_all_deployments_cooled_down_is_litellms_own_error(proxy: dict) -> None:
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as info:
            proxy["client"].chat.completions.create(model="down", messages=user(MATH_PROMPT))
        assert "uniroute" not in str(info.value)


def test_corrupt_state_stops_the_proxy_at_startup(tmp_path: Path) -> None:
    """One real start (a missing state is covered in process by test_litellm.py)."""
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a router state")
    process = _start(EXAMPLE / "config.yaml", str(corrupt), tmp_path / "proxy.log")[0]
    try:
        assert process.wait(timeout=START_TIMEOUT) != 0
    finally:
        _stop(process)
    output = (tmp_path / "proxy.log").read_text()
    assert f"cannot load router state {corrupt}" in output
    assert "Application startup failed" in output
