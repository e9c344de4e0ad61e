"""A pool of fake models on one OpenAI-compatible server (127.0.0.1), and a small labelled prompt log."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onboarding.onboarding_fakes import FakeLLMServer, completion

# $ per input and output token of the fake deployments; "big" costs ten times the others
PRICES = {"mathy": (1e-6, 2e-6), "geo": (1e-6, 2e-6), "big": (1e-5, 2e-5), "judge": (1e-6, 1e-6)}
CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Egypt": "Cairo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Norway": "Oslo",
    "Chile": "Santiago",
}


def make_log_rows(n_math: int = 24, n_geo: int = 16, seed: int = 0) -> list[dict[str, Any]]:
    """Arithmetic and capital-city prompts, each with its reference."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_math):
        a, b = (int(x) for x in rng.integers(10, 99, size=2))
        rows.append(
            {"prompt": f"Arithmetic: what is {a} plus {b}? Reply with the number.", "reference": str(a + b)}
        )
    countries = list(CAPITALS)
    for i in range(n_geo):
        country = countries[i % len(countries)]
        rows.append(
            {
                "prompt": f"Geography quiz {i}: name the capital city of {country}. One word.",
                "reference": CAPITALS[country],
            }
        )
    return rows


def write_log(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def right_answer(prompt: str) -> str:
    if prompt.startswith("Arithmetic"):
        words = prompt.split()
        return str(int(words[3]) + int(words[5].rstrip("?")))
    country = prompt.split("capital city of ")[1].split(".")[0]
    return CAPITALS[country]


def skill_answer(model: str, prompt: str) -> str:
    """'mathy' is right on arithmetic only, 'geo' on capitals only, 'big' on both."""
    is_math = prompt.startswith("Arithmetic")
    right = model == "big" or (model == "mathy") == is_math
    return right_answer(prompt) if right else "I am not sure."


class FakePool:
    """Answers every model on one fake server (the onboarding tests' ``FakeLLMServer``).

    ``answer(model, prompt)`` gives the text; usage counts words. ``calls`` counts the
    requests per (model, prompt); models in ``failing`` get 500 on every call. With
    ``hold_after=N`` every request after the first N waits until ``gate`` is set (so a
    test can interrupt a client with calls in flight).
    """

    def __init__(self, answer: Callable[[str, str], str] = skill_answer):
        self.answer = answer
        self.calls: Counter[tuple[str, str]] = Counter()
        self.failing: set[str] = set()
        self.gate = threading.Event()
        self.hold_after: int | None = None
        self.lock = threading.Lock()
        self.server = FakeLLMServer(self.script)

    def script(
        self, prompt: str, attempt: int, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None, float]:
        model = body["model"]
        with self.lock:
            self.calls[(model, prompt)] += 1
            held = self.hold_after is not None and self.total > self.hold_after
        if held:
            self.gate.wait(timeout=60)
        if model in self.failing:
            return 500, None, 0.0
        text = self.answer(model, prompt)
        reply = completion(text)
        n_in, n_out = len(prompt.split()), len(text.split())
        reply["usage"] = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
        return 200, reply, 0.0

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def per_model(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (model, _), n in self.calls.items():
            out[model] += n
        return out

    def __enter__(self) -> FakePool:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.__exit__()


def write_config(
    path: Path,
    url: str,
    models: Sequence[str] = ("mathy", "geo", "big"),
    group: str = "team",
    judge: bool = False,
) -> Path:
    """A LiteLLM config: one deployment per fake model in ``group`` (and a ``judge`` group), keys via
    os.environ/FAKE_KEY."""
    lines = ["model_list:"]
    for model in [*models, *(["judge"] if judge else [])]:
        lines += [
            f"  - model_name: {'judge' if model == 'judge' else group}",
            "    litellm_params:",
            f"      model: openai/{model}",
            f"      api_base: {url}",
            "      api_key: os.environ/FAKE_KEY",
            "      max_tokens: 16",
            "    model_info:",
            f"      input_cost_per_token: {PRICES.get(model, (1e-6, 1e-6))[0]}",
            f"      output_cost_per_token: {PRICES.get(model, (1e-6, 1e-6))[1]}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Judge templates for the fake judge: it finds the prompt and the answer(s) between the markers.
ABSOLUTE_TEMPLATE = "Q<<{prompt}>>\nA<<{response}>>\nRate the answer; end with SCORE: <1-10>.\n"
PAIRWISE_TEMPLATE = (
    "Q<<{prompt}>>\nX<<{answer_a}>>\nY<<{answer_b}>>\nWhich is better? End with VERDICT: A, B or TIE.\n"
)


def _between(text: str, start: str) -> str:
    return text.split(start + "<<", 1)[1].split(">>", 1)[0]


def judge_rule(content: str) -> str:
    """The fake judge: SCORE 10 for a right answer and 1 for a wrong one; the right answer wins a pair."""
    question = _between(content, "Q")
    right = right_answer(question)
    if "A<<" in content:
        return f"The answer is {'right' if _between(content, 'A') == right else 'wrong'}.\nSCORE: " + (
            "10" if _between(content, "A") == right else "1"
        )
    a, b = _between(content, "X") == right, _between(content, "Y") == right
    return "VERDICT: " + ("A" if a and not b else "B" if b and not a else "TIE")


def pool_with_judge(model: str, prompt: str) -> str:
    """The skilled fake models, and the fake judge under the model name 'judge'."""
    return judge_rule(prompt) if model == "judge" else skill_answer(model, prompt)
