#!/usr/bin/env bash
# The harder second row of the pretrained-backbone chain: exact masks of one sequence (val, 101
# images) and noisy labels on the others (train, 367), so the clean model meets streets it has not
# seen. A view of the dataset whose `strong` is val and `weak` is train (test unchanged), then
# bench/camvid_pretrained.sh on it (the same stages, figures and env: EPOCHS, FOLDS, FINAL_EPOCHS, SET).
# Usage: bench/camvid_val_train.sh [OUT]   (default out/val-train)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
OUT=${1:-out/val-train}
[ -f "$DATA/dataset.json" ] || { echo "camvid_val_train: $DATA not found, skipping"; exit 0; }
DATA=$(cd "$DATA" && pwd)
VIEW=$OUT/data
mkdir -p "$VIEW/splits"
for item in dataset.json images masks; do ln -sfn "$DATA/$item" "$VIEW/$item"; done
cp "$DATA/splits/val.txt" "$VIEW/splits/strong.txt"
cp "$DATA/splits/train.txt" "$VIEW/splits/weak.txt"
cp "$DATA/splits/test.txt" "$VIEW/splits/test.txt"
# strong's folds hold out contiguous blocks here: weak is other sequences, so out-of-fold
# probabilities should look like a new scene's, not like a neighbouring frame's (the file's interleaved)
CAMVID=$VIEW SET="stages.clean.fold_order=\"contiguous\" ${SET:-}" exec bench/camvid_pretrained.sh "$OUT"
