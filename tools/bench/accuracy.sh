#!/usr/bin/env bash
# The calibration acceptance table: swin-micro-cifar10 calibrated on a
# seeded, class-balanced sample of 1,000 CIFAR-10 train images, evaluated
# fake-quantized on all 10,000 test images against the float model, for
# int8-default and j5 with each histogram-or-range observer.
#   tools/bench/accuracy.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${QCAL_SHARED:-../shared}
qcal=${QCAL_BIN:-build/tools/qcal}
out=${1:-build/accuracy}
model=models/swin-micro-cifar10.h5
mkdir -p "$out"
"$qcal" eval -m "$model" -d "$shared/data/cifar10/test" -j "$out/float.json" -q
printf '| config | observer | top-1 | agreement with float | logit SQNR (dB) |\n|---|---|---|---|---|\n'
printf '| float | - | %s | - | - |\n' "$(sed -n 's/.*"top1": \([0-9.]*\).*/\1/p' "$out/float.json" | awk '{printf "%.2f%%", 100*$1}')"
for config in int8-default j5; do
  for observer in minmax percentile entropy mse; do
    "$qcal" calibrate -m "$model" -d "$shared/data/cifar10/train" --images 1000 --seed 0 \
      -c "$config" --observer "$observer" -o "$out/$config-$observer.json" -q >/dev/null
    "$qcal" eval -m "$model" -d "$shared/data/cifar10/test" -s "$out/$config-$observer.json" \
      -j "$out/$config-$observer.eval.json" -q >/dev/null
    awk -v c="$config" -v o="$observer" '
      /"top1"/ { gsub(/[",]/, ""); t = $2 }
      /"agreement"/ { gsub(/[",]/, ""); a = $2 }
      /"logit_sqnr_db"/ { gsub(/[",]/, ""); s = $2 }
      END { printf "| %s | %s | %.2f%% | %.2f%% | %.2f |\n", c, o, 100 * t, 100 * a, s }' \
      "$out/$config-$observer.eval.json"
  done
done
