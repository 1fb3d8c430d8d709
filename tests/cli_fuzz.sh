#!/usr/bin/env bash
# The fuzz targets in make check, printing TAP: each target (build/fuzz/
# fuzz_TARGET, tests/fuzz/fuzz_TARGET.c) fuzzes for a short smoke time
# (FUZZ_SMOKE_SECONDS, default 3) from a copy of its committed seeds with a
# fixed seed (the same inputs on every run, as far as the time allows), and
# every reproducer committed in tests/fuzz/crashes/TARGET/ (an input that once
# crashed a target) is replayed and must now pass. A smoke finding is saved
# in build/fuzz/findings/TARGET/ (copy it to tests/fuzz/crashes/TARGET/ to
# keep it as a regression test). Without the fuzz build (clang and
# libclang-rt-14-dev, libomp-14-dev: make check installs them when run as root) the cases
# are skipped, saying so. `make fuzz FUZZ_SECONDS=N` fuzzes for longer.
source "$(dirname "$0")/tap.sh"
cd "$(dirname "$0")/.."
B=${B:-build}
secs=${FUZZ_SMOKE_SECONDS:-3}
targets=()
for f in tests/fuzz/fuzz_*.c; do t=${f##*/fuzz_}; targets+=("${t%.c}"); done
repros=()
for t in "${targets[@]}"; do
  for r in tests/fuzz/crashes/"$t"/*; do [ -f "$r" ] && repros+=("$r"); done
done
tap_plan $(( ${#targets[@]} + ${#repros[@]} ))
# Scratch files of the harnesses (written on every input) go to memory when it can be had.
base=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
TMP=$(mktemp -d "$base/selfsup-fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# skip NAME: a skipped case (counts as passed), saying why.
skip() { ok "$1 # SKIP no fuzz build ($B/fuzz/; needs clang, libclang-rt-14-dev and libomp-14-dev: make check installs them as root)"; }

# The first lines of a libFuzzer report worth showing.
report() { grep -m4 -E 'ERROR: |runtime error|property violated|out-of-memory|timeout|Test unit written' "$1"; }

for t in "${targets[@]}"; do
  bin=$B/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then skip "fuzz_$t smoke run"; continue; fi
  mkdir -p "$TMP/corpus/$t" "$TMP/scratch/$t" "$B/fuzz/findings/$t"
  cp tests/fuzz/corpus/"$t"/* "$TMP/corpus/$t/"
  log=$TMP/$t.log
  TMPDIR=$TMP/scratch/$t OMP_NUM_THREADS=1 "$bin" -seed=1 -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
    -report_slow_units=1000000 -print_final_stats=1 -artifact_prefix="$B/fuzz/findings/$t/" "$TMP/corpus/$t" \
    >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
    ok "fuzz_$t: ${execs} executions in ${secs}s from $(ls tests/fuzz/corpus/"$t" | wc -l) seeds, no finding"
  else
    mapfile -t lines < <(report "$log")
    notok "fuzz_$t: a finding in the smoke run (exit $rc; the input is in $B/fuzz/findings/$t/)" "${lines[@]}"
  fi
  rmdir "$B/fuzz/findings/$t" 2>/dev/null
done

for r in "${repros[@]}"; do
  t=${r#tests/fuzz/crashes/}; t=${t%%/*}
  bin=$B/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then skip "fuzz_$t replays $r"; continue; fi
  mkdir -p "$TMP/scratch/$t"
  log=$TMP/replay.log
  if TMPDIR=$TMP/scratch/$t OMP_NUM_THREADS=1 "$bin" -timeout=25 -rss_limit_mb=2048 "$r" >"$log" 2>&1; then
    ok "fuzz_$t replays $r"
  else
    mapfile -t lines < <(report "$log")
    notok "fuzz_$t replays $r: it fails again" "${lines[@]}"
  fi
done
