"""The models of a build: a model group's deployments or --model strings, named for the front doors."""

from __future__ import annotations

from pathlib import Path

import pytest

from uniroute import HashingEmbedder, InputError, KMeansClusterMap, Router
from uniroute.build import deployments_from_config, deployments_from_models, profile_name
from uniroute.build.sampling import sample_per_cluster

CONFIG = """
model_list:
  - model_name: team
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/K_TEST_KEY
      rpm: 100
      temperature: 0
  - model_name: team
    litellm_params:
      model: azure/my-gpt4o-deployment
      api_base: https://example.invalid
      api_key: os.environ/K_TEST_KEY
      base_model: azure/gpt-4o
      input_cost_per_token: 0.0000025
      output_cost_per_token: 0.00001
  - model_name: team
    litellm_params:
      model: openai/mistralai/mixtral-8x7b-chat
      api_base: http://127.0.0.1:9/v1
      api_key: none
    model_info:
      input_cost_per_token: 0.0000006
      output_cost_per_token: 0.0000006
  - model_name: team
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: https://eu.example.invalid
      api_key: none
  - model_name: team
    litellm_params:
      model: ollama/llama3
    model_info:
      uniroute_profile: local-llama
      id: llama-box-1
  - model_name: other
    litellm_params:
      model: openai/gpt-4o
  - model_name: azure
    litellm_params:
      model: azure/my-deployment-name
      api_base: https://example.invalid
      api_key: none
    model_info:
      base_model: azure/gpt-4o
"""


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("K_TEST_KEY", "sk-from-env")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_a_group_becomes_one_deployment_per_profile(config: Path) -> None:
    deployments, notes = deployments_from_config(config, "team", concurrency=3)
    assert [d.name for d in deployments] == [
        "gpt-4o-mini",
        "azure/gpt-4o",
        "mistralai/mixtral-8x7b-chat",
        "local-llama",
    ]
    mini, azure, mixtral, llama = deployments
    assert mini.settings.api_key == "sk-from-env" and mini.settings.concurrency == 3
    assert mini.settings.params == {"temperature": 0}  # rpm is the LiteLLM Router's, not a call argument
    assert mini.prices is None
    assert azure.prices == (2.5e-6, 1e-5) and "input_cost_per_token" not in azure.settings.params
    assert "base_model" not in azure.settings.params
    assert mixtral.prices == (6e-7, 6e-7)
    assert llama.settings.model == "ollama/llama3"
    assert len(notes) == 1 and "same profile 'gpt-4o-mini'" in notes[0]


def test_front_doors_map_each_deployment_to_its_profile(config: Path) -> None:
    """The LiteLLM front door finds the profile build gave each deployment, with no extra config."""
    import yaml

    from uniroute.integrations.litellm import DeploymentRanker

    raw = [d for d in yaml.safe_load(config.read_text())["model_list"] if d["model_name"] == "team"]
    names = [profile_name(d) for d in raw]
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2)).fit(["a b c", "d e f", "g h i"])
    for name in dict.fromkeys(names):
        router.add_model(name, ["a b c", "d e f"], [1.0, 0.0], 0.001)
    ranker = DeploymentRanker(router)
    assert [ranker.profile_of(d) for d in raw] == names


def test_a_deployment_with_only_a_base_model_is_priced_as_that_model(config: Path) -> None:
    """An Azure deployment's name is the customer's own; LiteLLM prices it by its base_model."""
    (azure,), _ = deployments_from_config(config, "azure")
    assert azure.name == "azure/gpt-4o" and azure.prices == (2.5e-6, 1e-5)


