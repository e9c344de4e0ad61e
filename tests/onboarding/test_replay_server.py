"""The replay server: recorded answers over OpenAI's HTTP API, and clear errors."""

from __future__ import annotations

import io
import json
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from onboarding_fakes import write_routerbench_csv

from uniroute import InputError
from uniroute.datasets import load_routerbench
from uniroute.onboarding import ReplayData, ReplayServer
from uniroute.onboarding.replay_server import UsageLedger, _Handler, usage


@pytest.fixture()
def csv_path(tmp_path: Path) -> Path:
    return write_routerbench_csv(tmp_path / "tiny_test.csv", n_per_topic=3)


@pytest.fixture()
def server(csv_path: Path) -> Iterator[ReplayServer]:
    with ReplayServer(ReplayData.from_paths([csv_path])) as running:
        yield running


def read_line(stream: Any, timeout: float) -> str:
    """The next line of ``stream``, or "" if none came within ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def post(url: str, body: Any, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + "/chat/completions", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.integration
def test_known_prompts_get_the_recorded_answer(server: ReplayServer, csv_path: Path) -> None:
    data = load_routerbench(csv_path)
    prompt = data.prompts[4]
    status, body = post(server.url, {"model": "joker", "messages": [{"role": "user", "content": prompt}]})
    assert status == 200
    assert body["choices"][0]["message"]["content"] == data.responses["joker"][4]
    assert body["model"] == "joker" and body["usage"]["total_tokens"] > 0
    spaced = "  " + prompt.replace("\n", " \n ") + "\n"
    status, body = post(server.url, {"model": "sage", "messages": [{"role": "user", "content": spaced}]})
    assert status == 200 and body["choices"][0]["message"]["content"] == data.responses["sage"][4]


@pytest.mark.integration
def test_the_prompt_is_read_by_the_engine_text_helper(server: ReplayServer, csv_path: Path) -> None:
    data = load_routerbench(csv_path)
    prompt = data.prompts[2]
    for messages in (
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": prompt}],
        [{"role": "user", "content": [{"type": "input_text", "text": prompt}]}],
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {}}],
            }
        ],
    ):
        status, body = post(server.url, {"model": "sage", "messages": messages})
        assert status == 200, body
        assert body["choices"][0]["message"]["content"] == data.responses["sage"][2]


@pytest.mark.integration
def test_unknown_models_and_prompts_get_clear_errors(server: ReplayServer, csv_path: Path) -> None:
    prompt = load_routerbench(csv_path).prompts[0]
    status, body = post(server.url, {"model": "gpt-9", "messages": [{"role": "user", "content": prompt}]})
    assert status == 404 and body["error"]["code"] == "model_not_found"
    assert "'gpt-9'" in body["error"]["message"] and "joker" in body["error"]["message"]
    status, body = post(server.url, {"model": "sage", "messages": [{"role": "user", "content": "Hello?"}]})
    assert status == 404 and body["error"]["code"] == "prompt_not_found"
    assert "Hello?" in body["error"]["message"]
    status, body = post(server.url, None, raw=b"{oops")
    assert status == 400 and "not JSON" in body["error"]["message"]
    status, body = post(server.url, {"model": "sage", "messages": []})
    assert status == 400 and "'messages'" in body["error"]["message"]
    status, body = post(server.url, ["not", "an", "object"])
    assert status == 400


@pytest.mark.integration
def test_models_endpoint_and_streaming_through_litellm(server: ReplayServer, csv_path: Path) -> None:
    import litellm

    with urllib.request.urlopen(server.url + "/models", timeout=10) as response:
        listed = [m["id"] for m in json.loads(response.read())["data"]]
    assert listed == ["joker", "sage", "scientist"]
    data = load_routerbench(csv_path)
    stream = litellm.completion(
        model="openai/scientist",
        messages=[{"role": "user", "content": data.prompts[1]}],
        api_base=server.url,
        api_key="replay",
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == data.responses["scientist"][1]


@pytest.mark.integration
def test_usage_endpoint_counts_the_answered_requests_and_their_tokens(
    server: ReplayServer, csv_path: Path
) -> None:
    import litellm

    data = load_routerbench(csv_path)
    for i in (0, 1):
        status, body = post(
            server.url, {"model": "sage", "messages": [{"role": "user", "content": data.prompts[i]}]}
        )
        assert status == 200
        assert body["usage"] == usage(data.prompts[i], data.responses["sage"][i])
    stream = litellm.completion(
        model="openai/joker",
        messages=[{"role": "user", "content": data.prompts[2]}],
        api_base=server.url,
        api_key="replay",
        stream=True,
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert post(server.url, {"model": "sage", "messages": [{"role": "user", "content": "Hello?"}]})[0] == 404
    with urllib.request.urlopen(server.url + "/usage", timeout=10) as response:
        counted = json.loads(response.read())["models"]
    sage = [usage(data.prompts[i], data.responses["sage"][i]) for i in (0, 1)]
    assert counted == {
        "joker": {"requests": 1, **usage(data.prompts[2], data.responses["joker"][2])},
        "sage": {"requests": 2, **{key: sage[0][key] + sage[1][key] for key in sage[0]}},
    }


class FakeConnection:
    """A socket stand-in for the request handler: the request bytes to read, the response bytes sent."""

    def __init__(self, request: bytes):
        self.request = io.BytesIO(request)
        self.sent = bytearray()

    def makefile(self, mode: str, *args: Any) -> io.BytesIO:
        return self.request

    def sendall(self, data: bytes) -> None:
        self.sent += data


def handle(csv_path: Path, body: bytes) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the server's answer to ``POST /v1/chat/completions`` of ``body``, no socket."""
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: replay\r\nContent-Length: {len(body)}\r\n\r\n"
    connection = FakeConnection(head.encode() + body)
    server = SimpleNamespace(data=ReplayData.from_paths([csv_path]), verbose=False, ledger=UsageLedger())
    _Handler(connection, ("127.0.0.1", 0), server)  # type: ignore[arg-type]
    status_line, _, rest = bytes(connection.sent).partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("where", ["body", "messages", "content"])
