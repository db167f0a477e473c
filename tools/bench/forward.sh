#!/usr/bin/env bash
# Float forward of a full-size Swin-T (random weights): qcal beside PyTorch in
# one run, so both figures share the machine's state.  Prints each line and
# the ratio PyTorch ms/image / qcal ms/image per batch size.
#   tools/bench/forward.sh [batch sizes, default "1 8"]
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${QCAL_SHARED:-../shared}
qcal=${QCAL_BIN:-build/tools/qcal}
[ -x "$qcal" ] || { echo "build first: tools/setup" >&2; exit 1; }
batches=${*:-1 8}
for b in $batches; do
  ours=$("$qcal" bench --arch swin-t --batch "$b" --iters 10 --warmup 2)
  theirs=$(/usr/bin/python3 "$shared/bench/torch_anchor.py" --model swin-t --batch "$b" --mode forward --iters 10)
  echo "$ours"
  echo "$theirs"
  q=$(sed -n 's/.*ms_per_image=\([0-9.]*\).*/\1/p' <<<"$ours")
  t=$(sed -n 's/.*ms_per_image=\([0-9.]*\).*/\1/p' <<<"$theirs")
  awk -v q="$q" -v t="$t" -v b="$b" \
    'BEGIN { printf "ratio swin-t forward batch=%s pytorch/qcal=%.2fx (qcal at %.0f%% of PyTorch ms/image)\n", b, t / q, 100 * q / t }'
done
