"""A client of the example proxy: ask, read the decision id, send a thumbs-down and a graded score.

    export LITELLM_MASTER_KEY=sk-local-demo     # the key the proxy was started with
    python examples/litellm_proxy/feedback_client.py http://127.0.0.1:4000

Any OpenAI client works for the request; the feedback is one authenticated POST. A 503
means the proxy could not reach Redis to look the decision up (another replica routed it):
send the same feedback again after ``Retry-After`` seconds, as ``send_feedback`` does.
"""

from __future__ import annotations

import os
import sys
import time

import httpx
import openai


def send_feedback(http: httpx.Client, body: dict, attempts: int = 3) -> dict:
    """POST one feedback event; a 503 is sent again after its ``Retry-After`` (at most ``attempts`` tries)."""
    for attempt in range(1, attempts + 1):
        answer = http.post("/uniroute/feedback", json=body)
        if answer.status_code != 503 or attempt == attempts:
            answer.raise_for_status()
            return answer.json()
        time.sleep(float(answer.headers.get("retry-after", "1")))
    raise ValueError("attempts must be >= 1")


def ask_and_rate(base_url: str, api_key: str, question: str) -> dict:
    """One chat request, then a thumbs-down and a graded score for its decision; returns the last answer."""
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": question}]
    )
    decision_id = raw.headers["x-uniroute-decision-id"]
    print(f"{raw.parse().choices[0].message.content!r} from {raw.headers['x-uniroute-profile']}, "
          f"decision {decision_id}")  # fmt: skip
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}) as http:
        for body in (
            {"decision_id": decision_id, "score": False},
            {"decision_id": decision_id, "score": 0.8},
        ):
            answer = send_feedback(http, body)
            print("feedback:", answer)
        stats = http.get("/uniroute/feedback/stats").json()
    print("this replica:", stats["requests"], "store:", stats["store"])
    return answer


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:4000"
    ask_and_rate(url, os.environ.get("LITELLM_MASTER_KEY", "sk-local-demo"), "What is 12 times 7?")
