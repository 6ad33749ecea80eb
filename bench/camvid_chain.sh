#!/usr/bin/env bash
# The seed-000 detection chain on CamVid, as documented in README.md ("CamVid chain"):
# corrupt train and val with the default noise mix; train a clean model on val's ground truth;
# predict train and val; detect on train with small-loss, θ calibrated on val.
# Usage: bench/camvid_chain.sh [OUT_DIR] [EPOCHS]   (default out/camvid, 40 epochs)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
OUT=${1:-out/camvid}
EPOCHS=${2:-40}
NS=${NOISYSEG:-.venv/bin/noisyseg}
[ -f "$DATA/dataset.json" ] || { echo "camvid_chain: $DATA not found, skipping"; exit 0; }
set -x
$NS corrupt "$DATA" --split train --seed 0 --out "$OUT/noisy"
$NS corrupt "$DATA" --split val --seed 0 --out "$OUT/noisy"
$NS train "$DATA" --split val --out "$OUT/runs/clean" --epochs "$EPOCHS" --crop-size 224
$NS predict "$OUT/runs/clean" "$DATA" --split val --out "$OUT/preds" --features
$NS predict "$OUT/runs/clean" "$DATA" --split train --out "$OUT/preds" --features
$NS detect "$DATA" --split train --labels "$OUT/noisy" --probs "$OUT/preds/probs" --strategy small-loss \
  -p theta=auto -p calibrate_split=val --out "$OUT/cleaned" --scores
$NS evaluate "$DATA" --split train --labels "$OUT/noisy"
$NS evaluate "$DATA" --split train --labels "$OUT/cleaned"
