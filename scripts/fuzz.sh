#!/usr/bin/env bash
# scripts/fuzz.sh BUILD_DIR SECONDS - run every libFuzzer harness in
# BUILD_DIR/fuzz for SECONDS each, up to $FUZZ_JOBS (default: nproc) at once.
#
# Each harness first replays its committed corpus (fuzz/corpus/NAME/: seeds
# and regression inputs from past crashes), then mutates for SECONDS. New
# inputs go to BUILD_DIR/fuzz-work/NAME, never into the repository; a crash
# is written to BUILD_DIR/fuzz-artifacts/ and fails the run. The last lines
# are a table: harness, executions, execs/s, corpus size, result.
set -uo pipefail

if (($# != 2)); then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
secs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
work=$build/fuzz-work
art=$build/fuzz-artifacts
logs=$build/fuzz-logs
mkdir -p "$work" "$art" "$logs"

one() {
  local bin=$1 name
  name=$(basename "$bin")
  name=${name#fuzz_}
  local corpus=$root/fuzz/corpus/$name dict=() opts=()
  mkdir -p "$work/$name" "$corpus"
  if [[ -f $root/fuzz/$name.dict ]]; then
    dict=(-dict="$root/fuzz/$name.dict")
  elif [[ -f $root/fuzz/json.dict ]]; then
    dict=(-dict="$root/fuzz/json.dict")
  fi
  # Per-harness flags, one line in fuzz/NAME.options (e.g. -max_len=8192).
  if [[ -f $root/fuzz/$name.options ]]; then
    read -r -a opts <"$root/fuzz/$name.options"
  fi
  local rc=0
  "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/$name-" "${dict[@]}" "${opts[@]}" \
    "$work/$name" "$corpus" >"$logs/$name.log" 2>&1 || rc=$?
  local runs speed units
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$name.log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$name.log")
  units=$(find "$work/$name" "$corpus" -type f | wc -l)
  if ((rc == 0)); then
    printf '%-10s %10s runs %8s/s corpus %5s  ok\n' "$name" "${runs:-?}" "${speed:-?}" "$units"
  else
    printf '%-10s %10s runs %8s/s corpus %5s  FAILED (exit %s; log %s)\n' "$name" \
      "${runs:-?}" "${speed:-?}" "$units" "$rc" "$logs/$name.log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*invariant broken)' "$logs/$name.log" | head -5
    return 1
  fi
}
export -f one
export root work art logs secs

bins=("$build"/fuzz/fuzz_*)
if [[ ! -x ${bins[0]} ]]; then
  echo "fuzz: no harnesses in $build/fuzz (build them: make fuzz)" >&2
  exit 1
fi
echo "fuzz: ${#bins[@]} harnesses, ${secs}s each, $jobs at a time"
printf '%s\n' "${bins[@]}" | xargs -P "$jobs" -I{} bash -c 'one "$@"' _ {}
rc=$?
((rc == 0)) && echo "fuzz: all harnesses ok" || echo "fuzz: a harness failed" >&2
exit $((rc != 0))
