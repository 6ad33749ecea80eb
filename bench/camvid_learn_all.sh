#!/usr/bin/env bash
# Learning from all of it on CamVid, after bench/camvid_chain.sh has made OUT/noisy:
# 1. one model learns val's exact masks and train's noisy labels together, with median-frequency
#    class balancing (no folds: each train image is learnt with its own noisy labels; no ground
#    truth of train is used);
# 2. its probabilities drive confident-learning detection on train;
# 3. every corrector runs on the result (bench/correct.py, 20 images);
# 4. a second model learns val's masks and the cleaned train labels (holes ignored);
# 5. both models are scored on test, which neither saw.
# Usage: bench/camvid_learn_all.sh [OUT_DIR] [EPOCHS]   (default out/camvid, 40 epochs)
# About 21 minutes on 2 idle CPU cores with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
OUT=${1:-out/camvid}
EPOCHS=${2:-40}
NS=${NOISYSEG:-.venv/bin/noisyseg}
PY=${PYTHON:-.venv/bin/python}
[ -f "$DATA/dataset.json" ] || { echo "camvid_learn_all: $DATA not found, skipping"; exit 0; }
[ -d "$OUT/noisy" ] || { echo "camvid_learn_all: $OUT/noisy not found; run bench/camvid_chain.sh $OUT first"; exit 2; }
TRAIN_ARGS="--epochs $EPOCHS --input-scale 0.5 --crop-size 160 --scale-range 0.5,1.5 --jitter 0.4 --lr 0.02 --class-balance median"
set -x
$NS train "$DATA" --split val --split train --labels train="$OUT/noisy" --out "$OUT/runs/all" $TRAIN_ARGS
$NS predict "$OUT/runs/all" "$DATA" --split train --out "$OUT/preds-all" --features
$NS predict "$OUT/runs/all" "$DATA" --split test --out "$OUT/preds-all-test"
$NS detect "$DATA" --split train --labels "$OUT/noisy" --probs "$OUT/preds-all/probs" --strategy confident \
  --out "$OUT/cleaned-all"
$PY bench/correct.py --root "$OUT" --labels "$OUT/cleaned-all" --features "$OUT/preds-all/features" \
  --probs "$OUT/preds-all/probs" --limit 20 --threads 2
$NS train "$DATA" --split val --split train --labels train="$OUT/cleaned-all" --out "$OUT/runs/all-cleaned" $TRAIN_ARGS
$NS predict "$OUT/runs/all-cleaned" "$DATA" --split test --out "$OUT/preds-all-cleaned-test"
$NS evaluate "$DATA" --split train --probs "$OUT/preds-all/probs"
$NS evaluate "$DATA" --split test --probs "$OUT/preds-all-test/probs"
$NS evaluate "$DATA" --split test --probs "$OUT/preds-all-cleaned-test/probs"
