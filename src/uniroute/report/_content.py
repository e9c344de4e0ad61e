"""What the report says, as data: clusters, Ψ, the quality/cost frontier and its operating points.

:func:`build_report` computes a :class:`ReportData`; :mod:`._html` and
:mod:`._markdown` only render it. Nothing here draws or formats.

The traffic sample (the prompts that give cluster shares, examples, terms and the
frontier) is ``prompts`` if given, else the validation prompts; with neither, the
shares are the map's ``cluster_weights_`` and the frontier treats each cluster as
one typical prompt weighted by its share (there is then no budget point:
``Router.calibrate`` needs prompts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.cluster_maps import averaged_maps, hard_clusters, map_blocks
from ..engine.decision import best_index, lambda_sweep, route_scores
from ..engine.files import refuse_directory
from ..engine.text import Prompt, prompt_chars, routing_text
from ..exceptions import InputError

if TYPE_CHECKING:
    from ..datasets import RoutingDataset
    from ..engine.router import Router
    from ..onboarding.validation import ValidationItem

N_EXAMPLES = 3
N_TERMS = 8
MIN_COUNT = 1.0
"""A model with fewer (soft) validation results than this in a cluster lacks data there."""
_GRID = 241


@dataclass
class ClusterInfo:
    """One cluster: its share of the traffic sample, representative prompts and distinctive terms."""

    index: int
    share: float
    n_prompts: int
    examples: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)


@dataclass
class OperatingPoint:
    """One λ on the frontier and what routing at it does to the traffic sample.

    ``cost`` is the mean $ per request (profile prices), ``expected_quality`` the
    router's own estimate 1 − Φ·Ψ of the chosen models, ``measured_quality`` the
    validation file's scores of the chosen models (None without scores), ``shares``
    the fraction of requests each model gets, ``saved`` the $ per request saved
    against always calling the strongest model.
    """

    name: str
    lam: float
    cost: float
    expected_quality: float
    measured_quality: float | None
    shares: dict[str, float]
    saved: float
    saved_fraction: float


@dataclass
class ReportData:
    """Everything the report shows; see :func:`build_report`."""

    models: list[str]
    model_costs: dict[str, float]
    psi: np.ndarray
    counts: np.ndarray
    lacking: np.ndarray
    clusters: list[ClusterInfo]
    share_source: str
    n_traffic: int
    frontier: list[tuple[float, float, float]]
    points: list[OperatingPoint]
    model_quality: dict[str, float]
    strongest: str
    strongest_cost: float
    strongest_quality: float
    strongest_measured: float | None
    budget: float | None
    embedder: str
    cluster_map: str
    validation: str | None = None
    n_validation: int = 0
    has_scores: bool = False
    notes: list[str] = field(default_factory=list)
    maps: list[tuple[int, str]] = field(default_factory=list)
    """(K, assignment) of each map an averaged map holds, in column order ([] for one map)."""

    def map_blocks(self) -> str:
        """Which clusters belong to which averaged map: "c0–c15 (16 soft), c16–c47 (32 soft)"."""
        ends = np.cumsum([k for k, _ in self.maps])
        return ", ".join(f"c{e - k}–c{e - 1} ({k} {a})" for (k, a), e in zip(self.maps, ends, strict=True))

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)


def read_prompts(path: str | Path) -> list[Prompt]:
    """Prompts of a traffic log, read as ``uniroute build`` reads it, or of a routing-data file.

    A ``.csv``/``.npz`` file is read as routing data (its prompts); any other file
    as a prompt log (:func:`uniroute.build.read_prompt_log`: ``prompt``,
    ``messages``, request bodies, LiteLLM spend logs, JSON strings, text lines),
    every request counted (repeats are traffic), empty and non-chat records left
    out, lines that look like JSON but do not parse skipped with a warning. So a
    report given the log a build read describes the traffic that build's report did.
    """
    path = Path(path)
    refuse_directory(path, "prompts (JSONL or text lines)")
    if not path.is_file():
        raise InputError(f"no prompts file at {path}; give a JSONL log or a text file of prompts")
    if path.suffix in (".csv", ".npz"):
        from ..datasets import load_dataset

        prompts = load_dataset(path).prompts
        if prompts is None:
            raise InputError(f"{path} has no prompt text")
        return list(prompts)
    from ..build.prompts import read_prompt_log

    traffic: list[Prompt] = [*read_prompt_log(path, skip_invalid=True).traffic()]
    return traffic


def read_validation(*paths: str | Path) -> list[ValidationItem] | RoutingDataset:
    """Validation sets (JSONL with ``grader``) or routing data with scores (RouterBench CSV, ...).

    Several files are joined (e.g. RouterBench's per-task ``*_test.csv``): validation
    items one after the other, routing data stacked over the models all files share.
    They must be all of one kind.
    """
    if not paths:
        raise InputError("give at least one validation file")
    parts = [_read_one_validation(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, list) for p in parts):
        return [item for part in parts for item in part]
    if any(isinstance(p, list) for p in parts):
        raise InputError("the validation files mix validation sets and routing data; give one kind")
    from ..datasets import concat

    return concat(parts)


def _read_one_validation(path: str | Path) -> list[ValidationItem] | RoutingDataset:
    path = Path(path)
    refuse_directory(path, "a validation set (JSONL, or routing data such as a RouterBench CSV)")
    if not path.is_file():
        raise InputError(f"no validation file at {path}")
    if path.suffix in (".jsonl", ".json"):
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = next((line for line in handle if line.strip()), "")
        try:
            record = json.loads(first)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict) and "grader" in record:
            from ..onboarding.validation import load_validation

            return load_validation(path)
    from ..datasets import load_dataset

    return load_dataset(path)


def _traffic(prompts: Sequence[Prompt] | None, validation: Any) -> tuple[list[Prompt] | None, str]:
    if prompts is not None:
        return list(prompts), "prompts"
    if validation is None:
        return None, "map"
    if isinstance(validation, list):
        return [item.prompt for item in validation], "validation"
    if validation.prompts is None:
        raise InputError("the validation data has no prompt text")
    return list(validation.prompts), "validation"


def _representatives(
    cmap: Any, X: np.ndarray, phi: np.ndarray, hard: np.ndarray, k: int, n: int
) -> np.ndarray:
    """Rows of the ``n`` prompts nearest cluster k's centre (or with the highest Φ_k)."""
    members = np.flatnonzero(hard == k)
    if len(members) == 0:
        return members
    centres = getattr(cmap, "cluster_centers_", None)
    if centres is not None and np.shape(centres)[1] == X.shape[1]:
        key = ((X[members] - np.asarray(centres)[k]) ** 2).sum(axis=1)
    else:
        key = -phi[members, k]
    return members[np.argsort(key, kind="stable")[:n]]


def _terms(texts: Sequence[str], hard: np.ndarray, n_clusters: int, n_terms: int) -> list[list[str]]:
    """Per cluster, the terms whose mean TF-IDF there most exceeds their mean in every other cluster.

    Measuring against the *nearest* other cluster (the max) drops terms several
    clusters share, e.g. the few-shot examples every prompt of a benchmark repeats;
    so a term is distinctive of one cluster at most.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        tfidf = TfidfVectorizer(
            stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w\-]+\b", sublinear_tf=True
        )
        matrix = tfidf.fit_transform(texts)
    except ValueError:  # no term at all (empty or stop-word-only prompts)
        return [[] for _ in range(n_clusters)]
    vocabulary = tfidf.get_feature_names_out()
    present = [k for k in range(n_clusters) if (hard == k).any()]
    means = np.stack([np.asarray(matrix[np.flatnonzero(hard == k)].mean(axis=0)).ravel() for k in present])
    # The nearest other cluster's mean of each term, from each term's largest and second largest mean:
    # one pass over the clusters, not one per cluster (K² x vocabulary).
    columns = np.arange(means.shape[1])
    top = means.argmax(axis=0)
    first = means[top, columns]
    means[top, columns] = -np.inf
    second = means.max(axis=0)
    means[top, columns] = first
    row = {k: i for i, k in enumerate(present)}
    out: list[list[str]] = []
    for k in range(n_clusters):
        if k not in row:
            out.append([])
            continue
        mean = means[row[k]]
        others = np.where(top == row[k], second, first)
        lift = mean - others if len(present) > 1 else mean  # one cluster: its top terms
        order = np.argsort(-lift, kind="stable")[:n_terms]
        out.append([str(vocabulary[i]) for i in order if lift[i] > 0])
    return out


def _map_name(cmap: Any) -> str:
    """The map's class, and the maps it averages ("KMeansClusterMap, the mean of 16 soft, 8 soft")."""
    averaged = averaged_maps(cmap)
    return type(cmap).__name__ + (f", the mean of {averaged}" if averaged else "")


def _clusters(
    router: Router,
    traffic: list[Prompt] | None,
    X: np.ndarray | None,
    phi: np.ndarray | None,
    n_examples: int,
    n_terms: int,
) -> list[ClusterInfo]:
    """Each cluster's share of its own map (a prompt counts in one cluster of each averaged map),
    its prompts (those most likely in it among its map's clusters), examples and terms."""
    cmap = router.cluster_map_
    blocks = map_blocks(cmap)
    weights = np.asarray(cmap.cluster_weights_, dtype=np.float64) * len(blocks)
    if traffic is None or X is None or phi is None:
        return [ClusterInfo(k, float(w), 0) for k, w in enumerate(weights)]
    texts = [routing_text(p) for p in traffic]  # what the router clusters on: the tail
    shares = phi.mean(axis=0) * len(blocks)
    out: list[ClusterInfo] = []
    for block, hard in zip(blocks, hard_clusters(cmap, phi).T, strict=True):
        terms = _terms(texts, hard - block.start, block.stop - block.start, n_terms)
        out += [
            ClusterInfo(
                k,
                float(shares[k]),
                int((hard == k).sum()),
                [texts[i] for i in _representatives(cmap, X, phi, hard, k, n_examples)],
                terms[k - block.start],
            )
            for k in range(block.start, block.stop)
        ]
    return out


class _Outcome:
    """Route the traffic sample at any λ: mean cost, expected quality, shares (weighted rows)."""

    def __init__(self, errors: np.ndarray, costs: np.ndarray, weights: np.ndarray, names: Sequence[str]):
        self.costs = np.broadcast_to(costs, errors.shape)  # (n, m): each prompt's price of each model
        self.errors, self.weights, self.names = errors, weights, list(names)
        self.rows = np.arange(len(errors))

    def choice(self, lam: float) -> np.ndarray:
        return best_index(route_scores(self.errors, self.costs, lam))

    def at(self, lam: float) -> tuple[float, float, dict[str, float]]:
        choice = self.choice(lam)
        cost = float(self.weights @ self.costs[self.rows, choice])
        quality = float(1.0 - self.weights @ self.errors[self.rows, choice])
        shares = np.bincount(choice, weights=self.weights, minlength=len(self.names))
        return cost, quality, {name: float(s) for name, s in zip(self.names, shares, strict=True)}


class _Measured:
    """Measured quality of routing the validation data (scores of the chosen models), if it has scores."""

    def __init__(self, router: Router, data: RoutingDataset, names: Sequence[str]):
        if data.prompts is None:
            raise InputError("the validation data has no prompt text")
        self.errors, self.costs, _ = router.expected_errors(
            router.embed(data.prompts), list(names), chars=prompt_chars(data.prompts)
        )
        column = {m: j for j, m in enumerate(data.models)}
        self.scores = np.column_stack(
            [data.scores[:, column[n]] if n in column else np.full(len(data), np.nan) for n in names]
        )
        self.rows = np.arange(len(data))
        self.missing = [n for n in names if n not in column]

    def at(self, lam: float) -> float:
        choice = best_index(route_scores(self.errors, self.costs, lam))
        picked = self.scores[self.rows, choice]
        return float(np.nanmean(picked)) if np.isfinite(picked).any() else float("nan")

    def always(self, j: int) -> float:
        column = self.scores[:, j]
        return float(np.nanmean(column)) if np.isfinite(column).any() else float("nan")


def _balanced(frontier: Sequence[tuple[float, float, float]]) -> int:
    """Index of the frontier point farthest above the line from cheapest to best (the knee)."""
    costs, qualities = (np.array(v) for v in list(zip(*frontier, strict=True))[1:])
    c = (costs - costs.min()) / (np.ptp(costs) or 1.0)
    q = (qualities - qualities.min()) / (np.ptp(qualities) or 1.0)
    return int(np.argmax(q - c))


def build_report(
    router: Router | str | Path,
    prompts: Sequence[Prompt] | None = None,
    validation: Sequence[ValidationItem] | RoutingDataset | str | Path | Sequence[str | Path] | None = None,
    budget: float | None = None,
    *,
    n_examples: int = N_EXAMPLES,
    n_terms: int = N_TERMS,
    min_count: float = MIN_COUNT,
    allow_network: bool = False,
) -> ReportData:
    """Compute what the report shows for a router with profiled models.

    Parameters
    ----------
    router : Router, or the path of a saved state
    prompts : sequence of prompts, optional
        A sample of real traffic: gives cluster shares, examples, terms and the frontier.
    validation : validation items, RoutingDataset, or the path(s) of such files, optional
        The traffic sample when ``prompts`` is not given; routing data with scores
        also gives the measured quality of each operating point.
    budget : float, optional
        $ per request; adds the operating point ``Router.calibrate(max_cost=budget)`` finds.
    n_examples, n_terms : int
        Representative prompts and distinctive terms per cluster.
    min_count : float, default=1.0
        A model with fewer validation results in a cluster is flagged as lacking data there.
    allow_network : bool, default=False
        Passed to ``Router.load`` when ``router`` is a path.
    """
    from ..engine.router import Router

    if not isinstance(router, Router):
        router = Router.load(router, allow_network=allow_network)
    profiles = router.profiles
    if not profiles:
        raise InputError("the router has no profiled model; add models (uniroute add-model / onboard) first")
    validation_name = None
    if isinstance(validation, (str, Path)):
        validation = [validation]
    if (
        isinstance(validation, (list, tuple))
        and validation
        and all(isinstance(v, (str, Path)) for v in validation)
    ):
        validation_name = ", ".join(str(v) for v in validation)
        validation = read_validation(*validation)
    elif validation is not None and not hasattr(validation, "scores"):
        validation = list(validation)
    traffic, source = _traffic(prompts, validation)
    notes: list[str] = []
    models = list(profiles)
    cmap = router.cluster_map_
    weights_prior = np.asarray(cmap.cluster_weights_, dtype=np.float64)
    if traffic is not None:
        if not traffic:
            raise InputError("the traffic sample is empty; give prompts or a validation file with prompts")
        X = router.embed(traffic)
        phi = router.cluster_probs(X)
        errors, costs, names = router.expected_errors(X, models, chars=prompt_chars(traffic))
        weights = np.full(len(traffic), 1.0 / len(traffic))
    else:
        X, phi = None, None
        errors = np.stack([profiles[m].errors for m in models], axis=1)
        costs = np.array([profiles[m].cost for m in models])
        names = tuple(models)
        weights = weights_prior / weights_prior.sum()
        notes.append(
            "no prompts given: shares are the map's training shares and the frontier treats each "
            "cluster as one typical prompt; give --prompts or --validation for a real traffic sample"
        )
    outcome = _Outcome(errors, costs, weights, names)
    measured = (
        _Measured(router, validation, names)
        if validation is not None and hasattr(validation, "scores")
        else None
    )
    if measured is not None and measured.missing:
        notes.append(f"the validation data has no scores for {measured.missing}; measured quality skips them")

    grid = lambda_sweep(errors, costs, _GRID)
    lam_hi = float(grid[-1])  # lambda_bound: the cheapest model takes every prompt
    sweep = [(float(lam), *outcome.at(float(lam))[:2]) for lam in grid]

    # the strongest model: the best expected quality on the traffic sample when always called
    always = 1.0 - weights @ errors
    strongest = int(np.argmax(always))
    strongest_cost = float(weights @ outcome.costs[:, strongest])

    def point(name: str, lam: float) -> OperatingPoint:
        cost, quality, shares = outcome.at(lam)
        saved = strongest_cost - cost
        if abs(saved) <= 1e-9 * strongest_cost:  # the same spend, up to rounding
            saved = 0.0
        return OperatingPoint(
            name,
            lam,
            cost,
            quality,
            None if measured is None else measured.at(lam),
            shares,
            saved,
            saved / strongest_cost if strongest_cost > 0 else 0.0,
        )

    points = [
        point("best", 0.0),
        point("balanced", sweep[_balanced(sweep)][0]),
        point("cheapest", lam_hi),
    ]
    if budget is not None:
        if traffic is None:
            notes.append("--budget needs prompts (Router.calibrate routes a sample); no budget point")
        else:
            try:
                points.append(point(f"budget ${budget:g}", router.calibrate(traffic, max_cost=budget)))
            except InputError as exc:
                notes.append(f"budget ${budget:g}: {exc}")

    frontier = sorted({*sweep, *((p.lam, p.cost, p.expected_quality) for p in points)})
    psi = np.stack([profiles[m].errors for m in models])
    counts = np.stack([profiles[m].counts for m in models]) * len(map_blocks(cmap))  # results, not 1/C of one
    if validation is not None and isinstance(validation, list):
        n_validation: int = len(validation)
    else:
        n_validation = 0 if validation is None else len(validation)
    return ReportData(
        models=models,
        model_costs={m: float(weights @ outcome.costs[:, j]) for j, m in enumerate(names)},
        psi=psi,
        counts=counts,
        lacking=counts < min_count,
        clusters=_clusters(router, traffic, X, phi, n_examples, n_terms),
        share_source=source,
        n_traffic=0 if traffic is None else len(traffic),
        frontier=frontier,
        points=points,
        model_quality={n: float(q) for n, q in zip(names, always, strict=True)},
        strongest=names[strongest],
        strongest_cost=strongest_cost,
        strongest_quality=float(always[strongest]),
        strongest_measured=None if measured is None else measured.always(strongest),
        budget=budget,
        embedder=router.encoder.id,
        cluster_map=_map_name(cmap),
        maps=[(k, a) for k, a, _ in getattr(cmap, "maps_", ())] if len(map_blocks(cmap)) > 1 else [],
        validation=validation_name,
        n_validation=n_validation,
        has_scores=measured is not None,
        notes=notes,
    )
