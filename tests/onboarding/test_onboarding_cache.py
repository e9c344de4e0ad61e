"""The answer cache shared by runs in other processes (two `uniroute onboard` on one cache directory)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from uniroute.onboarding.cache import ResponseCache

# Another run opening the cache: it writes ``marker`` first, then opens (and recovers) the cache.
OPEN_IN_ANOTHER_PROCESS = (
    "import sys, warnings; from pathlib import Path\n"
    "warnings.simplefilter('ignore')\n"
    "from uniroute.onboarding.cache import ResponseCache\n"
    "Path(sys.argv[2]).touch()\n"
    "with ResponseCache(sys.argv[1]):\n"
    "    pass\n"
)


def record(key: str) -> dict[str, Any]:
    return {"key": key, "response": key * 1000, "cost": 0.001}


def test_a_run_opening_the_cache_does_not_cut_the_record_another_run_is_writing(tmp_path: Path) -> None:
    """Found by running two processes on one cache: a run that opened it while another was halfway
    through appending a long answer took that for a line cut short by a crash and truncated the
    file, so the answer was lost (its prompt paid again) and the rest of it left a damaged line."""
    path, marker = tmp_path / "answers.jsonl", tmp_path / "started"
    with ResponseCache(path) as cache:
        cache.put(record("first"))
        real = cache._handle
        other: list[subprocess.Popen[bytes]] = []

        class HalfwayThrough:
            """Writes half the record, lets the other run open the cache, then writes the rest."""

            def write(self, text: str) -> None:
                real.write(text[: len(text) // 2])
                real.flush()
                other.append(
                    subprocess.Popen([sys.executable, "-c", OPEN_IN_ANOTHER_PROCESS, str(path), str(marker)])
                )
                deadline = time.monotonic() + 60
                while not marker.exists() and other[0].poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                try:
                    other[0].wait(timeout=1.0)  # long enough to open and recover, unless made to wait
                except subprocess.TimeoutExpired:
                    pass
                real.write(text[len(text) // 2 :])

            def flush(self) -> None:
                real.flush()

        cache._handle = HalfwayThrough()
        cache.put(record("second"))
        cache._handle = real
    assert other[0].wait(timeout=60) == 0
    records, damaged = ResponseCache.read(path)
    assert sorted(records) == ["first", "second"] and damaged == 0


def test_a_line_nested_too_deeply_is_skipped_like_any_damaged_line(tmp_path: Path) -> None:
    """Before, a line such as ``[[[...]]]`` nested 100 000 deep made opening the cache (and pricing from
    it) raise a bare RecursionError; now it is a damaged line: skipped with a warning, prompt called again."""
    path = tmp_path / "answers.jsonl"
    nested = "[" * 100_000 + "]" * 100_000
    path.write_text(json.dumps(record("good")) + "\n" + nested + "\n", encoding="utf-8")
    records, damaged = ResponseCache.read(path)
    assert sorted(records) == ["good"] and damaged == 1
    with pytest.warns(UserWarning, match="dropped 1 damaged line"), ResponseCache(path) as cache:
        assert cache.get("good") == record("good") and cache.recovered == 1