def test_a_request_nested_too_deeply_gets_a_400(csv_path: Path, where: str) -> None:
    """Before, a body nested deeper than Python's JSON reader can go raised RecursionError in the handler:
    the server printed a traceback and closed the connection with no answer."""
    nested = "[" * 100_000 + "]" * 100_000
    body = {
        "body": nested,
        "messages": '{"model": "sage", "messages": ' + nested + "}",
        "content": '{"model": "sage", "messages": [{"role": "user", "content": ' + nested + "}]}",
    }[where]
    status, answer = handle(csv_path, body.encode())
    assert status == 400 and answer["error"]["code"] == "invalid_json"
    assert "nested too deeply" in answer["error"]["message"]
    prompt = load_routerbench(csv_path).prompts[0]
    request = json.dumps({"model": "sage", "messages": [{"role": "user", "content": prompt}]})
    assert handle(csv_path, request.encode())[0] == 200  # the fake connection answers like the real one


def test_data_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        ReplayData.from_paths([tmp_path / "missing"])
    with pytest.raises(InputError, match=r"no RouterBench \*.csv"):
        ReplayData.from_paths([tmp_path])


@pytest.mark.integration
@pytest.mark.usefixtures("sigint_raises")
def test_cli_binds_localhost_and_stops_on_interrupt(csv_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "uniroute.cli", "replay-server", "--data", str(csv_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            first = read_line(process.stdout, timeout=60)
            assert "on http://127.0.0.1:" in first, f"no address printed within 60 s: {first!r}"
            url = first.split(" on ")[1].split()[0]
            with urllib.request.urlopen(url + "/models", timeout=10) as response:
                assert len(json.loads(response.read())["data"]) == 3
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
        finally:
            process.kill()  # a server that did not stop fails the test at once, not at the suite's timeout
