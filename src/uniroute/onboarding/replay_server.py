"""An OpenAI-compatible server that answers with *recorded* model responses.

Point any OpenAI or LiteLLM client at it (``openai/<model>`` with
``api_base=http://127.0.0.1:PORT/v1``) and each known prompt gets the answer the
requested model gave when the data was recorded (RouterBench's
``<model>|model_response`` columns). It makes a dry, free and deterministic pool
of models for tests, demos and onboarding rehearsals.

Endpoints: ``POST /v1/chat/completions`` (``stream`` supported),
``GET /v1/models``, ``GET /health``, and ``GET /v1/usage``: per model, the
requests answered and the tokens reported in their ``usage`` since the server
started (what a bill for these calls would count). A prompt is the text of the request's
messages as :func:`uniroute.engine.text.prompt_text` reads it (the user and
assistant turns joined by newlines, system turns only when there are none),
compared with runs of whitespace collapsed. Errors
use OpenAI's error body: 404 ``model_not_found`` for an unknown model, 404
``prompt_not_found`` for an unknown prompt or one the model has no recorded
answer for, 400 for a malformed request. Token counts in ``usage`` are
estimates (:func:`usage`: 4 characters a token). Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..datasets import RoutingDataset, load_dataset
from ..engine.embedders import text_key
from ..engine.text import prompt_text
from ..exceptions import InputError, UniRouteError

_DATA_SUFFIXES = (".csv",)


class _ReplayError(UniRouteError):
    """An HTTP error answer: status, OpenAI error code and message (never leaves the server)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def prompt_key(text: str) -> str:
    """Key of a prompt text: whitespace runs collapsed, then hashed."""
    return text_key(" ".join(text.split()))


def _message_text(messages: Any) -> str:
    """The prompt text of a request's messages (:func:`uniroute.engine.text.prompt_text`), or a 400."""
    if not isinstance(messages, list) or not messages:
        raise _ReplayError(400, "invalid_request", "'messages' must be a non-empty list")
    if not all(isinstance(message, dict) for message in messages):
        raise _ReplayError(400, "invalid_request", "each message must be an object with 'role' and 'content'")
    try:
        return prompt_text(messages)
    except InputError as exc:
        raise _ReplayError(400, "invalid_request", str(exc)) from exc


class ReplayData:
    """Recorded responses indexed by model and prompt.

    Parameters
    ----------
    datasets : iterable of RoutingDataset
        Each needs prompts and ``responses``. The first recording of a prompt wins.
    """

    def __init__(self, datasets: Iterable[RoutingDataset]):
        self.responses: dict[str, dict[str, str]] = {}
        self.n_prompts = 0
        for data in datasets:
            if data.prompts is None or not data.responses:
                raise InputError("replay data needs prompts and recorded responses (RouterBench CSV files)")
            for i, prompt in enumerate(data.prompts):
                if not isinstance(prompt, str):
                    continue
                key = prompt_key(prompt)
                for model, answers in data.responses.items():
                    answer = answers[i]
                    if answer is not None:
                        self.responses.setdefault(model, {}).setdefault(key, answer)
            self.n_prompts += len(data.prompts)

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path]) -> ReplayData:
        """Load RouterBench CSV files, or every ``*.csv`` in the directories given."""
        files: list[Path] = []
        for path in map(Path, paths):
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.suffix in _DATA_SUFFIXES))
            elif path.is_file():
                files.append(path)
            else:
                raise InputError(f"no such file or directory: {path}")
        if not files:
            raise InputError(f"no RouterBench *.csv file in {[str(p) for p in paths]}")
        return cls(load_dataset(f, "routerbench") for f in files)

    @property
    def models(self) -> list[str]:
        """The model names with recorded answers, sorted."""
        return sorted(self.responses)

    def answer(self, model: Any, messages: Any) -> str:
        """The recorded answer of ``model`` to the prompt in ``messages``."""
        if not isinstance(model, str) or model not in self.responses:
            raise _ReplayError(
                404,
                "model_not_found",
                f"model {model!r} has no recorded answers; known models: {self.models}",
            )
        text = _message_text(messages)
        found = self.responses[model].get(prompt_key(text))
        if found is None:
            raise _ReplayError(
                404,
                "prompt_not_found",
                f"no recorded answer of {model!r} for this prompt (starts {text[:60]!r}); the replay "
                "server only knows the prompts of its data files",
            )
        return found


