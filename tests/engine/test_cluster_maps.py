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
        "assignment": "auto",
        "temperature": "auto",
        "random_state": 3,
        "n_maps": 3,
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
    for cmap in (KMeansClusterMap(), LearnedClusterMap()):
        with pytest.raises(NotFittedError, match="call fit before saving"):
            cmap.to_state()  # before: AttributeError (no cluster_centers_ / coef_)
    with pytest.raises(InputError, match="cannot make 8 clusters"):
        KMeansClusterMap(n_clusters=8).fit(X)
    with pytest.raises(InputError, match="NaN"):
        KMeansClusterMap(n_clusters=1).fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError, match="was fitted on 2"):
        KMeansClusterMap(n_clusters=2).fit(X).predict_proba(np.ones((1, 3)))
    with pytest.raises(InputError, match="assignment"):
        KMeansClusterMap(n_clusters=2, assignment="fuzzy").fit(X)  # type: ignore[arg-type]
    for temperature in ("warm", True, float("inf"), float("nan")):
        with pytest.raises(InputError, match="temperature must be a number > 0"):
            KMeansClusterMap(n_clusters=2, temperature=temperature).fit(X)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="n_clusters must be a positive int"):
        KMeansClusterMap(n_clusters=True).fit(X)  # before: a bool passed as K = 1
    for n_maps in (0, 1.5, True):
        with pytest.raises(InputError, match="n_maps must be an int >= 1"):
            KMeansClusterMap(n_clusters=2, n_maps=n_maps).fit(X)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [KMeansClusterMap, LearnedClusterMap])
def test_fit_and_predict_say_what_is_wrong_with_the_embeddings(cls):
    from scipy import sparse

    y = np.array([[1.0], [1.0], [0.0], [0.0]])
    fitted = cls(n_clusters=2).fit(X, y)
    for method in (lambda a: cls(n_clusters=2).fit(a, y), fitted.predict_proba):
        with pytest.raises(InputError, match=r"sparse matrix; .* pass X.toarray\(\)"):
            method(sparse.csr_matrix(X))  # before: "setting an array element with a sequence"
        with pytest.raises(InputError, match="complex values"):
            method(X + 1j)  # before: the imaginary part was dropped with a warning
        with pytest.raises(InputError, match=r"for one prompt pass X.reshape\(1, -1\)"):
            method(X[0])
    with pytest.raises(InputError, match="X has no columns"):
        cls(n_clusters=2).fit(np.zeros((4, 0)), y)  # before: scikit-learn's ValueError about KMeans
    with pytest.raises(InputError, match="X has no rows"):
        cls(n_clusters=2).fit(np.zeros((0, 2)), np.zeros((0, 1)))  # before: "y has no observed score"
    assert fitted.predict_proba(np.zeros((0, 2))).shape == (0, 2)


@pytest.mark.parametrize("cls", [KMeansClusterMap, LearnedClusterMap])
def test_random_state_is_an_int_seed_or_none(cls):
    y = np.array([[1.0], [1.0], [0.0], [0.0]])
    for seed in ("x", -1, 2**32, 1.5, True, np.random.RandomState(0)):
        # before: numpy's or KMeans' error for "x" and -1; a RandomState fitted, then the router
        # failed to save ("Object of type RandomState is not JSON serializable")
        with pytest.raises(InputError, match="random_state must be an int seed"):
            cls(n_clusters=2, random_state=seed).fit(X, y)
    for seed in (None, np.int64(7), 2**32 - 1):
        assert cls(n_clusters=2, random_state=seed).fit(X, y).predict_proba(X).shape == (4, 2)


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


@pytest.mark.parametrize(
    "params, match",
    [  # before: each raised a bare TypeError from deep inside fit
        ({"n_clusters": "auto"}, "n_clusters must be an int >= 1"),
        ({"n_clusters": True}, "n_clusters must be an int >= 1"),
        ({"max_iter": "200"}, "max_iter must be an int >= 1"),
        ({"l2": "small"}, "l2 must be a number >= 0"),
        ({"init_temperature": None}, "init_temperature must be a number > 0"),
    ],
)
def test_learned_map_parameters_are_checked_at_fit(toy_data, params, match):
    X = HashingEmbedder().encode(toy_data["prompts"])
    y = np.column_stack([toy_data["scores"]["mathbot"], toy_data["scores"]["poet"]])
    with pytest.raises(InputError, match=match):
        LearnedClusterMap(**params).fit(X, y)


