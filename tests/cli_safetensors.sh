#!/usr/bin/env bash
# safetensors interop in both directions, printing TAP. The C side is the
# already-built test program build/tests/test_io_safetensors (in its interop
# mode: SS_ST_OUT=DIR writes DIR/from_c.safetensors, SS_ST_IN=FILE reads FILE);
# the Python side is tests/st_check.py, an independent strict reader/writer
# following the reference implementation (numpy only).
set -u
cd "$(dirname "$0")/.."
bin=${B:-build}/tests/test_io_safetensors
py=/usr/bin/python3
dir=$(mktemp -d "${TMPDIR:-/tmp}/st-interop.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
n=0

# run NAME CMD...: one TAP line; the command's output is shown on failure.
run() {
  local name=$1 out; shift
  n=$((n + 1))
  if out=$("$@" 2>&1); then echo "ok $n - $name"
  else echo "not ok $n - $name"; printf '%s\n' "$out" | sed 's/^/# /'; fi
}

# rejects FILE PATTERN: the Python reader must refuse FILE, saying PATTERN.
rejects() {
  local out
  if out=$("$py" tests/st_check.py check "$1" 2>&1); then echo "accepted $1"; return 1; fi
  printf '%s\n' "$out" | grep -q "$2" || { echo "wrong reason: $out"; return 1; }
}

echo "1..8"
run "C writes the interop file" env SS_ST_OUT="$dir" "$bin"
run "strict Python reader accepts the C file, values and selfsup layout" \
  "$py" tests/st_check.py check --selfsup "$dir/from_c.safetensors"
head -c -1 "$dir/from_c.safetensors" >"$dir/cut.safetensors"
run "strict Python reader rejects the C file cut by one byte" \
  rejects "$dir/cut.safetensors" MetadataIncompleteBuffer
{ printf '\0\0\1\0\0\0\0\0'; tail -c +9 "$dir/from_c.safetensors"; } >"$dir/bigheader.safetensors"
run "strict Python reader rejects a header size beyond the file" \
  rejects "$dir/bigheader.safetensors" InvalidHeaderLength
# flip one bit of the last data byte (a tensor value): the Python reader's own
# XXH64 disagrees with the header's data_xxh64
/usr/bin/python3 -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[-1] ^= 1; open(sys.argv[2], 'wb').write(b)" \
  "$dir/from_c.safetensors" "$dir/flip.safetensors"
run "strict Python reader rejects the C file with one flipped data bit (data_xxh64)" \
  rejects "$dir/flip.safetensors" data_xxh64
run "Python writes the interop file (reference layout)" "$py" tests/st_check.py write "$dir/from_py.safetensors"
run "strict Python reader accepts the Python file" "$py" tests/st_check.py check "$dir/from_py.safetensors"
run "C reads the Python file and its values" env SS_ST_IN="$dir/from_py.safetensors" "$bin"