def usage(prompt: str, answer: str) -> dict[str, int]:
    """The ``usage`` the server reports for ``answer`` to ``prompt`` (its text): 4 characters a token."""
    prompt_tokens, completion_tokens = len(prompt) // 4 + 1, len(answer) // 4 + 1
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class UsageLedger:
    """Requests answered and tokens reported, per model; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, dict[str, int]] = {}

    def add(self, model: str, counts: dict[str, int]) -> None:
        with self._lock:
            row = self._models.setdefault(model, dict.fromkeys(("requests", *counts), 0))
            row["requests"] += 1
            for key, value in counts.items():
                row[key] += value

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of the counts, by model."""
        with self._lock:
            return {model: dict(row) for model, row in sorted(self._models.items())}


def _completion(model: str, answer: str, prompt: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-replay-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        ],
        "usage": usage(prompt, answer),
    }


def _chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    answer = completion["choices"][0]["message"]["content"]
    return [
        base
        | {
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": answer}, "finish_reason": None}
            ]
        },
        base
        | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": completion["usage"]},
    ]


class _Handler(BaseHTTPRequestHandler):
    server: ReplayHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: _ReplayError) -> None:
        kind = "invalid_request_error" if error.status < 500 else "server_error"
        self._send_json(error.status, {"error": {"message": error.message, "type": kind, "code": error.code}})

    def _path(self) -> str:
        path = self.path.split("?", 1)[0].rstrip("/")
        return path[3:] if path.startswith("/v1") else path

    def do_GET(self) -> None:
        path = self._path()
        if path == "/models":
            models = [{"id": m, "object": "model", "owned_by": "replay"} for m in self.server.data.models]
            self._send_json(200, {"object": "list", "data": models})
        elif path == "/health":
            self._send_json(200, {"status": "ok"})
        elif path == "/usage":
            self._send_json(200, {"object": "usage", "models": self.server.ledger.snapshot()})
        else:
            self._send_error(_ReplayError(404, "not_found", f"no endpoint GET {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self._path() != "/chat/completions":
            self._send_error(
                _ReplayError(404, "not_found", f"no endpoint POST {self.path}; use /v1/chat/completions")
            )
            return
        try:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise _ReplayError(400, "invalid_json", f"request body is not JSON: {exc}") from exc
            except RecursionError as exc:
                raise _ReplayError(
                    400, "invalid_json", "request body is JSON nested too deeply to read; send a flatter body"
                ) from exc
            if not isinstance(body, dict):
                raise _ReplayError(400, "invalid_request", "request body must be a JSON object")
            answer = self.server.data.answer(body.get("model"), body.get("messages"))
        except _ReplayError as error:
            self._send_error(error)
            return
        completion = _completion(body["model"], answer, _message_text(body["messages"]))
        self.server.ledger.add(body["model"], completion["usage"])
        if not body.get("stream"):
            self._send_json(200, completion)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in _chunks(completion):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


def _address(server: ThreadingHTTPServer) -> str:
    """``host:port`` the server is bound to."""
    host, port = server.server_address[:2]
    return f"{host.decode() if isinstance(host, bytes) else host}:{port}"


class ReplayHTTPServer(ThreadingHTTPServer):
    """The HTTP server; use :class:`ReplayServer` to run it in the background."""

    daemon_threads = True

    def __init__(self, data: ReplayData, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        super().__init__((host, port), _Handler)
        self.data = data
        self.verbose = verbose
        self.ledger = UsageLedger()


class ReplayServer:
    """Runs a replay server in a background thread; a context manager.

    Examples
    --------
    >>> with ReplayServer(ReplayData.from_paths(["../shared/data/routerbench"])) as server:  # doctest: +SKIP
    ...     litellm.completion("openai/claude-v2", messages, api_base=server.url, api_key="none")
    """

    def __init__(self, data: ReplayData, host: str = "127.0.0.1", port: int = 0):
        self.httpd = ReplayHTTPServer(data, host, port)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="uniroute-replay", daemon=True)

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients (ends in ``/v1``)."""
        return f"http://{_address(self.httpd)}/v1"

    def start(self) -> ReplayServer:
        """Serve in a background thread; returns ``self`` (see :attr:`url`)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and close its socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
