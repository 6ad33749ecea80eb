#!/usr/bin/env bash
# The pretrained-backbone chain on CamVid (bench/pipelines/camvid_pretrained.toml: what each stage
# does is written there), then its figures, one table per stage (bench/pretrained_table.py).
# Usage: bench/camvid_pretrained.sh [OUT]            (default out/pretrained)
#   env: EPOCHS (clean model, 80), FOLDS (3), FINAL_EPOCHS (20): shorter runs of the same chain;
#        UNTIL=STAGE: stop after that stage (noisyseg run --until; e.g. UNTIL=preds-final-gt-0: one seed);
#        SET="stages.NAME.KEY=VALUE ..." any other key of the file (e.g. weak labels from a weak
#        teacher: SET="stages.cleaned-small-loss.labels=DIR stages.final-noisy-0.labels.weak=DIR ...")
# Several hours on 2 idle CPU cores with the defaults (full resolution; EPOCHS=80 FINAL_EPOCHS=6: about
# 2.5 hours, of which the clean model's 3 folds + full model 70 minutes); a rerun resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${CAMVID:-../shared/datasets/camvid}
OUT=${1:-out/pretrained}
NS=${NOISYSEG:-.venv/bin/noisyseg}
PY=${PYTHON:-.venv/bin/python}
[ -f "$DATA/dataset.json" ] || { echo "camvid_pretrained: $DATA not found, skipping"; exit 0; }
sets=(--set "stages.clean.epochs=${EPOCHS:-80}" --set "stages.clean.folds=${FOLDS:-3}")
for what in noisy corrected gt cleaned; do
  for seed in 0 1; do sets+=(--set "stages.final-$what-$seed.epochs=${FINAL_EPOCHS:-20}"); done
done
for item in ${SET:-}; do sets+=(--set "$item"); done
set -x
$NS run bench/pipelines/camvid_pretrained.toml --dataset "$DATA" --workspace "$OUT" "${sets[@]}" ${UNTIL:+--until "$UNTIL"}
$PY bench/pretrained_table.py "$OUT" strong weak "$DATA"
