import subprocess
import sys

import uniroute


def test_public_api_is_pinned():
    assert sorted(uniroute.__all__) == sorted(
        [
            "CLUSTER_MAPS",
            "EMBEDDERS",
            "CachedEmbedder",
            "ClusterMap",
            "Decision",
            "Embedder",
            "EmbedderMismatchError",
            "FeedbackUnavailableError",
            "GradingError",
            "HashingEmbedder",
            "InputError",
            "KMeansClusterMap",
            "LearnedClusterMap",
            "MissingExtraError",
            "ModelProfile",
            "NotFittedError",
            "OnboardingError",
            "PrecomputedEmbedder",
            "Price",
            "Router",
            "SentenceTransformerEmbedder",
            "StateError",
            "StaticEmbedder",
            "UniRouteError",
            "UnknownDecisionError",
            "UnknownModelError",
            "UnrankedAnswerError",
            "as_embedder",
            "get_embedder",
            "load_router",
            "register_cluster_map",
            "register_embedder",
            "routing_text",
            "save_router",
        ]
    )
    for name in uniroute.__all__:
        assert getattr(uniroute, name) is not None


def test_import_loads_no_sdk_or_heavy_library():
    code = (
        "import sys, uniroute; from uniroute import Router; "
        "heavy = {'litellm', 'langchain_core', 'torch', 'sentence_transformers', 'matplotlib', 'openai'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_old_root_spelling_warns_and_is_the_same_class():
    import pytest

    with pytest.warns(DeprecationWarning, match="UniRouteError"):
        old = uniroute.UnirouteError
    assert old is uniroute.UniRouteError
