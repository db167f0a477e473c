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

# fine-tuned weights are compared against the original float model with
# --reference: its float top-1 is the original model's, not the QAT weights'
"$qcal" eval -m "$model" -d "$data" -q --json "$tmp/float.json" >/dev/null
"$qcal" eval -m "$tmp/a/weights.h5" -s "$tmp/a/scales.json" -d "$data" -q --json "$tmp/self.json" >/dev/null
"$qcal" eval -m "$tmp/a/weights.h5" -s "$tmp/a/scales.json" -r "$model" -d "$data" -q \
  --json "$tmp/ref.json" >/dev/null
field() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" "$1"; }
[ "$(field "$tmp/ref.json" float_top1)" = "$(field "$tmp/float.json" top1)" ] ||
  fail "--reference float top-1 $(field "$tmp/ref.json" float_top1) is not the original's $(field "$tmp/float.json" top1)"
[ "$(field "$tmp/ref.json" top1)" = "$(field "$tmp/self.json" top1)" ] ||
  fail "--reference changed the quantized model's top-1"
[ "$(field "$tmp/ref.json" logit_sqnr_db)" != "$(field "$tmp/self.json" logit_sqnr_db)" ] ||
  fail "--reference did not change the float twin"
set +e
msg=$("$qcal" eval -m "$tmp/a/weights.h5" -s "$tmp/a/scales.json" \
      -r "$QCAL_SHARED/models/swin-t-structure/weights.h5" -d "$data" -q 2>&1 >/dev/null)
code=$?
set -e
[ "$code" -eq 1 ] || fail "a reference of another architecture should fail with 1, got $code"
echo "$msg" | grep -q "another architecture" || fail "message: $msg"
echo "ok: eval --reference measures against the original float model; mismatched reference refused"

# a fresh run into a folder that holds a checkpoint would lose that run's
# progress: refused unless --force; --force starts over (and trains again)
set +e
msg=$("$qcal" qat "${common[@]}" -o "$tmp/b" 2>&1 >/dev/null)
code=$?
set -e
[ "$code" -eq 1 ] || fail "a fresh run over a checkpoint should fail with 1, got $code"
grep -q "holds an earlier run's checkpoint" <<<"$msg" || fail "message: $msg"
"$qcal" qat "${common[@]}" -o "$tmp/b" --force >/dev/null
"$ckpt_tool" compare "$tmp/a/weights.h5" "$tmp/b/weights.h5" || fail "--force run differs from a fresh one"
echo "ok: a fresh run over a checkpoint is refused; --force starts over and matches a fresh run"
