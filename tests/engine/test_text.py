import pytest

from uniroute.engine.text import MAX_ROUTING_CHARS, routing_text
from uniroute.exceptions import InputError


def test_plain_string_is_stripped():
    assert routing_text("  hello  ") == "hello"


def test_long_prompt_keeps_its_tail():
    prompt = "example " * 5000 + "QUESTION: which planet is largest?"
    text = routing_text(prompt)
    assert len(text) == MAX_ROUTING_CHARS
    assert text.endswith("which planet is largest?")


def test_one_megabyte_prompt_is_bounded():
    text = routing_text("x" * 1_000_000 + " end")
    assert len(text) == MAX_ROUTING_CHARS and text.endswith(" end")


def test_invalid_utf8_bytes_are_replaced():
    assert routing_text(b"caf\xc3\xa9 \xff\xfe ok") == "café \ufffd\ufffd ok"


def test_messages_use_user_and_assistant_turns_not_system():
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Translate to French"},
        {"role": "assistant", "content": "Sure, what text?"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "good morning"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
    ]
    assert routing_text(messages) == "Translate to French\nSure, what text?\ngood morning"


def test_system_text_is_the_fallback():
    assert routing_text([{"role": "system", "content": "only a system prompt"}]) == "only a system prompt"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:..."}}]}],
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]}],
        [{"role": "user", "content": "   "}],
    ],
)
def test_requests_without_text_give_empty_text(messages):
    assert routing_text(messages) == ""


def test_bad_types_raise_input_error():
    with pytest.raises(InputError, match="cannot route"):
        routing_text(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="message 0"):
        routing_text(["not a dict"])  # type: ignore[list-item]
