#!/usr/bin/env bash
# One training step, qcal (bench_step) beside PyTorch (shared/bench/torch_anchor.py
# --mode qat), alternating for a few rounds so both see the same machine state.
# Prints every line, both peak RSS figures, and the median ratio.
#   tests/backward/bench_step.sh [build dir] [rounds]
# Environment: MODEL (weights.h5, or swin-t), BATCH, MODE (qat|float for qcal),
# THREADS (both sides; default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-backward}
rounds=${2:-3}
shared=${QCAL_SHARED:-../shared}
model=${MODEL:-$shared/models/swin-micro-cifar10/weights.h5}
batch=${BATCH:-64}
mode=${MODE:-qat}
threads=${THREADS:-2}
export OMP_NUM_THREADS=$threads
bin=$build/tests/backward/bench_step
[ -x "$bin" ] || { echo "build $bin first" >&2; exit 1; }
if [ "$model" = swin-t ]; then ours_model=(--arch swin-t); else ours_model=(--model "$model"); fi
ratios=()
for r in $(seq "$rounds"); do
  ours=$("$bin" "${ours_model[@]}" --batch "$batch" --mode "$mode" --iters 5 --threads "$threads")
  theirs=$( { /usr/bin/time -f 'torch_peak_rss_mb=%M' /usr/bin/python3 "$shared/bench/torch_anchor.py" \
              --model "$model" --batch "$batch" --mode qat --iters 5 --threads "$threads"; } 2>&1 )
  echo "$ours"
  echo "$theirs" | tr '\n' ' ' | sed 's/torch_peak_rss_mb=\([0-9]*\)/torch_peak_rss_mb=\1 (KiB)/'; echo
  q=$(sed -n 's/.* ms_per_image=\([0-9.]*\).*/\1/p' <<<"$ours")
  t=$(sed -n 's/.*ms_per_image=\([0-9.]*\).*/\1/p' <<<"$theirs" | head -1)
  ratios+=("$(awk -v q="$q" -v t="$t" 'BEGIN { printf "%.2f", t / q }')")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "ratio pytorch/qcal per round: %s; median %.2fx\n", "'"${ratios[*]}"'", a[int((NR + 1) / 2)] }'