class NearestAxisMap:
    """A third-party map: one cluster per input dimension, Φ = the normalised |x|."""

    name = "test-nearest-axis"

    def __init__(self, power: float = 1.0):
        self.power = power

    def get_params(self, deep: bool = True) -> dict:
        return {"power": self.power}

    def fit(self, X, y=None):
        X = np.abs(np.asarray(X, dtype=np.float64)) ** self.power
        self.n_features_in_ = X.shape[1]
        self.cluster_weights_ = (X / X.sum(axis=1, keepdims=True)).mean(axis=0)
        return self

    def predict_proba(self, X):
        X = np.abs(np.asarray(X, dtype=np.float64)) ** self.power + 1e-12
        return X / X.sum(axis=1, keepdims=True)

    def to_state(self):
        return {"kind": self.name, "params": self.get_params()}, {"weights": self.cluster_weights_}

    @classmethod
    def from_state(cls, params, arrays):
        cmap = cls(**params)
        cmap.cluster_weights_ = arrays["weights"]
        return cmap


@pytest.fixture
def registered_axis_map():
    from uniroute.engine.cluster_maps import CLUSTER_MAPS, register_cluster_map

    assert register_cluster_map(NearestAxisMap) is NearestAxisMap
    yield NearestAxisMap
    del CLUSTER_MAPS[NearestAxisMap.name]


def test_builtin_maps_are_registered_under_their_names():
    from uniroute.engine.cluster_maps import CLUSTER_MAPS

    assert CLUSTER_MAPS["kmeans"] is KMeansClusterMap and KMeansClusterMap.name == "kmeans"
    assert CLUSTER_MAPS["learned"] is LearnedClusterMap and LearnedClusterMap.name == "learned"
    spec, arrays = KMeansClusterMap(n_clusters=2).fit(X).to_state()
    assert spec["kind"] == "kmeans" and set(arrays) >= {"cluster_centers", "cluster_weights"}


def test_a_third_party_map_routes_and_survives_save_and_load(registered_axis_map, tmp_path):
    from uniroute import PrecomputedEmbedder, Router

    vectors = {"sum": [1.0, 0.0], "add": [0.9, 0.1], "poem": [0.0, 1.0], "ode": [0.1, 0.9]}
    router = Router(PrecomputedEmbedder(vectors), registered_axis_map(power=2.0)).fit(list(vectors))
    router.add_model("mathbot", list(vectors), [1.0, 1.0, 0.0, 0.0], cost=0.0)
    router.add_model("poet", list(vectors), [0.0, 0.0, 1.0, 1.0], cost=0.0)
    loaded = Router.load(router.save(tmp_path / "state"), embedder=PrecomputedEmbedder(vectors))
    assert isinstance(loaded.cluster_map, registered_axis_map)
    assert loaded.cluster_map.power == 2.0
    assert [loaded.route(p).model for p in ("sum", "poem")] == ["mathbot", "poet"]


def test_registration_refuses_a_nameless_class_a_non_map_and_a_taken_name():
    from uniroute.engine.cluster_maps import register_cluster_map

    class Nameless(NearestAxisMap):
        name = ""

    class NoProba:
        name = "test-no-proba"

        def fit(self, X, y=None):
            return self

    class Impostor(NearestAxisMap):
        name = "kmeans"

    with pytest.raises(InputError, match="class attribute `name`"):
        register_cluster_map(Nameless)
    with pytest.raises(InputError, match="lacks predict_proba, to_state, from_state"):
        register_cluster_map(NoProba)
    with pytest.raises(InputError, match="taken by KMeansClusterMap"):
        register_cluster_map(Impostor)
    assert register_cluster_map(KMeansClusterMap) is KMeansClusterMap  # re-registering itself is fine


def test_params_follow_sklearn_without_importing_it_at_module_import():
    import subprocess
    import sys

    code = "import sys, uniroute.engine.cluster_maps; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    cmap = LearnedClusterMap(n_clusters=3, l2=0.5)
    assert cmap.set_params(l2=0.1) is cmap and cmap.get_params()["l2"] == 0.1
    assert repr(cmap) == "LearnedClusterMap(n_clusters=3, l2=0.1)"
    copy = clone(cmap)
    assert copy is not cmap and copy.get_params() == cmap.get_params()
    with pytest.raises(InputError, match="no parameter 'k'"):
        cmap.set_params(k=3)


@pytest.mark.parametrize("cmap", [KMeansClusterMap(n_clusters=2), LearnedClusterMap(n_clusters=2)], ids=repr)
def test_check_is_fitted_tells_a_fitted_map_from_an_unfitted_one(cmap):
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(cmap)  # before: AttributeError, no __sklearn_tags__
    check_is_fitted(cmap.fit(X, np.array([[1.0], [1.0], [0.0], [0.0]])))


@pytest.mark.parametrize("cmap", [KMeansClusterMap(n_clusters=2), LearnedClusterMap(n_clusters=2)], ids=repr)
def test_a_map_records_the_width_it_was_fitted_on_and_keeps_it_through_state(cmap):
    cmap.fit(X, np.array([[1.0], [1.0], [0.0], [0.0]]))
    assert cmap.n_features_in_ == 2
    params, arrays = cmap.to_state()
    assert type(cmap).from_state(params["params"], arrays).n_features_in_ == 2


