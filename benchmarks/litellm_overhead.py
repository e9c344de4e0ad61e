"""LiteLLM overhead: uniroute vs simple-shuffle, through the proxy and the SDK.

Measures, in one run on this machine, with mock deployments (``mock_response``,
no network) and a unique prompt per request (the embedding cache never answers):

* **proxy**: requests per second through the real LiteLLM proxy with the
  examples/litellm_proxy/config.yaml callback, and through the same model list
  with LiteLLM's default ``simple-shuffle``, at concurrency 1 and 16. Both proxies
  run side by side; measurements alternate between them, ``--rounds`` times,
  and the median round is reported. The load generator shares the 2 cores.
* **sdk**: mean wall time of ``Router.acompletion`` (sequential) with
  :func:`uniroute.integrations.litellm.install` vs simple-shuffle, and the
  ranking step alone.

Prints a table, then one JSON object as the last line; writes it to
benchmarks/results/litellm_overhead.json too.

    python benchmarks/litellm_overhead.py [--embedder static|hashing] [--seconds 6] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
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
RESULTS = Path(__file__).resolve().parent / "results" / "litellm_overhead.json"
LITELLM = Path(sys.executable).parent / "litellm"
MASTER_KEY = "sk-uniroute-bench"
START_TIMEOUT = 180.0
_unique = count()


def prompt() -> str:
    """A fresh request: alternating topics, never seen before."""
    i = next(_unique)
    if i % 2:
        return f"Arithmetic question #{i}: compute {i % 97} times {i % 89} and answer with the number only."
    return f"Poetry request #{i}: write a short haiku about lantern number {i}, with vivid imagery."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_proxy(config: Path, state: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, UNIROUTE_STATE=str(state), LITELLM_MASTER_KEY=MASTER_KEY)
    process = subprocess.Popen(
        [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"proxy exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"proxy at {url} not ready after {START_TIMEOUT}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


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
    procs = {
        "uniroute": start_proxy(uniroute_cfg, state, tmp / "uniroute.log"),
        "simple-shuffle": start_proxy(shuffle_cfg, state, tmp / "shuffle.log"),
    }
    try:
        for name, (process, url) in procs.items():
            wait_ready(process, url, tmp / f"{name}.log")
        samples: dict[str, dict[int, list[float]]] = {name: {1: [], 16: []} for name in procs}
        for _ in range(rounds):
            for concurrency in (1, 16):
                for name, (_, url) in procs.items():
                    result = asyncio.run(load(url, concurrency, seconds))
                    if result["errors"]:
                        raise SystemExit(f"{name}: {result['errors']} failed requests")
                    samples[name][concurrency].append(result["rps"])
    finally:
        for process, _ in procs.values():
            stop(process)
    out: dict = {}
    for concurrency in (1, 16):
        uni = statistics.median(samples["uniroute"][concurrency])
        shuf = statistics.median(samples["simple-shuffle"][concurrency])
        out[f"c{concurrency}"] = {
            "uniroute_rps": round(uni, 1),
            "simple_shuffle_rps": round(shuf, 1),
            "ratio": round(uni / shuf, 3),
            "uniroute_rounds": [round(x, 1) for x in samples["uniroute"][concurrency]],
            "simple_shuffle_rounds": [round(x, 1) for x in samples["simple-shuffle"][concurrency]],
        }
    return out


async def sdk_benchmark(state: Path, calls: int) -> dict:
    import litellm

    from uniroute.integrations.litellm import install

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
    for _ in range(5):  # alternate to share any drift
        shuffle_s.append(await mean_call(shuffle))
        routed_s.append(await mean_call(routed))
    healthy = routed.get_model_list(model_name="demo")
    rank_times = []
    for _ in range(calls):
        messages = [{"role": "user", "content": prompt()}]
        start = time.perf_counter()
        strategy.ranker.rank("demo", healthy, messages, None, {}, healthy)
        rank_times.append(time.perf_counter() - start)
    shuffle_ms, routed_ms = statistics.median(shuffle_s) * 1e3, statistics.median(routed_s) * 1e3
    return {
        "calls": calls,
        "simple_shuffle_ms_per_call": round(shuffle_ms, 3),
        "uniroute_ms_per_call": round(routed_ms, 3),
        "overhead_ms_per_call": round(routed_ms - shuffle_ms, 3),
        "rank_only_ms_p50": round(statistics.median(rank_times) * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--embedder", default="static", help="embedder of the router state (static or hashing)"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per load measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per proxy and concurrency")
    parser.add_argument("--sdk-calls", type=int, default=200, help="acompletion calls per SDK measurement")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "examples"))
    from litellm_sdk import build_demo_router

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        state = build_demo_router(args.embedder).save(tmp / "state")
        proxy = proxy_benchmark(state, tmp, args.seconds, args.rounds)
        sdk = asyncio.run(sdk_benchmark(state, args.sdk_calls))
    result = {
        "benchmark": "litellm_overhead",
        "embedder": args.embedder,
        "seconds_per_measurement": args.seconds,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "proxy": proxy,
        "sdk": sdk,
    }
    print(f"{'proxy':8} {'conc':>4} {'uniroute rps':>13} {'shuffle rps':>12} {'ratio':>6}")
    for key, row in proxy.items():
        print(
            f"{'':8} {key[1:]:>4} {row['uniroute_rps']:13.1f} "
            f"{row['simple_shuffle_rps']:12.1f} {row['ratio']:6.3f}"
        )
    print(
        f"sdk acompletion: simple-shuffle {sdk['simple_shuffle_ms_per_call']:.2f} ms, uniroute "
        f"{sdk['uniroute_ms_per_call']:.2f} ms (+{sdk['overhead_ms_per_call']:.2f} ms); "
        f"ranking alone p50 {sdk['rank_only_ms_p50']:.3f} ms"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
