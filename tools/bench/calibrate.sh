#!/usr/bin/env bash
# Calibration cost: qcal observing every quantization point with a histogram
# observer, timed beside its own float forward (the ratio the calibration
# issue bounds) and beside PyTorch with a HistogramObserver on every leaf
# module (shared/bench/torch_anchor.py --mode calibrate), in one run.
#   tools/bench/calibrate.sh [observer, default mse]
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${QCAL_SHARED:-../shared}
qcal=${QCAL_BIN:-build/tools/qcal}
observer=${1:-mse}
[ -x "$qcal" ] || { echo "build first: tools/setup" >&2; exit 1; }
run() { # label, qcal model args, torch model arg, batch
  local ours theirs q t
  ours=$("$qcal" bench $2 --mode calibrate --observer "$observer" --batch "$4" --iters 10 --warmup 2)
  theirs=$(/usr/bin/python3 "$shared/bench/torch_anchor.py" --model "$3" --batch "$4" --mode calibrate --iters 5)
  echo "$ours"
  echo "$theirs"
  q=$(sed -n 's/.* ms_per_image=\([0-9.]*\).*/\1/p' <<<"$ours")
  t=$(sed -n 's/.*ms_per_image=\([0-9.]*\).*/\1/p' <<<"$theirs")
  awk -v q="$q" -v t="$t" -v l="$1" -v b="$4" \
    'BEGIN { printf "ratio %s calibrate batch=%s pytorch/qcal=%.2fx\n", l, b, t / q }'
}
run swin-micro-cifar10 "--model models/swin-micro-cifar10.h5" "$shared/models/swin-micro-cifar10/weights.h5" 64
run swin-t "--arch swin-t" swin-t 8
