"""LangChain over a LiteLLM Router that routes with uniroute, offline.

    python examples/langchain_litellm_router.py

The other way to put uniroute behind LangChain: ``langchain_litellm.ChatLiteLLMRouter``
over a ``litellm.Router`` whose routing strategy is uniroute's
(:func:`uniroute.integrations.litellm.install`). The deployments answer with
``mock_response`` (their own name), so nothing leaves the machine. The router
state and deployments are the ones of examples/litellm_sdk.py.

Per request, ``litellm_metadata={"uniroute": {...}}`` sets λ, an operating point
or candidates, and LiteLLM writes the decision back into that dict under
``"uniroute_decision"``. Prefer :class:`uniroute.integrations.langchain.UniRouteChatModel`
when the children are LangChain chat models; use this when LiteLLM already holds
your deployments, keys, retries and cooldowns.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from litellm_sdk import build_demo_router, model_list

QUESTIONS = [
    "Arithmetic question: compute 17 times 4 and answer with the number only.",
    "Poetry request: write a short haiku about rivers, with vivid imagery.",
    "Arithmetic question: compute 5 plus 8 and answer with the number only.",
]


def main() -> None:
    import litellm
    from langchain_litellm import ChatLiteLLMRouter

    from uniroute.integrations.litellm import install

    with tempfile.TemporaryDirectory() as tmp:
        state = build_demo_router().save(Path(tmp) / "state")
        router = litellm.Router(model_list=model_list(), num_retries=1)
        install(router, state, operating_points={"best": 0.0, "balanced": 30.0})

    llm = ChatLiteLLMRouter(router=router, model_name="demo")
    prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{question}")])
    for point in ("best", "balanced"):
        print(f"operating point {point!r}:")
        for question in QUESTIONS:
            control = {"uniroute": {"operating_point": point}}
            chain = prompt | llm.bind(litellm_metadata=control) | StrOutputParser()
            answer = chain.invoke({"question": question})
            decision = control["uniroute_decision"]
            print(
                f"  {question[:48]:<48} -> {answer:<10} (deployment {decision['deployment']}, "
                f"λ={decision['lambda']:g}, expected error {decision['expected_error']:.3f}, "
                f"${decision['cost']:.4f})"
            )

    chunks = list(llm.bind(litellm_metadata={"uniroute": {"lambda": 30.0}}).stream(QUESTIONS[1]))
    deployment = chunks[0].response_metadata["model_id"]
    print(f"stream at λ=30: {''.join(c.text for c in chunks)!r} from deployment {deployment}")


if __name__ == "__main__":
    main()
