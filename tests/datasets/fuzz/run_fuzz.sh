#!/usr/bin/env bash
# Build the image-decoder fuzzer with clang (libFuzzer + ASan + UBSan) and
# run it for a bounded time.  The working corpus grows in the build folder;
# seeds/ and regressions/ are read, never written.  Crashes, timeouts and
# out-of-memory inputs land in <build>/artifacts/.
#
#   tests/datasets/fuzz/run_fuzz.sh [seconds=60] [jobs=1] [extra libFuzzer flags...]
#   FUZZ_BUILD=/path/to/dir tests/datasets/fuzz/run_fuzz.sh 300 2 -use_value_profile=1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
seconds=${1:-60}
jobs=${2:-1}
shift $(($# < 2 ? $# : 2))
out=${FUZZ_BUILD:-$root/build-fuzz}
mkdir -p "$out/corpus" "$out/artifacts"

clang -g -O1 -std=c17 -D_GNU_SOURCE -ffp-contract=off \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$root" $(pkg-config --cflags libpng libjpeg) \
  "$here/fuzz_decode.c" \
  "$root/datasets/image.c" "$root/datasets/image_png.c" "$root/datasets/image_jpeg.c" \
  "$root/datasets/preprocess.c" "$root/core/status.c" \
  $(pkg-config --libs libpng libjpeg) -lm -o "$out/fuzz_decode"

# First corpus folder is the writable one.
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536
      -dict="$here/image.dict" -artifact_prefix="$out/artifacts/" -print_final_stats=1)
if [ "$jobs" -gt 1 ]; then
  args+=(-jobs="$jobs" -workers="$jobs")
fi
args+=("$@")
cd "$out"
exec "$out/fuzz_decode" "${args[@]}" "$out/corpus" "$here/seeds" "$here/regressions"
