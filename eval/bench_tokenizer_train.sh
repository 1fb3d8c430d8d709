#!/usr/bin/env bash
# Benchmark (not a test): BPE tokenizer training, selfsup vs SentencePiece.
#
# Input: the first 20 MB of IMDB's unlabeled reviews (cut at a line boundary),
# prepared once into eval/work/. Both tools train a BPE vocab of 8000 on the
# whole file, each with its own default thread count:
#   selfsup tokenizer train --vocab-size 8000 --out OUT FILE
#       (threads: physical cores, the CLI default)
#   spm_train --input=FILE --model_prefix=P --model_type=bpe --vocab_size=8000
#       --max_sentence_length=1000000
#       (threads: spm's default --num_threads=16; --max_sentence_length is
#        raised from 4192 bytes because spm silently skips longer lines and
#        some reviews are longer; --input_sentence_size stays 0 = load all)
# Each is run RUNS times (default 3) under /usr/bin/time -v; the table gives
# median wall time and median peak RSS, and the ratios
#   speedup = spm time / selfsup time,  memory ratio = spm RSS / selfsup RSS.
# Usage: eval/bench_tokenizer_train.sh  (make bench-tokenizer); env: RUNS, SELFSUP_DATA_MIRROR,
#        SELFSUP (the binary, default build/selfsup)
set -euo pipefail
cd "$(dirname "$0")/.."

SELFSUP=${SELFSUP:-build/selfsup}
MIRROR=${SELFSUP_DATA_MIRROR:-../shared/data}
RUNS=${RUNS:-3}
BYTES=20000000
WORK=eval/work/tokenizer_train
SRC=$MIRROR/imdb/unsup.txt.zst
mkdir -p "$WORK"

for tool in "$SELFSUP" spm_train /usr/bin/time zstd; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench_tokenizer_train: $tool is missing (make all; apt-get install sentencepiece time zstd)" >&2
    exit 1
  fi
done
if [ ! -r "$SRC" ]; then
  echo "bench_tokenizer_train: $SRC is missing: set SELFSUP_DATA_MIRROR or run 'build/selfsup data get imdb'" >&2
  exit 1
fi

input=$WORK/imdb-unsup-20MB.txt
if [ ! -s "$input" ]; then
  # head closes the pipe early; zstd's SIGPIPE is expected.
  { zstd -dc "$SRC" || true; } | head -c "$BYTES" >"$input.tmp"
  # Drop the partial last line ($(...) strips a final '\n', so non-empty = partial).
  if [ -n "$(tail -c1 "$input.tmp")" ]; then sed -i '$d' "$input.tmp"; fi
  mv "$input.tmp" "$input"
fi
size=$(wc -c <"$input")
lines=$(wc -l <"$input")

# run NAME CMD...: RUNS timed runs; appends "wall_s rss_kb" lines to $WORK/NAME.times
run() {
  local name=$1; shift
  : >"$WORK/$name.times"
  for i in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.log" 2>&1 || {
      echo "bench_tokenizer_train: $name failed; see $WORK/$name.log" >&2; cat "$WORK/$name.log" >&2; exit 1; }
    awk -F': ' '
      /Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + p[k]; wall = s }
      /Maximum resident set size/ { rss = $2 }
      END { printf "%.3f %d\n", wall, rss }' "$WORK/$name.time" >>"$WORK/$name.times"
    echo "  $name run $i: $(tail -n1 "$WORK/$name.times" | awk '{printf "%.2f s, %.1f MB", $1, $2 / 1024}')"
  done
}

median() { # column of $WORK/NAME.times
  sort -n -k"$2","$2" "$WORK/$1.times" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'
}

echo "BPE training benchmark: vocab 8000, $input ($size bytes, $lines lines), $RUNS runs each"
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
run selfsup "$SELFSUP" tokenizer train --vocab-size 8000 --out "$WORK/selfsup-tokenizer.json" "$input"
run spm spm_train --input="$input" --model_prefix="$WORK/spm" --model_type=bpe --vocab_size=8000 \
  --max_sentence_length=1000000
# selfsup's default: physical cores, as the CLI counts them
ss_threads=$(grep -E '^(physical id|core id)' /proc/cpuinfo | paste - - | sort -u | wc -l)
[ "$ss_threads" -gt 0 ] || ss_threads=$(nproc)

s_t=$(median selfsup 1); s_m=$(median selfsup 2)
p_t=$(median spm 1); p_m=$(median spm 2)
echo
printf '%-10s %-22s %14s %16s\n' tool threads "wall s (median)" "peak RSS MB (med)"
printf '%-10s %-22s %14.2f %16.1f\n' selfsup "$ss_threads (physical cores)" "$s_t" "$(awk -v m="$s_m" 'BEGIN{print m/1024}')"
printf '%-10s %-22s %14.2f %16.1f\n' spm_train "16 (spm default)" "$p_t" "$(awk -v m="$p_m" 'BEGIN{print m/1024}')"
awk -v st="$s_t" -v pt="$p_t" -v sm="$s_m" -v pm="$p_m" 'BEGIN {
  printf "speedup (spm time / selfsup time): %.1fx   memory ratio (spm RSS / selfsup RSS): %.1fx\n", pt / st, pm / sm }'
grep -m1 trained "$WORK/selfsup.log" || true
