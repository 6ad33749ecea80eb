#!/usr/bin/env bash
# The whole chain on CamVid with the pretrained backbone (efficientnet-lite0), in the papers'
# setting: a few exact masks (LAB, default `strong`, 90 images) and many noisy ones (UNL, default
# `weak`, 277), both drawn across all of train's sequences.
#   1. corrupt both splits with the default noise mix (LAB's noisy labels calibrate θ only);
#   2. a clean model on LAB's masks, K folds (LAB's probabilities out of fold, UNL's the mean);
#   3. predict both splits (probs and stride-4 features);
#   4. detect on UNL: small-loss with θ auto calibrated on LAB, and confident (no ground truth of
#      UNL used to pick anything);
#   5. correct the chosen detection's holes with gat, nearest and crf on all of UNL;
#   6. final models on LAB's masks + UNL's labels that are (a) noisy, (b) cleaned, (c) corrected
#      by gat, (d) ground truth (the ceiling), SEEDS seeds each, scored on test.
# Every figure is printed by `noisyseg evaluate`; bench/pretrained_table.py OUT gathers them.
# Usage: bench/camvid_pretrained.sh [OUT] [LAB] [UNL]
#   env: EPOCHS (clean model, 80), FINAL_EPOCHS (20), FOLDS (3), SEEDS ("0 1"), DETECT (small-loss),
#        FINALS ("noisy corrected gt cleaned": which final models, in that order)
#        NOISE (labels to start from instead of the synthetic mix, e.g. a weak teacher's argmax)
# About 90 minutes on 2 idle CPU cores with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
OUT=${1:-out/pretrained}
LAB=${2:-strong}
UNL=${3:-weak}
EPOCHS=${EPOCHS:-80}
FINAL_EPOCHS=${FINAL_EPOCHS:-20}
FOLDS=${FOLDS:-3}
SEEDS=${SEEDS:-0 1}
DETECT=${DETECT:-small-loss}
NS=${NOISYSEG:-.venv/bin/noisyseg}
PY=${PYTHON:-.venv/bin/python}
[ -f "$DATA/dataset.json" ] || { echo "camvid_pretrained: $DATA not found, skipping"; exit 0; }
RECIPE="--input-scale 0.5 --crop-size 160 --scale-range 0.5,1.5 --jitter 0.4 --lr 0.02 --backbone-lr 0.5"
set -x
if [ -n "${NOISE:-}" ]; then
  NOISY=$NOISE
else
  NOISY=$OUT/noisy
  $NS corrupt "$DATA" --split "$LAB" --seed 0 --out "$NOISY"
  $NS corrupt "$DATA" --split "$UNL" --seed 0 --out "$NOISY"
fi
$NS train "$DATA" --split "$LAB" --out "$OUT/runs/clean" --epochs "$EPOCHS" --folds "$FOLDS" $RECIPE
for split in "$LAB" "$UNL" test; do
  $NS predict "$OUT/runs/clean" "$DATA" --split "$split" --out "$OUT/preds" --features
done
$NS detect "$DATA" --split "$UNL" --labels "$NOISY" --probs "$OUT/preds/probs" --strategy small-loss \
  -p theta=auto -p calibrate_split="$LAB" --out "$OUT/cleaned-small-loss" --scores
$NS detect "$DATA" --split "$UNL" --labels "$NOISY" --probs "$OUT/preds/probs" --strategy confident \
  --out "$OUT/cleaned-confident"
CLEANED=$OUT/cleaned-$DETECT
for strategy in gat nearest crf; do
  $NS correct "$DATA" --split "$UNL" --labels "$CLEANED" --features "$OUT/preds/features" \
    --probs "$OUT/preds/probs" --strategy "$strategy" --out "$OUT/corrected-$strategy"
done
for what in ${FINALS:-noisy corrected gt cleaned}; do
  case $what in
    noisy) labels=(--labels "$UNL=$NOISY") ;;
    cleaned) labels=(--labels "$UNL=$CLEANED") ;;
    corrected) labels=(--labels "$UNL=$OUT/corrected-gat") ;;
    gt) labels=() ;;
  esac
  for seed in $SEEDS; do
    run=$OUT/runs/final-$what-$seed
    $NS train "$DATA" --split "$LAB" --split "$UNL" "${labels[@]}" --out "$run" --epochs "$FINAL_EPOCHS" \
      --seed "$seed" $RECIPE
    $NS predict "$run" "$DATA" --split test --out "$OUT/preds-final-$what-$seed"
  done
done
$PY bench/pretrained_table.py "$OUT" "$LAB" "$UNL" "$DATA"
