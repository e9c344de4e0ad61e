"""Cluster maps Φ: from a prompt embedding to a distribution over K clusters.

Any object that follows the :class:`ClusterMap` protocol can be a router's map;
:func:`register_cluster_map` adds its class to :data:`CLUSTER_MAPS` under its
``name`` so a router that uses it can be saved and loaded. Two maps ship:

* :class:`KMeansClusterMap`, UniRoute's unsupervised map (K-means over training
  prompts);
* :class:`LearnedClusterMap`, the paper's supervised "LearnedMap":
  Φ_k(x) ∝ exp(θ_kᵀ x + b_k), fitted by log-loss on whether the *training* LLMs
  answered each training prompt correctly, so that clusters separate prompts on
  which models differ.

Both follow scikit-learn's estimator contract (``__init__`` stores its arguments,
``fit`` validates and learns ``*_`` attributes, ``get_params``/``set_params``,
``sklearn.base.clone`` and ``check_is_fitted`` work) without importing scikit-learn until ``fit``, so this
module is cheap to import. ``predict_proba`` is plain numpy: it runs on every request.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal, Protocol, TypeVar

import numpy as np

from ..exceptions import InputError, NotFittedError

_MINIBATCH_ABOVE = 20_000


class ClusterMap(Protocol):
    """What a router needs from a cluster map Φ.

    ``fit(X, y)`` gets the training prompts' embeddings ``X`` (n, dim) and, when the
    caller has them, the training LLMs' scores ``y`` (n, n_llms; 1 = correct, NaN =
    no result); a map that does not use ``y`` ignores it. ``to_state`` returns
    ``({"kind": name, "params": ...}, arrays)`` (JSON-ready params, numpy arrays)
    and ``from_state(params, arrays)`` rebuilds the fitted map from them.
    """

    name: ClassVar[str]
    cluster_weights_: np.ndarray
    """Share of training prompts per cluster, shape (K,): Φ for a prompt with no text."""

    def fit(self, X: Any, y: Any = None) -> ClusterMap:
        """Learn the clusters from embeddings ``X`` (and scores ``y`` if used); returns ``self``."""

    def predict_proba(self, X: Any) -> np.ndarray:
        """Φ: one row per embedding, K cluster probabilities summing to 1."""

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``({"kind": name, "params": ...}, arrays)`` to save the fitted map (JSON and numpy only)."""

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> ClusterMap:
        """The fitted map that :meth:`to_state` saved, from its ``params`` and ``arrays``."""


CLUSTER_MAPS: dict[str, type[ClusterMap]] = {}
"""Registry name -> cluster-map class; the CLI's ``--map`` choices and the key saved in a state."""

_M = TypeVar("_M", bound=type)


def register_cluster_map(cls: _M) -> _M:
    """Add a :class:`ClusterMap` class to :data:`CLUSTER_MAPS` under ``cls.name``.

    Usable as a class decorator. A name already taken by another class is refused,
    so a plug-in cannot silently replace a built-in map.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise InputError(f"{cls!r} needs a class attribute `name` (a non-empty str) to be registered")
    missing = [
        m for m in ("fit", "predict_proba", "to_state", "from_state") if not callable(getattr(cls, m, None))
    ]
    if missing:
        raise InputError(f"{cls.__name__} is not a ClusterMap: it lacks {', '.join(missing)}")
    if CLUSTER_MAPS.get(name, cls) is not cls:
        raise InputError(
            f"cluster map name {name!r} is taken by {CLUSTER_MAPS[name].__name__}; choose another `name`"
        )
    CLUSTER_MAPS[name] = cls
    return cls


class _Params:
    """``get_params``/``set_params``/``repr`` as scikit-learn's ``BaseEstimator`` gives them.

    Written out so importing the engine does not import scikit-learn (~1.5 s);
    ``sklearn.base.clone`` works on any object with these methods.
    """

    name: ClassVar[str]
    _requires_y: ClassVar[bool] = False

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name for p in sig.parameters.values() if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set constructor arguments by name; returns ``self`` (an unknown name is an InputError)."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InputError(f"{type(self).__name__} has no parameter {name!r}; valid: {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if value is not sig.parameters[name].default and value != sig.parameters[name].default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags, which ``check_is_fitted`` and scikit-learn ≥ 1.6 ask
        every estimator for (``BaseEstimator``'s, with ``y`` required where ``fit`` needs it)."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=self._requires_y))

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``({"kind": name, "params": ...}, arrays)``: numpy scalars in the params become the
        Python numbers JSON can hold (``fit`` accepts ``n_clusters=np.int64(8)``)."""
        if not hasattr(self, "cluster_weights_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit before saving it")
        params = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.get_params().items()}
        return {"kind": self.name, "params": params}, self._state_arrays()

    def _state_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    return z / z.sum(axis=1, keepdims=True)


