"""Run the LiteLLM proxy from Python: start it on a free port, wait until it answers, stop it.

    from proxy_launcher import running_proxy
    with running_proxy(Path("config.yaml"), Path("proxy.log"), env={"UNIROUTE_STATE": "state/"}) as url:
        ...  # url is http://127.0.0.1:<port>

The proxy binds port 0 itself and the port is read from its log (no port is picked
first and bound later), and every wait has a deadline. Used by the LiteLLM proxy
tests and benchmarks/litellm_overhead.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

LITELLM = Path(sys.executable).parent / "litellm"
START_TIMEOUT = 180.0
_FAILED = "Application startup failed"
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class ProxyError(RuntimeError):
    """The proxy exited or did not come up in time (the message ends with its log)."""


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def start_proxy(config: Path, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``litellm --config config`` on 127.0.0.1, port 0, logging to ``log``.

    A crash of the interpreter (a fault in a C extension) writes every thread's Python
    stack into the log (``PYTHONFAULTHANDLER``), so it says where the proxy died.
    """
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", "0"],
            env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )


def wait_ready(process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> str:
    """The proxy's base URL once ``/health/liveliness`` answers 200; raises :class:`ProxyError`."""
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        text = _tail(log, 1_000_000)
        if process.poll() is not None or _FAILED in text:
            raise ProxyError(f"proxy startup failed (exit code {process.poll()}):\n{_tail(log)}")
        if url is None:
            found = _RUNNING.search(text)
            url = f"http://127.0.0.1:{found.group(1)}" if found else None
        if url is not None:
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise ProxyError(f"proxy not up after {timeout}s:\n{_tail(log)}")


def stop_proxy(process: subprocess.Popen) -> None:
    """Terminate the proxy (kill it if it does not stop within 15 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def running_proxy(
    config: Path, log: Path, env: Mapping[str, str] | None = None, timeout: float = START_TIMEOUT
) -> Iterator[str]:
    """A proxy serving ``config`` for the ``with`` block; yields its base URL."""
    process = start_proxy(config, log, env)
    try:
        yield wait_ready(process, log, timeout)
    finally:
        stop_proxy(process)
