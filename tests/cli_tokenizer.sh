#!/usr/bin/env bash
# CLI checks for `selfsup tokenizer encode|decode|info` with GPT-2's files,
# and `train --lowercase`.
# Prints TAP. Needs SELFSUP_DATA_MIRROR (the gpt2-tokenizer corpus).
set -u
BIN=${SELFSUP_BIN:-build/selfsup}
n=0; failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { # check NAME CONDITION-EXIT-STATUS DETAIL...
  local name=$1 rc=$2; shift 2
  if [ "$rc" -eq 0 ]; then ok "$name"; else not_ok "$name" "$@"; fi
}

echo "1..19"
if [ -z "${SELFSUP_DATA_MIRROR:-}" ]; then
  for i in $(seq 1 19); do echo "not ok $i - SELFSUP_DATA_MIRROR is not set: this test needs the" \
    "gpt2-tokenizer corpus (run with SELFSUP_DATA_MIRROR=../shared/data or after 'selfsup data get gpt2-tokenizer')"; done
  exit 1
fi
G=$SELFSUP_DATA_MIRROR/gpt2-tokenizer
if [ ! -r "$G/encoder.json" ] || [ ! -x "$BIN" ]; then
  for i in $(seq 1 19); do echo "not ok $i - need $G/encoder.json and $BIN (run make first)"; done
  exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/cli_tokenizer.XXXXXX")
trap 'rm -rf "$T"' EXIT

out=$("$BIN" tokenizer encode --tokenizer "$G" --text "Hello world" 2>&1)
check "encode --text 'Hello world' gives 15496 995" "$([ "$out" = "15496 995" ]; echo $?)" "got: $out"

printf 'First line, here.\n\nThird line: it'"'"'s 100%% done!\n' > "$T/in.txt"
"$BIN" tokenizer encode --tokenizer "$G" --lines "$T/in.txt" > "$T/lines.txt" 2>"$T/err"
check "--lines on a 3-line input gives 3 lines" "$([ "$(wc -l < "$T/lines.txt")" -eq 3 ]; echo $?)" \
  "$(cat "$T/lines.txt" "$T/err")"

check "--lines: an empty line gives an empty output line" "$([ -z "$(sed -n 2p "$T/lines.txt")" ]; echo $?)"

same=0
for k in 1 3; do
  want=$("$BIN" tokenizer encode --tokenizer "$G" --text "$(sed -n ${k}p "$T/in.txt")")
  [ "$want" = "$(sed -n ${k}p "$T/lines.txt")" ] || same=1
done
check "--lines output equals --text per line" "$same"

: > "$T/back.txt"
while IFS= read -r ids; do
  # ids as arguments; an empty line (no ids) through stdin instead
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    "$BIN" tokenizer decode --tokenizer "$G" $ids >> "$T/back.txt"
  else
    "$BIN" tokenizer decode --tokenizer "$G" < /dev/null >> "$T/back.txt"
  fi
  echo >> "$T/back.txt"
done < "$T/lines.txt"
check "decode of those ids gives the text back" "$(cmp -s "$T/in.txt" "$T/back.txt"; echo $?)" \
  "$(diff "$T/in.txt" "$T/back.txt" | head -5)"

"$BIN" tokenizer encode --tokenizer "$G" < "$T/in.txt" > "$T/whole.txt"
"$BIN" tokenizer decode --tokenizer "$G" < "$T/whole.txt" > "$T/whole_back.txt"
check "whole-input encode, decode from stdin round-trips" "$(cmp -s "$T/in.txt" "$T/whole_back.txt"; echo $?)"

err=$("$BIN" tokenizer decode --tokenizer "$G" 15496 99999999 2>&1 >/dev/null); rc=$?
check "decode of id 99999999 exits nonzero naming the id" \
  "$([ $rc -ne 0 ] && [[ $err == *99999999* ]]; echo $?)" "rc=$rc: $err"

err=$("$BIN" tokenizer decode --tokenizer "$G" 15496 abc 2>&1 >/dev/null); rc=$?
check "decode of a non-numeric id exits nonzero naming it" \
  "$([ $rc -ne 0 ] && [[ $err == *abc* ]]; echo $?)" "rc=$rc: $err"

err=$("$BIN" tokenizer encode --tokenizer "$T/no-such-tokenizer.json" --text hi 2>&1 >/dev/null); rc=$?
check "missing tokenizer file exits nonzero naming the file" \
  "$([ $rc -ne 0 ] && [[ $err == *no-such-tokenizer.json* ]]; echo $?)" "rc=$rc: $err"

