import os
import socket
import stat
from pathlib import Path

import numpy as np
import pytest

from uniroute import HashingEmbedder, InputError, KMeansClusterMap, Router
from uniroute.engine.files import atomic_write_bytes, read_regular_file


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_write_replaces_a_regular_file(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temporary file left


def test_atomic_write_refuses_a_fifo_and_leaves_it_alone(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=f"{fifo}.*FIFO"):
        atomic_write_bytes(fifo, b"data")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_atomic_write_refuses_a_socket_and_a_directory(tmp_path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(InputError, match="socket"):
            atomic_write_bytes(tmp_path / "sock", b"data")
        assert stat.S_ISSOCK(os.lstat(tmp_path / "sock").st_mode)
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match="directory"):
        atomic_write_bytes(tmp_path / "dir", b"data")


def test_atomic_write_refuses_a_symlink_to_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    with pytest.raises(InputError, match="FIFO"):
        atomic_write_bytes(tmp_path / "link", b"data")
    assert (tmp_path / "link").is_symlink()


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path, umask_022):
    atomic_write_bytes(tmp_path / "new.txt", b"x")
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o644
    os.chmod(tmp_path / "new.txt", 0o640)
    atomic_write_bytes(tmp_path / "new.txt", b"y")
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640


def test_a_saved_state_is_readable_by_other_users_under_umask_022(toy_data, tmp_path, umask_022):
    router = Router(HashingEmbedder(dim=32), KMeansClusterMap(n_clusters=2, random_state=0))
    router.fit(toy_data["prompts"])
    for path in (router.save(tmp_path / "state"), router.save(tmp_path / "one.npz")):
        files = list(path.iterdir()) if path.is_dir() else [path]
        assert {stat.S_IMODE(os.stat(f).st_mode) for f in files} == {0o644}


def test_read_regular_file_checks_kind_size_and_place(tmp_path):
    (tmp_path / "ok").write_bytes(b"12345")
    assert read_regular_file(tmp_path / "ok", 5, inside=tmp_path) == b"12345"
    with pytest.raises(InputError, match="over the 4 bytes"):
        read_regular_file(tmp_path / "ok", 4)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="FIFO"):
        read_regular_file(tmp_path / "pipe", 10)  # refused from stat: would block if opened
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "out").symlink_to(tmp_path / "ok")
    with pytest.raises(InputError, match="outside"):
        read_regular_file(tmp_path / "inner" / "out", 10, inside=tmp_path / "inner")
    with pytest.raises(FileNotFoundError):
        read_regular_file(Path(tmp_path / "missing"), 10)


def test_embedding_cache_shards_are_written_atomically_with_the_umask(tmp_path, umask_022):
    from uniroute.engine.cache import CachedEmbedder

    cached = CachedEmbedder(HashingEmbedder(dim=16), directory=tmp_path)
    np.testing.assert_allclose(cached.encode(["a b"]), HashingEmbedder(dim=16).encode(["a b"]))
    shards = list(tmp_path.rglob("*.npz"))
    assert len(shards) == 1 and stat.S_IMODE(os.stat(shards[0]).st_mode) == 0o644


def test_files_are_opened_in_binary_mode_where_the_os_has_a_text_mode(tmp_path, monkeypatch):
    """Windows opens an ``os.open`` descriptor in text mode unless given O_BINARY: writes turn LF into
    CRLF and reads stop at a Ctrl-Z byte, corrupting every .npz state. Simulated here: a stand-in
    O_BINARY flag must reach ``os.open`` for both the write and the read."""
    sentinel = 1 << 29
    real_open = os.open
    flags_seen = []

    def recording_open(path, flags, *args):
        flags_seen.append(flags)
        return real_open(path, flags & ~sentinel, *args)

    monkeypatch.setattr(os, "O_BINARY", sentinel, raising=False)
    monkeypatch.setattr(os, "open", recording_open)
    data = b"a\nb\r\n\x1ac"
    atomic_write_bytes(tmp_path / "state.npz", data)
    assert read_regular_file(tmp_path / "state.npz", 100) == data
    assert len(flags_seen) == 2
    assert all(flags & sentinel for flags in flags_seen), [hex(f) for f in flags_seen]
