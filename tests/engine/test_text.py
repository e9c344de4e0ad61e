import numpy as np
import pytest

from uniroute.engine.text import MAX_ROUTING_CHARS, prompt_chars, prompt_text, routing_text, routing_texts
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
    with pytest.raises(InputError, match="message 1"):
        routing_text(["fine", 42])  # type: ignore[list-item]


def test_lone_surrogates_are_replaced_and_pairs_joined():
    assert routing_text("caf\udce9 ok \ud800") == "caf\ufffd ok \ufffd"
    assert routing_text("smile \ud83d\ude00") == "smile \U0001f600"
    messages = [{"role": "user", "content": [{"type": "text", "text": "bad \udcff end"}]}]
    assert routing_text(messages) == "bad \ufffd end"


def test_any_text_encodes_as_utf8():
    rng = np.random.default_rng(0)
    for _ in range(200):
        codes = rng.integers(0, 0x110000, size=int(rng.integers(1, 60)))
        codes[rng.random(len(codes)) < 0.3] = rng.integers(0xD800, 0xE000)
        raw = "".join(map(chr, codes))
        for text in (routing_text(raw), prompt_text(raw), routing_text(raw.encode("utf-8", "surrogatepass"))):
            text.encode("utf-8")


def test_responses_api_parts_count_as_text():
    items = [
        {"role": "system", "content": "be brief"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "what is 2+2?"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "4"}]},
        {"type": "function_call", "name": "calc", "arguments": "{}"},
        {"role": "user", "content": [{"type": "input_image", "image_url": "data:..."}]},
    ]
    assert routing_text(items) == "what is 2+2?\n4"


def test_a_list_of_strings_is_joined():
    assert routing_text(["first question", "  ", "second one"]) == "first question\nsecond one"


def test_prompt_text_is_the_whole_text():
    prompt = [{"role": "user", "content": "x" * 5000 + " end "}]
    assert prompt_text(prompt) == "x" * 5000 + " end"
    assert routing_text(prompt) == prompt_text(prompt)[-MAX_ROUTING_CHARS:]
    assert prompt_text(b"caf\xc3\xa9 \xff") == "café \ufffd"


def test_routing_texts_take_the_text_out_once_and_agree_with_the_one_prompt_functions():
    prompts = [
        "  short  ",
        "x" * (5 * MAX_ROUTING_CHARS),
        b"caf\xc3\xa9 \xff",
        "pair \ud83d\ude00 and lone \ud800",
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        [],
    ]
    texts, chars = routing_texts(prompts, with_chars=True)
    assert texts == [routing_text(p) for p in prompts]
    np.testing.assert_array_equal(chars, prompt_chars(prompts))
    assert chars.tolist() == [len(prompt_text(p)) for p in prompts]
    assert routing_texts(prompts) == (texts, None)
