#!/usr/bin/env bash
# make fuzz: runs each libFuzzer target (build/fuzz/fuzz_TARGET) for SECONDS,
# FUZZ_JOBS targets at a time (default 1), and prints per target the
# executions, their rate, the corpus size and the findings. Each target grows
# a working corpus in build/fuzz/corpus/TARGET/ (kept between runs) from the
# committed seeds in tests/fuzz/corpus/TARGET/ (never written); a finding (a
# crash, a sanitizer report, a violated property, a leak, a timeout over
# 30 s or an allocation over 2 GB) is saved as a reproducer in
# tests/fuzz/crashes/TARGET/, which make check replays. libFuzzer stops a
# target at its first finding. Logs: build/fuzz/logs/TARGET.log.
#   tests/fuzz/run.sh SECONDS [TARGET...]      (default: every target)
# Exit status 1 when anything was found.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
secs=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
jobs=${FUZZ_JOBS:-1}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in tests/fuzz/fuzz_*.c; do t=${f##*/fuzz_}; targets+=("${t%.c}"); done
fi
for t in "${targets[@]}"; do
  [ -x "$B/fuzz/fuzz_$t" ] || { echo "fuzz: no target $B/fuzz/fuzz_$t (targets: tests/fuzz/fuzz_*.c; make fuzz builds them)" >&2; exit 2; }
done
# Scratch files of the harnesses go to memory when it can be had.
base=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
scratch=$(mktemp -d "$base/selfsup-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$B/fuzz/logs"

# One target: fuzz, then write its summary line to $scratch/TARGET.sum.
one() {
  local t=$1 bin=$B/fuzz/fuzz_$1 work=$B/fuzz/corpus/$1 crashes=tests/fuzz/crashes/$1 log=$B/fuzz/logs/$1.log
  mkdir -p "$work" "$crashes" "$scratch/$t"
  local before after start rc
  before=$(ls "$crashes" | wc -l)
  start=$(date +%s)
  TMPDIR=$scratch/$t OMP_NUM_THREADS=1 "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
    -report_slow_units=1000000 -print_final_stats=1 -artifact_prefix="$crashes/" \
    "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  after=$(ls "$crashes" | wc -l)
  local execs rate units
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  units=$(ls "$work" | wc -l)
  local found=$((after - before))
  [ "$rc" -ne 0 ] && [ "$found" -eq 0 ] && found=1 # a failure that left no reproducer
  printf '%-16s %12s %9s %8s %9s\n' "$t" "${execs:-?}" "${rate:-?}" "$units" "$found" >"$scratch/$t.sum"
  if [ "$found" -gt 0 ]; then
    {
      grep -m3 -E 'ERROR: |runtime error|property violated|out-of-memory|timeout' "$log" | sed 's/^/    /'
      grep -E 'Test unit written to' "$log" | sed 's/^.*written to /    reproducer: /'
      echo "    log: $log"
    } >>"$scratch/$t.sum"
  fi
  [ "$after" -eq 0 ] && rmdir "$crashes" 2>/dev/null
  echo "fuzz_$t: done in $(( $(date +%s) - start ))s" >&2
}

echo "fuzzing ${#targets[@]} targets for ${secs}s each, $jobs at a time (logs in $B/fuzz/logs/)"
running=0
for t in "${targets[@]}"; do
  one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
printf '%-16s %12s %9s %8s %9s\n' target executions 'exec/s' corpus findings
total=0
for t in "${targets[@]}"; do
  cat "$scratch/$t.sum"
  n=$(awk 'NR == 1 {print $5}' "$scratch/$t.sum")
  total=$((total + n))
done
if [ "$total" -gt 0 ]; then
  echo "$total finding(s): the reproducers in tests/fuzz/crashes/ are replayed by make check (tests/cli_fuzz.sh);"
  echo "replay one with: $B/fuzz/fuzz_TARGET FILE"
  exit 1
fi
echo "no findings"
