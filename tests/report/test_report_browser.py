"""The page renders in a real headless browser (Debian's ``chromium``), where one is installed."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from uniroute.report import build_report, write_report

CHROMIUM = Path("/usr/bin/chromium")


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed image data of a PNG (filter bytes included)."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, data = 8, 0, 0, b""
    while pos < len(raw):
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        chunk = raw[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + length
    return width, height, zlib.decompress(data)


@pytest.mark.integration
def test_page_renders_in_headless_chromium(report_router, topics_data, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium) - browser rendering not checked")
    data = build_report(report_router, prompts=topics_data["prompts"], budget=0.003)
    page = write_report(data, tmp_path / "report")["html"]
    shot = tmp_path / "shot.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1100,1400",
        f"--screenshot={shot}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"no screenshot; chromium said: {done.stderr[-2000:]}"
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1100, 1400)
    # a rendered page, not a blank one: many distinct byte values (text, the plot's colours, the heatmap)
    assert len(set(pixels)) > 100
    assert shot.stat().st_size > 20_000
    shutil.copy(shot, tmp_path / "kept.png")  # left in tmp_path for a look when the test is run by hand
