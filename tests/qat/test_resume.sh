#!/usr/bin/env bash
# QAT resume: a run killed after step 12 (its last checkpoint at step 10)
# and resumed with --resume ends with exactly the weights and scales of an
# uninterrupted run (one compute thread, one decode worker).
set -euo pipefail
qcal="$QCAL_BUILD/tools/qcal"
ckpt_tool="$QCAL_BUILD/tests/convert/ckpt_tool"
model="$QCAL_SOURCE/models/swin-micro-cifar10.h5"
data="$QCAL_SOURCE/data/cifar10-sample"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$qcal" calibrate -m "$model" -d "$data" -c j5 --images 100 -o "$tmp/j5.json" -q >/dev/null
common=(-m "$model" -s "$tmp/j5.json" -d "$data" -e 1 -b 16 -t 1 --workers 1
        --lr 1e-4 --scale-lr 1e-3 --warmup 4 --checkpoint-every 5 -q)

"$qcal" qat "${common[@]}" -o "$tmp/a" >/dev/null
set +e
"$qcal" qat "${common[@]}" -o "$tmp/b" --test-abort-after 12 >/dev/null 2>&1
code=$?
set -e
[ "$code" -eq 137 ] || fail "the simulated kill should exit 137, got $code"
[ -f "$tmp/b/checkpoint.h5" ] || fail "no checkpoint before the kill"
[ ! -f "$tmp/b/weights.h5" ] || fail "a killed run must not have written results"
"$qcal" qat "${common[@]}" -o "$tmp/b" --resume >/dev/null
"$ckpt_tool" compare "$tmp/a/weights.h5" "$tmp/b/weights.h5" || fail "weights differ after resume"
cmp "$tmp/a/scales.json" "$tmp/b/scales.json" || fail "scales differ after resume"
# the uninterrupted run really trained: its scales moved from the calibration
if cmp -s "$tmp/j5.json" "$tmp/a/scales.json"; then fail "QAT changed nothing"; fi
echo "ok: resumed run is bit-identical to the uninterrupted one (19 steps, killed after 12)"

# resuming with different options is refused
set +e
msg=$("$qcal" qat "${common[@]}" -o "$tmp/b" --resume --lr 2e-4 2>&1 >/dev/null)
code=$?
set -e
[ "$code" -eq 1 ] || fail "resume with other options should fail, got $code"
echo "$msg" | grep -q "written with other options" || fail "message: $msg"
echo "ok: resume with other options refused: $msg"
