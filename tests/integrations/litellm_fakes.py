"""Test helpers for the LiteLLM front door: a tiny OpenAI-compatible server, routers, configs."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import numpy as np
from local_server import running

from uniroute import HashingEmbedder, KMeansClusterMap, Router

EMBED_DIM = 8
MATH_PROMPT = "Arithmetic question: compute 12 times 7 and answer with the number only."
POETRY_PROMPT = "Poetry request: write a short haiku about the moon, with vivid imagery."
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
ODD_REQUESTS = {  # the odd chat requests, by name
    "empty": [],
    "image_only": [{"role": "user", "content": [IMAGE]}],
    "tool_result_only": [{"role": "tool", "tool_call_id": "call_1", "content": "Arithmetic result: 84"}],
    "one_megabyte": [{"role": "user", "content": "x" * 1_000_000 + " " + POETRY_PROMPT}],
}


def fake_vector(text: str) -> list[float]:
    """A deterministic vector per text (what the fake embeddings endpoint returns)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255.0 - 0.5 for b in digest[:EMBED_DIM]]


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def log_message(self, *args: object) -> None:
        """Silence the default stderr access log."""

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.server.lock:
            self.server.requests.append((self.path, body))
        if self.path.endswith("/embeddings"):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": fake_vector(t)} for i, t in enumerate(texts)
            ]
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model"),
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                },
            )
        elif self.path.endswith("/chat/completions"):
            self._send(
                self.server.chat_status,
                {"error": {"message": "fake upstream failure", "type": "server_error"}},
            )
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, chat_status: int):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.chat_status = chat_status
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@contextmanager
def fake_openai_server(chat_status: int = 500) -> Iterator[_FakeServer]:
    """An OpenAI-compatible server on 127.0.0.1: embeddings work, chat fails with ``chat_status``."""
    with running(_FakeServer(chat_status)) as server:
        yield server


def deployment(
    dep_id: str, profile: str | None = None, fail: str | bool = False, group: str = "demo", **extra
) -> dict:
    """A mock deployment answering ``[dep_id]``, or raising ``fail`` (a LiteLLM mock error name)."""
    info = {"id": dep_id}
    if profile is not None and profile != dep_id:
        info["uniroute_profile"] = profile
    info.update(extra.pop("model_info", {}))
    reply = (fail if isinstance(fail, str) else "litellm.RateLimitError") if fail else f"[{dep_id}]"
    params = {"model": f"openai/{dep_id}", "api_key": "unused", "mock_response": reply, **extra}
    return {"model_name": group, "litellm_params": params, "model_info": info}


def sdk_example() -> ModuleType:
    """examples/litellm_sdk.py as a module."""
    examples = str(Path(__file__).resolve().parents[2] / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    return importlib.import_module("litellm_sdk")


def demo_engine() -> Router:
    """The examples' router (profiles mathbot, poet, big) with the hashing embedder."""
    return sdk_example().build_demo_router("hashing")


def tiny_engine(names: tuple[str, ...] = ("a", "b")) -> Router:
    """A two-cluster router where every model is equally good and costs 0.001."""
    prompts = [MATH_PROMPT, POETRY_PROMPT] * 4
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2, random_state=0)).fit(prompts)
    router.add_models(prompts, {n: np.ones(len(prompts)) for n in names}, {n: 0.001 for n in names})
    return router
