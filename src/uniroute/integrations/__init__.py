"""Front doors that put the uniroute engine behind other tools.

:mod:`uniroute.integrations.litellm`
    A routing strategy for ``litellm.Router`` and a callback for the LiteLLM proxy.
:mod:`uniroute.integrations.langchain`
    ``UniRouteChatModel``, a LangChain chat model over routed child chat models.
:mod:`uniroute.integrations.litellm_embedder`
    Embeddings through ``litellm.embedding`` (the ``"litellm"`` embedder).

Each module imports its SDK itself; ``import uniroute`` imports none of them.
"""
