"""The real LiteLLM proxy with examples/litellm_proxy/config.yaml, called with the openai client."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from litellm_fakes import MATH_PROMPT, ODD_REQUESTS, POETRY_PROMPT, deployment

from uniroute import Router
from uniroute.engine.router import NO_TEXT_NOTE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "litellm_proxy"
sys.path.insert(0, str(EXAMPLE))
from proxy_launcher import ProxyError, running_proxy  # noqa: E402

MASTER_KEY = "sk-uniroute-test"
START_TIMEOUT = 180.0
LAM = 30.0  # the example's default operating point, "balanced"


def _test_config(tmp: Path, **router_settings) -> Path:
    """The example config plus groups for the failure, no-profile, tag and order cases."""
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    config["model_list"] += [
        deployment("plain-1", group="plain"),
        deployment("plain-2", group="plain"),
        deployment("flaky-mathbot", "mathbot", group="flaky", fail=True),
        deployment("flaky-poet", "poet", group="flaky"),
        deployment("flaky-big", "big", group="flaky"),
        deployment("down-mathbot", "mathbot", group="down", fail=True),
        deployment("down-poet", "poet", group="down", fail=True),
        deployment("broken-mathbot", "mathbot", group="broken", fail="litellm.InternalServerError"),
        deployment("broken-poet", "poet", group="broken"),
        deployment("broken-big", "big", group="broken"),
        deployment("tagged-mathbot", "mathbot", group="tagged", tags=["us"]),
        deployment("tagged-poet", "poet", group="tagged", tags=["eu"]),
        deployment("tagged-big", "big", group="tagged", tags=["eu"]),
        deployment("ordered-mathbot", "mathbot", group="ordered", order=2),
        deployment("ordered-poet", "poet", group="ordered", order=1),
        deployment("ordered-big", "big", group="ordered", order=1),
    ]
    config["router_settings"].update(enable_tag_filtering=True, **router_settings)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env(state: Path | str) -> dict[str, str]:
    return {
        "UNIROUTE_STATE": str(state),
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }


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
    try:
        with running_proxy(_test_config(tmp), log, _env(state), START_TIMEOUT) as url:
            client = openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=60)
            yield {"client": client, "engine": Router.load(state), "log": log, "url": url}
    except ProxyError as exc:
        pytest.fail(str(exc))


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
        assert len(stream.headers["x-uniroute-decision-id"]) == 32
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
        decision = json.loads(raw.headers["x-uniroute-decision"])
        assert decision["answered"] == raw.headers["x-litellm-model-id"]
    assert decision["failed"] == []  # the second request found flaky-mathbot cooling down


def test_all_deployments_cooled_down_is_litellms_own_error(proxy: dict) -> None:
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as info:
            proxy["client"].chat.completions.create(model="down", messages=user(MATH_PROMPT))
        assert "uniroute" not in str(info.value)


def _startup_failure(config: Path, state: str, tmp: Path) -> str:
    log = tmp / "proxy.log"
    with (
        pytest.raises(ProxyError, match="proxy startup failed"),
        running_proxy(config, log, _env(state), START_TIMEOUT),
    ):
        pass
    return log.read_text()


def test_corrupt_state_stops_the_proxy_at_startup(tmp_path: Path) -> None:
    """One real start (a missing state is covered in process by test_litellm.py)."""
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a router state")
    output = _startup_failure(EXAMPLE / "config.yaml", str(corrupt), tmp_path)
    assert f"cannot load router state {corrupt}" in output
    assert "Application startup failed" in output


def test_a_strategy_that_never_calls_the_callback_stops_the_proxy(proxy: dict, tmp_path: Path) -> None:
    """Issue 9, LiteLLM item 5: before, usage-based-routing silently switched uniroute off."""
    state = proxy["engine"].save(tmp_path / "state")
    output = _startup_failure(
        _test_config(tmp_path, routing_strategy="usage-based-routing"), str(state), tmp_path
    )
    assert "routing_strategy 'usage-based-routing'" in output and "Application startup failed" in output


def test_startup_log_names_routed_groups(proxy: dict) -> None:
    log = proxy["log"].read_text()
    assert "uniroute routes model groups ['broken', 'demo', 'down', 'flaky', 'ordered', 'tagged']" in log
    assert "left to LiteLLM (no profiled deployment): ['plain']" in log


def test_a_failing_deployment_is_not_retried_in_the_same_request(proxy: dict) -> None:
    """Issue 9, LiteLLM item 2: a 500 under the default allowed_fails; all 8 requests succeed."""
    answered = Counter()
    for _ in range(8):
        raw = proxy["client"].chat.completions.with_raw_response.create(
            model="broken", messages=user(MATH_PROMPT)
        )
        decision = json.loads(raw.headers["x-uniroute-decision"])
        assert (
            decision["failed"] in ([], ["broken-mathbot"])
            and decision["answered"] == raw.headers["x-litellm-model-id"]
        )
        answered[decision["answered"]] += 1
    assert "broken-mathbot" not in answered


def test_tags_and_order_are_kept(proxy: dict) -> None:
    """Issue 9, LiteLLM item 3: before, tags=["eu"] failed and an order-2 backup took primary traffic."""
    client = proxy["client"]
    raw = client.chat.completions.with_raw_response.create(
        model="tagged", messages=user(MATH_PROMPT), extra_body={"metadata": {"tags": ["eu"]}}
    )
    assert raw.headers["x-litellm-model-id"] in {"tagged-poet", "tagged-big"}
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="ordered", messages=user(MATH_PROMPT))
        assert raw.headers["x-litellm-model-id"] != "ordered-mathbot"


def test_client_metadata_is_never_echoed_into_headers(proxy: dict) -> None:
    """Issue 9, LiteLLM item 7: before, a CR/LF here reset the connection."""
    forged = {"uniroute_decision": {"profile": "x\r\nset-cookie: a=b", "rank": "1\r\n"}}
    raw = proxy["client"].chat.completions.with_raw_response.create(
        model="demo", messages=user(MATH_PROMPT), extra_body={"metadata": forged}
    )
    assert raw.headers["x-uniroute-profile"] == _expected(proxy["engine"], user(MATH_PROMPT))
    assert "set-cookie" not in raw.headers and "x\r" not in raw.headers["x-uniroute-decision"]


# ---- feedback (issue 12) -------------------------------------------------------------------


def _feedback(proxy: dict, body: object, key: str | None = MASTER_KEY) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{proxy['url']}/uniroute/feedback", json=body, headers=headers, timeout=30)


def _stats(proxy: dict) -> dict:
    answer = httpx.get(
        f"{proxy['url']}/uniroute/feedback/stats",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_feedback_by_header_credits_the_deployment_that_answered(proxy: dict) -> None:
    raw = proxy["client"].chat.completions.with_raw_response.create(
        model="demo", messages=user(POETRY_PROMPT)
    )
    decision_id = raw.headers["x-uniroute-decision-id"]
    assert json.loads(raw.headers["x-uniroute-decision"])["decision_id"] == decision_id
    answer = _feedback(proxy, {"decision_id": decision_id, "score": True})
    assert answer.status_code == 200, answer.text
    assert answer.json()["profile"] == raw.headers["x-uniroute-profile"]
    raw = proxy["client"].chat.completions.with_raw_response.create(model="flaky", messages=user(MATH_PROMPT))
    assert raw.headers["x-uniroute-rank"] == "2"  # flaky-mathbot failed or cools down; the next best answered
    answer = _feedback(
        proxy, {"decision_id": raw.headers["x-uniroute-decision-id"], "score": 0.25, "weight": 2}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["profile"] == raw.headers["x-uniroute-profile"] != "mathbot"


def test_feedback_without_a_valid_key_is_401_and_writes_nothing(proxy: dict) -> None:
    raw = proxy["client"].chat.completions.with_raw_response.create(model="demo", messages=user(MATH_PROMPT))
    body = {"decision_id": raw.headers["x-uniroute-decision-id"], "score": False}
    before = _stats(proxy)
    for key in (None, "sk-wrong"):
        assert _feedback(proxy, body, key).status_code == 401
    assert httpx.get(f"{proxy['url']}/uniroute/feedback/stats", timeout=30).status_code == 401
    after = _stats(proxy)
    assert after["requests"] == before["requests"]
    assert after["store_stats"]["events"] == before["store_stats"].get("events", 0)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"decision_id": "0" * 32, "score": 1}, 404, "unknown or expired"),
        ({"decision_id": "ID", "score": 2}, 400, "score must be a number in [0, 1]"),
        ({"decision_id": "ID", "score": 1, "weight": -1}, 400, "weight must be a finite number >= 0"),
        ({"decision_id": "ID", "score": 1, "weight": 1.7e308}, 400, "weight must be at most 1e+06"),
        ({"decision_id": "ID", "score": 1, "rating": 5}, 400, "unknown key(s) ['rating']"),
        ({"score": 1}, 400, "send JSON"),
        ([1, 2], 400, "send JSON"),
        ("{not json", 400, "send JSON"),
    ],
)
def test_bad_feedback_is_a_4xx_with_a_message(proxy: dict, body: object, status: int, message: str) -> None:
    if isinstance(body, dict) and body.get("decision_id") == "ID":
        raw = proxy["client"].chat.completions.with_raw_response.create(
            model="demo", messages=user(MATH_PROMPT)
        )
        body = {**body, "decision_id": raw.headers["x-uniroute-decision-id"]}
    if isinstance(body, str):
        answer = httpx.post(
            f"{proxy['url']}/uniroute/feedback",
            content=body,
            headers={"Authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"},
            timeout=30,
        )
    else:
        answer = _feedback(proxy, body)
    error = answer.json()
    assert answer.status_code == status and message in (error.get("detail") or error["error"]["message"])


def test_feedback_client_example_runs(proxy: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from feedback_client import ask_and_rate

    answer = ask_and_rate(proxy["url"], MASTER_KEY, MATH_PROMPT)
    assert answer["profile"] == _expected(proxy["engine"], user(MATH_PROMPT)) and answer["score"] == 0.8
    assert "feedback: {'decision_id'" in capsys.readouterr().out


def test_the_example_client_sends_a_503_again_after_retry_after() -> None:
    from feedback_client import send_feedback

    statuses = iter([503, 503, 200, 503, 503, 503])
    seen: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(next(statuses))
        if seen[-1] == 503:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"code": 503}})
        return httpx.Response(200, json={"profile": "big"})

    with httpx.Client(base_url="http://proxy", transport=httpx.MockTransport(answer)) as http:
        assert send_feedback(http, {"decision_id": "x", "score": 1}) == {"profile": "big"}
        assert seen == [503, 503, 200]
        with pytest.raises(httpx.HTTPStatusError, match="503"):
            send_feedback(http, {"decision_id": "x", "score": 1})  # three 503s: it gives up
    assert seen == [503, 503, 200, 503, 503, 503]


def test_a_batch_of_feedback_answers_per_event(proxy: dict) -> None:
    raw = proxy["client"].chat.completions.with_raw_response.create(
        model="demo", messages=user(POETRY_PROMPT)
    )
    decision_id = raw.headers["x-uniroute-decision-id"]
    events = [
        {"decision_id": decision_id, "score": 1},
        {"decision_id": decision_id, "score": 7},
        {"decision_id": "0" * 32, "score": 0},
        "not an object",
    ]
    answer = _feedback(proxy, {"events": events})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 3)
    assert [r["status"] for r in body["results"]] == [200, 400, 404, 400]
    assert body["results"][0]["profile"] == raw.headers["x-uniroute-profile"]
    for bad in ({"events": []}, {"events": events * 251}, {"events": events, "score": 1}, {"events": "x"}):
        answer = _feedback(proxy, bad)
        assert (
            answer.status_code == 400 and "a list of 1 to 1000 objects" in answer.json()["error"]["message"]
        )


def test_each_failed_attempt_records_one_zero(proxy: dict, tmp_path: Path) -> None:
    """Two deployments fail in turn, then a third answers: with feedback_on_failure, each failed
    attempt records one 0. Before, LiteLLM's failure log (once per proxy request) gave only the first."""
    engine = proxy["engine"]
    assert [_expected(engine, user(MATH_PROMPT), rank=k, group="twice") for k in range(3)] == [
        "twice-mathbot",
        "twice-big",
        "twice-poet",
    ]
    config = yaml.safe_load(_test_config(tmp_path).read_text())
    config["model_list"] += [
        deployment("twice-mathbot", "mathbot", group="twice", fail=True),
        deployment("twice-big", "big", group="twice", fail="litellm.InternalServerError"),
        deployment("twice-poet", "poet", group="twice"),
    ]
    config["callback_settings"]["uniroute"]["feedback_on_failure"] = True
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    state = engine.save(tmp_path / "state")
    with running_proxy(tmp_path / "config.yaml", tmp_path / "proxy.log", _env(state), START_TIMEOUT) as url:
        client = openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=60)
        raw = client.chat.completions.with_raw_response.create(model="twice", messages=user(MATH_PROMPT))
        decision = json.loads(raw.headers["x-uniroute-decision"])
        assert decision["failed"] == ["twice-mathbot", "twice-big"]
        assert decision["answered"] == "twice-poet"
        stats = _stats({"url": url})
    assert stats["requests"].get("failure_recorded") == 2
    assert (stats["store_stats"]["events"], stats["store_stats"]["models"]) == (2, 2)