def _four_blobs(n_per: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Four tight blobs on the corners of a square; LLM 0 is right on one diagonal, LLM 1 on the other."""
    rng = np.random.default_rng(0)
    corners = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    X = np.concatenate([c + 0.02 * rng.standard_normal((n_per, 2)) for c in corners]).astype(np.float32)
    diagonal = np.repeat([1.0, 1.0, 0.0, 0.0], n_per)
    return X, np.column_stack([diagonal, 1.0 - diagonal])


def test_cv_picks_the_number_of_clusters_that_separates_the_llms():
    from uniroute.engine.cluster_maps import select_by_cv

    X, Y = _four_blobs()
    ranking, scores = select_by_cv(KMeansClusterMap(), X, Y, (2, 4), ("hard",))
    assert ranking == [(4, "hard"), (2, "hard")]
    assert scores["K=4 hard"] < 0.1 < scores["K=2 hard"]


def test_auto_map_chooses_at_fit_time_and_keeps_its_choice_through_state():
    X, Y = _four_blobs()
    cmap = KMeansClusterMap(n_clusters="auto", assignment="auto", n_maps=1).fit(X, Y)
    assert cmap.n_clusters == "auto" and cmap.assignment == "auto"  # parameters stay as given
    # 16 clusters would average < 20 training prompts per fold, so the grid stops at 8
    assert set(cmap.cv_scores_) == {"K=4 soft", "K=4 hard", "K=8 soft", "K=8 hard"}
    assert f"K={cmap.n_clusters_} {cmap.assignment_}" == min(cmap.cv_scores_, key=cmap.cv_scores_.get)
    phi = cmap.predict_proba(X)
    assert phi.shape == (240, cmap.n_clusters_)
    blob = phi.argmax(axis=1)
    assert len({blob[0], blob[60], blob[120], blob[180]}) == 4
    params, arrays = cmap.to_state()
    again = KMeansClusterMap.from_state(params["params"], arrays)
    assert (again.n_clusters_, again.assignment_) == (cmap.n_clusters_, cmap.assignment_)
    np.testing.assert_allclose(again.predict_proba(X), phi)
    # without the training LLMs' scores "auto" means the plain default
    plain = KMeansClusterMap().fit(X)
    assert (plain.n_clusters_, plain.assignment_, plain.cv_scores_, plain.n_maps_) == (8, "soft", {}, 1)
    # too few prompts for any K of the grid to keep 20 per cluster: no CV, the plain default
    few = KMeansClusterMap().fit(X[::8], Y[::8])
    assert (few.n_clusters_, few.assignment_, few.cv_scores_, few.n_maps_) == (8, "soft", {}, 1)


def test_the_default_averages_the_three_best_maps_of_the_cv():
    X, Y = _four_blobs()
    cmap = KMeansClusterMap().fit(X, Y)
    best = sorted(cmap.cv_scores_, key=cmap.cv_scores_.get)[:3]
    assert [f"K={k} {a}" for k, a, _ in cmap.maps_] == best and cmap.n_maps_ == 3
    assert cmap.n_clusters_ == sum(k for k, _, _ in cmap.maps_) == len(cmap.cluster_centers_)
    assert (cmap.assignment_, cmap.temperature_) == cmap.maps_[0][1:]
    phi = cmap.predict_proba(X)
    # each block is one map's Φ (its rows sum to 1), divided by the number of maps
    start = 0
    for k, assignment, temperature in cmap.maps_:
        alone = KMeansClusterMap(k, assignment).fit(X)
        assert alone.temperature_ == pytest.approx(temperature)
        np.testing.assert_allclose(phi[:, start : start + k] * 3, alone.predict_proba(X), atol=1e-5)
        start += k
    np.testing.assert_allclose(phi.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(cmap.cluster_weights_, phi.mean(axis=0), atol=1e-6)
    params, arrays = cmap.to_state()
    again = KMeansClusterMap.from_state(params["params"], arrays)
    assert again.maps_ == cmap.maps_
    np.testing.assert_allclose(again.predict_proba(X), phi)


def test_a_refit_replaces_every_learned_attribute_and_a_failed_one_changes_none():
    X, Y = _four_blobs()
    cmap = KMeansClusterMap().fit(X, Y)
    assert cmap.n_maps_ == 3 and cmap.cv_scores_
    learned = {k: v for k, v in vars(cmap).items() if k.endswith("_")}
    with pytest.raises(InputError, match="cannot make 500 clusters"):
        cmap.set_params(n_clusters=500).fit(X, Y)
    # before: cv_scores_ was already {} (the failed fit's) beside the three maps of the first fit
    assert cmap.cv_scores_ == learned["cv_scores_"]
    assert all(getattr(cmap, k) is v for k, v in learned.items())
    cmap.set_params(n_clusters=3, n_maps=1).fit(X)
    assert (cmap.n_maps_, cmap.n_clusters_, cmap.cv_scores_) == (1, 3, {})
    assert cmap.maps_ == ((3, "soft", cmap.temperature_),) and cmap.cluster_centers_.shape == (3, 2)


def test_a_map_state_that_does_not_add_up_is_refused():
    X, Y = _four_blobs()
    params, arrays = KMeansClusterMap().fit(X, Y).to_state()
    for key, value in (
        ("map_sizes", arrays["map_sizes"] + 1),
        ("map_assignments", np.array(["hard", "soft", "warm"])),
        ("map_temperatures", np.array([1.0, -1.0, 1.0])),
        ("map_sizes", np.array(arrays["map_sizes"].sum())),  # one number: a map count of 1, but 3 of the rest
        ("map_assignments", np.array(["hard", "soft"])),
        ("map_sizes", np.array(["a", "b", "c"])),
    ):
        with pytest.raises(InputError, match="inconsistent"):
            KMeansClusterMap.from_state(params["params"], {**arrays, key: value})


def test_a_one_map_state_of_schema_version_4_still_loads():
    X, Y = _four_blobs()
    cmap = KMeansClusterMap(n_maps=1).fit(X, Y)
    params, arrays = cmap.to_state()
    old = {
        "cluster_centers": arrays["cluster_centers"],
        "cluster_weights": arrays["cluster_weights"],
        "temperature": np.array(cmap.temperature_),
        "assignment": np.array(cmap.assignment_),
    }
    again = KMeansClusterMap.from_state({k: v for k, v in params["params"].items() if k != "n_maps"}, old)
    assert again.maps_ == cmap.maps_
    np.testing.assert_allclose(again.predict_proba(X), cmap.predict_proba(X))
    # the oldest states kept only the parameter; anything but "hard" was routed as soft
    del old["assignment"]
    oldest = KMeansClusterMap.from_state({**params["params"], "assignment": "auto"}, old)
    assert oldest.assignment_ == "soft"


def test_pairwise_brier_scores_differences_between_llms():
    from uniroute.engine.cluster_maps import _pairwise_brier

    Y = np.array([[1.0, 0.0, np.nan], [1.0, 1.0, 0.0]])
    P = np.array([[0.8, 0.4, 0.5], [0.5, 0.5, 0.5]])
    pairs = [
        ((1.0 - 0.8) - (0.0 - 0.4)) ** 2,
        0.0,
        ((1 - 0.5) - (0 - 0.5)) ** 2,
        ((1 - 0.5) - (0 - 0.5)) ** 2,
    ]
    assert _pairwise_brier(Y, P) == pytest.approx((sum(pairs), 4.0))
    assert _pairwise_brier(Y[:, :1], P[:, :1]) == pytest.approx((0.04 + 0.25, 2.0))


def test_learned_map_ridge_does_not_shrink_theta_away():
    # Before (l2 = 1e-3): the penalty outweighed the log-loss and halved ‖θ_k‖ here; on the RouterBench
    # train file it shrank θ 30-fold, emptied 6 of 8 clusters and routing collapsed to one model.
    X, Y = _four_blobs()
    cmap = LearnedClusterMap(n_clusters=4).fit(X, Y)
    init = KMeansClusterMap(n_clusters=4, assignment="soft").fit(X)
    init_norm = np.linalg.norm(init.cluster_centers_, axis=1).mean() / cmap.init_temperature
    assert np.linalg.norm(cmap.coef_, axis=1).min() > 0.75 * init_norm
    assert cmap.cluster_weights_.min() > 0.2
    phi = cmap.predict_proba(X)
    assert len({int(phi[i].argmax()) for i in (0, 60, 120, 180)}) == 4


def test_sample_per_cluster_fills_every_block_counting_earlier_draws():
    from uniroute.engine.cluster_maps import sample_per_cluster

    # block 1: clusters 0 / 1 (6 and 2 rows); block 2: cluster 2 holds every row
    clusters = np.column_stack([[0, 0, 0, 0, 0, 0, 1, 1], [2] * 8])
    chosen = sample_per_cluster(clusters, 3, np.random.default_rng(0))
    assert chosen[:6].sum() == 3 and chosen[6:].all()  # cluster 1 gives all it has
    assert chosen.sum() == 5  # cluster 2 already holds 5 >= 3 draws: none added
    again = sample_per_cluster(clusters, 3, np.random.default_rng(0))
    assert (chosen == again).all()
