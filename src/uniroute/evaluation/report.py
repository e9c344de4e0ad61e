"""Markdown summaries of evaluation results (tables only; figures come from :mod:`.plots`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS: tuple[tuple[str, str], ...] = (
    ("area", "area"),
    ("area_50", "area ≤50%"),
    ("qnc", "QNC"),
    ("quality_lambda0", "quality λ=0"),
    ("cost_lambda0_rel", "cost λ=0 (rel.)"),
    ("v_b_lambda0", "V_B"),
    ("v_r_lambda0", "V_R"),
    ("e_p_lambda0", "E_p (bits)"),
    ("share_entropy_lambda0", "share entropy (nats)"),
)


def _cell(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        reached_never = key == "qnc" and row.get("area") is not None
        return "not reached" if reached_never or f"{key}_unreached" in row else "—"
    if value == float("inf"):
        return "not reached"
    text = f"{value:.3f}"
    std = row.get(f"{key}_std")
    if std is not None:
        text += f" ± {std:.3f}"
    unreached = row.get(f"{key}_unreached")
    if unreached:
        text += f" ({unreached} not reached)"
    return text


def router_table(
    routers: Mapping[str, Mapping[str, Any]], columns: Sequence[tuple[str, str]] = COLUMNS
) -> str:
    """One row per router, one column per metric (mean ± std when averaged over trials)."""
    used = [(k, label) for k, label in columns if any(r.get(k) is not None for r in routers.values())]
    lines = ["| router | " + " | ".join(label for _, label in used) + " |", "|---" * (len(used) + 1) + "|"]
    for name, row in routers.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row, k) for k, _ in used) + " |")
    return "\n".join(lines)


def _pool_cell(row: Mapping[str, Any]) -> str:
    v_b = "—" if row["v_b"] is None else f"{row['v_b']:.3f}"
    return f"{row['mu_o']:.3f} / {v_b} / {row['e_p']:.2f}"


def pool_table(result: Mapping[str, Any]) -> str:
    """RouterEval candidate pools: μ_o / V_B / E_p per router and pool size."""
    sizes = list(result["pool_sizes"])
    names = list(result["pool_sizes"][sizes[0]])
    lines = [
        "| router | " + " | ".join(f"{s} models: μ_o / V_B / E_p (bits)" for s in sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
    ]
    for name in names:
        cells = [_pool_cell(result["pool_sizes"][s][name]) for s in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ci(values: Sequence[float | None] | None) -> str:
    if values is None:
        return "—"
    return "[" + ", ".join("not reached" if v is None else f"{v:+.4f}" for v in values) + "]"


def bootstrap_table(boot: Mapping[str, Any]) -> str:
    """Paired-bootstrap differences of the primary router against every other one."""
    lines = [
        f"Paired bootstrap over {boot['n_prompts']} test prompts ({boot['n_resamples']} resamples, seed "
        f"{boot['random_state']}): `{boot['primary']}` minus each router, "
        f"{boot['confidence']:.0%} intervals. Area: > 0 favours the primary router; QNC: < 0 does.",
        "",
        "| vs | area diff | area CI | ahead in | QNC diff | QNC CI | both reach Q* |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in boot["vs"].items():
        qnc = "—" if row["qnc_diff"] is None else f"{row['qnc_diff']:+.3f}"
        lines.append(
            f"| {name} | {row['area_diff']:+.4f} | {_ci(row['area_diff_ci'])} | {row['area_ahead']:.0%} | "
            f"{qnc} | {_ci(row['qnc_diff_ci'])} | {row['qnc_both_reached']:.0%} |"
        )
    return "\n".join(lines)


def summary_markdown(results: Mapping[str, Any]) -> str:
    """The summary.md written next to results.json."""
    out = [f"# uniroute eval: {results.get('data', '')}", ""]
    out.append(
        f"Protocol **{results['protocol']}**, embedder `{results.get('embedder')}`"
        + (f" (`{results['embedder_id']}`)" if results.get("embedder_id") else "")
        + ", "
        f"{results.get('n_train', '?')} train / {results.get('n_test', '?')} test prompts"
        + (f", {results['trials']} trials (mean ± std)" if results.get("trials") else "")
        + (f"; V_R reference: `{results['reference']}`" if results.get("reference") else "")
        + "."
    )
    if results.get("skipped_routers"):
        out.append(f"Skipped (need prompt text): {', '.join(results['skipped_routers'])}.")
    out += ["", router_table(results["routers"]), ""]
    for name, info in results.get("router_info", {}).items():
        if "k" in info:
            cv = info.get("cv")
            how = f" by {cv['folds']}-fold CV on the training prompts from {cv['grid']}" if cv else ""
            out.append(f"`{name}`: k = {info['k']}{how}.")
    if results.get("bootstrap"):
        out += ["", "## Paired bootstrap", "", bootstrap_table(results["bootstrap"]), ""]
    if results.get("paired_trials"):
        out += ["", f"## Paired trials (`{results.get('primary')}` against each router)", ""]
        out += ["| vs | ahead in | mean area diff | range |", "|---|---|---|---|"]
        for name, row in results["paired_trials"].items():
            out.append(
                f"| {name} | {row['ahead']} of {row['trials']} | {row['mean_area_diff']:+.4f} | "
                f"[{row['min_area_diff']:+.4f}, {row['max_area_diff']:+.4f}] |"
            )
        out.append("")
    for message in results.get("warnings", []):
        out += [f"> **Warning:** {message}", ""]
    if results.get("pool_sizes"):
        out += ["## RouterEval candidate pools (λ = 0)", "", pool_table(results["pool_sizes"]), ""]
    for name in results.get("plots", []):
        out.append(f"![{name}]({name})")
    return "\n".join(out) + "\n"
