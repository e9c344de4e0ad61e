"""Text renderings of an onboarding run: the summary lines and the per-cluster Ψ table.

The runner returns data (:class:`~uniroute.onboarding.OnboardResult`); the CLI and
``OnboardResult.summary()`` render it with these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.profiles import ModelProfile
    from .runner import OnboardResult


MAX_CLUSTER_COLUMNS = 16
"""Up to this many clusters a table of models × clusters gives each cluster a column; beyond, it
runs the clusters down the page (a terminal is narrow). Shared by ``uniroute inspect``."""


def psi_table(profiles: Mapping[str, ModelProfile] | Any, highlight: str, n_maps: int = 1) -> str:
    """Per-cluster error Ψ of every model, ``highlight`` first and starred, with its counts.

    ``profiles`` maps model names to profiles, or is a router (its ``profiles``). ``n_maps``:
    the maps an averaged cluster map holds (``KMeansClusterMap.n_maps_``); each of their
    clusters holds 1/``n_maps`` of a prompt, so *n* shows the counts times ``n_maps`` (results).
    Up to ``MAX_CLUSTER_COLUMNS`` (16) clusters, one row per model; beyond, one row per cluster and a
    column per model.
    """
    profiles = getattr(profiles, "profiles", profiles)
    order = [highlight, *sorted(n for n in profiles if n != highlight)]
    counts = profiles[highlight].counts
    shown = counts * n_maps
    if len(counts) > MAX_CLUSTER_COLUMNS:
        head = f"{'cluster':<8}{'n':>7}" + "".join(f"{f'm{j}':>7}" for j in range(len(order)))
        lines = [head]
        for k in range(len(counts)):
            lines.append(f"{k:<8}{shown[k]:>7.0f}" + "".join(f"{profiles[n].errors[k]:>7.3f}" for n in order))
        lines.append(
            f"{'all':<8}{counts.sum():>7.0f}" + "".join(f"{profiles[n].global_error:>7.3f}" for n in order)
        )
        legend = [f"m{j}: {'* ' if name == highlight else ''}{name}" for j, name in enumerate(order)]
        return "\n".join([*lines, "", *legend])
    width = min(40, max(len(n) for n in order) + 2)
    head = f"{'cluster':<{width}}" + "".join(f"{k:>7}" for k in range(len(counts))) + "    all"
    lines = [
        head,
        f"{'n (new model)':<{width}}" + "".join(f"{c:>7.0f}" for c in shown) + f"{counts.sum():>7.0f}",
    ]
    for name in order:
        p = profiles[name]
        label = ("* " if name == highlight else "  ") + name
        lines.append(
            f"{label[:width]:<{width}}" + "".join(f"{e:>7.3f}" for e in p.errors) + f"{p.global_error:>7.3f}"
        )
    return "\n".join(lines)


def summary(result: OnboardResult, rerun: str | None = None) -> str:
    """What a run did, in a few lines.

    ``rerun`` is the exact instruction that retries failed prompts (the CLI passes
    the command line); by default the Python call is described.
    """
    lines = [
        f"{result.name}: {result.n_graded} of {len(result.scores)} prompts graded, "
        f"accuracy {result.accuracy:.3f}; "
        f"{result.n_cached} from the cache, ${result.spent:.4f} spent on calls; "
        f"cost in the router ${result.cost:.6g} per request"
    ]
    if result.n_failed:
        kinds = ", ".join(f"{k}: {n}" for k, n in result.failures.most_common())
        again = rerun or "call onboard(...) again with replace=True"
        lines.append(
            f"{result.n_failed} prompt(s) failed ({kinds}); they are left out of Ψ (missing, not wrong). "
            f"To retry them (answers so far are cached, nothing is paid twice): {again}"
        )
    if result.n_empty:
        lines.append(f"{result.n_empty} answer(s) were empty or not text; graded as given (usually wrong)")
    if result.n_ungraded:
        lines.append(f"{result.n_ungraded} answer(s) could not be graded; left out of Ψ")
    lines.append(f"wrote {result.state_path}")
    return "\n".join(lines)
