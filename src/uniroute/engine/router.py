"""The UniRoute router: route x to argmin_h Φ(x)·Ψ(h) + λ·cost(h)."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from ..exceptions import InputError, NotFittedError, UnknownDecisionError, UnknownModelError
from .cache import CachedEmbedder
from .cluster_maps import ClusterMap, KMeansClusterMap, check_embeddings
from .decision import Decision, best_index, check_number, lambda_bound, route_scores, short_repr
from .embedders import DEFAULT_EMBEDDER, Embedder, get_embedder
from .feedback import (
    DecisionCache,
    ExplorationCap,
    FeedbackLedger,
    combine,
    profile_of,
    thompson_errors,
)
from .profiles import (
    DEFAULT_PRIOR_STRENGTH,
    ModelProfile,
    Price,
    check_scores,
    fit_price,
    profile_from_scores,
)
from .state import feedback_namespace, read_state, save_router
from .text import Prompt, prompt_chars, routing_text, routing_texts

logger = logging.getLogger(__name__)

Candidates = Sequence[str] | Mapping[str, str]
"""Candidate names, or candidate name -> profile name (several candidates may share a profile)."""
NO_TEXT_NOTE = "no routing text in the request; routed on the cluster prior"
_BATCH = 256
_MAX_SUBSETS = 256
_MAX_QUANTILES = 64
_MAX_WARNED = 1024
_RUNTIME = frozenset(
    {
        "_lock",
        "_encoder",
        "_warned",
        "_pool",
        "_feedback",
        "_routing",
        "_cap",
        "_decisions",
        "_refresher",
        "_refresher_stop",
        "_closed",
        "_resets",
    }
)
EXPLORED_NOTE = "explored: Thompson sample"
_DECAY_TOLERANCE = 1e-3
"""Share by which decaying feedback counts may shrink before routing is rebuilt with no new feedback."""
_DECAY_HALF_LIVES = -math.log2(1.0 - _DECAY_TOLERANCE)
"""The half-lives after which counts have shrunk by :data:`_DECAY_TOLERANCE`."""


class _Candidates:
    """The profiled part of a candidate list, with its Ψ and prices laid out for scoring."""

    __slots__ = ("by_length", "index", "names", "position", "price", "profiles", "psi_t", "skipped")

    def __init__(self, pool: _Pool, pairs: Sequence[tuple[str, str]]):
        known = [(name, profile) for name, profile in pairs if profile in pool.index]
        self.names = tuple(name for name, _ in known)
        self.profiles = tuple(profile for _, profile in known)
        self.skipped = tuple(name for name, profile in pairs if profile not in pool.index)
        self.position = {name: i for i, name in enumerate(self.names)}
        self.index = np.array([pool.index[p] for p in self.profiles], dtype=np.intp)
        self.psi_t = np.ascontiguousarray(pool.psi[self.index].T)
        self.price = Price(*(field[self.index] for field in pool.price))
        self.by_length = bool(self.price.per_char.any())

    def prices(self, chars: np.ndarray | None, overrides: Mapping[str, Any] | None) -> np.ndarray:
        """$ per request of each candidate: (m,) without prompt lengths, else (n, m)
        priced by length (:meth:`ModelProfile.price`); ``overrides`` (candidate name -> $)
        replace a candidate's price for every prompt."""
        if chars is None or not self.by_length:
            costs = self.price.cost.copy()
        else:
            costs = self.price(chars[:, None])
        if overrides is None:
            return costs
        if not isinstance(overrides, Mapping):
            raise InputError(f"costs must be a mapping of candidate name to $ per request, got {overrides!r}")
        for name, value in overrides.items():
            i = self.position.get(name)
            if i is None:
                if name in self.skipped:
                    continue
                raise InputError(
                    f"costs names {name!r}, which is not a candidate; candidates: {list(self.names)}"
                )
            costs[..., i] = check_number(value, f"cost of candidate {name!r}", hint=" ($ per request)")
        return costs