def test_a_model_read_from_the_environment_is_named_as_litellm_resolves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM's Router resolves ``model: os.environ/NAME``; the profile must be named after the value."""
    import litellm

    from uniroute.integrations.litellm import DeploymentRanker, _compat

    monkeypatch.setenv("K_TEST_MODEL", "openai/gpt-4o-mini")
    deployment = {
        "model_name": "team",
        "litellm_params": {"model": "os.environ/K_TEST_MODEL", "api_key": "k"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(f"model_list: [{deployment}]\n", encoding="utf-8")
    (built,), _ = deployments_from_config(path, "team")
    assert built.name == profile_name(deployment) == "gpt-4o-mini"  # before: "K_TEST_MODEL"
    router = Router(HashingEmbedder(), KMeansClusterMap(n_clusters=2)).fit(["a b c", "d e f", "g h i"])
    router.add_model(built.name, ["a b c", "d e f"], [1.0, 0.0], 0.001)
    served = _compat.group_deployments(litellm.Router(model_list=[deployment]))[0]  # as the proxy holds it
    assert DeploymentRanker(router).profile_of(served) == built.name


def test_a_wildcard_deployment_is_left_out_with_a_note(tmp_path: Path) -> None:
    # before: it was called as the model "openai/*" and refused as unpriced, or left out on provider errors
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - {model_name: team, litellm_params: {model: openai/gpt-4o-mini, api_key: k}}\n"
        "  - {model_name: team, litellm_params: {model: 'openai/*', api_key: k}}\n",
        encoding="utf-8",
    )
    deployments, notes = deployments_from_config(path, "team")
    assert [d.name for d in deployments] == ["gpt-4o-mini"]
    assert notes == ["team[2] openai/* is a wildcard deployment, no one model to profile; left out"]


def test_a_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K_TEST_KEY", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(
        InputError, match=r"deployment 'team': api_key refers to environment variable K_TEST_KEY"
    ):
        deployments_from_config(path, "team")


def test_unknown_group_and_half_prices_are_errors(config: Path, tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"no deployment in model group 'nope'; groups: \['azure', 'other', 'team'\]"
    ):
        deployments_from_config(config, "nope")
    half = tmp_path / "half.yaml"
    half.write_text(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: openai/x\n"
        "      input_cost_per_token: 0.1\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="needs both input_cost_per_token and output_cost_per_token"):
        deployments_from_config(half, "g")


def test_model_strings_and_names() -> None:
    deployments = deployments_from_models(
        ["openai/gpt-4o-mini", "mine=openai/gpt-4o", "claude-3-haiku-20240307"], api_base=None, concurrency=2
    )
    assert [(d.name, d.settings.model) for d in deployments] == [
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
        ("mine", "openai/gpt-4o"),
        ("claude-3-haiku-20240307", "claude-3-haiku-20240307"),
    ]
    assert deployments[0].settings.concurrency == 2
    with pytest.raises(InputError, match="given twice"):
        deployments_from_models(["openai/gpt-4o", "azure/gpt-4o"])


def test_sampling_takes_small_clusters_whole_and_tops_up_around_kept_rows() -> None:
    import numpy as np

    clusters = np.array([0] * 10 + [1] * 3 + [2] * 6)
    rows, available, sampled = sample_per_cluster(clusters, 4, per_cluster=4, random_state=1)
    assert list(available) == [10, 3, 6, 0] and list(sampled) == [4, 3, 4, 0]
    assert rows == sample_per_cluster(clusters, 4, per_cluster=4, random_state=1)[0]  # seeded
    keep = [0, 1, 2, 3, 4, 10]  # an earlier sample: five from cluster 0 (more than 4 now), one from 1
    topped, _, sampled = sample_per_cluster(clusters, 4, per_cluster=4, keep=keep, random_state=7)
    assert set(keep) <= set(topped) and list(sampled) == [5, 3, 4, 0]


def test_traffic_cost_weighs_each_cluster_by_its_share_of_the_log() -> None:
    import numpy as np

    from uniroute.build.pipeline import traffic_cost

    # cluster 0 (90% of traffic) costs 1 a call, cluster 1 (10%) costs 10; the sample holds 2 of each
    costs, clusters = np.array([1.0, 1.0, 10.0, 10.0, np.nan]), np.array([0, 0, 1, 1, 2])
    assert traffic_cost(costs, clusters, np.array([0.9, 0.1, 0.0])) == pytest.approx(1.9)  # a plain mean: 5.5
    assert traffic_cost(costs, clusters, np.array([0.5, 0.0, 0.5])) == pytest.approx(1.0)  # no $ in cluster 2
    assert np.isnan(traffic_cost(np.full(5, np.nan), clusters, np.array([0.5, 0.5, 0.0])))


def test_share_allocation_splits_the_same_total_by_traffic_with_a_floor() -> None:
    import numpy as np

    from uniroute.build.sampling import cluster_targets

    shares = np.array([0.6, 0.3, 0.1])
    assert list(cluster_targets(10, shares)) == [10, 10, 10]
    assert list(cluster_targets(10, shares, "share")) == [18, 9, 4]  # 30 in all; 3 -> the floor of 4
    with pytest.raises(InputError, match="allocation must be one of"):
        cluster_targets(10, shares, "random")
    clusters = np.array([0] * 30 + [1] * 30 + [2] * 30)
    _, _, sampled = sample_per_cluster(clusters, 3, cluster_targets(10, shares, "share"))
    assert list(sampled) == [18, 9, 4]
