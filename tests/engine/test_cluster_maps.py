import numpy as np
import pytest
from sklearn.base import clone

from uniroute import HashingEmbedder, KMeansClusterMap, LearnedClusterMap
from uniroute.exceptions import InputError, NotFittedError

X = np.array([[1.0, 0.0], [0.95, 0.05], [0.0, 1.0], [0.05, 0.95]], dtype=np.float32)


def test_kmeans_follows_the_estimator_contract():
    cmap = KMeansClusterMap(n_clusters=2, random_state=3)
    assert cmap.get_params() == {
        "n_clusters": 2,
        "assignment": "soft",
        "temperature": "auto",
        "random_state": 3,
    }
    assert cmap.fit(X) is cmap
    assert cmap.cluster_centers_.shape == (2, 2)
    assert not hasattr(clone(cmap), "cluster_centers_")


def test_hard_assignment_is_one_hot_on_the_nearest_centre():
    cmap = KMeansClusterMap(n_clusters=2, assignment="hard").fit(X)
    phi = cmap.predict_proba(X)
    assert set(np.unique(phi)) == {0.0, 1.0}
    assert phi[0].argmax() == phi[1].argmax() != phi[2].argmax() == phi[3].argmax()
    np.testing.assert_allclose(cmap.cluster_weights_, [0.5, 0.5])


def test_auto_temperature_is_the_mean_squared_distance_to_the_nearest_centre():
    spread = np.array([[1.0, 0.0], [0.7, 0.3], [0.0, 1.0], [0.3, 0.7]], dtype=np.float32)
    cmap = KMeansClusterMap(n_clusters=2).fit(spread)
    centres = cmap.cluster_centers_
    nearest = ((spread[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    assert cmap.temperature_ == pytest.approx(nearest.mean(), rel=1e-4)
    assert cmap.temperature == "auto"
    between = np.array([[0.55, 0.45]], dtype=np.float32)
    d = ((between[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    expected = np.exp(-d / cmap.temperature_) / np.exp(-d / cmap.temperature_).sum()
    np.testing.assert_allclose(cmap.predict_proba(between), expected, atol=1e-5)
    assert 0.5 < expected.max() < 0.99


def test_soft_assignment_sums_to_one_and_prefers_the_nearest_centre():
    cmap = KMeansClusterMap(n_clusters=2, assignment="soft", temperature=0.5).fit(X)
    phi = cmap.predict_proba(X)
    np.testing.assert_allclose(phi.sum(axis=1), 1.0, rtol=1e-6)
    assert 0.5 < phi[0].max() < 1.0


def test_kmeans_input_errors():
    with pytest.raises(NotFittedError, match="call fit"):
        KMeansClusterMap().predict_proba(X)
    with pytest.raises(InputError, match="cannot make 8 clusters"):
        KMeansClusterMap(n_clusters=8).fit(X)
    with pytest.raises(InputError, match="NaN"):
        KMeansClusterMap(n_clusters=1).fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError, match="was fitted on 2"):
        KMeansClusterMap(n_clusters=2).fit(X).predict_proba(np.ones((1, 3)))
    with pytest.raises(InputError, match="assignment"):
        KMeansClusterMap(n_clusters=2, assignment="fuzzy").fit(X)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="temperature"):
        KMeansClusterMap(n_clusters=2, temperature="warm").fit(X)  # type: ignore[arg-type]


def test_learned_map_separates_prompts_on_which_models_differ(toy_data):
    X = HashingEmbedder().encode(toy_data["prompts"])
    y = np.column_stack([toy_data["scores"]["mathbot"], toy_data["scores"]["poet"]])
    cmap = LearnedClusterMap(n_clusters=2, random_state=0).fit(X, y)
    phi = cmap.predict_proba(X)
    is_math = np.array([t == "math" for t in toy_data["topics"]])
    math_cluster = phi[is_math].mean(axis=0).argmax()
    assert phi[is_math, math_cluster].min() > 0.9
    assert phi[~is_math, math_cluster].max() < 0.1
    assert cmap.coef_.shape == (2, X.shape[1]) and cmap.n_iter_ > 0


def test_learned_map_skips_missing_labels_and_validates(toy_data):
    X = HashingEmbedder().encode(toy_data["prompts"])
    y = np.column_stack([toy_data["scores"]["mathbot"], toy_data["scores"]["poet"]])
    y[::3, 0] = np.nan
    LearnedClusterMap(n_clusters=2, max_iter=20).fit(X, y)
    with pytest.raises(InputError, match="needs the training LLMs' scores"):
        LearnedClusterMap().fit(X, None)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        LearnedClusterMap(n_clusters=2).fit(X, y * 2)
    with pytest.raises(InputError, match="rows"):
        LearnedClusterMap(n_clusters=2).fit(X, y[:5])
