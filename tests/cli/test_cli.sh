#!/usr/bin/env bash
# The command-line contract scripts rely on: exit codes, errors that name
# the file / line / key / index, bad images, configs and NaN inputs, and a
# full disk (simulated with a file-size limit: writes fail with EFBIG as
# they would with ENOSPC) leaving the destination untouched, no temporary
# file behind and no crash.  fixtures/ is written by make_fixtures.py.
set -euo pipefail
qcal="$QCAL_BUILD/tools/qcal"
model="$QCAL_SOURCE/models/swin-micro-cifar10.h5"
data="$QCAL_SOURCE/data/cifar10-sample"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok: $*"; }

# run CODE_WANTED TEXT_WANTED command...: the exit code, and a piece of the
# output (errors on stderr, summaries on stdout)
expect() {
	local want=$1 text=$2 code
	shift 2
	set +e
	"$@" >"$tmp/out" 2>"$tmp/err"
	code=$?
	set -e
	[ "$code" -eq "$want" ] || fail "$* exited $code, expected $want: $(cat "$tmp/err")"
	grep -qF -- "$text" "$tmp/out" "$tmp/err" ||
		fail "$*: output lacks '$text': $(cat "$tmp/out" "$tmp/err")"
}

# a folder with no leftovers: nothing but the names given
only() {
	local dir=$1 got
	shift
	got=$(cd "$dir" && ls -A | sort | tr '\n' ' ')
	local want=""
	[ $# -eq 0 ] || want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
	[ "$got" = "$want" ] || fail "$dir holds: '$got' (expected: '$want')"
}

# ---- usage and help ----
for c in infer bench points eval calibrate qat report; do
	"$qcal" "$c" --help >"$tmp/out" || fail "qcal $c --help exited $?"
	grep -q "^usage: qcal $c" "$tmp/out" || fail "qcal $c --help: no usage line"
done
ok "every command's --help exits 0 with its usage line"
expect 2 "unknown command 'frobnicate'" "$qcal" frobnicate
expect 2 "Try 'qcal eval --help'" "$qcal" eval --frobnicate
expect 2 "Try 'qcal calibrate --help'" "$qcal" calibrate -m "$model" -d "$data" -o "$tmp/x.json" --images 0
ok "usage errors exit 2 and point to --help"

# ---- missing and bad inputs: exit 1, the file named ----
expect 1 "$tmp/missing.h5" "$qcal" eval -m "$tmp/missing.h5" -d "$data"
printf 'not hdf5' >"$tmp/fake.h5"
expect 1 "$tmp/fake.h5: not an HDF5 file" "$qcal" eval -m "$tmp/fake.h5" -d "$data"
ok "a missing or non-HDF5 checkpoint is named"

mkdir -p "$tmp/imgs/a" "$tmp/imgs/b"
# (no pipe that a reader closes early: pipefail would see the SIGPIPE)
find "$data" -name '*.jpg' | sort >"$tmp/all"
good=$(sed -n 1,2p "$tmp/all")
cp $good "$tmp/imgs/a/"
head -c 200 "$(sed -n 1p "$tmp/all")" >"$tmp/imgs/b/cut.jpg"
expect 1 "$tmp/imgs/b/cut.jpg" "$qcal" eval -m "$model" -d "$tmp/imgs" -q
expect 0 "1 unreadable images skipped" "$qcal" eval -m "$model" -d "$tmp/imgs" -q --skip-bad
grep -q "on 2 images" "$tmp/out" || fail "--skip-bad should evaluate the 2 good images: $(cat "$tmp/out")"
ok "a truncated image stops eval naming it; --skip-bad counts it and goes on"

mkdir -p "$tmp/cal"
printf 'version: 1\nname: typo\nrules:\n  - match: {kind: gelu}\n    dtpye: int16\n' >"$tmp/typo.yaml"
expect 1 "$tmp/typo.yaml:5" "$qcal" calibrate -m "$model" -c "$tmp/typo.yaml" -d "$data" -n 10 -o "$tmp/cal/s.json"
grep -qF "dtpye" "$tmp/err" || fail "the unknown key is not named: $(cat "$tmp/err")"
[ ! -e "$tmp/cal/s.json" ] || fail "a refused config wrote a scale file"
ok "an unknown config key is refused with file:line and the key"

expect 0 "a sample of 100000 images was asked for; $data has 300: using all of them" \
	"$qcal" calibrate -m "$model" -c j5 -d "$data" -n 100000 -o "$tmp/all.json" -q
ok "a sample larger than the image set is said, not silently shrunk"

printf '{"format": "qcal-report", "version": 1, "overall": ' >"$tmp/cut_baseline.json"
expect 1 "cut_baseline.json" "$qcal" report -m "$model" -s "$tmp/all.json" -d "$data" \
	--limit 8 --no-sensitivity --baseline "$tmp/cut_baseline.json" --max-drop 0.5 -o "$tmp/rep" -q
[ ! -e "$tmp/rep" ] || fail "report ran its analysis before reading a broken baseline"
ok "a broken --baseline fails before any analysis, naming the file"

expect 1 "$tmp/nowhere/s.json: cannot write there" \
	"$qcal" calibrate -m "$model" -c j5 -d "$data" -o "$tmp/nowhere/s.json" -q
expect 1 "$tmp/cal: is a folder, expected a file name" \
	"$qcal" eval -m "$model" -d "$data" --save-logits "$tmp/cal" -q
grep -q "images/s" "$tmp/out" && fail "eval ran before finding its output unwritable"
ok "an output that cannot be written fails before the work"

# ---- NaN and Inf ----
nan_input="$QCAL_SOURCE/tests/cli/fixtures/nan_input.h5"
expect 1 "holds 1 non-finite value (first: nan at [1, 2, 3, 4])" \
	"$qcal" infer -m "$model" --input "$nan_input" -o "$tmp/nan_logits.h5"
[ ! -e "$tmp/nan_logits.h5" ] || fail "infer wrote logits for a NaN input"
ok "a NaN in infer's input is refused with its index, nothing written"
expect 0 "points saw NaN or Inf values, left out of their ranges (first: input, 1 NaN" \
	"$qcal" calibrate -m "$model" -c j5 --input "$nan_input" -o "$tmp/nan_scales.json" -q
ok "calibration on data with a NaN says so (scales from the finite values)"

# ---- a full disk ----
mkdir -p "$tmp/full"
"$qcal" calibrate -m "$model" -c j5 -d "$data" -n 32 -o "$tmp/full/s.json" -q >/dev/null
cp "$tmp/full/s.json" "$tmp/s.json"
echo previous >"$tmp/full/logits.h5"
# scale file (JSON, stdio stream)
(ulimit -f 4; expect 1 "s.json: write failed" \
	"$qcal" calibrate -m "$model" -c j5 -d "$data" -n 16 -o "$tmp/full/s.json" -q)
cmp -s "$tmp/s.json" "$tmp/full/s.json" || fail "the earlier scale file was changed"
# scale file (HDF5), logits (HDF5), QAT checkpoint (HDF5)
(ulimit -f 4; expect 1 "s.h5: write failed" \
	"$qcal" calibrate -m "$model" -c j5 -d "$data" -n 16 -f hdf5 -o "$tmp/full/s.h5" -q)
(ulimit -f 1; expect 1 "logits.h5: write failed" \
	"$qcal" eval -m "$model" -d "$data" --limit 16 --save-logits "$tmp/full/logits.h5" -q)
[ "$(cat "$tmp/full/logits.h5")" = previous ] || fail "the earlier logits file was changed"
(ulimit -f 16; expect 1 "checkpoint.h5: write failed" \
	"$qcal" qat -m "$model" -s "$tmp/s.json" -d "$data" --train-images 32 -b 16 -e 1 \
	-o "$tmp/full/qat" -q)
only "$tmp/full" s.json logits.h5 qat
only "$tmp/full/qat"
ok "a full disk fails each writer with exit 1, the earlier files intact, no temporary left"

# the same writers with room to write produce readable files
"$qcal" eval -m "$model" -d "$data" --limit 16 --save-logits "$tmp/full/logits.h5" -q >/dev/null
"$qcal" calibrate -m "$model" -c j5 -d "$data" -n 16 -f hdf5 -o "$tmp/full/s.h5" -q >/dev/null
"$qcal" qat -m "$model" -s "$tmp/s.json" -d "$data" --train-images 32 -b 16 -e 1 -o "$tmp/full/qat" \
	-t 1 --workers 1 -q >/dev/null
"$qcal" eval -m "$tmp/full/qat/weights.h5" -s "$tmp/full/qat/scales.json" -r "$model" -d "$data" \
	--limit 16 -q >"$tmp/out"
grep -q "agreement with float" "$tmp/out" || fail "QAT output not readable: $(cat "$tmp/out")"
ok "with room, the HDF5 writers' files load again (logits, HDF5 scales, QAT weights)"

# ---- OpenMP spinning: bounded unless the user chose ----
v=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$qcal" --version)
grep -q "GOMP_SPINCOUNT=10000" <<<"$v" || fail "qcal did not bound OpenMP spinning: $v"
v=$(OMP_WAIT_POLICY=active "$qcal" --version)
grep -q "OMP_WAIT_POLICY=active GOMP_SPINCOUNT=unset" <<<"$v" ||
	fail "qcal overrode the user's OMP_WAIT_POLICY: $v"
ok "OpenMP spin bound applied by default, the user's policy left alone"

echo "$passed checks passed"
