#!/usr/bin/env bash
# The seed-000 detection chain on CamVid, as documented in README.md ("CamVid chain"):
# corrupt train and val with the default noise mix; train a clean model on val's ground truth
# (K folds: each image of val then gets out-of-fold probabilities, so θ calibrated on val is not
# fitted to the clean model's own training images, and train gets the mean of the K models);
# predict train and val; detect on train with small-loss, θ calibrated on val, each pixel scored by
# the mean loss of its 21x21 neighbourhood (window=21; see README "CamVid chain").
# Usage: bench/camvid_chain.sh [OUT_DIR] [EPOCHS] [FOLDS]   (default out/camvid, 150 epochs, 4 folds)
# About 25 minutes of training on 2 idle CPU cores with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
OUT=${1:-out/camvid}
EPOCHS=${2:-150}
FOLDS=${3:-4}
NS=${NOISYSEG:-.venv/bin/noisyseg}
[ -f "$DATA/dataset.json" ] || { echo "camvid_chain: $DATA not found, skipping"; exit 0; }
set -x
$NS corrupt "$DATA" --split train --seed 0 --out "$OUT/noisy"
$NS corrupt "$DATA" --split val --seed 0 --out "$OUT/noisy"
$NS train "$DATA" --split val --out "$OUT/runs/clean" --epochs "$EPOCHS" --folds "$FOLDS" \
  --input-scale 0.5 --crop-size 160 --scale-range 0.5,1.5 --jitter 0.4 --lr 0.02
$NS predict "$OUT/runs/clean" "$DATA" --split val --out "$OUT/preds" --features
$NS predict "$OUT/runs/clean" "$DATA" --split train --out "$OUT/preds" --features
$NS detect "$DATA" --split train --labels "$OUT/noisy" --probs "$OUT/preds/probs" --strategy small-loss \
  -p theta=auto -p calibrate_split=val -p window=21 --out "$OUT/cleaned" --scores
$NS evaluate "$DATA" --split train --labels "$OUT/noisy"
$NS evaluate "$DATA" --split train --labels "$OUT/cleaned"
