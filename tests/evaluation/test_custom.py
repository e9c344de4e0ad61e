"""Evaluating a router of one's own: the documented protocol, from Python and from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from uniroute.evaluation import evaluate_router
from uniroute.exceptions import InputError

ROUTER_MODULE = '''
class KeywordRouter:
    """Math to m0, everything else to m1; above λ = 100, everything to m0 (the cheapest)."""

    def fit(self, train):
        assert {"m0", "m1"} <= set(train.models)
        self.fitted_on = len(train)
        return self

    def route(self, prompts, lambdas):
        return [
            ["m0" if lam > 100 or "Arithmetic" in p else "m1" for p in prompts] for lam in lambdas
        ]


def make_router():
    return KeywordRouter()


def broken():
    return object()
'''


@pytest.fixture()
def router_module(tmp_path, monkeypatch):
    (tmp_path / "my_routers.py").write_text(ROUTER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("my_routers")


def test_python_entry_point_scores_a_user_router_like_the_built_in_ones(router_module, tmp_path) -> None:
    from test_evaluation_cli import _hand_test_set  # the 4-prompt test set with hand-computed values

    from uniroute.datasets import load_jsonl

    _hand_test_set(tmp_path / "test.jsonl")
    test = load_jsonl(tmp_path / "test.jsonl")
    train = load_jsonl(tmp_path / "test.jsonl")  # fit and profile on the same 4 prompts: fine for this check
    result = evaluate_router(
        router_module.make_router,
        train,
        test,
        name="mine",
        embedder="hashing",
        routers=("oracle", "random"),
        bootstrap=200,
        progress=False,
    )
    mine = result["routers"]["mine"]
    # it routes exactly like the oracle (math -> m0, poetry -> m1, then all to m0): same curve, same numbers
    assert mine["area"] == pytest.approx(result["routers"]["oracle"]["area"]) == pytest.approx(0.9375)
    assert mine["qnc"] == pytest.approx(0.15) and mine["e_p_lambda0"] == 0.0
    assert result["bootstrap"]["primary"] == "mine"
    assert result["bootstrap"]["vs"]["oracle"]["area_diff_ci"] == pytest.approx([0.0, 0.0], abs=1e-12)


def test_cli_router_option_and_its_errors(router_module, tmp_path, make_data, capsys) -> None:
    from test_evaluation_cli import _eval, _hand_test_set, _write

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _write(data_dir / "train.jsonl", make_data(30, 0, 5))
    _hand_test_set(data_dir / "test.jsonl")
    out = tmp_path / "out"
    assert _eval(data_dir, out, tmp_path, "--router", "my_routers:make_router", "--map", "kmeans") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["primary"] == "my_routers:make_router"
    assert results["routers"]["my_routers:make_router"]["area"] == pytest.approx(0.9375)
    assert "uniroute-learnedmap" not in results["routers"]  # --map kmeans chose the maps
    assert set(results["bootstrap"]["vs"]) >= {"uniroute-kmeans", "knn", "oracle"}
    for spec, message in [
        ("my_routers:broken", "lacks fit(train) and route(prompts, lambdas)"),
        ("my_routers", "module:factory"),
        ("no_such_module_xyz:f", "cannot import"),
    ]:
        assert _eval(data_dir, out, tmp_path, "--router", spec, "--bootstrap", "0") == 2
        assert message in capsys.readouterr().err


def test_cli_router_on_data_without_prompt_text_is_refused(router_module, tmp_path, capsys) -> None:
    # before: the user's router was skipped (it needs text) but stayed the primary, and the run
    # ended in "primary router ... is not among" (static) or a KeyError traceback (unseen)
    from test_evaluation_cli import _eval

    data = tmp_path / "costs.npz"
    np.savez(
        data,
        scores=(np.random.default_rng(0).random((40, 3)) < 0.5).astype(np.float32),
        models=np.array(["m0", "m1", "m2"]),
        benchmark=np.array(["a", "b"] * 20),
        item=np.arange(40),
        costs=np.tile([0.1, 0.5, 1.0], (40, 1)),
    )
    for protocol in ("static", "unseen"):
        args = ("--router", "my_routers:make_router", "--protocol", protocol, "--bootstrap", "0")
        assert _eval(data, tmp_path / "out", tmp_path, *args) == 2
        assert "has no prompt text" in capsys.readouterr().err


def test_bad_route_output_is_an_input_error(make_data) -> None:
    from uniroute.evaluation.custom import UserRouter

    class Wrong:
        def fit(self, train):
            return self

        def route(self, prompts, lambdas):
            return [["not-a-model"] * len(prompts) for _ in lambdas]

    from uniroute.evaluation.baselines import Split

    data = make_data(5, 0, 3)
    with pytest.raises(InputError, match="one model name of"):
        UserRouter(Wrong).route(Split(data, data, data))


def test_the_example_router_runs_through_the_python_entry_point(pair) -> None:
    """examples/custom_router.py, the documented example, fits and routes like a real router."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / "custom_router.py"
    spec = importlib.util.spec_from_file_location("custom_router_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, test = pair
    result = evaluate_router(
        module.TfidfKNNRouter,
        train,
        test,
        name="tfidf-knn",
        embedder="hashing",
        routers=("zerorouter", "oracle"),
        bootstrap=100,
        progress=False,
    )
    mine, zero = result["routers"]["tfidf-knn"], result["routers"]["zerorouter"]
    # neighbours share the prompt's topic, so it finds the cheap model that is right on it
    assert mine["area"] > zero["area"] + 0.1 and mine["quality_lambda0"] > 0.8
    assert result["bootstrap"]["vs"]["zerorouter"]["area_diff_ci"][0] > 0
