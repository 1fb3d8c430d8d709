#!/usr/bin/env bash
# Runs every test program given (cmocka binaries and TAP-emitting shell
# scripts), keeps each one's output in build/test-logs/, and ends with the
# summary line "N passed, N failed". A program that crashes or exits nonzero
# without reporting a failing case counts as one failure.
set -u
export CMOCKA_MESSAGE_OUTPUT=TAP
export TMPDIR="${TMPDIR:-/tmp}/selfsup-tests.$$"
mkdir -p "$TMPDIR" build/test-logs
trap 'rm -rf "$TMPDIR"' EXIT
passed=0; failed=0; failures=()
for t in "$@"; do
  name=${t#build/}; name=${name//\//_}
  log=build/test-logs/$name.log
  start=$(date +%s)
  if [[ $t == *.sh ]]; then timeout 1200 bash "$t" >"$log" 2>&1; else timeout 1200 "$t" >"$log" 2>&1; fi
  rc=$?
  p=$(grep -cE '^ok [0-9]+' "$log"); f=$(grep -cE '^not ok [0-9]+' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; echo "  $t: exited with status $rc without reporting a failure (crash?)" >>"$log"
  fi
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-48s %3d passed, %d failed (%ds)\n' "$t" "$p" "$f" $(( $(date +%s) - start ))
  if [ "$f" -gt 0 ]; then
    failures+=("$t")
    grep -E '^not ok|^# |ERROR|error|exited with' "$log" | head -20 | sed 's/^/    /'
  fi
done
[ ${#failures[@]} -gt 0 ] && echo "failing programs (logs in build/test-logs/): ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
