"""A scriptable OpenAI-compatible server on 127.0.0.1 for the onboarding tests."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from uniroute.onboarding import CallSettings

# A script answers one request: (status, body or None for the default error body, delay in seconds).
Script = Callable[[str, int, dict[str, Any]], tuple[int, dict[str, Any] | None, float]]


def completion(text: Any, model: str = "fake") -> dict[str, Any]:
    """An OpenAI chat completion body whose message content is ``text``."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }


def toy_answer(prompt: str) -> str:
    """The fake model: right ("yes") on arithmetic prompts, wrong ("no") on poetry."""
    return "yes" if prompt.startswith("Arithmetic") else "no"


class FakeLLMServer:
    """Answers POST /v1/chat/completions with ``script(prompt, attempt, body)``.

    ``attempt`` counts the requests seen for that prompt (1 for the first).
    ``calls`` counts all requests per prompt.
    """

    def __init__(self, script: Script):
        self.script = script
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                prompt = body["messages"][-1]["content"]
                with outer.lock:
                    outer.calls[prompt] += 1
                    attempt = outer.calls[prompt]
                status, reply, delay = outer.script(prompt, attempt, body)
                if delay:
                    time.sleep(delay)
                if reply is not None and "choices" in reply:
                    reply = reply | {"model": body["model"]}
                if reply is None:
                    reply = {
                        "error": {"message": f"scripted {status}", "type": "server_error", "code": status}
                    }
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def __enter__(self) -> FakeLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def settings_for(server: FakeLLMServer, **overrides: Any) -> CallSettings:
    """Call settings for the fake server with fast retries."""
    base = {
        "model": "openai/newbie",
        "api_base": server.url,
        "api_key": "sk-test",
        "backoff": 0.01,
        "backoff_max": 0.05,
        "timeout": 5.0,
        "concurrency": 4,
        "max_retries": 3,
    }
    return CallSettings(**(base | overrides))


def write_routerbench_csv(path: Path, n_per_topic: int = 12) -> Path:
    """A tiny RouterBench-format CSV: 'science' and 'riddle' MC prompts, three models with recorded answers.

    'sage' is right everywhere, 'scientist' on science only, 'joker' on riddles only.
    """
    models = ["sage", "scientist", "joker"]
    header = ["sample_id", "prompt", "eval_name"]
    for m in models:
        header += [m, f"{m}|model_response", f"{m}|total_cost"]
    rows = []
    for topic in ("science", "riddle"):
        for i in range(n_per_topic):
            prompt = (
                f"{'Science quiz: which element' if topic == 'science' else 'Riddle time: what has keys'} "
                f"number {i}?\nA) first\nB) second\nPrint only A or B.\nAnswer:"
            )
            right = "AB"[i % 2]
            wrong = "BA"[i % 2]
            answers = {
                "sage": right,
                "scientist": right if topic == "science" else wrong,
                "joker": right if topic == "riddle" else wrong,
            }
            row = [f"{topic}.{i}", repr([prompt]), topic]
            for m in models:
                row += [str(float(answers[m] == right)), repr([answers[m] + "\n"]), "0.001"]
            rows.append(row)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