def check_embeddings(X: Any, name: str = "X", dim: int | None = None, allow_empty: bool = True) -> np.ndarray:
    """Validate an ``(n, dim)`` matrix of finite real numbers (``n > 0`` unless ``allow_empty``);
    return it as float32."""
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
        raise InputError(
            f"{name} is a sparse matrix; cluster maps take dense embeddings: pass {name}.toarray()"
        )
    try:
        X = np.asarray(X)
        X = X if X.dtype.kind == "c" else X.astype(np.float32, copy=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a numeric matrix of embeddings: {exc}") from exc
    if X.dtype.kind == "c":
        raise InputError(f"{name} has complex values; embeddings must be real numbers")
    if X.ndim != 2:
        hint = f"; for one prompt pass {name}.reshape(1, -1)" if X.ndim == 1 else ""
        raise InputError(f"{name} must be 2-D (n_prompts, dim), got shape {X.shape}{hint}")
    if X.shape[1] == 0:
        raise InputError(f"{name} has no columns (shape {X.shape}); each embedding needs at least one value")
    if not allow_empty and X.shape[0] == 0:
        raise InputError(f"{name} has no rows; fit needs the embeddings of the training prompts")
    if dim is not None and X.shape[1] != dim:
        raise InputError(
            f"{name} has {X.shape[1]} columns but the cluster map was fitted on {dim}; "
            "embeddings must come from the embedder the map was fitted with (give that embedder to "
            "Router(...) or Router.load(path, embedder=...), or fit the router again with this one)"
        )
    if not np.isfinite(X).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return X


def check_labels(y: Any, n: int) -> np.ndarray:
    """Validate the training LLMs' scores: (n, n_llms) in [0, 1], NaN = missing; float64."""
    try:
        Y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"y must be a numeric matrix of scores in [0, 1]: {exc}") from exc
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != n:
        raise InputError(f"y has shape {Y.shape} but X has {n} prompts; y must be (n_prompts, n_llms) rows")
    observed = ~np.isnan(Y)
    if not observed.any():
        raise InputError("y has no observed score (all NaN)")
    if ((Y[observed] < 0) | (Y[observed] > 1)).any():
        raise InputError("scores in y must lie in [0, 1]")
    return Y


def map_blocks(cmap: Any) -> list[slice]:
    """The columns of Φ that belong to each map a map averages (``KMeansClusterMap.maps_``);
    one block for any other map. A prompt falls in one cluster of each block."""
    maps = getattr(cmap, "maps_", ())
    if len(maps) < 2:
        return [slice(0, len(cmap.cluster_weights_))]
    ends = np.cumsum([k for k, _, _ in maps])
    return [slice(int(e - k), int(e)) for (k, _, _), e in zip(maps, ends, strict=True)]


def input_width(cmap: Any) -> int | None:
    """The width of the embeddings a fitted map takes: its centres' or weights' columns, or
    scikit-learn's ``n_features_in_``; ``None`` for a map that records none."""
    for name in ("cluster_centers_", "coef_"):
        shape: tuple[int, ...] = getattr(getattr(cmap, name, None), "shape", ())
        if len(shape) == 2:
            return int(shape[1])
    width = getattr(cmap, "n_features_in_", None)
    return None if width is None else int(width)


