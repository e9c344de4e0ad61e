"""Route latency of the default map as fitted on each data set (issue 10, target 5).

The map chosen by "auto" can be larger (K = 64 on RouteLLM); this times ``Router.route``
on ~2,000-token prompts (a RouteLLM test prompt padded to 8,000 characters, made unique
at its end, where the 1,000-character routing text is cut, so the embedding cache never
answers): p50 of 100 routes, min / median / max over 5 rounds. Every model is profiled with its
per-prompt $, so each route also prices the request by its length (session 6).

    nice -n 10 python benchmarks/quality_latency.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from quality_data import load

from uniroute import KMeansClusterMap, Router


def p50_ms(router: Router, prompts: list[str], clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of a route in ms, by ``clock`` (wall time; ``time.process_time`` for CPU time)."""
    times = []
    for p in prompts:
        t = clock()
        router.route(p, lam=1.0)
        times.append(clock() - t)
    return float(np.median(times) * 1e3)


def main() -> None:
    base = (Path(__file__).parents[2] / "shared/data/routellm/test.jsonl").read_text().splitlines()[0]
    text = (json.loads(base)["prompt"] * 40)[:8000]
    out = {}
    for name in ("routerbench", "routellm"):
        d = load(name)
        for label, cmap in (("default", KMeansClusterMap()), ("K=8 soft", KMeansClusterMap(8, "soft"))):
            router = Router("static", cmap).fit_embeddings(d["X_train"], d["S_train"])
            stand_ins = [
                "x" * int(n) for n in d["L_train"]
            ]  # prompts of the right length: they price requests
            router.add_models(
                stand_ins,
                {str(m): d["S_train"][:, j] for j, m in enumerate(d["models"])},
                {str(m): d["C_train"][:, j] for j, m in enumerate(d["models"])},
                embeddings=d["X_train"],
            )
            fitted = router.cluster_map_
            rounds = [p50_ms(router, [f"{text} {r} {i}" for i in range(100)]) for r in range(5)]
            maps = " + ".join(f"{k} {a}" for k, a, _ in fitted.maps_)
            key = f"{name} {label} (K={fitted.n_clusters_}: {maps})"
            out[key] = {"route_p50_ms_min_median_max": [min(rounds), float(np.median(rounds)), max(rounds)]}
            print(key, out[key], flush=True)


if __name__ == "__main__":
    main()
