"""LiteLLM overhead: uniroute vs simple-shuffle, through the proxy and the SDK.

Measures, in one run on this machine, with mock deployments (``mock_response``,
no network) and a unique prompt per request (the embedding cache never answers):

* **proxy**: requests per second through the real LiteLLM proxy with the
  examples/litellm_proxy/config.yaml callback, and through the same model list
  with LiteLLM's default ``simple-shuffle``, at concurrency 1 and 16. Both proxies
  run side by side; measurements alternate between them, ``--rounds`` times.
  The load generator shares the machine's cores.
* **sdk**: mean wall time of ``Router.acompletion`` (sequential) with
  :func:`uniroute.integrations.litellm.install` vs simple-shuffle, alternating,
  ``--rounds`` times, and two steps of uniroute's pick alone: the ranking, and
  asking LiteLLM for the group's healthy deployments.

Every figure is reported as min / median / max over the rounds; a ratio whose two
sides' ranges overlap is flagged "inside the spread" (the difference is not
resolved by this run). Prints a table and one JSON object as the last line; writes
the JSON to ``--out`` only when given (never over committed results by default).
``--sdk-only`` skips the proxy (for a LiteLLM installed without its proxy extra).

    python benchmarks/litellm_overhead.py [--embedder static|hashing] [--seconds 6] [--rounds 10]
        [--sdk-only] [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "litellm_proxy"
sys.path.insert(0, str(EXAMPLE))
from proxy_launcher import start_proxy, stop_proxy, wait_ready  # noqa: E402

MASTER_KEY = "sk-uniroute-bench"
MIN_ROUNDS = 10
_unique = count()


def prompt() -> str:
    """A fresh request: alternating topics, never seen before."""
    i = next(_unique)
    if i % 2:
        return f"Arithmetic question #{i}: compute {i % 97} times {i % 89} and answer with the number only."
    return f"Poetry request #{i}: write a short haiku about lantern number {i}, with vivid imagery."


def spread(samples: list[float], digits: int = 3) -> dict:
    """min / median / max of one side's rounds."""
    return {
        "min": round(min(samples), digits),
        "median": round(statistics.median(samples), digits),
        "max": round(max(samples), digits),
    }


def compare(uniroute: list[float], shuffle: list[float], digits: int = 3) -> dict:
    """Both sides' spreads, the ratio of medians and whether the ranges overlap."""
    uni, shuf = spread(uniroute, digits), spread(shuffle, digits)
    return {
        "uniroute": uni,
        "simple_shuffle": shuf,
        "ratio_of_medians": round(statistics.median(uniroute) / statistics.median(shuffle), 3),
        "inside_spread": uni["min"] <= shuf["max"] and shuf["min"] <= uni["max"],
        "uniroute_rounds": [round(x, digits) for x in uniroute],
        "simple_shuffle_rounds": [round(x, digits) for x in shuffle],
    }


async def load(url: str, concurrency: int, seconds: float, max_requests: int = 100_000) -> dict:
    """Closed-loop load: ``concurrency`` workers, each sending its next request on reply."""
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    done, errors = 0, 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:

        async def one() -> None:
            nonlocal done, errors
            body = {"model": "demo", "messages": [{"role": "user", "content": prompt()}]}
            response = await client.post("/chat/completions", json=body)
            if response.status_code == 200:
                done += 1
            else:
                errors += 1

        await asyncio.gather(*(one() for _ in range(2 * concurrency)))  # warm up
        done, errors = 0, 0
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() < deadline and done + errors < max_requests:
                await one()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"rps": done / elapsed, "requests": done, "errors": errors}


def proxy_benchmark(state: Path, tmp: Path, seconds: float, rounds: int) -> dict:
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    uniroute_cfg = tmp / "uniroute.yaml"
    uniroute_cfg.write_text(yaml.safe_dump(config))
    shuffle = {k: v for k, v in config.items() if k not in {"litellm_settings", "callback_settings"}}
    shuffle_cfg = tmp / "shuffle.yaml"
    shuffle_cfg.write_text(yaml.safe_dump(shuffle))
    env = {"UNIROUTE_STATE": str(state), "LITELLM_MASTER_KEY": MASTER_KEY}
    logs = {"uniroute": tmp / "uniroute.log", "simple-shuffle": tmp / "shuffle.log"}
    procs = {
        "uniroute": start_proxy(uniroute_cfg, logs["uniroute"], env),
        "simple-shuffle": start_proxy(shuffle_cfg, logs["simple-shuffle"], env),
    }
    try:
        urls = {name: wait_ready(process, logs[name]) for name, process in procs.items()}
        samples: dict[str, dict[int, list[float]]] = {name: {1: [], 16: []} for name in procs}
        for _ in range(rounds):
            for concurrency in (1, 16):
                for name, url in urls.items():
                    result = asyncio.run(load(url, concurrency, seconds))
                    if result["errors"]:
                        raise SystemExit(f"{name}: {result['errors']} failed requests")
                    samples[name][concurrency].append(result["rps"])
    finally:
        for process in procs.values():
            stop_proxy(process)
    return {
        f"c{c}_rps": compare(samples["uniroute"][c], samples["simple-shuffle"][c], digits=1) for c in (1, 16)
    }


