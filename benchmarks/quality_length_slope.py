"""CV trial: a prompt's length, or its difficulty, inside its cluster, as a per-model slope on the error
(session 12).

Session 5 found that RouteLLM rewards resolution inside a cluster. It also found that a linear term
on the 256-d embedding (one ridge fit per model) gains there but overfits RouterBench's small
validation sets. This trial tries one feature instead of 256: the log of the prompt's length, which the engine
already reads to price requests. The length is centred within the clusters (its Φ-weighted mean over the
validation prompts per cluster, as Ψ is measured), so the term moves prompts only relative to their
cluster:

    err(x, h) = clip(Φ(x)·Ψ(h) + w_h · (z(x) − Φ(x)·z̄), 0, 1),   z = log(1 + characters)

with Φ·Ψ the default's (three averaged maps, engine profiles), and w_h the least-squares slope of
model h's validation residuals on the centred z, shrunk by α pseudo-prompts of zero slope
(w_h = Σ r c / (Σ c² + α · mean c²)). A new model still needs only its validation results. "check"
recomputes the default and must equal it.

"difficulty" rows use z = d(x) instead, an item-response-style difficulty: a ridge regression
(``quality_difficulty.difficulty_weights``, α = 1 / 10) of the training LLMs' mean error on the
embedding, fitted on the fit prompts. Session 5 shifted every model by one shared β·d; here each
model gets its own slope (a strong model's error may rise less with difficulty than a weak one's).

Not kept: length −0.0011 on RouteLLM (behind in 25 of 25 tasks) and −0.0005 to −0.0015 on RouterBench;
difficulty −0.0002 to −0.0006 on RouteLLM and −0.0023 to −0.0050 on RouterBench static
(docs/benchmarks.md, "Trials of session 12").

    for s in 0 1 2 3 4; do
      nice -n 10 python benchmarks/quality_length_slope.py --data routerbench routellm --by-length \\
          --unseen-draws 4 --seed $s --out benchmarks/results/cv_length_slope_seed$s.json
    done
    python benchmarks/quality_paired.py benchmarks/results/cv_length_slope_seed*.json \\
        --reference "top-3 (default)"
"""

from __future__ import annotations

import numpy as np
from quality_cf_prior import default_maps
from quality_cv import Add, Task, Wanted, metrics, sweep
from quality_data import load
from quality_difficulty import difficulty_weights
from quality_routers import engine_profile

ALPHAS = (1.0, 10.0, 100.0, 1000.0)


def _lengths_by_row() -> dict[bytes, float]:
    """log(1 + characters) of every cached train row of both text data sets, keyed by its embedding."""
    out: dict[bytes, float] = {}
    for name in ("routerbench", "routellm"):
        d = load(name)
        out.update((x.tobytes(), float(np.log1p(n))) for x, n in zip(d["X_train"], d["L_train"], strict=True))
    return out


LENGTHS = _lengths_by_row()


def z_of(X: np.ndarray) -> np.ndarray:
    return np.array([LENGTHS[x.tobytes()] for x in X])


def covariates(task: Task) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, z of the validation prompts, z of the test prompts) of each covariate tried."""
    out = [("length", z_of(task.X_val), z_of(task.X_test))]
    for ridge in (1.0, 10.0):
        w = difficulty_weights(task.X_fit, task.S_fit, ridge)
        out.append((f"difficulty r={ridge:g}", task.X_val @ w[:-1] + w[-1], task.X_test @ w[:-1] + w[-1]))
    return out


def per_task(kind: str, task: Task, add: Add, wanted: Wanted) -> None:
    maps = default_maps(kind, task, add)
    n_pool = task.S_val.shape[1]
    base_val = np.zeros((len(task.X_val), n_pool))
    base_test = np.zeros((len(task.X_test), n_pool))
    profile = engine_profile()
    phis = []
    for cand, phi_val, phi_test, _ in maps:
        psi = np.stack([profile(phi_val, task.S_val[:, j], cand.reference) for j in range(n_pool)]).T
        base_val += phi_val @ psi / len(maps)
        base_test += phi_test @ psi / len(maps)
        phis.append((phi_val, phi_test))
    add("check", kind, metrics(task, base_test))
    for name, z_val, z_test in covariates(task):
        centre_val, centre_test = np.zeros(len(z_val)), np.zeros(len(z_test))
        for phi_val, phi_test in phis:
            z_bar = (phi_val.T @ z_val) / np.maximum(phi_val.sum(axis=0), 1e-12)
            centre_val += phi_val @ z_bar / len(phis)
            centre_test += phi_test @ z_bar / len(phis)
        c_val, c_test = z_val - centre_val, z_test - centre_test
        for alpha in ALPHAS:
            label = f"{name} slope a={alpha:g}"
            if not wanted(label):
                continue
            errors = base_test.copy()
            for j in range(n_pool):
                seen = ~np.isnan(task.S_val[:, j])
                r, c = (1.0 - task.S_val[seen, j]) - base_val[seen, j], c_val[seen]
                w = (r @ c) / (c @ c + alpha * np.mean(c**2))
                errors[:, j] = np.clip(errors[:, j] + w * c_test, 0.0, 1.0)
            add(label, kind, metrics(task, errors))


if __name__ == "__main__":
    sweep(__doc__, per_task)
