#!/usr/bin/env bash
# `selfsup export --format gguf`, verified by llama.cpp itself: a small
# decoder trained on tinyshakespeare is exported in f32, f16, bf16 and q8_0;
# llama.cpp (the npm package node-llama-cpp, pinned, installed once into
# .cache/npm; tests/llama_setup.sh) loads each file, tokenizes 1,000 lines
# exactly as selfsup does, and continues a prompt greedily for 64 tokens:
# in f32 the same text as `selfsup generate --temperature 0`; the other
# types' agreement (leading tokens equal to f32's) is reported. Encoders and
# bad options are refused with a message. Without Node.js >= 20 or the npm
# registry the llama.cpp cases fail, saying how to install the package.
set -u
source "$(dirname "$0")/tap.sh"
source "$(dirname "$0")/llama_setup.sh"
tap_plan 10
tap_needs tinyshakespeare input.txt cli-export

# ---- the model: vocabulary 1000, 2 layers of width 64 (rows a multiple of 32,
# so q8_0 applies to every matrix), one document (no <|endoftext|> to stop at);
# one thread: on a shared machine two spin-waiting threads run slower
head -c 300000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 1000 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary file "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" pretrain --objective clm --data "$TMP/shards" --out "$TMP/run" --layers 2 --d-model 64 --heads 2 --seq 64 \
    --max-seq 128 --batch 16 --steps 400 --lr 5e-3 --eval-every 0 --threads 1 >/dev/null 2>&1 ||
  bail "could not train a small decoder"

exported=1
for d in f32 f16 bf16 q8_0; do
  "$SS" export --format gguf "$TMP/run" "$TMP/m_$d.gguf" --dtype "$d" >"$TMP/x_$d" 2>&1 || exported=0
done
header_ok() { [ "$(head -c 4 "$1")" = GGUF ] && [ "$(od -An -tu4 -j4 -N4 "$1" | tr -d ' ')" = 3 ]; }
exports_ok() {
  local f32 f16 q8
  f32=$(stat -c %s "$TMP/m_f32.gguf") && f16=$(stat -c %s "$TMP/m_f16.gguf") && q8=$(stat -c %s "$TMP/m_q8_0.gguf") &&
    [ $exported = 1 ] && grep -q 'architecture gpt2' "$TMP/x_f32" && header_ok "$TMP/m_f32.gguf" &&
    header_ok "$TMP/m_q8_0.gguf" && [ $((f16 * 10)) -lt $((f32 * 6)) ] && [ "$q8" -lt "$f16" ] &&
    [ "$(stat -c %s "$TMP/m_bf16.gguf")" = "$f16" ]
}
check "export writes GGUF v3 files in f32, f16, bf16 and q8_0 (f16 about half of f32, q8_0 smaller still)" exports_ok

# ---- llama.cpp ----
if ! llama_setup; then
  for name in "tokenizes 1,000 lines" "f32 greedy continuation" "f16, bf16, q8_0 load" "bf16, q8_0 agreement" \
    "a model without biases"; do
    notok "llama.cpp: $name (node-llama-cpp is not available)" "$LLAMA_SETUP_ERROR"
  done
