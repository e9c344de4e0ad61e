"""Reading text files line by line with errors that name the line and say what to do."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import InputError

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
SKIP_HINT = "pass skip_invalid=True (CLI: --skip-invalid) to drop them and keep the good ones"
UTF8_HINT = "re-save the file as UTF-8"


def not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    """Why a line is not UTF-8, with the offending byte and column."""
    return f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}; {UTF8_HINT})"


def has_lone_surrogate(value: Any) -> bool:
    """True if a parsed JSON value holds a string that is not valid Unicode (a lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def settle(path: str | Path, problems: Sequence[str], skip_invalid: bool, what: str = "line") -> None:
    """Raise one :class:`~uniroute.InputError` listing the bad lines, or warn when skipping them."""
    if not problems:
        return
    message = f"{path}: {len(problems)} malformed {what}(s): " + "; ".join(problems[:10])
    message += " ..." if len(problems) > 10 else ""
    if not skip_invalid:
        raise InputError(f"{message}. Fix them, or {SKIP_HINT}")
    warnings.warn(message + "; skipped", stacklevel=4)


def read_jsonl(path: str | Path, parse: Callable[[Any, int], Any], skip_invalid: bool = False) -> list[Any]:
    """``parse(record, line_number)`` for each non-blank line of a JSON Lines file.

    Lines that are not UTF-8, not JSON (or nested too deeply for Python), hold a lone
    surrogate escape (``"\\ud800"``) or that ``parse`` rejects (``ValueError``/``TypeError``) raise one
    :class:`~uniroute.InputError` naming their line numbers, or with
    ``skip_invalid=True`` are dropped with a warning.
    """
    path = Path(path)
    parsed, errors = [], []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                errors.append(f"line {number}: {not_utf8(raw, exc)}")
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if _SURROGATE_ESCAPE.search(raw) and has_lone_surrogate(record):
                    raise ValueError("holds a lone surrogate escape such as \\ud800, which is not text")
                parsed.append(parse(record, number))
            except (ValueError, TypeError) as exc:
                errors.append(f"line {number}: {exc}")
            except RecursionError:
                errors.append(f"line {number}: JSON nested too deeply")
    settle(path, errors, skip_invalid)
    return parsed