def _candidate_pairs(candidates: Sequence[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    """(candidate name, profile name) pairs, checked; a sequence names its own profiles."""
    if isinstance(candidates, Mapping):
        pairs = list(candidates.items())
    elif isinstance(candidates, (str, bytes)):
        raise InputError(f"candidates must be a list of model names, not one string: {candidates!r}")
    elif not isinstance(candidates, Iterable):
        raise InputError(
            "candidates must be a list of model names or a mapping of candidate name to profile "
            f"name, got {type(candidates).__name__} {candidates!r}"
        )
    else:
        pairs = [(name, name) for name in candidates]
    for name, profile in pairs:
        for what, value in (("candidate", name), ("profile", profile)):
            if not isinstance(value, str) or not value:
                raise InputError(f"each {what} name must be a non-empty string, got {value!r}")
    return list(dict.fromkeys(pairs))


class _Pool:
    """An immutable snapshot of the profiles, swapped whole when models change.

    Its caches (candidate subsets, conservative Ψ) only ever gain complete entries,
    so concurrent readers need no lock: a race at worst computes an entry twice.
    """

    def __init__(self, profiles: dict[str, ModelProfile]):
        self.profiles = profiles
        self.names = tuple(profiles)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.psi = np.stack([p.errors for p in profiles.values()]) if profiles else np.zeros((0, 0))
        self.price = Price(
            *(
                np.array([getattr(p, f) for p in profiles.values()], dtype=np.float64)
                for f in ("cost", "cost_per_char", "mean_chars", "max_chars")
            )
        )
        self.by_length = bool(self.price.per_char.any())  # else a prompt's length changes no price
        self._upper: dict[float, np.ndarray] = {}
        self._subsets: dict[Any, _Candidates] = {}

    def upper_psi_t(self, candidates: _Candidates, q: float) -> np.ndarray:
        """Transposed q-quantile Ψ of the candidates (conservative routing)."""
        upper = self._upper.get(q)
        if upper is None:
            upper = np.stack([p.upper(q) for p in self.profiles.values()]) if self.profiles else self.psi
            if len(self._upper) >= _MAX_QUANTILES:  # bounded, whatever quantiles requests name
                self._upper = {}
            self._upper[q] = upper
        return upper[candidates.index].T

    def subset(self, candidates: Sequence[str] | Mapping[str, str] | None) -> _Candidates:
        """The candidates' scoring layout, cached per candidate list (checked on a miss)."""
        if candidates is None:
            key: Any = None
        elif isinstance(candidates, Mapping):
            key = tuple(candidates.items())
        elif isinstance(candidates, (list, tuple)):
            key = tuple(candidates)
        else:  # a string (refused) or another iterable: not cached
            return _Candidates(self, _candidate_pairs(candidates))
        try:
            found = self._subsets.get(key)
        except TypeError:  # an unhashable element; _candidate_pairs names it
            found = None
        if found is None:
            pairs = [(n, n) for n in self.names] if candidates is None else _candidate_pairs(candidates)
            found = _Candidates(self, pairs)
            if len(self._subsets) >= _MAX_SUBSETS:
                self._subsets = {}
            self._subsets[key] = found
        return found


class _Routing(NamedTuple):
    """The routing pool built from ``validation`` + ``weight`` × ``source``'s feedback.

    ``version`` is the source's at the build, ``at`` its time. A pool of another
    source (swapped by :meth:`Router.use_feedback_store` during a build) is never used.
    """

    source: Any
    validation: _Pool
    weight: float
    version: int
    at: float
    pool: _Pool
    feedback: dict[str, tuple[np.ndarray, np.ndarray]]  # the feedback counts it was built from


class Router:
    """Routes each prompt to the model with the best expected quality for its price.

    Φ(x) comes from ``cluster_map`` over the ``embedder``'s vectors; Ψ(h) from each
    model's :class:`~uniroute.ModelProfile`. A model joins with :meth:`add_model`
    (its results on a labelled validation set); nothing else is refitted.

    As in scikit-learn's estimators, ``__init__`` stores its arguments as given;
    they are checked on first use; :meth:`fit` learns ``cluster_map_``. It has no
    ``get_params``/``set_params`` (its profiles and feedback are state that a clone
    with new arguments could not keep), so ``sklearn.base.clone`` does not apply. A router
    pickles and deep-copies (its lock, caches and background thread are rebuilt),
    so it can go to worker processes.

    Parameters
    ----------
    embedder : Embedder or str, default="static"
        An embedder or a registry name (see :func:`~uniroute.get_embedder`).
        Wrapped in a bounded in-memory cache.
    cluster_map : ClusterMap, optional
        Any :class:`~uniroute.engine.cluster_maps.ClusterMap`. If it is fitted
        already (as in a loaded state) it is used as is; :meth:`fit` fits a
        clone of it and never changes the object given. Default:
        ``KMeansClusterMap()`` (K and assignment chosen by CV on the training
        scores; K = 8 soft without scores).
    unknown_models : {"skip", "error"}, default="skip"
        What to do with a candidate that has no profile: leave it out with a
        warning (and list it in ``Decision.skipped``), or raise.
    prior_strength : float, default=4.0
        Pseudo-results that pull a profile's sparse clusters toward its global error
        (per cluster of each partition: a map that averages C partitions gets m/C
        per cluster, see ``KMeansClusterMap.n_maps``).
    feedback_weight : float, default=1.0
        Weight of production feedback (:meth:`record_feedback`) added to the
        validation counts when routing; 0 = route on validation only.
    feedback_half_life : float, optional
        Seconds after which a feedback count weighs half (drift); None = no decay.
    remember_decisions : bool, default=False
        Keep each decision (bounded, 1 h) so feedback can name it by ``decision_id``.
    explore_share : float, default=0.1
        With ``explore="thompson"``: largest share of decisions that may go to a
        model worse than the best by more than ``explore_margin``.
    explore_margin : float, default=0.02
        Score difference within which an explored model counts as good as the best.
    feedback_refresh : float, default=1.0
        Seconds between rebuilds of the routing profiles while feedback flows. The
        rebuild runs in a daemon thread (started by the first route that finds
        feedback; stopped by :meth:`close`), so routing never waits for it; 0 =
        rebuilt on the route path as soon as the counts move, with no thread.

    Attributes
    ----------
    cluster_map_ : ClusterMap
        The fitted cluster map: learned by :meth:`fit`, or ``cluster_map`` itself
        if it was given fitted.

    Examples
    --------
    >>> from uniroute import Router, PrecomputedEmbedder
    >>> emb = PrecomputedEmbedder({"math": [1.0, 0.0], "poem": [0.0, 1.0]})
    >>> router = Router(emb, KMeansClusterMap(n_clusters=2)).fit(["math", "poem"])
    >>> _ = router.add_model("big", ["math", "poem"], [1.0, 1.0], cost=0.01)
    >>> _ = router.add_model("small", ["math", "poem"], [0.0, 1.0], cost=0.001)
    >>> router.route("poem", lam=10.0).model
    'small'
    """

    def __init__(
        self,
        embedder: Embedder | str = DEFAULT_EMBEDDER,
        cluster_map: ClusterMap | None = None,
        *,
        unknown_models: Literal["skip", "error"] = "skip",
        prior_strength: float = DEFAULT_PRIOR_STRENGTH,
        feedback_weight: float = 1.0,
        feedback_half_life: float | None = None,
        remember_decisions: bool = False,
        explore_share: float = 0.1,
        explore_margin: float = 0.02,
        feedback_refresh: float = 1.0,
    ):
        self.embedder = embedder
        self.cluster_map = cluster_map
        self.unknown_models = unknown_models
        self.prior_strength = prior_strength
        self.feedback_weight = feedback_weight
        self.feedback_half_life = feedback_half_life
        self.remember_decisions = remember_decisions
        self.explore_share = explore_share
        self.explore_margin = explore_margin
        self.feedback_refresh = feedback_refresh
        self._start(profiles={})

    def _start(self, profiles: dict[str, ModelProfile], feedback: Any = None) -> None:
        """Make the runtime parts: lock, embedding cache (lazily), warned names, model pool, feedback."""
        self._lock = threading.Lock()
        self._encoder: CachedEmbedder | None = None
        self._warned: set[str] = set()
        self._pool = _Pool(profiles)  # the validation profiles (what add_profiles got, what save writes)
        self._feedback: Any = feedback  # a FeedbackLedger or a shared store; None until first used
        self._routing: _Routing | None = None
        self._cap: ExplorationCap | None = None
        self._decisions: DecisionCache | None = None
        self._refresher: threading.Thread | None = None  # rebuilds the routing pool in the background
        self._refresher_stop: threading.Event | None = None
        self._closed = False
        self._resets = 0  # counts reset_feedback calls: a rebuild that spans one is not swapped in

    def __getstate__(self) -> dict[str, Any]:
        """Arguments and learned state; the lock and caches are rebuilt on unpickling.

        An in-memory feedback ledger travels with the router (its counts, not its
        remembered decisions); a shared store (e.g. Redis) does not.
        """
        state = {k: v for k, v in self.__dict__.items() if k not in _RUNTIME}
        state["profiles"] = self._pool.profiles
        if isinstance(self._feedback, FeedbackLedger):
            state["feedback"] = self._feedback.to_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        profiles = state.pop("profiles")
        feedback = state.pop("feedback", None)
        for name, default in (
            ("feedback_weight", 1.0),
            ("feedback_half_life", None),
            ("remember_decisions", False),
            ("explore_share", 0.1),
            ("explore_margin", 0.02),
            ("feedback_refresh", 1.0),
        ):  # routers pickled before these parameters existed
            state.setdefault(name, default)
        self.__dict__.update(state)
        self._start(profiles, None if feedback is None else FeedbackLedger.from_state(*feedback))

    def _check_params(self) -> None:
        if self.unknown_models not in ("skip", "error"):
            raise InputError(f"unknown_models must be 'skip' or 'error', got {self.unknown_models!r}")
        check_number(self.prior_strength, "prior_strength", hint=" (pseudo-results per cluster, e.g. 4)")
        check_number(
            self.feedback_weight, "feedback_weight", hint=" (0 = validation only, 1 = feedback as is)"
        )
        check_number(self.feedback_refresh, "feedback_refresh", hint=" (seconds, e.g. 1)")
        half_life = self.feedback_half_life
        if half_life is not None and not check_number(half_life, "feedback_half_life") > 0:
            raise InputError(f"feedback_half_life must be > 0 seconds or None (no decay), got {half_life!r}")
        if not 0 <= check_number(self.explore_share, "explore_share") <= 1:
            raise InputError(f"explore_share must lie in [0, 1], e.g. 0.1; got {self.explore_share!r}")
        check_number(self.explore_margin, "explore_margin", hint=" (score difference, e.g. 0.02)")
        if not isinstance(self.remember_decisions, (bool, np.bool_)):
            raise InputError(f"remember_decisions must be True or False, got {self.remember_decisions!r}")

    # ---- embedding and clusters -------------------------------------------------

    @property
    def encoder(self) -> CachedEmbedder:
        """The embedder in use, behind its in-memory cache (built on first use)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    embedder = (
                        get_embedder(self.embedder) if isinstance(self.embedder, str) else self.embedder
                    )
                    self._encoder = CachedEmbedder(embedder)
        return self._encoder

    def _fitted_map(self) -> ClusterMap | None:
        fitted = self.__dict__.get("_cluster_map")
        if fitted is None and hasattr(self.cluster_map, "cluster_weights_"):
            fitted = self.cluster_map  # given fitted (e.g. by a saved state): used as is
        return fitted

    @property
    def cluster_map_(self) -> ClusterMap:
        """The fitted cluster map: learned by :meth:`fit`, or ``cluster_map`` if it came fitted."""
        fitted = self._fitted_map()
        if fitted is None:
            raise NotFittedError(
                "the router's cluster map is not fitted; call router.fit(prompts) or load a saved state"
            )
        return fitted

    @property
    def is_fitted(self) -> bool:
        """Whether the cluster map is fitted (by :meth:`fit`, or given fitted), so models can join."""
        return self._fitted_map() is not None

    def _check_fitted(self) -> ClusterMap:
        """The fitted map, after checking the arguments (first use validates them)."""
        self._check_params()
        return self.cluster_map_

    def _n_clusters(self) -> int:
        return len(self._check_fitted().cluster_weights_)

    def _per_cluster(self, pseudo_results: float) -> float:
        """Pseudo-results per cluster for a prior of ``pseudo_results`` per cluster of one partition.

        A map that averages C partitions (``KMeansClusterMap.n_maps_``) gives each of its
        clusters 1/C of a prompt, so the same prior weighs m/C against a cluster's results.
        """
        return pseudo_results / getattr(self._check_fitted(), "n_maps_", 1)

    def embed(self, prompts: Iterable[Prompt], progress: bool | None = None) -> np.ndarray:
        """Embed the routing text of each prompt (see :mod:`uniroute.engine.text`)."""
        return self._encode([routing_text(p) for p in _prompt_list(prompts, "embed")], progress)

    def _encode(self, texts: list[str], progress: bool | None) -> np.ndarray:
        """Embed texts, in chunks behind a progress bar when there are many."""
        encoder = self.encoder
        if len(texts) <= _BATCH:
            return encoder.encode(texts)
        chunks = [texts[i : i + _BATCH] for i in range(0, len(texts), _BATCH)]
        bar = tqdm(chunks, desc="embedding", unit="batch", disable=None if progress is None else not progress)
        return np.concatenate([encoder.encode(chunk) for chunk in bar])

    def cluster_probs(self, embeddings: Any) -> np.ndarray:
        """Φ for each row of a matrix of embeddings."""
        return self._check_fitted().predict_proba(embeddings)

    def fit(self, prompts: Sequence[Prompt], scores: Any = None, progress: bool | None = None) -> Router:
        """Fit the cluster map on training prompts; returns ``self``.

        ``scores`` (n_prompts, n_training_llms; 1 = correct, NaN = missing) goes to
        the map's ``fit``. Pass it when you have it: the default
        :class:`KMeansClusterMap` chooses K and hard/soft assignment by cross-validation
        on it and averages the three best maps (without it: one soft map, K = 8), and
        :class:`LearnedClusterMap` needs it.
        Profiles added before are dropped (they were built on the old clusters). A prompt
        with no routing text is left out, with a warning: routing puts such a request on the
        cluster prior, so it cannot shape the clusters.
        """
        texts = [routing_text(p) for p in _prompt_list(prompts, "fit")]
        if len(texts) == 0:
            raise InputError("fit needs at least one training prompt")
        keep = [i for i, text in enumerate(texts) if text]
        if not keep:
            raise InputError(
                f"none of the {len(texts)} training prompts has text to embed; give prompts with text "
                "(a string, or chat messages whose content is text)"
            )
        if len(keep) < len(texts):
            warnings.warn(
                f"uniroute: {len(texts) - len(keep)} of {len(texts)} training prompts have no text and "
                "are left out of the fit",
                stacklevel=2,
            )
            if scores is not None:
                try:
                    scores = np.asarray(scores, dtype=float)
                except (TypeError, ValueError) as exc:
                    raise InputError(f"scores must be numbers (1 = correct, NaN = missing): {exc}") from exc
                if len(scores) != len(texts):
                    raise InputError(
                        f"scores has {len(scores)} rows for {len(texts)} prompts; give one row a prompt"
                    )
                scores = scores[keep]
        X = self._encode([texts[i] for i in keep], progress)
        return self.fit_embeddings(X, scores)

    def fit_embeddings(self, X: Any, scores: Any = None) -> Router:
        """Like :meth:`fit`, on embeddings computed with this router's embedder."""
        self._check_params()
        X = check_embeddings(X)
        cmap = KMeansClusterMap() if self.cluster_map is None else _unfitted_copy(self.cluster_map)
        cmap.fit(X, scores)
        with self._lock:
            self._cluster_map = cmap
            self._pool = _Pool({})
            self._feedback = None  # feedback counts and remembered decisions belong to the old clusters
            self._decisions = None
            self._routing = None
        return self

    # ---- the model pool ---------------------------------------------------------

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the models that have a profile."""
        return self._pool.names

    @property
    def profiles(self) -> dict[str, ModelProfile]:
        """A copy of the validation profiles by model name (without production feedback)."""
        return dict(self._pool.profiles)

    def profile(self, name: str) -> ModelProfile:
        """The validation profile of ``name``; :class:`~uniroute.UnknownModelError` if it has none."""
        try:
            return self._pool.profiles[name]
        except KeyError:
            raise UnknownModelError(
                f"no profile for model {name!r}; known models: {list(self.models)}"
            ) from None

    def add_profile(self, profile: ModelProfile, replace: bool = False) -> None:
        """Add a ready profile (its cluster count must match the map)."""
        self.add_profiles([profile], replace=replace)

    def add_profiles(self, profiles: Iterable[ModelProfile], replace: bool = False) -> None:
        """Add ready profiles, all or none (each checked as :meth:`add_profile` does)."""
        n_clusters = self._n_clusters()
        profiles = list(profiles)
        with self._lock:
            current = dict(self._pool.profiles)
            for profile in profiles:
                _check_model_name(profile.name)
                if len(profile.counts) != n_clusters:
                    raise InputError(
                        f"profile {profile.name!r} has {len(profile.counts)} clusters; "
                        f"the router has {n_clusters}"
                    )
                if profile.name in current and not replace:
                    raise InputError(
                        f"model {profile.name!r} is already in the router; pass replace=True "
                        "(CLI: --replace) to overwrite its profile"
                    )
                current[profile.name] = profile
            self._pool = _Pool(current)

    def remove_model(self, name: str) -> ModelProfile:
        """Drop a model from the pool; returns its profile."""
        with self._lock:
            current = dict(self._pool.profiles)
            if name not in current:
                raise UnknownModelError(
                    f"cannot remove {name!r}: not in the router; known models: {list(current)}"
                )
            removed = current.pop(name)
            self._pool = _Pool(current)
        return removed

    def add_models(
        self,
        prompts: Sequence[Prompt],
        scores: Mapping[str, Any],
        costs: Mapping[str, Any],
        replace: bool = False,
        embeddings: Any = None,
        progress: bool | None = None,
    ) -> list[ModelProfile]:
        """Profile several models on one labelled validation set (embedded once).

        Parameters
        ----------
        prompts : sequence of prompts
        scores : mapping of model name to sequence of float
            One score in [0, 1] per prompt (1 = correct); NaN = no result.
        costs : mapping of model name to float, sequence of float or Price
            $ per request, or $ per prompt, or a :class:`~uniroute.Price`. Per-prompt $
            also price requests by their length: the profile keeps the mean $ over
            observed prompts and how it moves per character
            (:func:`~uniroute.engine.profiles.fit_price`).
        replace : bool, default=False
            Overwrite the profile of a model already in the router (else an
            :class:`~uniroute.InputError`).
        embeddings : array, optional
            Precomputed embeddings of ``prompts`` (skips embedding; used as they are,
            as :meth:`route_embeddings` does). Without them a prompt with no routing
            text counts on the cluster prior, as :meth:`route` takes such a request.
        progress : bool, optional
            Show a progress bar while embedding; by default only for many prompts on a terminal.
        """
        _prompt_list(prompts, "add_models")
        for what, value in (("scores", scores), ("costs", costs)):
            if not isinstance(value, Mapping):
                raise InputError(
                    f"add_models takes {what} as a mapping of model name to {what} "
                    f"(got {type(value).__name__}); for one model use add_model(name, prompts, scores, cost)"
                )
        for name in scores:
            _check_model_name(name)
            if name not in costs:
                raise InputError(f"no cost given for model {name!r}; pass costs={{{name!r}: $}}")
        cmap = self._check_fitted()
        if embeddings is None:  # Φ as routing takes it: a prompt with no routing text gets the cluster prior
            phi = self._phi_of(list(prompts), progress=progress)[0]
        else:
            phi = cmap.predict_proba(check_embeddings(embeddings))
        checked = {name: check_scores(model_scores, len(phi), name) for name, model_scores in scores.items()}
        per_prompt = {name: _per_prompt_costs(name, costs[name], s) for name, s in checked.items()}
        chars = None
        if any(c is not None for c in per_prompt.values()):
            if len(prompts) != len(phi):
                raise InputError(
                    f"{len(prompts)} prompts but {len(phi)} embeddings: per-prompt costs are priced by "
                    "the prompts' lengths, so give the prompts the embeddings belong to"
                )
            chars = prompt_chars(prompts)
        profiles = [
            profile_from_scores(
                name,
                phi,
                s,
                _price(name, costs[name], chars, per_prompt[name]),
                self._per_cluster(self.prior_strength),
                reference=cmap.cluster_weights_,
            )
            for name, s in checked.items()
        ]
        self.add_profiles(profiles, replace=replace)
        return profiles

    def add_model(
        self,
        name: str,
        prompts: Sequence[Prompt],
        scores: Any,
        cost: Any,
        replace: bool = False,
        embeddings: Any = None,
    ) -> ModelProfile:
        """Profile one model from its validation results; nothing else changes."""
        return self.add_models(prompts, {name: scores}, {name: cost}, replace, embeddings)[0]

    def add_model_prior(
        self,
        name: str,
        cost: float,
        *,
        accuracy: float | None = None,
        like: str | None = None,
        strength: float = 4.0,
        replace: bool = False,
    ) -> ModelProfile:
        """Add a model with no validation results (cold start), from a prior.

        Give ``accuracy`` (its stated share of right answers, the same in every
        cluster) or ``like`` (the name of a profiled model it resembles: that
        model's per-cluster error rates). ``strength`` is the pseudo-results per
        cluster the prior counts for: small = feedback takes over quickly.
        """
        from .feedback import prior_profile

        _check_model_name(name)
        profile = prior_profile(
            name,
            self._n_clusters(),
            check_number(cost, f"cost of {name!r}", hint=" ($ per request)"),
            accuracy=accuracy,
            like=None if like is None else self.profile(like),
            strength=self._per_cluster(
                check_number(strength, "strength", hint=" (pseudo-results per cluster)")
            ),
            prior_strength=self._per_cluster(self.prior_strength),
        )
        self.add_profiles([profile], replace=replace)
        return profile

    # ---- feedback ---------------------------------------------------------------

    @property
    def feedback(self) -> Any:
        """Where feedback counts go: a :class:`~uniroute.engine.feedback.FeedbackLedger`
        (in memory, saved with the state; made on first use) or the store given to
        :meth:`use_feedback_store`."""
        if self._feedback is None:
            n_clusters = self._n_clusters()
            with self._lock:
                if self._feedback is None:
                    self._feedback = FeedbackLedger(n_clusters, half_life=self.feedback_half_life)
        return self._feedback

    @property
    def feedback_namespace(self) -> str:
        """The key prefix under which the replicas of this state share feedback (e.g. in Redis).

        A digest of the embedder id and the fitted cluster map: it stays when models or
        feedback are added and changes when the clusters do, so states never mix counts.
        """
        return feedback_namespace(self)

    def use_feedback_store(self, store: Any) -> None:
        """Route on, and record feedback into, ``store`` (e.g. a shared Redis store).

        Any object with ``record(model, cluster_probs, score, weight)``,
        ``counts(model) -> (error_sums, counts)``, ``profile(validation, weight)``
        and an int ``version`` that grows when the counts change qualifies. A store
        that also has ``remember(decision)`` and ``decision(decision_id)`` shares the
        remembered decisions (``remember_decisions=True``), so feedback by id works at
        any replica; with ``remember_answer(decision_id, profile)`` it also shares who
        answered after a fallback (:meth:`remember_answer`).

        The decisions this router remembered stay known by id: they are its own (its
        clusters, its choices), not the store's. Feedback on them goes to ``store``.
        """
        for attr in ("record", "counts", "profile", "version"):
            if not hasattr(store, attr):
                raise InputError(
                    f"a feedback store needs record, counts, profile and version; {type(store).__name__} "
                    f"has no {attr!r} (use uniroute.engine.feedback.FeedbackLedger or RedisFeedbackStore)"
                )
        half_life = getattr(store, "half_life", self.feedback_half_life)
        if half_life != self.feedback_half_life:
            warnings.warn(
                f"uniroute: the feedback store decays with half_life={half_life!r} s, the router's "
                f"feedback_half_life is {self.feedback_half_life!r}; the store's applies. Give the store "
                "half_life=router.feedback_half_life (e.g. RedisFeedbackStore.from_url(..., half_life=...))",
                stacklevel=2,
            )
        with self._lock:
            kept = self._remembered()
            self._feedback = store
            self._routing = None
            if kept is not None and len(kept):
                if isinstance(store, FeedbackLedger):
                    target = store.decisions
                elif self._decisions is kept:
                    target = kept
                else:  # out of the old ledger, whose cache stays the ledger's
                    target = self._decisions = DecisionCache(kept.max_size, kept.ttl)
                if target is not kept:
                    target.update(kept)

    def _remembered(self) -> DecisionCache | None:
        """Where decisions are remembered now (see :meth:`_decision_cache`), without making one."""
        source = self._feedback
        return source.decisions if isinstance(source, FeedbackLedger) else self._decisions

    def _decision_cache(self) -> DecisionCache:
        source = self.feedback
        if isinstance(source, FeedbackLedger):
            return source.decisions
        if self._decisions is None:
            with self._lock:
                if self._decisions is None:
                    self._decisions = DecisionCache()
        return self._decisions

    def record_feedback(
        self, target: Any, score: Any, *, weight: float = 1.0, model: str | None = None
    ) -> str:
        """Record how well a routed request went; returns the profile credited.

        ``target`` is the :class:`Decision` (``model``: the candidate that actually
        answered, default ``decision.model``), a ``decision_id`` (needs
        ``remember_decisions=True``), or the prompt itself with ``model=`` the
        profile that answered. ``score``: a number in [0, 1] (1 = right) or a bool.
        Each cluster's counts move by Φ_k(x)·weight; validation profiles stay as they are.
        An id this process does not know is looked up in a shared feedback store (Redis);
        when that store cannot be reached, :class:`~uniroute.FeedbackUnavailableError`
        says to retry rather than calling the id unknown. An id unknown or expired
        everywhere raises :class:`~uniroute.UnknownDecisionError` (an ``InputError``).
        """
        if isinstance(target, Decision):
            answered = target.model if model is None else model
            if model is not None and answered not in target.candidates:
                raise InputError(
                    f"model {answered!r} is not a candidate of this decision; "
                    f"candidates: {list(target.candidates)}"
                )
            profile = profile_of(target, answered)
            phi: Any = target.cluster_probs
        elif isinstance(target, str) and model is None:
            item = self._decision_cache().get(target)
            lookup = getattr(self._feedback, "decision", None)
            if item is None and lookup is not None:  # remembered by another replica
                item = lookup(target)
            if item is None:
                shared = (
                    ""
                    if lookup is None
                    else "; another replica's decision reaches the shared store within its flush_interval, "
                    "so feedback sent sooner than that finds no decision yet"
                )
                raise UnknownDecisionError(
                    f"decision {short_repr(target)} is unknown or expired (remembered only with "
                    "remember_decisions=True, for 1 h); pass the Decision, or the prompt with "
                    f"model= the model that answered{shared}"
                )
            profile, phi = item.credited(target), item.cluster_probs
        elif model is None:
            raise InputError(
                "record_feedback(prompt, score) needs model= (the model that answered); "
                "or pass the Decision or its decision_id"
            )
        else:
            profile = model
            phi = self._phi_of([target])[0][0]
        if profile not in self._pool.index:
            raise UnknownModelError(f"no profile for model {profile!r}; known models: {list(self.models)}")
        self.feedback.record(profile, phi, score, weight)
        return profile

    def remember_answer(self, decision: Decision, model: str | None) -> None:
        """Note that ``model`` answered ``decision`` instead of its choice (after a fallback).

        ``model`` is the candidate that answered, or ``None`` for a model outside the
        candidates. Feedback by the decision's id then credits who answered (or, for
        ``None``, raises :class:`~uniroute.UnrankedAnswerError`), here and, with a shared
        feedback store, at every replica. A no-op unless ``remember_decisions=True``.
        """
        if model is not None and model not in decision.candidates:
            raise InputError(
                f"model {model!r} is not a candidate of this decision; candidates: "
                f"{list(decision.candidates)} (pass None for a model outside them)"
            )
        if not self.remember_decisions:
            return
        profile = None if model is None else profile_of(decision, model)
        cache = self._decision_cache()
        item = cache.get(decision.decision_id)
        if item is not None:
            cache.put(decision.decision_id, dataclasses.replace(item, profile=profile), item.at)
        share = getattr(self._feedback, "remember_answer", None)
        if share is not None:
            share(decision.decision_id, profile)

    def reset_feedback(self, model: str | None = None) -> None:
        """Forget the feedback of ``model`` (or of all models): routing on validation profiles again."""
        source = self.feedback
        if not hasattr(source, "reset"):
            raise InputError(
                f"{type(source).__name__} cannot be reset from here; clear its counts in the store"
            )
        source.reset(model)
        with self._lock:
            self._resets += 1
            self._routing = None

    @property
    def exploration_cap(self) -> ExplorationCap:
        """The cap on exploration to clearly worse models (``stats()`` counts explored and capped picks)."""
        if self._cap is None:
            with self._lock:
                if self._cap is None:
                    self._cap = ExplorationCap(self.explore_share, self.explore_margin)
        return self._cap

    def _routing_pool(self) -> _Pool:
        """The validation pool with feedback added: what routing scores on.

        With ``feedback_refresh > 0`` the route path only reads the last routing
        pool; a daemon thread (started by the first route that finds feedback)
        rebuilds it when the feedback's ``version`` moved (or, with a half-life,
        its counts decayed by 0.1 %), every ``feedback_refresh`` seconds. Only a
        missing pool, a changed ``feedback_weight`` or changed validation profiles
        are rebuilt here, at once. With ``feedback_refresh == 0``, or after :meth:`close`, the rebuild
        happens here when the counts moved (at most once per ``feedback_refresh``).
        """
        source = self._feedback
        weight = self.feedback_weight
        if source is None or weight == 0:
            return self._pool
        background = self.feedback_refresh > 0 and not self._closed
        if background:
            refresher = self._refresher
            if refresher is None or not refresher.is_alive():
                self._start_refresher()
        built = self._routing
        if (
            built is not None
            and built.source is source
            and built.validation is self._pool
            and built.weight == weight
        ):
            if background:
                return built.pool
            if not _moved(built, source) or time.monotonic() - built.at < self.feedback_refresh:
                return built.pool
        return self._rebuild(source, weight, built)

    def _refresh_routing(self) -> None:
        """Rebuild the routing pool if the feedback moved (the refresher thread's step)."""
        source, weight, built = self._feedback, self.feedback_weight, self._routing
        if source is not None and weight != 0 and built is not None and _moved(built, source):
            self._rebuild(source, weight, built)

    def _rebuild(self, source: Any, weight: float, built: _Routing | None) -> _Pool:
        """Combine validation + feedback; reuses the combined profiles whose counts did not move."""
        resets, validation = self._resets, self._pool
        version = source.version  # read first: feedback arriving during the build moves it again
        previous = None
        if built is not None and built.source is source and built.validation is validation:
            previous = built if built.weight == weight else None
        names = getattr(source, "models", None)
        touched = validation.names if names is None else [n for n in names if n in validation.index]
        profiles = dict(validation.profiles)
        feedback: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in touched:
            error_sums, counts = feedback[name] = source.counts(name)
            old = None if previous is None else previous.feedback.get(name)
            if previous is not None and old is not None and _same(old, (error_sums, counts)):
                profiles[name] = previous.pool.profiles[name]
            else:
                profiles[name] = combine(validation.profiles[name], error_sums, counts, weight)
        pool = _Pool(profiles)
        routing = _Routing(source, validation, weight, version, time.monotonic(), pool, feedback)
        with self._lock:
            if self._resets == resets:  # else it may hold counts a reset_feedback has since forgotten
                self._routing = routing
        return pool

    def _start_refresher(self) -> None:
        with self._lock:
            if self._closed or (self._refresher is not None and self._refresher.is_alive()):
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=_refresh_loop,
                args=(weakref.ref(self), stop),
                name="uniroute-feedback-refresh",
                daemon=True,
            )
            self._refresher, self._refresher_stop = thread, stop
            weakref.finalize(self, stop.set)  # a collected router wakes its thread, which then ends
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background rebuild of the routing profiles (idempotent).

        Routing keeps working: a closed router rebuilds on the route path, at most
        once per ``feedback_refresh`` seconds. A feedback store given to
        :meth:`use_feedback_store` is closed by its owner, not here.
        """
        with self._lock:
            self._closed = True
            thread, stop = self._refresher, self._refresher_stop
            self._refresher = None
        if thread is not None and stop is not None:
            stop.set()
            if thread is not threading.current_thread():
                thread.join(timeout)

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- routing ----------------------------------------------------------------

    def _candidates(self, pool: _Pool, candidates: Candidates | None) -> _Candidates:
        chosen = pool.subset(candidates)
        skipped = chosen.skipped
        if skipped:
            if self.unknown_models == "error":
                raise UnknownModelError(
                    f"no profile for candidate(s) {list(skipped)}; known models: {list(pool.names)}"
                )
            self._warn_once(skipped)
        if not chosen.names:
            raise UnknownModelError(
                "no candidate has a profile; add models with Router.add_model (CLI: uniroute add-model)"
                + (f"; skipped {list(skipped)}" if skipped else "")
            )
        return chosen

    def _warn_once(self, skipped: Sequence[str]) -> None:
        """Warn about candidates with no profile, once per name (the lock is taken only for new names).

        Python keeps the text of every warning it showed for the life of the process (the
        caller's ``__warningregistry__``), so only the first :data:`_MAX_WARNED` names are
        named; past them one fixed text says so (``Decision.skipped`` still names them).
        """
        if all(name in self._warned for name in skipped):
            return
        with self._lock:
            new = [name for name in skipped if name not in self._warned]
            named = new[: max(_MAX_WARNED - len(self._warned), 0)]
            self._warned.update(named)
        if named:  # stacklevel 6: the caller of route()
            warnings.warn(f"uniroute: skipping candidate(s) with no profile: {named}", stacklevel=6)
        elif new:
            warnings.warn(
                f"uniroute: skipping candidate(s) with no profile; past {_MAX_WARNED} such names they are "
                "not named here (Decision.skipped lists them)",
                stacklevel=6,
            )

    def _score(
        self,
        phi: np.ndarray,
        candidates: Candidates | None,
        conservative: float | None,
        costs: Mapping[str, Any] | None,
        chars: np.ndarray | None = None,
    ) -> tuple[_Pool, _Candidates, np.ndarray, np.ndarray]:
        """The pool scored on, the candidates, their expected errors Φ·Ψ (n, m) and their prices:
        (m,) without the prompts' lengths ``chars``, else (n, m)."""
        if conservative is not None:
            conservative = check_number(conservative, "conservative", hint=" (a quantile such as 0.9)")
            if not 0 < conservative < 1:
                raise InputError(f"conservative must lie in (0, 1), e.g. 0.9; got {conservative!r}")
        pool = self._routing_pool()
        chosen = self._candidates(pool, candidates)
        psi_t = chosen.psi_t if conservative is None else pool.upper_psi_t(chosen, conservative)
        return pool, chosen, phi @ psi_t, chosen.prices(chars, costs)

    def _decide(
        self,
        phi: np.ndarray,
        lam: Any,
        candidates: Candidates | None,
        conservative: float | None,
        notes: Sequence[str | None],
        costs: Mapping[str, Any] | None,
        explore: str | None = None,
        rng: Any = None,
        chars: np.ndarray | None = None,
    ) -> list[Decision]:
        lam = check_number(lam, "lam", hint=" (error points traded per $; 0 = best quality)")
        if explore not in (None, "thompson"):
            raise InputError(f"explore must be None (deterministic) or 'thompson', got {explore!r}")
        pool, chosen, errors, cand_costs = self._score(phi, candidates, conservative, costs, chars)
        scores = route_scores(errors, cand_costs, lam)
        per_prompt = cand_costs.ndim == 2  # priced by each prompt's length, else one price for all
        names = chosen.names
        best = best_index(scores).tolist()
        decisions = [
            Decision(
                chosen.names,
                errors[i],
                cand_costs[i] if per_prompt else cand_costs,
                lam,
                phi[i],
                chosen.skipped,
                notes[i],
                chosen.profiles,
                scores[i],
                names[best[i]],
            )
            for i in range(len(phi))
        ]
        if explore is not None:
            decisions = self._explore(decisions, pool, chosen, rng)
        if self.remember_decisions:
            cache = self._decision_cache()
            source = self._feedback
            shared = None if isinstance(source, FeedbackLedger) else getattr(source, "remember", None)
            for decision in decisions:
                cache.remember(decision)
                if shared is not None:  # a shared store: feedback by id works at every replica
                    shared(decision)
        return decisions

    def _explore(
        self, decisions: list[Decision], pool: _Pool, chosen: _Candidates, rng: Any
    ) -> list[Decision]:
        """Thompson sampling under the exploration cap (the routing rule scores the sample)."""
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        cap = self.exploration_cap
        profiles = [pool.profiles[p] for p in chosen.profiles]
        out = []
        for decision in decisions:
            sampled = decision.cluster_probs @ thompson_errors(profiles, generator).T
            sampled_scores = route_scores(sampled, decision.costs, decision.lam)
            pick = cap.choose(decision.scores, sampled_scores)
            if decision.candidates[pick] == decision.model:
                out.append(decision)
                continue
            out.append(
                Decision(
                    decision.candidates,
                    sampled,
                    decision.costs,
                    decision.lam,
                    decision.cluster_probs,
                    decision.skipped,
                    EXPLORED_NOTE,
                    decision.profiles,
                )
            )
        return out

    def _phi_of(
        self, prompts: Sequence[Prompt], with_chars: bool = False, progress: bool | None = False
    ) -> tuple[np.ndarray, list[str | None], np.ndarray | None]:
        """Φ of each prompt, its note (no text), and with ``with_chars`` its length in characters.

        A prompt with no routing text gets the cluster prior and is never embedded.
        ``progress=False`` (the route path) embeds in one call; otherwise as :meth:`embed` does.
        """
        cmap = self._check_fitted()
        texts, chars = routing_texts(prompts, with_chars)
        has_text = [bool(t) for t in texts]
        phi = np.tile(np.asarray(cmap.cluster_weights_, dtype=np.float32), (len(texts), 1))
        with_text = [t for t in texts if t]
        if with_text:
            X = self.encoder.encode(with_text) if progress is False else self._encode(with_text, progress)
            phi[np.array(has_text)] = cmap.predict_proba(X)
        return phi, [None if ok else NO_TEXT_NOTE for ok in has_text], chars

    def route(
        self,
        prompt: Prompt,
        lam: float = 0.0,
        candidates: Candidates | None = None,
        conservative: float | None = None,
        *,
        costs: Mapping[str, float] | None = None,
        explore: str | None = None,
        rng: Any = None,
    ) -> Decision:
        """Pick the candidate for one prompt: argmin of Φ(x)·Ψ + λ·cost.

        Parameters
        ----------
        prompt : str, bytes or list of chat messages
            A request with no text (empty, image-only, tool-call-only) is routed on
            the cluster prior: the model best on average; ``Decision.note`` says so.
        lam : float, default=0.0
            λ, error points traded per $ of cost per request; 0 = best quality.
        candidates : list of str or mapping of str to str, optional
            Restrict the choice to these models (default: all profiled models), or
            map candidate names to the profile each is scored with (several
            candidates may share one profile, e.g. one model in three regions).
        conservative : float, optional
            Route on the q-quantile of each model's error posterior instead of its mean.
        costs : mapping of str to float, optional
            $ per request for some candidates, overriding their profile's cost.
        explore : {None, "thompson"}, default=None
            None routes deterministically on the posterior mean. "thompson" routes on
            a posterior sample (so uncertain and new models get measured), capped by
            :attr:`exploration_cap`; an explored decision carries the sampled errors
            and ``note == "explored: Thompson sample"``.
        rng : numpy Generator or int, optional
            Randomness for ``explore="thompson"``.
        """
        phi, notes, chars = self._phi_of([prompt], self._pool.by_length)
        return self._decide(phi, lam, candidates, conservative, notes, costs, explore, rng, chars)[0]

    def route_batch(
        self,
        prompts: Sequence[Prompt],
        lam: float = 0.0,
        candidates: Candidates | None = None,
        conservative: float | None = None,
        *,
        costs: Mapping[str, float] | None = None,
        explore: str | None = None,
        rng: Any = None,
    ) -> list[Decision]:
        """Route many prompts at once (one embedding call, one matrix product); see :meth:`route`."""
        phi, notes, chars = self._phi_of(list(_prompt_list(prompts, "route_batch")), self._pool.by_length)
        return self._decide(phi, lam, candidates, conservative, notes, costs, explore, rng, chars)

    def route_embeddings(
        self,
        embeddings: Any,
        lam: float = 0.0,
        candidates: Candidates | None = None,
        conservative: float | None = None,
        *,
        costs: Mapping[str, float] | None = None,
        chars: Any = None,
    ) -> list[Decision]:
        """Route prompts given as embeddings from this router's embedder.

        Embeddings carry no length: give the prompts' lengths ``chars``
        (:func:`uniroute.engine.text.prompt_chars`) to price each request by its
        length as :meth:`route` does; without them every candidate is priced at
        its profile's mean $.
        """
        phi = self.cluster_probs(embeddings)
        lengths = _check_chars(chars, len(phi))
        return self._decide(phi, lam, candidates, conservative, [None] * len(phi), costs, chars=lengths)

    def expected_errors(
        self,
        embeddings: Any,
        candidates: Candidates | None = None,
        *,
        costs: Mapping[str, float] | None = None,
        chars: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """Φ(x)·Ψ(h) for every prompt and candidate: ``(errors (n, m), prices, names)``.

        The building block for sweeping λ over a whole test set at once; score
        with :func:`uniroute.engine.decision.route_scores`. Embeddings carry no
        length: give the prompts' lengths ``chars``
        (:func:`uniroute.engine.text.prompt_chars`) to price each prompt as
        :meth:`route` does, an (n, m) array; without them the prices are the
        profiles' mean $, shape (m,).
        """
        phi = self.cluster_probs(embeddings)
        lengths = _check_chars(chars, len(phi))
        _, chosen, errors, cand_costs = self._score(phi, candidates, None, costs, lengths)
        return errors, cand_costs, chosen.names

    def calibrate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_cost: float | None = None,
        min_quality: float | None = None,
        candidates: Candidates | None = None,
        costs: Mapping[str, float] | None = None,
    ) -> float:
        """Find the λ that meets an operating point on representative prompts.

        ``max_cost``: the smallest λ whose mean $ per request is within budget.
        ``min_quality``: the largest λ whose expected quality (1 - Φ·Ψ, by the
        router's own estimates) stays at or above the target. Give exactly one.
        """
        if (max_cost is None) == (min_quality is None):
            raise InputError("give exactly one of max_cost=... or min_quality=...")
        budget = max_cost is not None
        target = (
            check_number(max_cost, "max_cost", hint=" ($ per request)")
            if budget
            else check_number(min_quality, "min_quality", hint=" (expected share correct, 0..1)")
        )
        if len(_prompt_list(prompts, "calibrate")) == 0:
            raise InputError("calibrate needs representative prompts (a sample of real traffic); got none")
        # Φ as route_batch takes it: a prompt with no routing text gets the cluster prior
        phi, _, chars = self._phi_of(list(prompts), self._pool.by_length)
        _, _, errors, cand_costs = self._score(phi, candidates, None, costs, chars)
        cand_costs = np.broadcast_to(cand_costs, errors.shape)
        rows = np.arange(len(errors))

        def outcome(lam: float) -> tuple[float, float]:
            choice = best_index(route_scores(errors, cand_costs, lam))
            return float(cand_costs[rows, choice].mean()), float(1.0 - errors[rows, choice].mean())

        def meets(lam: float) -> bool:  # False -> True as λ grows for a budget, True -> False for quality
            cost, quality = outcome(lam)
            return cost <= target if budget else quality >= target

        lam_hi = lambda_bound(errors, cand_costs)
        if budget:
            if meets(0.0):
                return 0.0
            if not meets(lam_hi):
                raise InputError(
                    f"no λ meets max_cost={max_cost}: the cheapest routing costs "
                    f"${outcome(lam_hi)[0]:.6g} per request"
                )
        else:
            if not meets(0.0):
                raise InputError(
                    f"no λ meets min_quality={min_quality}: the best expected quality is "
                    f"{outcome(0.0)[1]:.4f}"
                )
            if meets(lam_hi):
                return float(lam_hi)
        lo, hi = 0.0, lam_hi
        for _ in range(100):
            mid = (lo + hi) / 2
            if meets(mid) == budget:
                hi = mid
            else:
                lo = mid
        return float(hi if budget else lo)

    # ---- persistence ------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Save the router (see :func:`uniroute.engine.state.save_router`)."""
        return save_router(self, path)

    @classmethod
    def load(
        cls, path: str | Path, embedder: Embedder | None = None, *, allow_network: bool = False
    ) -> Router:
        """Load a saved router (see :func:`uniroute.engine.state.read_state`).

        ``allow_network=True`` rebuilds an embedder that sends texts over the network
        (e.g. LiteLLM's) from the state; without it such a state needs ``embedder=``.
        A subclass loads as itself.
        """
        return read_state(path, embedder, allow_network=allow_network).build(cls)


def load_router(path: str | Path, embedder: Embedder | None = None, *, allow_network: bool = False) -> Router:
    """Load a router saved by :func:`~uniroute.engine.state.save_router` (same as :meth:`Router.load`)."""
    return Router.load(path, embedder, allow_network=allow_network)


def _unfitted_copy(cluster_map: ClusterMap) -> ClusterMap:
    """``sklearn.base.clone`` of the map (a deep copy for a map without ``get_params``)."""
    from sklearn.base import clone

    return clone(cluster_map, safe=False)


def _refresh_loop(ref: weakref.ref[Router], stop: threading.Event) -> None:
    """Rebuild the router's routing pool every ``feedback_refresh`` s; ends when it is closed or collected.

    Holds the router only weakly (and only during a step), so an unused router is
    collected and its thread ends.
    """
    last = time.monotonic()
    while not stop.is_set():
        router = ref()
        if router is None:
            return
        try:
            interval = float(router.feedback_refresh)
            if not interval > 0:
                return  # the route path rebuilds at once now
            if time.monotonic() - last >= interval:
                last = time.monotonic()
                router._refresh_routing()
        except Exception:  # the route path keeps the last pool; say why it does not move
            logger.exception("uniroute: rebuilding the routing profiles from feedback failed")
            last, interval = time.monotonic(), 1.0
        del router
        stop.wait(min(max(interval - (time.monotonic() - last), 0.001), 1.0))


def _moved(built: _Routing, source: Any) -> bool:
    """Whether ``source``'s counts moved since ``built``: new feedback, or (with a half-life) decay
    by more than :data:`_DECAY_TOLERANCE`, which happens with no new feedback at all."""
    if built.version != source.version:
        return True
    half_life = getattr(source, "half_life", None)
    if half_life is None:
        return False
    return time.monotonic() - built.at > half_life * _DECAY_HALF_LIVES


def _same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether two (error_sums, counts) pairs are equal."""
    return np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])


def _check_chars(chars: Any, n: int) -> np.ndarray | None:
    """The prompts' lengths as float64 (None stays None): one finite length >= 0 per prompt."""
    if chars is None:
        return None
    try:
        lengths = np.asarray(chars, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"chars must hold one length >= 0 per prompt ({n}): {exc}") from exc
    if lengths.shape != (n,) or not (np.isfinite(lengths) & (lengths >= 0)).all():
        raise InputError(f"chars must hold one length >= 0 per prompt ({n}), got shape {lengths.shape}")
    return lengths


def _prompt_list(prompts: Any, method: str) -> Any:
    """``prompts`` unchanged, unless it is one prompt (a str or bytes reads as one prompt per character)."""
    if isinstance(prompts, (str, bytes, bytearray)):
        raise InputError(
            f"{method} takes a list of prompts, not one {type(prompts).__name__}; wrap it: [prompt]"
        )
    return prompts


def _check_model_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"a model name must be a non-empty string, got {name!r}")


def _price(name: str, cost: Any, chars: np.ndarray | None, per_prompt: np.ndarray | None) -> float | Price:
    """A model's price as ``add_models`` was given it: a Price, fitted per-prompt $, or one $, checked."""
    if isinstance(cost, Price):
        return cost
    if chars is not None and per_prompt is not None:
        return fit_price(chars, per_prompt)
    value = cost.item() if isinstance(cost, np.ndarray) else cost
    return check_number(value, f"cost of {name!r}", hint=" ($ per request, one $ per prompt, or a Price)")


def _per_prompt_costs(name: str, cost: Any, scores: np.ndarray) -> np.ndarray | None:
    """None for one $ per request (or a Price); else the per-prompt $ with NaN where there is no result."""
    if isinstance(cost, Price) or np.ndim(cost) == 0:
        return None
    hint = f" ($ per request, or one $ per prompt: {len(scores)} values)"
    try:
        values = np.asarray(cost, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"cost of {name!r} must be numbers{hint}, got {cost!r:.80}") from None
    if values.shape != scores.shape:
        raise InputError(f"costs of {name!r}: give one $ per request or one per prompt ({len(scores)})")
    values = np.where(~np.isnan(scores) & np.isfinite(values), values, np.nan)
    if np.isnan(values).all():
        raise InputError(f"model {name!r} has no finite cost on its observed prompts")
    if (values[~np.isnan(values)] < 0).any():
        raise InputError(f"costs of {name!r} must be $ >= 0{hint}")
    return values
