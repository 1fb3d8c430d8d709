#!/usr/bin/env bash
# make demo: the main job, end to end, printing what each step did.
# Today: corpus -> tokenizer -> encode/decode -> token shards.
set -euo pipefail
cd "$(dirname "$0")/.."
SS=build/selfsup
OUT=build/demo
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)

step "1. corpus: King James Bible (kjv) into corpora/cache/"
if [ -z "${SELFSUP_DATA_MIRROR:-}" ]; then
  echo "(no SELFSUP_DATA_MIRROR: generating it with Debian's bible-kjv, no network needed)"
fi
$SS data get kjv
CORPUS=corpora/cache/kjv/kjv.txt
echo "$(wc -l < $CORPUS) verses, $(stat -c %s $CORPUS) bytes; first verse: $(head -1 $CORPUS)"

step "2. tokenizer: byte-level BPE, vocab 8000, trained on the corpus"
$SS tokenizer train --vocab-size 8000 --out "$OUT/tokenizer.json" "$CORPUS"
$SS tokenizer info --tokenizer "$OUT/tokenizer.json" | head -12

step "3. encode and decode a sample"
SAMPLE="In the beginning was the Word, and the Word was with God. (naïve café — 42!)"
echo "text:    $SAMPLE"
IDS=$($SS tokenizer encode --tokenizer "$OUT/tokenizer.json" --text "$SAMPLE")
echo "ids:     $IDS"
echo "tokens:  $(echo $IDS | wc -w) for $(printf %s "$SAMPLE" | wc -c) bytes"
BACK=$($SS tokenizer decode --tokenizer "$OUT/tokenizer.json" $IDS)
echo "decoded: $BACK"
[ "$BACK" = "$SAMPLE" ] && echo "round trip: identical" || { echo "round trip FAILED"; exit 1; }

step "4. token shards: one document per verse, 5% held out for validation"
$SS data prepare --tokenizer "$OUT/tokenizer.json" --out "$OUT/shards" --doc-boundary line "$CORPUS"
$SS data inspect "$OUT/shards"

printf '\ndemo finished in %ss; outputs in %s/\n' "$(( $(date +%s) - t0 ))" "$OUT"