printf '{"version": "1.0", "model": {"vocab": ' > "$T/bad.json"
err=$("$BIN" tokenizer encode --tokenizer "$T/bad.json" --text hi 2>&1 >/dev/null); rc=$?
check "malformed tokenizer.json exits nonzero" "$([ $rc -ne 0 ] && [[ $err == *bad.json* ]]; echo $?)" \
  "rc=$rc: $err"

out=$("$BIN" tokenizer encode --tokenizer "$G" --allow-special --text "a<|endoftext|>" 2>&1)
out2=$("$BIN" tokenizer encode --tokenizer "$G" --text "a<|endoftext|>" 2>&1)
check "--allow-special: <|endoftext|> is 50256 only when allowed" \
  "$([ "$out" = "64 50256" ] && [ "$out2" = "64 27 91 437 1659 5239 91 29" ]; echo $?)" "got: $out / $out2"

out=$("$BIN" tokenizer info --tokenizer "$G" 2>&1)
check "info shows vocab size, merges and <|endoftext|>" \
  "$([[ $out == *50257* && $out == *50000* && $out == *"50256  <|endoftext|>"* ]]; echo $?)" "$out"

rc=0
for sub in train encode decode info; do
  "$BIN" tokenizer $sub --help | grep -q "usage: selfsup tokenizer $sub" || rc=1
done
check "every subcommand has --help" "$rc"

head -c 300000 "$SELFSUP_DATA_MIRROR/gpt2-tokenizer/vectors.tsv" > "$T/v.txt"
cat "$T/v.txt" "$T/v.txt" "$T/v.txt" "$T/v.txt" "$T/v.txt" > "$T/big.txt"
a=$("$BIN" tokenizer encode --tokenizer "$G" --threads 1 "$T/big.txt" | md5sum)
b=$("$BIN" tokenizer encode --tokenizer "$G" --threads 3 "$T/big.txt" | md5sum)
check "--threads 3 gives the same ids as --threads 1" "$([ "$a" = "$b" ]; echo $?)"

# --lowercase: trained, saved in tokenizer.json, shown by info, applied by encode
for k in $(seq 1 50); do printf 'The QUICK Brown \xc3\x89cole, the quick brown \xc3\xa9cole!\n'; done > "$T/case.txt"
"$BIN" tokenizer train --vocab-size 300 --special-tokens '' --threads 1 --lowercase \
  --out "$T/lower.json" "$T/case.txt" > "$T/train.out" 2>&1; rc=$?
check "train --lowercase writes a Lowercase normalizer" \
  "$([ $rc -eq 0 ] && grep -q '"Lowercase"' "$T/lower.json"; echo $?)" "rc=$rc: $(cat "$T/train.out")"

out=$("$BIN" tokenizer info --tokenizer "$T/lower.json" 2>&1)
out2=$("$BIN" tokenizer info --tokenizer "$G" 2>&1)
check "info shows 'normalization: Lowercase' (and 'none' for GPT-2)" \
  "$([[ $out == *"normalization: Lowercase"* && $out2 == *"normalization: none"* ]]; echo $?)" "$out" "$out2"

a=$("$BIN" tokenizer encode --tokenizer "$T/lower.json" --text $'THE Quick \xc3\x89COLE' 2>&1)
b=$("$BIN" tokenizer encode --tokenizer "$T/lower.json" --text $'the quick \xc3\xa9cole' 2>&1)
# shellcheck disable=SC2086
back=$("$BIN" tokenizer decode --tokenizer "$T/lower.json" $a 2>&1)
check "a --lowercase tokenizer encodes upper case as lower case; decode gives lower case" \
  "$([ -n "$a" ] && [ "$a" = "$b" ] && [ "$back" = $'the quick \xc3\xa9cole' ]; echo $?)" "got: $a / $b / $back"

"$BIN" tokenizer train --vocab-size 300 --special-tokens '' --threads 1 --normalize nfc --lowercase \
  --out "$T/nfc_lower.json" "$T/case.txt" > "$T/train.out" 2>&1; rc=$?
out=$("$BIN" tokenizer info --tokenizer "$T/nfc_lower.json" 2>&1)
check "--normalize nfc --lowercase: a Sequence normalizer, info shows NFC+Lowercase" \
  "$([ $rc -eq 0 ] && grep -q '"Sequence"' "$T/nfc_lower.json" && [[ $out == *"normalization: NFC+Lowercase"* ]]; echo $?)" \
  "rc=$rc: $(cat "$T/train.out")" "$out"

out=$("$BIN" tokenizer train --help 2>&1)
check "train --help documents --lowercase as not reversible" \
  "$([[ $out == *--lowercase* && $out == *"Not reversible"* ]]; echo $?)" "$out"

exit $failed