else
  LL=(node "$(dirname "$0")/llama_check.mjs")
  # 1,000 lines: 40 made to exercise the pre-tokenizer (contractions, numbers,
  # runs of spaces and trailing whitespace, non-ASCII letters, special-token
  # text as plain text), then unseen tinyshakespeare lines
  {
    printf '%s\n' "Hello, world! It's 2024 - don't you think?" "  two leading spaces" "trailing spaces   " \
      "tabs	and	tabs" "multiple     spaces between" "naïve café résumé" "Ελληνικά κείμενα" "日本語のテキスト" \
      "emoji 😀🎉 test" "Привет, мир" "<|endoftext|> as text" "[MASK] [CLS] [SEP] [PAD] [UNK]" \
      "numbers 12345 3.14159 1,000,000" "'s 't 're 've 'm 'll 'd" "I'M SHOUTING, ISN'T IT" "x's y'S z'LL" \
      "a b non-breaking" " em space" "mixed123abc456" "----====>>>>" '"quoted" (paren) [bracket] {brace}' \
      "" "    " "ROMEO: wherefore art thou" "  KING HENRY VI:  " "What, ho! apothecary!" "e.g. i.e. etc." \
      "a  b   c    d" "100% sure, 50/50" "C++ && C# || Rust" "über straße" "ﬁ ligature ½" "x\\y/z" \
      "tab at end	" "0x1F 1e-5 -3" "Hello​world (zero-width space)" "!!!???" "'quoted'" "don't" "end."
    tail -c +300001 "$MIRROR/tinyshakespeare/input.txt" | grep -v '^$' | head -n 960
  } >"$TMP/lines.txt"
  printf 'ROMEO:\nBut soft, what light' >"$TMP/prompt.txt"
  "$SS" tokenizer encode --tokenizer "$TMP/run/tokenizer.json" --lines "$TMP/lines.txt" >"$TMP/ss_tok" 2>&1
  "${LL[@]}" tokenize "$TMP/m_f32.gguf" "$TMP/lines.txt" >"$TMP/ll_tok" 2>"$TMP/ll_tok.err"
  tok_ok() {
    [ "$(wc -l <"$TMP/lines.txt")" = 1000 ] && [ "$(wc -l <"$TMP/ll_tok")" = 1000 ] && cmp -s "$TMP/ss_tok" "$TMP/ll_tok"
  }
  if tok_ok; then ok "llama.cpp loads the f32 file and tokenizes 1,000 lines exactly as selfsup"
  else notok "llama.cpp loads the f32 file and tokenizes 1,000 lines exactly as selfsup" \
    "$(tail -3 "$TMP/ll_tok.err")" "$(diff "$TMP/ss_tok" "$TMP/ll_tok" | head -4)"; fi

  "$SS" generate --model "$TMP/run" --prompt-file "$TMP/prompt.txt" --temperature 0 --max-new-tokens 64 --threads 1 \
    >"$TMP/ss_gen" 2>&1
  for d in f32 f16 bf16 q8_0; do
    "${LL[@]}" generate "$TMP/m_$d.gguf" "$TMP/prompt.txt" 64 1 >"$TMP/ll_$d" 2>"$TMP/ll_$d.err"
    sed -n 's/^generated: //p' "$TMP/ll_$d" >"$TMP/ids_$d"
    # shellcheck disable=SC2046
    { "$SS" tokenizer decode --tokenizer "$TMP/run/tokenizer.json" $(cat "$TMP/ids_$d"); echo; } >"$TMP/text_$d" 2>&1
  done
  gen_ok() {
    [ "$(wc -w <"$TMP/ids_f32")" = 64 ] && cmp -s "$TMP/text_f32" "$TMP/ss_gen" &&
      [ "$(sed -n 's/^prompt: //p' "$TMP/ll_f32")" = "$("$SS" tokenizer encode --tokenizer "$TMP/run/tokenizer.json" "$TMP/prompt.txt")" ]
  }
  if gen_ok; then ok "f32: llama.cpp's greedy 64-token continuation is selfsup generate's text (same prompt ids)"
  else notok "f32: llama.cpp's greedy 64-token continuation is selfsup generate's text (same prompt ids)" \
    "selfsup:   $(head -c 200 "$TMP/ss_gen" | tr '\n' '|')" "llama.cpp: $(head -c 200 "$TMP/text_f32" | tr '\n' '|')" \
    "$(tail -2 "$TMP/ll_f32.err")"; fi
  # agreement of the other types: leading generated tokens equal to f32's
  agree() { awk 'NR == FNR { for (i = 1; i <= NF; i++) a[i] = $i; next }
                 { for (i = 1; i <= NF && $i == a[i]; i++); print i - 1 }' "$TMP/ids_f32" "$TMP/ids_$1"; }
  for d in f16 bf16 q8_0; do echo "# $d: $(agree "$d")/64 leading tokens agree with f32 (= selfsup)"; done
  check "f16, bf16 and q8_0 files load and generate 64 tokens" \
    bash -c "for d in f16 bf16 q8_0; do [ \$(wc -w <'$TMP/ids_'\$d) = 64 ] || exit 1; done"
  check "bf16 and q8_0 agree with f32 on at least the first 8 tokens" \
    bash -c "[ $(agree bf16) -ge 8 ] && [ $(agree q8_0) -ge 8 ]"

  # a decoder without biases (pretrain --no-bias): GPT-2's biases are written
  # as zeros, which llama.cpp's gpt2 architecture requires
  "$SS" pretrain --objective clm --data "$TMP/shards" --out "$TMP/nobias" --layers 2 --d-model 64 --heads 2 --seq 64 \
    --max-seq 128 --batch 16 --steps 400 --lr 5e-3 --eval-every 0 --threads 1 --no-bias >/dev/null 2>&1 &&
    "$SS" export --format gguf "$TMP/nobias" "$TMP/nb.gguf" >"$TMP/x_nb" 2>&1
  "$SS" generate --model "$TMP/nobias" --prompt-file "$TMP/prompt.txt" --temperature 0 --max-new-tokens 64 \
    --threads 1 >"$TMP/ss_nb" 2>&1
  "${LL[@]}" generate "$TMP/nb.gguf" "$TMP/prompt.txt" 64 1 >"$TMP/ll_nb" 2>"$TMP/ll_nb.err"
  # shellcheck disable=SC2046
  { "$SS" tokenizer decode --tokenizer "$TMP/nobias/tokenizer.json" $(sed -n 's/^generated: //p' "$TMP/ll_nb"); echo; } \
    >"$TMP/text_nb" 2>&1
  # (at least 4 distinct token ids: a comparison a misplaced bias would change)
  nb_ok() {
    grep -q '"bias":[[:space:]]*false' "$TMP/nobias/config.json" && cmp -s "$TMP/text_nb" "$TMP/ss_nb" &&
      [ "$(sed -n 's/^generated: //p' "$TMP/ll_nb" | tr ' ' '\n' | sort -u | wc -l)" -ge 4 ]
  }
  if nb_ok; then ok "a model without biases (--no-bias): llama.cpp's greedy continuation of its f32 file is selfsup's"
  else notok "a model without biases (--no-bias): llama.cpp's greedy continuation of its f32 file is selfsup's" \
    "selfsup:   $(head -c 200 "$TMP/ss_nb" | tr '\n' '|')" "llama.cpp: $(head -c 200 "$TMP/text_nb" | tr '\n' '|')" \
    "$(tail -2 "$TMP/ll_nb.err")" "$(tail -2 "$TMP/x_nb")"; fi
fi

# ---- refusals ----
"$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards_enc" --doc-boundary blank "$TMP/text.txt" >/dev/null 2>&1
"$SS" pretrain --objective mlm --data "$TMP/shards_enc" --out "$TMP/enc" --layers 1 --d-model 32 --heads 1 --seq 32 \
  --steps 2 --eval-every 0 --threads 1 >/dev/null 2>&1
"$SS" export --format gguf "$TMP/enc" "$TMP/enc.gguf" >"$TMP/e1" 2>&1
check "an encoder is refused: llama.cpp's gpt2 architecture runs decoders" \
  bash -c "[ $? -ne 0 ] && grep -q 'encoder' '$TMP/e1' && grep -q 'decoder' '$TMP/e1' && [ ! -e '$TMP/enc.gguf' ]"
"$SS" export --format gguf "$TMP/run" "$TMP/x.gguf" --dtype q4_0 >"$TMP/e2" 2>&1
check "an unknown --dtype is refused, naming the choices" bash -c "[ $? -eq 2 ] && grep -q 'q8_0' '$TMP/e2'"
"$SS" export --format onnx "$TMP/run" "$TMP/x.onnx" >"$TMP/e3" 2>&1
r3=$?
"$SS" export --format gguf "$TMP/run" >"$TMP/e4" 2>&1
check "another --format, or a missing OUT, is refused" \
  bash -c "[ $r3 -eq 2 ] && grep -q 'gguf' '$TMP/e3' && [ $? -ne 0 ] && grep -q 'OUT' '$TMP/e4'"
"$SS" export --format gguf "$TMP/nothing" "$TMP/x.gguf" >"$TMP/e5" 2>&1
check "a missing run directory is a message, not a crash" bash -c "[ $? -eq 1 ] && grep -q 'nothing' '$TMP/e5'"
