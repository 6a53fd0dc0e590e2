#!/usr/bin/env bash
# Instructions per operation of one codec bench case, counted by cachegrind: free of the noise
# of wall-clock timing on a shared machine.
#
#   bash benches/instructions.sh [CODEC] [FILTER]
#
# CODEC is a column of the table (default: ours); FILTER a regex on op/case/version (default:
# every case); a case the codec lacks (a version it does not speak, a 3.1.1 `_props` stream, an
# encode of the borrowed view) is left out. For each case the bench binary runs the operation N
# and 2N times under `valgrind --tool=cachegrind --cache-sim=no`; the difference divided by N
# is the count per operation (per packet for the stream cases), so set-up and start-up cancel
# out.
set -euo pipefail
cd "$(dirname "$0")/.."
codec="${1:-ours}"
filter="${2:-.}"
# CODEC_BIN counts a bench binary kept from another build (a copy made before a change).
bin="${CODEC_BIN:-}"
if [ -z "$bin" ]; then
  bin=$(cargo bench -p mqtt-benches --bench codec --no-run --locked --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "codec" and m.get("executable"):
        print(m["executable"])')
fi
instructions() {
  CODEC_COUNT="$1" CODEC_ITERATIONS="$2" valgrind --tool=cachegrind --cache-sim=no \
    --cachegrind-out-file=/dev/null "$bin" 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ,
}
for version in v3.1.1 v5.0; do
  for op_case in encode/publish_qos0_16B encode/publish_qos0_1KiB encode/publish_qos0_64KiB \
    encode/publish_qos0_1MiB encode/publish_qos1_1KiB encode/connect \
    encode/connect_long_username encode/subscribe_10 encode/puback decode/publish_qos0_16B \
    decode/publish_qos0_1KiB decode/publish_qos0_64KiB decode/publish_qos0_1MiB \
    decode/publish_qos1_1KiB decode/connect decode/connect_long_username decode/subscribe_10 \
    decode/puback decode/stream_10000_publish decode/stream_10000_publish_props \
    ${EXTRA_CASES:-}; do
    id="$op_case/$version/$codec"
    [[ "$id" =~ $filter ]] || continue
    case "$op_case" in
      *stream*) n=2; per=10000 ;;
      *1MiB*|*64KiB*|*long_username*) n=20; per=1 ;;
      *) n=2000; per=1 ;;
    esac
    if ! a=$(instructions "$id" "$n") || [ -z "$a" ]; then continue; fi
    b=$(instructions "$id" $((2 * n))) || continue
    [ -n "$b" ] || continue
    echo "$id $(( (b - a) / (n * per) ))"
  done
done