async def sdk_benchmark(state: Path, calls: int, rounds: int) -> dict:
    import litellm

    from uniroute.integrations.litellm import _compat, install

    model_list = yaml.safe_load((EXAMPLE / "config.yaml").read_text())["model_list"]
    shuffle = litellm.Router(model_list=model_list)
    routed = litellm.Router(model_list=model_list)
    strategy = install(routed, state, lam=30.0)

    async def mean_call(router: litellm.Router) -> float:
        for _ in range(20):
            await router.acompletion(model="demo", messages=[{"role": "user", "content": prompt()}])
        start = time.perf_counter()
        for _ in range(calls):
            await router.acompletion(model="demo", messages=[{"role": "user", "content": prompt()}])
        return (time.perf_counter() - start) / calls

    shuffle_s, routed_s = [], []
    for _ in range(rounds):  # alternate to share any drift
        shuffle_s.append(await mean_call(shuffle) * 1e3)
        routed_s.append(await mean_call(routed) * 1e3)
    healthy = _compat.group_deployments(routed, "demo")
    rank_times, healthy_times = [], []
    for _ in range(calls):
        messages = [{"role": "user", "content": prompt()}]
        start = time.perf_counter()
        strategy.ranker.rank("demo", healthy, messages, None, {}, healthy)
        rank_times.append((time.perf_counter() - start) * 1e3)
    for _ in range(calls):
        messages = [{"role": "user", "content": prompt()}]
        start = time.perf_counter()
        await _compat.async_healthy_deployments(routed, "demo", messages, None, False, {})
        healthy_times.append((time.perf_counter() - start) * 1e3)
    return {
        "calls": calls,
        "ms_per_call": compare(routed_s, shuffle_s),
        "rank_only_ms": spread(rank_times, 4),
        "healthy_deployments_ms": spread(healthy_times, 4),
    }


def _line(label: str, row: dict, unit: str) -> str:
    u, s = row["uniroute"], row["simple_shuffle"]
    verdict = "inside the spread" if row["inside_spread"] else "outside the spread"
    return (
        f"{label:22} uniroute {u['min']:g} / {u['median']:g} / {u['max']:g} {unit}   "
        f"simple-shuffle {s['min']:g} / {s['median']:g} / {s['max']:g} {unit}   "
        f"ratio of medians {row['ratio_of_medians']:.3f} ({verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--embedder", default="static", help="embedder of the router state (static or hashing)"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per load measurement")
    parser.add_argument(
        "--rounds", type=int, default=MIN_ROUNDS, help=f"alternating rounds (at least {MIN_ROUNDS})"
    )
    parser.add_argument("--sdk-calls", type=int, default=200, help="acompletion calls per SDK measurement")
    parser.add_argument("--sdk-only", action="store_true", help="skip the proxy (LiteLLM without [proxy])")
    parser.add_argument("--out", type=Path, help="write the JSON result here (default: print only)")
    parser.add_argument("--note", default="", help="free text stored with the result (e.g. 'machine busy')")
    args = parser.parse_args()
    if args.rounds < MIN_ROUNDS:
        parser.error(f"--rounds must be at least {MIN_ROUNDS} to report a spread")

    sys.path.insert(0, str(ROOT / "examples"))
    from litellm_sdk import build_demo_router

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        state = build_demo_router(args.embedder).save(tmp / "state")
        proxy = {} if args.sdk_only else proxy_benchmark(state, tmp, args.seconds, args.rounds)
        sdk = asyncio.run(sdk_benchmark(state, args.sdk_calls, args.rounds))
    result = {
        "benchmark": "litellm_overhead",
        "embedder": args.embedder,
        "seconds_per_measurement": args.seconds,
        "rounds": args.rounds,
        "litellm": importlib.metadata.version("litellm"),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "note": args.note,
        "proxy": proxy,
        "sdk": sdk,
    }
    print(f"min / median / max over {args.rounds} alternating rounds")
    for key, row in proxy.items():
        print(_line(f"proxy rps, conc {key[1:].split('_')[0]}", row, "rps"))
    print(_line("sdk acompletion", sdk["ms_per_call"], "ms"))
    for label, key in (("ranking alone", "rank_only_ms"), ("healthy deployments", "healthy_deployments_ms")):
        step = sdk[key]
        print(f"{label:22} {step['min']:g} / {step['median']:g} / {step['max']:g} ms")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
