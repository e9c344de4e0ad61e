"""Write the example's traffic log and the answers the replay server plays back (run once; output committed).

``traffic.jsonl``: 150 requests a small assistant might see (sums, products, capitals,
unit conversions), in the OpenAI ``messages`` format with a ``reference`` answer, plus a
few repeated requests, as real logs have. ``answers.csv``: what three models ``small``,
``medium`` and ``large`` answer to each prompt, in RouterBench's CSV format, so that
``uniroute replay-server --data answers.csv`` serves them on 127.0.0.1 with no network.
``small`` is right on sums and well-known capitals, ``medium`` also on products,
``large`` on nearly everything. Deterministic (seeded).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
MODELS = ("small", "medium", "large")
CAPITALS = {
    "France": ("Paris", True),
    "Japan": ("Tokyo", True),
    "Italy": ("Rome", True),
    "Germany": ("Berlin", True),
    "Spain": ("Madrid", True),
    "Canada": ("Ottawa", False),
    "Australia": ("Canberra", False),
    "Kazakhstan": ("Astana", False),
    "Bhutan": ("Thimphu", False),
    "Burkina Faso": ("Ouagadougou", False),
    "Myanmar": ("Naypyidaw", False),
    "Tanzania": ("Dodoma", False),
}
WRONG_CAPITALS = {
    "Canada": "Toronto",
    "Australia": "Sydney",
    "Kazakhstan": "Almaty",
    "Tanzania": "Dar es Salaam",
}


def requests(rng: random.Random) -> list[tuple[str, str, str, dict[str, bool]]]:
    """(topic, prompt, reference, which models answer right) for each distinct request."""
    out = []
    for _ in range(40):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        out.append(
            (
                "sum",
                f"What is {a} + {b}? Reply with the number only.",
                str(a + b),
                dict.fromkeys(MODELS, True),
            )
        )
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < 40:
        pairs.add((rng.randint(12, 99), rng.randint(12, 99)))
    for a, b in sorted(pairs):
        right = {"small": rng.random() < 0.3, "medium": rng.random() < 0.9, "large": True}
        out.append(("product", f"Compute {a} times {b}. Give just the result.", str(a * b), right))
    for i in range(40):
        country = list(CAPITALS)[i % len(CAPITALS)]
        capital, common = CAPITALS[country]
        right = {"small": common or rng.random() < 0.2, "medium": common or rng.random() < 0.6, "large": True}
        prompt = f"What is the capital of {country}? Answer with the city name. (question {i + 1})"
        out.append(("capital", prompt, capital, right))
    combos = [(c, i) for c in (1.5, 2, 2.5, 3, 3.5, 4) for i in ("milk", "water", "flour", "rice", "stock")]
    for cups, ingredient in rng.sample(combos, 30):
        prompt = f"A recipe needs {cups} cups of {ingredient}. With 1 cup = 240 ml, how many ml is that? "
        prompt += "Number only."
        right = {"small": False, "medium": rng.random() < 0.5, "large": rng.random() < 0.95}
        out.append(("convert", prompt, str(int(cups * 240)), right))
    return out


def wrong(topic: str, prompt: str, reference: str, rng: random.Random) -> str:
    if topic == "capital":
        country = prompt.split("capital of ")[1].split("?")[0]
        return WRONG_CAPITALS.get(country, "I am not sure.")
    return str(int(reference) + rng.choice([-10, -1, 1, 10, 100]))


def main() -> None:
    rng = random.Random(0)
    rows = requests(rng)
    lines = []
    for topic, prompt, reference, _ in rows:
        lines.append(
            {"messages": [{"role": "user", "content": prompt}], "reference": reference, "topic": topic}
        )
    repeats = [lines[i] for i in rng.sample(range(len(lines)), 8)]  # the same request sent again
    log = lines + repeats
    rng.shuffle(log)
    (HERE / "traffic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")
    header = ["sample_id", "prompt", "eval_name"]
    for model in MODELS:
        header += [model, f"{model}|model_response", f"{model}|total_cost"]
    with (HERE / "answers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, (topic, prompt, reference, right) in enumerate(rows):
            row = [f"{topic}.{i}", repr([prompt]), topic]
            for model in MODELS:
                answer = reference if right[model] else wrong(topic, prompt, reference, rng)
                row += [str(float(right[model])), repr([answer]), "0"]
            writer.writerow(row)
    print(f"wrote {len(log)} requests ({len(rows)} distinct) to traffic.jsonl, answers to answers.csv")


if __name__ == "__main__":
    main()
