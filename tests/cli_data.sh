#!/usr/bin/env bash
# `selfsup data prepare` and `selfsup data inspect` end to end, printing TAP.
# Uses GPT-2's tokenizer files from $SELFSUP_DATA_MIRROR/gpt2-tokenizer, or
# fetched into corpora/cache/ without a mirror.
# Run from the repository root after `make`.
set -u
SELFSUP=${SELFSUP:-build/selfsup}
MIRROR=${SELFSUP_DATA_MIRROR:-}
source "$(dirname "$0")/tap.sh"
tap_plan 14

[ -x "$SELFSUP" ] || bail "$SELFSUP not built (run make)"
if [ -n "$MIRROR" ] && [ -f "$MIRROR/gpt2-tokenizer/encoder.json" ]; then
  TOK="$MIRROR/gpt2-tokenizer"
else # no mirror: fetch the two published files (not vectors.tsv, which only a mirror has)
  TOK=$("$SELFSUP" data get gpt2-tokenizer encoder.json vocab.bpe) ||
    bail "cannot get GPT-2's encoder.json and vocab.bpe: set SELFSUP_DATA_MIRROR to the data mirror (a directory of the data sets laid out NAME/FILE, e.g. ../shared/data) or let 'selfsup data get gpt2-tokenizer encoder.json vocab.bpe' download them"
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-cli-data.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# 300 one-line documents, one of them zstd-compressed in a second file.
for i in $(seq 1 200); do echo "Document $i says hello to the shard writer."; done >"$TMP/a.txt"
for i in $(seq 201 300); do echo "Line $i: zstd input works too."; done | zstd -q -o "$TMP/b.txt.zst"

OUT="$TMP/out"
"$SELFSUP" data prepare --tokenizer "$TOK" --out "$OUT" --val-fraction 0.1 --seed 3 \
  --shard-tokens 1000 --threads 2 "$TMP/a.txt" "$TMP/b.txt.zst" >"$TMP/prep.log" 2>&1
rc=$?
check "prepare exits 0" [ $rc -eq 0 ]
check "prepare reports docs and tokens per split" grep -qE '^train +[0-9]+ docs +[0-9]+ tokens' "$TMP/prep.log"
check "meta.json, tokenizer.json and the first shards exist" \
  test -s "$OUT/meta.json" -a -s "$OUT/tokenizer.json" -a -s "$OUT/train-00000.shard" -a -s "$OUT/val-00000.shard"
check "small --shard-tokens gives several train shards" test -s "$OUT/train-00002.shard"

# meta.json: 300 docs in all, and the shard list matches the files on disk.
meta_ok() {
  python3 - "$OUT" <<'EOF'
import json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "meta.json")))
s = m["splits"]
assert m["format"] == "selfsup-shards" and m["vocab_size"] == 50257 and m["separator_id"] == 50256
assert s["train"]["docs"] + s["val"]["docs"] == 300, s
assert s["val"]["docs"] > 0
names = sorted(s["train"]["shards"] + s["val"]["shards"])
assert names == sorted(f for f in os.listdir(d) if f.endswith(".shard")), names
EOF
}
check "meta.json counts 300 docs and lists exactly the shards on disk" meta_ok

"$SELFSUP" data inspect "$OUT" >"$TMP/inspect.log" 2>&1
check "inspect of the directory exits 0" [ $? -eq 0 ]
check "inspect prints verified for every shard" \
  [ "$(grep -c ': verified$' "$TMP/inspect.log")" -eq "$(ls "$OUT"/*.shard | wc -l)" ]

# A single shard file.
"$SELFSUP" data inspect "$OUT/train-00000.shard" >/dev/null 2>&1
check "inspect of one shard exits 0" [ $? -eq 0 ]

# A corrupted copy: one payload byte flipped.
cp "$OUT/train-00001.shard" "$TMP/bad.shard"
python3 -c '
import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read())
b[len(b) // 2 + 32] ^= 0x40; open(p, "wb").write(b)' "$TMP/bad.shard"
"$SELFSUP" data inspect "$TMP/bad.shard" >"$TMP/bad.out" 2>"$TMP/bad.err"
check "inspect of a corrupted shard exits nonzero" [ $? -ne 0 ]
check "the error names the corrupted file" grep -q "selfsup data inspect: .*$TMP/bad.shard" "$TMP/bad.err"

# A truncated shard inside the prepared directory fails the directory check.
head -c 70 "$OUT/val-00000.shard" >"$TMP/trunc" && mv "$TMP/trunc" "$OUT/val-00000.shard"
"$SELFSUP" data inspect "$OUT" >/dev/null 2>"$TMP/dir.err"
check "inspect of a directory with a truncated shard exits nonzero" [ $? -ne 0 ]
check "... naming that shard" grep -q "val-00000.shard.*truncated" "$TMP/dir.err"

# Bad arguments.
"$SELFSUP" data prepare --tokenizer "$TOK" --out "$TMP/o2" --separator '<|nope|>' "$TMP/a.txt" \
  >/dev/null 2>"$TMP/sep.err"
check "a separator the tokenizer lacks is an error naming it" \
  bash -c "[ $? -ne 0 ] && grep -q '<|nope|>' '$TMP/sep.err'"
"$SELFSUP" data prepare --tokenizer "$TOK" --out "$TMP/o3" --doc-boundary paragraph "$TMP/a.txt" \
  >/dev/null 2>"$TMP/b.err"
check "an unknown --doc-boundary is rejected" bash -c "[ $? -eq 2 ] && grep -q 'doc-boundary' '$TMP/b.err'"
