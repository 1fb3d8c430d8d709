#!/usr/bin/env bash
# Runs every test program given (cmocka binaries and TAP-emitting shell
# scripts), keeps each one's output in build/test-logs/, and ends with the
# summary line "N passed, N failed". A program that crashes or exits nonzero
# without reporting a failing case counts as one failure.
#
# While a program runs its cases show as they finish: on a terminal one live
# line per program (cases done, the last case or "# ..." note, time), else
# the program's name when it starts and each case ("  ok 3 - name") and
# note ("  # ...") as its own line. Each program ends with its summary line.
set -u
export CMOCKA_MESSAGE_OUTPUT=TAP
export TMPDIR="${TMPDIR:-/tmp}/selfsup-tests.$$"
mkdir -p "$TMPDIR" build/test-logs
# the GEMM probe kept for this run's commands, not in the user's cache
# (src/cli/gemm_cache.c): the tests' processes choose one backend alike
export SELFSUP_CACHE_DIR="$TMPDIR/cache"
trap 'rm -rf "$TMPDIR"' EXIT
passed=0; failed=0; failures=()
[ -t 1 ] && tty=1 || tty=0
cols=$( { [ "$tty" = 1 ] && tput cols 2>/dev/null; } || echo 100)

# Copy the program's output to $log and show its progress.
stream() {
  local t=$1 log=$2 start=$3 n=0 of="" line
  [ "$tty" = 1 ] && printf '%s: running\033[K' "$t"
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line" >>"$log"
    case $line in
      1..[0-9]*) of=/${line#1..}; continue ;;
      "ok "[0-9]* | "not ok "[0-9]*) n=$((n + 1)) ;;
      "# ok - "* | "# not ok - "*) continue ;; # cmocka's group summary
      "# "*) ;;
      *) continue ;;
    esac
    if [ "$tty" = 1 ]; then
      local s
      s=$(printf '%s: %d%s done (%ds) | %s' "$t" "$n" "$of" $(( $(date +%s) - start )) "$line")
      printf '\r%s\033[K' "${s:0:$((cols - 1))}"
    else
      printf '  %s\n' "$line"
    fi
  done
  [ "$tty" = 1 ] && printf '\r\033[K'
}

for t in "$@"; do
  name=${t#build/}; name=${name//\//_}
  log=build/test-logs/$name.log
  : >"$log"
  start=$(date +%s)
  [ "$tty" = 1 ] || echo "$t ..."
  if [[ $t == *.sh ]]; then
    cmd=(bash "$t")
  elif ldd "$t" 2>/dev/null | grep -q libasan; then
    cmd=("$t") # ASan must be the first library loaded: no stdbuf preload
  else
    cmd=(stdbuf -oL -eL "$t") # line-buffered, so cases show as they finish
  fi
  timeout 1200 "${cmd[@]}" 2>&1 | stream "$t" "$log" "$start"
  rc=${PIPESTATUS[0]}
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
