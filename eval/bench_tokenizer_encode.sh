#!/usr/bin/env bash
# Encoding speed, GPT-2 vocabulary, first 20 MB of IMDB's unlabeled reviews:
# selfsup (1 and 2 threads, whole CLI run incl. loading the vocab and printing
# the ids to /dev/null) against the npm encoders gpt-tokenizer and tiktoken
# (encode call only, after a warm-up), side by side, medians of RUNS runs.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
MIRROR=${SELFSUP_DATA_MIRROR:-}
[ -n "$MIRROR" ] || { echo "set SELFSUP_DATA_MIRROR (e.g. ../shared/data) or run 'build/selfsup data get imdb' and 'build/selfsup data get gpt2-tokenizer'"; exit 1; }
mkdir -p eval/work
TEXT=eval/work/imdb_unsup_20MB.txt
if [ ! -s "$TEXT" ]; then
  # 20,000,000 bytes cut back to the last complete line.
  # zstd gets SIGPIPE when head has enough: expected, hence the || true
  { zstd -dc "$MIRROR/imdb/unsup.txt.zst" || true; } | head -c 20000000 | sed '$d' > "$TEXT"
fi
GPT2="$MIRROR/gpt2-tokenizer"
BYTES=$(stat -c %s "$TEXT")
(cd eval/node && [ -d node_modules/gpt-tokenizer ] && [ -d node_modules/tiktoken ] || npm install --no-audit --no-fund --silent)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_cmd() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

echo "input: $TEXT ($BYTES bytes), $RUNS runs each, medians; machine: $(nproc) cores"
echo "encode call only, repeated in one process after loading (as the JS encoders are timed);"
echo "selfsup end to end = the whole CLI run: loading the 50k vocab, encoding, printing the ids"
declare -A secs
for t in 1 2; do
  secs[selfsup_$t]=$(build/selfsup tokenizer encode --tokenizer "$GPT2" --threads $t --stats --repeat "$RUNS" "$TEXT" \
    2>&1 >/dev/null | awk '/^encoded/ {print $(NF-5)}' | tr '\n' ' ')
done
for r in $(seq "$RUNS"); do
  secs[selfsup_cli_1]+="$(time_cmd build/selfsup tokenizer encode --tokenizer "$GPT2" --threads 1 "$TEXT") "
done
for name in gpt-tokenizer tiktoken; do
  secs[$name]=$(cd eval/node && node encode_bench.js $name "../../$TEXT" "$RUNS" | awk '{print $4}' | tr '\n' ' ')
done
ntok_ss=$(build/selfsup tokenizer encode --tokenizer "$GPT2" --threads 1 "$TEXT" | wc -w)
ntok_tt=$(cd eval/node && node encode_bench.js tiktoken "../../$TEXT" 1 | awk '{print $3}')
ntok_gt=$(cd eval/node && node encode_bench.js gpt-tokenizer "../../$TEXT" 1 | awk '{print $3}')
printf '%-26s %10s %10s\n' encoder "median s" "MB/s"
for k in selfsup_1 selfsup_2 selfsup_cli_1 gpt-tokenizer tiktoken; do
  m=$(echo ${secs[$k]} | tr ' ' '\n' | median)
  declare "med_${k//-/_}=$m"
  label=$k; [ $k = selfsup_1 ] && label="selfsup, 1 thread"; [ $k = selfsup_2 ] && label="selfsup, 2 threads"
  [ $k = selfsup_cli_1 ] && label="selfsup end to end, 1 th."
  printf '%-26s %10.3f %10.2f\n' "$label" "$m" "$(echo "$BYTES / $m / 1000000" | bc -l)"
done
echo "tokens: selfsup $ntok_ss, tiktoken $ntok_tt $( [ "$ntok_ss" = "$ntok_tt" ] && echo '(identical)' || echo '(DIFFERENT)'), gpt-tokenizer $ntok_gt"
fastest_js=$(printf '%s\n%s\n' "$med_gpt_tokenizer" "$med_tiktoken" | sort -g | head -1)
printf 'selfsup 1 thread vs fastest JS encoder:   %.2fx (target >= 2x)\n' "$(echo "$fastest_js / $med_selfsup_1" | bc -l)"
printf 'selfsup 2 threads vs 1 thread:            %.2fx (target >= 1.8x)\n' "$(echo "$med_selfsup_1 / $med_selfsup_2" | bc -l)"
printf 'selfsup end to end (1 thread) vs fastest JS: %.2fx\n' "$(echo "$fastest_js / $med_selfsup_cli_1" | bc -l)"
