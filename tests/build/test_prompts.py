"""Reading prompt logs: every accepted format, and what is dropped and why."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from uniroute import InputError
from uniroute.build import read_prompt_log


def write(path: Path, lines: list[Any]) -> Path:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def contents(log: Any) -> list[str]:
    return [m["content"] for p in log.prompts for m in p.messages]


def test_prompt_messages_request_body_and_text_lines(tmp_path: Path) -> None:
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    log = read_prompt_log(
        write(
            tmp_path / "log.jsonl",
            [
                {"prompt": "plain prompt", "reference": "42"},
                {"messages": chat, "answer": "hello"},
                {"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "from a request"}]}},
                {"body": json.dumps({"messages": [{"role": "user", "content": "body as JSON text"}]})},
                {"messages": [{"role": "user", "content": [{"type": "text", "text": "text part"}]}]},
                "just a line of text",
                json.dumps("a JSON string"),
            ],
        )
    )
    assert contents(log) == [
        "plain prompt",
        "Be brief.",
        "Hi there",
        "from a request",
        "body as JSON text",
        "text part",
        "just a line of text",
        "a JSON string",
    ]
    assert [p.reference for p in log.prompts[:3]] == ["42", "hello", None]
    assert log.prompts[1].text_prompt() == chat and log.prompts[0].text_prompt() == "plain prompt"
    assert [p.line for p in log.prompts] == [1, 2, 3, 4, 5, 6, 7]
    assert not log.dropped


def test_litellm_spend_log_rows(tmp_path: Path) -> None:
    """LiteLLM_SpendLogs rows keep the request body as JSON text in proxy_server_request."""
    stored = {
        "request_id": "chatcmpl-1",
        "call_type": "acompletion",
        "model": "gpt-4o",
        "model_group": "team",
        "spend": 0.0012,
        "messages": "{}",
        "proxy_server_request": json.dumps(
            {"model": "team", "messages": [{"role": "user", "content": "What is the capital of Peru?"}]}
        ),
        "response": "{}",
    }
    not_stored = stored | {"request_id": "chatcmpl-2", "proxy_server_request": "{}"}
    redacted = stored | {
        "request_id": "chatcmpl-3",
        "proxy_server_request": json.dumps(
            {"messages": [{"role": "user", "content": "redacted-by-litellm"}]}
        ),
    }
    embedding = stored | {"request_id": "e-1", "call_type": "aembedding"}
    log = read_prompt_log(write(tmp_path / "spend.jsonl", [stored, not_stored, redacted, embedding]))
    assert contents(log) == ["What is the capital of Peru?"]
    assert log.dropped == {
        "spend log without the prompt (set store_prompts_in_spend_logs: true)": 1,
        "redacted by LiteLLM": 1,
        "not a chat request (call_type aembedding)": 1,
    }


def test_duplicates_and_empty_prompts_are_dropped_and_counted(tmp_path: Path) -> None:
    log = read_prompt_log(
        write(
            tmp_path / "log.jsonl",
            [
                {"prompt": "same"},
                {"messages": [{"role": "user", "content": "same"}]},
                "same",
                {"prompt": "   "},
                {"messages": [{"role": "user", "content": ""}]},
                {"prompt": "other"},
                {"no_prompt_here": 1},
                "",
            ],
        )
    )
    assert contents(log) == ["same", "other"]
    assert log.dropped == {"duplicate": 2, "empty": 2, "no prompt, messages or request body": 1}
    assert log.counts == [3, 1] and log.traffic() == ["same", "same", "same", "other"]  # repeats are traffic
    summary = log.summary()
    assert "2 distinct prompt(s) kept" in summary and "duplicate: 2" in summary and "7 line(s)" in summary


def test_bad_json_lines_are_named_or_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "log.jsonl", [{"prompt": "good"}, '{"prompt": "cut sho', {"prompt": "fine"}, "[1, 2"]
    )
    with pytest.raises(
        InputError, match=r"2 malformed line\(s\): line 2: not valid JSON.*line 4.*skip-invalid"
    ):
        read_prompt_log(path)
    with pytest.warns(UserWarning, match="line 2"):
        log = read_prompt_log(path, skip_invalid=True)
    assert contents(log) == ["good", "fine"] and log.dropped == {"invalid JSON": 2}


def test_json_nested_too_deeply_is_a_bad_line_or_text(tmp_path: Path) -> None:
    # before: a RecursionError out of read_prompt_log (a traceback), even with skip_invalid=True
    deep = "[" * 100_000 + "]" * 100_000
    path = write(tmp_path / "log.jsonl", [{"prompt": "good"}, deep, {"messages": deep}])
    with pytest.raises(InputError, match=r"1 malformed line\(s\): line 2: not valid JSON"):
        read_prompt_log(path)
    with pytest.warns(UserWarning, match="line 2"):
        log = read_prompt_log(path, skip_invalid=True)
    assert contents(log) == ["good"] and log.dropped == {
        "invalid JSON": 1,
        "messages not a non-empty list": 1,
    }


def test_a_log_with_nothing_usable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no prompt left"):
        read_prompt_log(write(tmp_path / "log.jsonl", [{"prompt": ""}, {"x": 1}]))
    with pytest.raises(InputError, match="no prompt log at"):
        read_prompt_log(tmp_path / "missing.jsonl")
    # `uniroute build --prompts DIR` said 'no prompt log at DIR'
    directory = f"^{re.escape(str(tmp_path))} "
    with pytest.raises(InputError, match=directory + "is a directory; expected a prompt log"):
        read_prompt_log(tmp_path)


def test_tool_results_are_left_out_with_the_tool_calls(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    turns = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "18C, sunny"},
        {"role": "function", "name": "weather", "content": "18C"},
    ]
    log = read_prompt_log(write(tmp_path / "log.jsonl", [{"messages": turns}]))
    # a 'tool' message without the assistant's tool_calls before it is a request providers refuse (400)
    assert log.prompts[0].messages == ({"role": "user", "content": "Weather in Paris?"},)


def test_a_lone_surrogate_escape_is_a_bad_line_not_a_prompt(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"prompt": "fine"}\n{"prompt": "bad \\ud800 text", "reference": "x"}\n', encoding="utf-8"
    )
    # before, the prompt was kept and the build crashed writing validation.jsonl (UnicodeEncodeError)
    with pytest.raises(InputError, match=r"line 2: holds a lone surrogate escape"):
        read_prompt_log(path)
    with pytest.warns(UserWarning, match="line 2"):
        log = read_prompt_log(path, skip_invalid=True)
    assert contents(log) == ["fine"] and log.dropped["invalid JSON"] == 1
