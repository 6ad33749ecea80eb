#!/usr/bin/env bash
# The small-loss detection chain on CamVid with the from-scratch model (bench/pipelines/camvid_chain.toml:
# what each stage does is written there); its last table is the label quality of every stage.
# Usage: bench/camvid_chain.sh [OUT_DIR] [EPOCHS] [FOLDS]   (default out/camvid, 150 epochs, 4 folds)
# About 25 minutes of training on 2 idle CPU cores with the defaults; a rerun resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
OUT=${1:-out/camvid}
NS=${NOISYSEG:-.venv/bin/noisyseg}
[ -f "$DATA/dataset.json" ] || { echo "camvid_chain: $DATA not found, skipping"; exit 0; }
set -x
$NS run bench/pipelines/camvid_chain.toml --dataset "$DATA" --workspace "$OUT" \
  --set "stages.clean.epochs=${2:-150}" --set "stages.clean.folds=${3:-4}"
