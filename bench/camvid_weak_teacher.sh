#!/usr/bin/env bash
# A model-made noise source beside the synthetic mix: weak's labels = the argmax of a weak teacher
# (the same backbone trained on 15 of strong's 90 masks, spread over its sequences), whose errors
# repeat across neighbouring frames as real pseudo-masks do. Then the chain's own clean model
# (bench/camvid_pretrained.sh, run first) judges them: small-loss with θ auto calibrated on the
# other 75 strong images' teacher labels, and confident; its holes filled by crf, nearest, gat and gat-plus.
# Usage: bench/camvid_weak_teacher.sh [CHAIN_OUT] [OUT]   (defaults out/pretrained, CHAIN_OUT/teacher)
#   env: TEACHER_EPOCHS (60). About 10 minutes on 2 idle CPU cores once the chain has run.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
CHAIN=${1:-out/pretrained}
OUT=${2:-$CHAIN/teacher}
NS=${NOISYSEG:-.venv/bin/noisyseg}
[ -f "$DATA/dataset.json" ] || { echo "camvid_weak_teacher: $DATA not found, skipping"; exit 0; }
[ -d "$CHAIN/preds/probs" ] || { echo "camvid_weak_teacher: run bench/camvid_pretrained.sh $CHAIN first"; exit 2; }
DATA=$(cd "$DATA" && pwd)

# A view of the dataset with three more splits: the teacher's 15, the other 75, and those 75 + weak.
VIEW=$OUT/data
mkdir -p "$VIEW/splits"
for item in dataset.json images masks; do ln -sfn "$DATA/$item" "$VIEW/$item"; done
cp "$DATA"/splits/*.txt "$VIEW/splits/"
awk 'NR % 6 == 1' "$DATA/splits/strong.txt" > "$VIEW/splits/strong15.txt"
awk 'NR % 6 != 1' "$DATA/splits/strong.txt" > "$VIEW/splits/strong75.txt"
cat "$VIEW/splits/strong75.txt" "$DATA/splits/weak.txt" > "$VIEW/splits/judged.txt"

set -x
$NS train "$VIEW" --split strong15 --out "$OUT/teacher" --epochs "${TEACHER_EPOCHS:-60}" --crop-size 320 \
    --scale-range 0.5,1.5 --jitter 0.4 --class-balance median
$NS predict "$OUT/teacher" "$VIEW" --split judged --out "$OUT/teacher-preds"
$NS pseudo-label "$VIEW" --split judged --probs "$OUT/teacher-preds/probs" --strategy argmax --out "$OUT/noisy"
$NS detect "$VIEW" --split weak --labels "$OUT/noisy" --probs "$CHAIN/preds/probs" --strategy small-loss \
    -p theta=auto -p calibrate_split=strong75 --scores --out "$OUT/cleaned-small-loss"
$NS detect "$VIEW" --split weak --labels "$OUT/noisy" --probs "$CHAIN/preds/probs" --strategy confident \
    --out "$OUT/cleaned-confident"
for strategy in crf nearest gat; do
  $NS correct "$VIEW" --split weak --labels "$OUT/cleaned-small-loss" --features "$CHAIN/preds/features" \
      --probs "$CHAIN/preds/probs" --strategy "$strategy" --out "$OUT/corrected-$strategy"
done
# gat-plus: the chain's stage of that name (bench/pipelines/camvid_pretrained.toml)
$NS correct "$VIEW" --split weak --labels "$OUT/cleaned-small-loss" --features "$CHAIN/preds/features" \
    --probs "$CHAIN/preds/probs" --strategy gat -p min_clean=0.5 -p prior=true -p fuse=true -p gnn_weight=0.5 \
    -p crf=true -p n_segments=3000 --out "$OUT/corrected-gat-plus"
$NS evaluate "$VIEW" --split weak --probs "$CHAIN/preds/probs" --labels "$OUT/noisy" \
    --labels "$OUT/cleaned-small-loss" --labels "$OUT/cleaned-confident" \
    --labels "$OUT/corrected-crf" --labels "$OUT/corrected-nearest" --labels "$OUT/corrected-gat" \
    --labels "$OUT/corrected-gat-plus"