def averaged_maps(cmap: Any) -> str:
    """ "16 soft, 32 soft, 8 soft": the maps an averaged map holds, best first ("" for one map)."""
    maps = getattr(cmap, "maps_", ())
    return ", ".join(f"{k} {a}" for k, a, _ in maps) if len(maps) > 1 else ""


def hard_clusters(cmap: Any, phi: np.ndarray) -> np.ndarray:
    """(n, n_blocks): each prompt's most likely cluster in each block of :func:`map_blocks`
    (column indices of Φ): what to sample, count or describe prompts by."""
    return np.column_stack([b.start + phi[:, b].argmax(axis=1) for b in map_blocks(cmap)])


def sample_per_cluster(clusters: np.ndarray, per_cluster: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of up to ``per_cluster`` rows drawn at random from each cluster.

    ``clusters`` is :func:`hard_clusters`' (n, n_blocks); a map that averages several is
    filled block by block, counting the rows already drawn for another block's cluster.
    """
    chosen = np.zeros(len(clusters), dtype=bool)
    for column in clusters.T:
        for k in np.unique(column):
            members = np.flatnonzero(column == k)
            need = per_cluster - int(chosen[members].sum())
            if need > 0:
                chosen[rng.permutation(members[~chosen[members]])[:need]] = True
    return chosen


def _check_seed(random_state: Any) -> None:
    """A map's ``random_state``: an int seed, or None for fresh randomness on every fit."""
    if random_state is not None and (
        not isinstance(random_state, (int, np.integer))
        or isinstance(random_state, bool)
        or not 0 <= random_state < 2**32
    ):
        raise InputError(
            f"random_state must be an int seed in [0, 2**32 - 1] (saved with the router, so its fits "
            f"can be reproduced) or None (a new seed on every fit), got {random_state!r}"
        )


def _state_weights(weights: np.ndarray, n_clusters: int, kind: str) -> np.ndarray:
    """A saved map's ``cluster_weights``, checked: Φ of a prompt with no text, one share per cluster."""
    if weights.shape != (n_clusters,) or (weights < 0).any() or not np.isclose(weights.sum(), 1.0, atol=1e-3):
        raise InputError(
            f"the {kind} map's state is inconsistent: cluster_weights must be {n_clusters} shares "
            f"summing to 1, got shape {weights.shape} summing to {weights.sum():.6g}"
        )
    return weights


_AUTO_CLUSTERS = (4, 8, 16, 32, 64)
_CV_FOLDS = 3
_MIN_PER_CLUSTER = 20


def _pairwise_brier(Y: np.ndarray, P: np.ndarray) -> tuple[float, float]:
    """Sum and count of the squared error of every *difference* between two LLMs' scores on a prompt.

    Routing needs which model is better on a prompt, not each model's level, so the
    criterion compares predicted and observed differences (plain Brier for one LLM).
    """
    observed = ~np.isnan(Y)
    r = np.where(observed, np.nan_to_num(Y) - P, 0.0)
    c = observed.sum(axis=1)
    if Y.shape[1] == 1:
        return float((r**2).sum()), float(c.sum())
    loss = c * (r**2).sum(axis=1) - r.sum(axis=1) ** 2
    return float(loss.sum()), float((c * (c - 1) / 2).sum())


def select_by_cv(
    cmap: KMeansClusterMap,
    X: np.ndarray,
    Y: np.ndarray,
    ks: tuple[int, ...],
    assignments: tuple[str, ...],
) -> tuple[list[tuple[int, str]], dict[str, float]]:
    """Rank (K, assignment) by 3-fold CV on the training prompts, best first: fit K-means
    on two folds, profile the training LLMs there as the router would (engine profiles),
    and score the predicted correctness on the third by the pairwise Brier score.
    ``fit`` passes only the K for which clusters average at least 20 training prompts.
    """
    from .profiles import DEFAULT_PRIOR_STRENGTH, cluster_errors

    n = len(X)
    folds = np.array_split(np.random.default_rng(cmap.random_state).permutation(n), _CV_FOLDS)
    totals = {(k, a): [0.0, 0.0] for k in ks for a in assignments}
    probe = KMeansClusterMap(temperature=cmap.temperature, random_state=cmap.random_state)
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        for k in ks:
            probe._fit_centres(X[train], k, n_init=1)
            for a in assignments:
                phi = probe._proba(X[train], a)
                psi = cluster_errors(phi, Y[train], DEFAULT_PRIOR_STRENGTH, reference=phi.mean(axis=0))
                loss, count = _pairwise_brier(Y[held], 1.0 - probe._proba(X[held], a) @ psi)
                totals[(k, a)][0] += loss
                totals[(k, a)][1] += count
    mean = {key: total / max(count, 1.0) for key, (total, count) in totals.items()}
    return sorted(mean, key=mean.__getitem__), {f"K={k} {a}": v for (k, a), v in mean.items()}


@register_cluster_map
class KMeansClusterMap(_Params):
    """K-means clusters of prompt embeddings, with hard or soft assignment.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of clusters K. ``"auto"``: chosen at fit time from 4, 8, 16, 32, 64
        (those that leave ≥ 20 training prompts per cluster) by cross-validation on
        the training LLMs' scores ``y`` (:func:`select_by_cv`); 8 when ``fit`` gets
        no ``y``. The data decide: soft K = 16, 32 and 8 on the RouterBench subset,
        hard K = 64, 16 and 32 on RouteLLM's MMLU + GSM8K, averaged (``n_maps``;
        docs/benchmarks.md).
    assignment : {"soft", "hard", "auto"}, default="auto"
        ``soft``: Φ_k(x) ∝ exp(-‖x - c_k‖² / temperature), so a prompt between
        clusters borrows from each; ``hard``: Φ(x) is one-hot on the nearest centre
        (the paper's K-means map); ``auto``: the better of the two by the same
        cross-validation (soft without ``y``).
    temperature : float or "auto", default="auto"
        Softness of the ``soft`` assignment. ``"auto"`` uses the training prompts'
        mean squared distance to their nearest centre, which scales with any
        embedder's geometry.
    random_state : int or None, default=0
        Seed of the K-means initialisation and of the cross-validation's folds.
        None: a new seed on every fit, so two fits may choose different maps.
    n_maps : int, default=3
        How many of the cross-validation's best (K, assignment) maps Φ averages:
        Φ(x) is their Φs side by side, each divided by the number averaged. Averaging
        the three best beat the single best on both data sets and both protocols
        (docs/benchmarks.md, session 8); 1 keeps the best alone. Only K = "auto"
        averages: with a fixed K, without ``y``, or with too few prompts for the
        grid, there is one map.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters_, dim)
        The centres of every averaged map, one block per map, best map first.
    cluster_weights_ : ndarray of shape (n_clusters_,)
        Share of training prompts per cluster: Φ for a prompt with no text.
    n_clusters_ : int
        Clusters in all (the columns of Φ): the sum of the averaged maps' K.
    maps_ : tuple of (int, str, float)
        (K, assignment, temperature) of each averaged map, best first.
    n_maps_ : int
        ``len(maps_)``. Each cluster holds 1/``n_maps_`` of a prompt, so the
        ``Router`` spreads its prior over the maps (``prior_strength / n_maps_``
        pseudo-results per cluster).
    assignment_, temperature_ : str, float
        Those of the best map (as given, or as "auto" chose them).
    cv_scores_ : dict of str to float
        Held-out pairwise Brier score of each (K, assignment) tried ({} if none).
    n_features_in_ : int
        Width of the embeddings fitted on; ``predict_proba`` refuses any other.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> cmap = KMeansClusterMap(n_clusters=2).fit(X)
    >>> phi = cmap.predict_proba(X)
    >>> bool(phi[0].argmax() == phi[1].argmax() != phi[2].argmax())
    True
    """

    name: ClassVar[str] = "kmeans"

    def __init__(
        self,
        n_clusters: int | Literal["auto"] = "auto",
        assignment: Literal["soft", "hard", "auto"] = "auto",
        temperature: float | Literal["auto"] = "auto",
        random_state: int | None = 0,
        n_maps: int = 3,
    ):
        self.n_clusters = n_clusters
        self.assignment = assignment
        self.temperature = temperature
        self.random_state = random_state
        self.n_maps = n_maps

    def _validate_params(self) -> None:
        if self.n_clusters != "auto" and (
            not isinstance(self.n_clusters, (int, np.integer))
            or isinstance(self.n_clusters, bool)
            or self.n_clusters < 1
        ):
            raise InputError(f"n_clusters must be a positive int or 'auto', got {self.n_clusters!r}")
        if self.assignment not in ("hard", "soft", "auto"):
            raise InputError(f"assignment must be 'hard', 'soft' or 'auto', got {self.assignment!r}")
        if self.temperature != "auto" and not (
            isinstance(self.temperature, (int, float, np.floating))
            and not isinstance(self.temperature, bool)
            and 0 < self.temperature < np.inf
        ):
            raise InputError(f"temperature must be a number > 0 or 'auto', got {self.temperature!r}")
        if not isinstance(self.n_maps, (int, np.integer)) or isinstance(self.n_maps, bool) or self.n_maps < 1:
            raise InputError(f"n_maps must be an int >= 1 (1: the best map alone), got {self.n_maps!r}")
        _check_seed(self.random_state)

    def fit(self, X: Any, y: Any = None) -> KMeansClusterMap:
        """Fit K-means on training prompt embeddings ``X``.

        ``y`` (n, n_llms), the training LLMs' scores, is used only to choose
        ``n_clusters`` / ``assignment`` where they are ``"auto"`` (see
        :func:`select_by_cv`); without it "auto" means K = 8, soft.
        """
        self._validate_params()
        X = check_embeddings(X, allow_empty=False)
        Y = None if y is None else check_labels(y, len(X))
        cv_scores: dict[str, float] = {}
        chosen: list[tuple[int | str, str]] = [(self.n_clusters, self.assignment)]
        if "auto" in chosen[0] and Y is not None:
            n_fit = len(X) * (_CV_FOLDS - 1) // _CV_FOLDS
            ks = tuple(
                c
                for c in (_AUTO_CLUSTERS if self.n_clusters == "auto" else (int(self.n_clusters),))
                if c * _MIN_PER_CLUSTER <= n_fit
            )
            assignments = ("soft", "hard") if self.assignment == "auto" else (self.assignment,)
            if len(ks) * len(assignments) > 1:
                ranking, cv_scores = select_by_cv(self, X, Y, ks, assignments)
                chosen = list(ranking[: self.n_maps if self.n_clusters == "auto" else 1])
            elif ks:
                chosen = [(ks[0], assignments[0])]
        maps = [(8 if k == "auto" else int(k), "soft" if a == "auto" else str(a)) for k, a in chosen]
        if X.shape[0] < max(k for k, _ in maps):
            raise InputError(
                f"{X.shape[0]} prompts cannot make {max(k for k, _ in maps)} clusters; "
                "pass more prompts or a smaller n_clusters"
            )
        centres: list[np.ndarray] = []
        fitted: list[tuple[int, str, float]] = []
        for k, a in maps:
            self._fit_centres(X, k, n_init=4, assignment=a)
            centres.append(self.cluster_centers_)
            fitted += self.maps_
        self._set_maps(np.vstack(centres), fitted)
        self.cluster_weights_ = self._proba(X).mean(axis=0)
        self.cv_scores_ = cv_scores
        return self

    def _set_maps(self, centres: np.ndarray, maps: list[tuple[int, str, float]]) -> None:
        self.cluster_centers_ = centres.astype(np.float32)
        self.n_features_in_ = int(centres.shape[1])
        self._center_sq = np.einsum("kd,kd->k", self.cluster_centers_, self.cluster_centers_)
        self.maps_ = tuple(maps)
        self.n_maps_ = len(maps)
        self.n_clusters_ = len(centres)
        _, self.assignment_, self.temperature_ = maps[0]

    def _fit_centres(self, X: np.ndarray, k: int, n_init: int, assignment: str = "soft") -> None:
        """Make this one map of ``k`` K-means centres (the CV probe gives ``_proba`` its assignment)."""
        from sklearn.cluster import KMeans, MiniBatchKMeans

        if X.shape[0] > _MINIBATCH_ABOVE:
            km: KMeans | MiniBatchKMeans = MiniBatchKMeans(
                k, random_state=self.random_state, n_init=min(3, n_init), batch_size=4096
            )
        else:
            km = KMeans(k, random_state=self.random_state, n_init=n_init)
        km.fit(X)
        centres = km.cluster_centers_.astype(np.float32)
        if self.temperature == "auto":
            sq_dist = np.einsum("kd,kd->k", centres, centres)[None, :] - 2.0 * (X @ centres.T)
            temperature = max(float((sq_dist.min(axis=1) + np.einsum("nd,nd->n", X, X)).mean()), 1e-6)
        else:
            temperature = float(self.temperature)
        self._set_maps(centres, [(k, assignment, temperature)])

    def _sq_dist(self, X: np.ndarray) -> np.ndarray:
        """‖x - c_k‖² less ‖x‖², which is the same for every k."""
        return self._center_sq[None, :] - 2.0 * (X @ self.cluster_centers_.T)

    def _proba(self, X: np.ndarray, assignment: str | None = None) -> np.ndarray:
        """Φ of the averaged maps side by side; ``assignment`` overrides a single map's (the CV probe)."""
        sq_dist = self._sq_dist(X)
        if self.n_maps_ == 1:
            return self._one_map(sq_dist, assignment or self.assignment_, self.temperature_, 1.0)
        out, start = np.empty(sq_dist.shape, dtype=np.float32), 0
        for k, a, t in self.maps_:
            out[:, start : start + k] = self._one_map(sq_dist[:, start : start + k], a, t, 1.0 / self.n_maps_)
            start += k
        return out

    @staticmethod
    def _one_map(sq_dist: np.ndarray, assignment: str, temperature: float, mass: float) -> np.ndarray:
        """One map's Φ, its rows summing to ``mass``."""
        if assignment == "hard":
            out = np.zeros(sq_dist.shape, dtype=np.float32)
            out[np.arange(len(sq_dist)), sq_dist.argmin(axis=1)] = mass
            return out
        phi = _softmax(-sq_dist / temperature)
        return (phi if mass == 1.0 else phi * mass).astype(np.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Φ(x) for each row of ``X``: an ``(n, n_clusters)`` matrix whose rows sum to 1."""
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError("this KMeansClusterMap is not fitted yet; call fit(X) first")
        return self._proba(check_embeddings(X, dim=self.cluster_centers_.shape[1]))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "cluster_centers": self.cluster_centers_,
            "cluster_weights": self.cluster_weights_,
            "map_sizes": np.array([k for k, _, _ in self.maps_], dtype=np.int64),
            "map_assignments": np.array([a for _, a, _ in self.maps_]),
            "map_temperatures": np.array([t for _, _, t in self.maps_], dtype=np.float64),
        }

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> KMeansClusterMap:
        """The fitted map that :meth:`to_state` saved, from its ``params`` and ``arrays``."""
        cmap = cls(**params)
        centres = arrays["cluster_centers"]
        if "map_sizes" in arrays:
            sizes, assignments, temperatures = (
                np.atleast_1d(arrays[key]).tolist()
                for key in ("map_sizes", "map_assignments", "map_temperatures")
            )
        else:  # one map (states before schema version 5); anything but "hard" routed as soft
            sizes, temperatures = [len(centres)], [float(arrays["temperature"])]
            legacy = str(arrays["assignment"] if "assignment" in arrays else params["assignment"])
            assignments = ["hard" if legacy == "hard" else "soft"]
        try:
            maps = [
                (int(k), str(a), float(t)) for k, a, t in zip(sizes, assignments, temperatures, strict=True)
            ]
        except (TypeError, ValueError):
            maps = []
        valid = bool(maps) and all(
            k >= 1 and a in ("hard", "soft") and np.isfinite(t) and t > 0 for k, a, t in maps
        )
        if not valid or centres.ndim != 2 or sum(k for k, _, _ in maps) != len(centres):
            raise InputError(
                f"the K-means map's state is inconsistent: maps of {sizes} clusters, {len(centres)} centres"
            )
        cmap._set_maps(centres, maps)
        cmap.cluster_weights_ = _state_weights(arrays["cluster_weights"], len(centres), "K-means")
        return cmap


@register_cluster_map
class LearnedClusterMap(_Params):
    """UniRoute's LearnedMap: a softmax map fitted on training LLMs' correctness.

    The model is P(LLM j answers x correctly) = Σ_k Φ_k(x)·a_kj with
    Φ(x) = softmax(θ x + b) and per-cluster accuracies a_kj of the *training* LLMs.
    θ starts from K-means centres (divided by ``init_temperature``) and θ, b, a are
    fitted together by L-BFGS on the log-loss over the observed labels, plus
    ``l2``·‖θ‖². Only Φ is kept: new models are profiled on it like any other.

    Parameters
    ----------
    n_clusters : int, default=8
    l2 : float, default=1e-5
        Ridge penalty on θ. θ starts at ‖θ_k‖ ≈ 1 / ``init_temperature`` (≈ 10), so
        the penalty is ≈ l2·K·100: the old default 1e-3 outweighed the log-loss, L-BFGS
        shrank θ first (‖θ_k‖ 10 → 0.37 on the RouterBench train file), 6 of 8 clusters
        died and routing collapsed to "always the best model". 1e-5 keeps every
        cluster and was better by train-only CV on RouterBench and RouteLLM
        (docs/benchmarks.md).
    max_iter : int, default=200
        L-BFGS iterations.
    init_temperature : float, default=0.1
    random_state : int or None, default=0
        Seed of the K-means map θ starts from; None: a new seed on every fit.

    Attributes
    ----------
    coef_ : ndarray of shape (n_clusters, dim)
        θ.
    intercept_ : ndarray of shape (n_clusters,)
        b.
    cluster_weights_ : ndarray of shape (n_clusters,)
        Mean Φ over the training prompts.
    n_features_in_ : int
        Width of the embeddings fitted on; ``predict_proba`` refuses any other.
    n_iter_ : int
        L-BFGS iterations run (not kept in a saved state).
    """

    name: ClassVar[str] = "learned"
    _requires_y: ClassVar[bool] = True

    def __init__(
        self,
        n_clusters: int = 8,
        l2: float = 1e-5,
        max_iter: int = 200,
        init_temperature: float = 0.1,
        random_state: int | None = 0,
    ):
        self.n_clusters = n_clusters
        self.l2 = l2
        self.max_iter = max_iter
        self.init_temperature = init_temperature
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> LearnedClusterMap:
        """Fit Φ on embeddings ``X`` (n, dim) and correctness ``y`` (n, n_train_llms).

        ``y`` holds scores in [0, 1]; NaN marks a missing result and is skipped.
        """
        from scipy.optimize import minimize
        from scipy.special import log_softmax

        self._validate_params()
        X = check_embeddings(X, allow_empty=False)
        if y is None:
            raise InputError(
                "LearnedClusterMap needs the training LLMs' scores: fit(X, y) with y of shape "
                "(n_prompts, n_llms); use KMeansClusterMap to cluster prompts alone"
            )
        Y = check_labels(y, len(X))
        observed = ~np.isnan(Y)
        init = KMeansClusterMap(self.n_clusters, random_state=self.random_state).fit(X)
        K, d = self.n_clusters, X.shape[1]
        Xb = np.hstack([X.astype(np.float64), np.ones((len(X), 1))])
        theta0 = np.hstack([init.cluster_centers_, np.zeros((K, 1))]) / self.init_temperature
        theta0[:, -1] = -0.5 * init._center_sq / self.init_temperature
        phi0 = _softmax(Xb @ theta0.T)
        Yz = np.where(observed, Y, 0.0)
        acc0 = (phi0.T @ Yz + 1.0) / (phi0.T @ observed + 2.0)
        params0 = np.concatenate([theta0.ravel(), np.log(acc0 / (1 - acc0)).ravel()])
        n_obs = observed.sum()
        n_llms = Y.shape[1]

        def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
            theta = params[: K * (d + 1)].reshape(K, d + 1)
            logits = params[K * (d + 1) :].reshape(K, n_llms)
            z = Xb @ theta.T
            phi = np.exp(log_softmax(z, axis=1))
            acc = 1.0 / (1.0 + np.exp(-logits))
            p = np.clip(phi @ acc, 1e-9, 1 - 1e-9)
            nll = -(Yz * np.log(p) + (1 - Yz) * np.log(1 - p))[observed].sum() / n_obs
            reg = self.l2 * np.sum(theta[:, :-1] ** 2)
            g_p = np.where(observed, -(Yz / p - (1 - Yz) / (1 - p)), 0.0) / n_obs
            g_logits = (phi.T @ g_p) * acc * (1 - acc)
            g_phi = g_p @ acc.T
            g_z = phi * (g_phi - (g_phi * phi).sum(axis=1, keepdims=True))
            g_theta = g_z.T @ Xb
            g_theta[:, :-1] += 2 * self.l2 * theta[:, :-1]
            return nll + reg, np.concatenate([g_theta.ravel(), g_logits.ravel()])

        result = minimize(loss, params0, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        theta = result.x[: K * (d + 1)].reshape(K, d + 1)
        self.coef_ = theta[:, :-1].astype(np.float32)
        self.intercept_ = theta[:, -1].astype(np.float32)
        self.n_features_in_ = d
        self.n_iter_ = int(result.nit)
        self.cluster_weights_ = self._proba(X).mean(axis=0)
        return self

    def _validate_params(self) -> None:
        for name in ("n_clusters", "max_iter"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be an int >= 1, got {value!r}")
        if (
            not isinstance(self.l2, (int, float, np.number))
            or isinstance(self.l2, bool)
            or not 0 <= self.l2 < np.inf
        ):
            raise InputError(f"l2 must be a number >= 0 (ridge penalty, e.g. 1e-5), got {self.l2!r}")
        temperature = self.init_temperature
        if (
            not isinstance(temperature, (int, float, np.number))
            or isinstance(temperature, bool)
            or not 0 < temperature < np.inf
        ):
            raise InputError(f"init_temperature must be a number > 0 (e.g. 0.1), got {temperature!r}")
        _check_seed(self.random_state)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return _softmax(X @ self.coef_.T + self.intercept_).astype(np.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Φ(x) for each row of ``X``: an ``(n, n_clusters)`` matrix whose rows sum to 1."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("this LearnedClusterMap is not fitted yet; call fit(X, y) first")
        return self._proba(check_embeddings(X, dim=self.coef_.shape[1]))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "coef": self.coef_,
            "intercept": self.intercept_,
            "cluster_weights": self.cluster_weights_,
        }

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> LearnedClusterMap:
        """The fitted map that :meth:`to_state` saved, from its ``params`` and ``arrays``."""
        cmap = cls(**params)
        coef, intercept = arrays["coef"], arrays["intercept"]
        if coef.ndim != 2 or intercept.shape != (len(coef),):
            raise InputError(
                f"the learned map's state is inconsistent: coef of shape {coef.shape}, "
                f"intercept of shape {intercept.shape}"
            )
        cmap.coef_ = coef.astype(np.float32)
        cmap.intercept_ = intercept.astype(np.float32)
        cmap.n_features_in_ = int(coef.shape[1])
        cmap.cluster_weights_ = _state_weights(arrays["cluster_weights"], len(coef), "learned")
        return cmap
