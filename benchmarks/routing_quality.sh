#!/usr/bin/env bash
# Reproduces the "Routing quality (evaluation)" tables and figures of docs/benchmarks.md.
# Usage: benchmarks/routing_quality.sh [DATA_ROOT] (default ../shared/data). Writes runs/eval/*; with PUBLISH=1 it
# also copies the figures to docs/img/ and the results to benchmarks/results/ (the committed ones).
set -euo pipefail
DATA_ROOT=${1:-../shared/data}
UNIROUTE=${UNIROUTE:-.venv/bin/uniroute}
CACHE=(${CACHE_DIR:+--cache-dir "$CACHE_DIR"})
export LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$UNIROUTE" eval --data "$DATA_ROOT/routerbench" --protocol static --embedder static "${CACHE[@]}" --no-progress --out runs/eval/routerbench-static
"$UNIROUTE" eval --data "$DATA_ROOT/routerbench" --protocol static --embedder minilm "${CACHE[@]}" --no-progress --out runs/eval/routerbench-static-minilm
"$UNIROUTE" eval --data "$DATA_ROOT/routerbench" --protocol unseen --trials 20 --embedder static "${CACHE[@]}" --no-progress --out runs/eval/routerbench-unseen
"$UNIROUTE" eval --data "$DATA_ROOT/routerbench" --protocol unseen --trials 20 --embedder minilm "${CACHE[@]}" --no-progress --out runs/eval/routerbench-unseen-minilm
"$UNIROUTE" eval --data "$DATA_ROOT/open-llm-leaderboard-v2/correctness.npz" --protocol static --no-progress --out runs/eval/open-llm-lb-v2
[ "${PUBLISH:-0}" = 1 ] || { echo "results in runs/eval (PUBLISH=1 copies them over the committed ones)"; exit 0; }
mkdir -p docs/img benchmarks/results
cp runs/eval/routerbench-static/deferral.png docs/img/eval-routerbench-static-deferral.png
cp runs/eval/routerbench-unseen/deferral.png docs/img/eval-routerbench-unseen-deferral.png
cp runs/eval/routerbench-static/scaling.png docs/img/eval-routerbench-scaling.png
cp runs/eval/open-llm-lb-v2/scaling.png docs/img/eval-open-llm-lb-v2-scaling.png
for run in routerbench-static routerbench-static-minilm routerbench-unseen routerbench-unseen-minilm open-llm-lb-v2; do
  cp "runs/eval/$run/results.json" "benchmarks/results/eval-$run.json"
done
