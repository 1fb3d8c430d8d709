#!/usr/bin/env bash
# `selfsup generate` through the CLI, printing TAP: greedy is deterministic and
# the KV cache gives the same text as full recomputation; seeds reproduce;
# the sampling defaults (temperature 0.8, top-k 40); --stop, --echo,
# --num-samples and its separators, --interactive (a prompt marker on a
# terminal only), the max-length message, --sliding; short options and
# --version; an encoder is pointed to fill-mask; bad options are rejected.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 21
tap_needs tinyshakespeare input.txt cli-generate

head -c 150000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 400 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary blank "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" pretrain --objective clm --data "$TMP/shards" --out "$TMP/run" --layers 2 --d-model 48 --heads 2 --seq 64 \
    --max-seq 64 --batch 8 --steps 150 --lr 3e-3 --eval-every 0 --threads 2 >/dev/null 2>&1 ||
  bail "could not train a small decoder"
G=("$SS" generate --model "$TMP/run" --threads 2)

"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 >"$TMP/g1" 2>&1
"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 >"$TMP/g2" 2>&1
check "greedy generation exits 0 and is deterministic" bash -c "[ -s '$TMP/g1' ] && cmp -s '$TMP/g1' '$TMP/g2'"
# In fp32: with bf16 products (what --precision auto takes on some CPUs) the
# full pass runs attention in bf16 tiles and a decoding step in fp32, so a
# sampled token can flip where the draw falls near a boundary of the
# distribution (seen with 3 of 4 seeds on this model); test_infer_kvcache
# holds the fp32 logits of the two paths to 5e-6.
F=(--precision fp32)
"${G[@]}" "${F[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 >"$TMP/g4" 2>&1
"${G[@]}" "${F[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 --no-cache >"$TMP/g3" 2>&1
"${G[@]}" "${F[@]}" --prompt "ROMEO:" --seed 3 --max-new-tokens 40 >"$TMP/c1" 2>&1
"${G[@]}" "${F[@]}" --prompt "ROMEO:" --seed 3 --max-new-tokens 40 --no-cache >"$TMP/c2" 2>&1
check "the KV cache gives the same text as full recomputation (greedy and sampled; fp32)" \
  bash -c "cmp -s '$TMP/g4' '$TMP/g3' && cmp -s '$TMP/c1' '$TMP/c2' && [ \$(tr -d '\n' <'$TMP/c1' | wc -c) -gt 10 ]"
# fp32 too: --precision auto decides by timing the backends, and on a loaded
# machine two runs can decide differently (seen once under 3 jobs on 2 cores)
"${G[@]}" "${F[@]}" --prompt "ROMEO:" --seed 5 --top-k 20 --top-p 0.9 --max-new-tokens 30 >"$TMP/s1" 2>&1
"${G[@]}" "${F[@]}" --prompt "ROMEO:" --seed 5 --top-k 20 --top-p 0.9 --max-new-tokens 30 >"$TMP/s2" 2>&1
"${G[@]}" "${F[@]}" --prompt "ROMEO:" --seed 6 --top-k 20 --top-p 0.9 --max-new-tokens 30 >"$TMP/s3" 2>&1
check "the same seed gives the same text, another seed another text" \
  bash -c "cmp -s '$TMP/s1' '$TMP/s2' && ! cmp -s '$TMP/s1' '$TMP/s3'"
"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 --stats >"$TMP/st" 2>"$TMP/st.err"
check "--stats reports prompt and generation speed on stderr" grep -qE '^prompt: [0-9]+ tokens in .*generated: [0-9]+ tokens' "$TMP/st.err"
# --gemm names one backend without the probe; the OpenBLAS reference path
# decodes the same greedy text (fp32 both; a near-tie could differ, not at
# these logit gaps); a bad name is an error naming --gemm.
"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 --stats --gemm openblas-f32 >"$TMP/gb" 2>"$TMP/gb.err"
"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 --precision fp32 >"$TMP/gf" 2>/dev/null
check "--gemm openblas-f32: says so, no probe, and the greedy text of --precision fp32" \
  bash -c "grep -q 'through openblas-f32 (named by --gemm)' '$TMP/gb.err' && ! grep -q 'GEMM peaks' '$TMP/gb.err' &&
           [ -s '$TMP/gb' ] && cmp -s '$TMP/gb' '$TMP/gf'"
"${G[@]}" --prompt "ROMEO:" --gemm bogus >"$TMP/gx" 2>&1
rc=$?
check "--gemm bogus: exit 2 naming --gemm and the backends" \
  bash -c "[ $rc -eq 2 ] && grep -q -- '--gemm: .*bogus.*openblas-f32' '$TMP/gx'"
stop=$(tr -d '\n' <"$TMP/s1" | head -c 12 | tail -c 3)
"${G[@]}" --prompt "ROMEO:" --seed 5 --top-k 20 --top-p 0.9 --max-new-tokens 30 --stop "$stop" >"$TMP/g4" 2>&1
stop_ok() { [ -n "$stop" ] && ! grep -qF -- "$stop" "$TMP/g4" && [ "$(wc -c <"$TMP/g4")" -lt "$(wc -c <"$TMP/s1")" ]; }
check "--stop ends the text before the stop string" stop_ok
"${G[@]}" --prompt "ROMEO:" --seed 9 --max-new-tokens 30 >"$TMP/d1" 2>/dev/null
"${G[@]}" --prompt "ROMEO:" --seed 9 --max-new-tokens 30 --temperature 0.8 --top-k 40 >"$TMP/d2" 2>/dev/null
check "the sampling defaults are temperature 0.8 and top-k 40 (not greedy), as --help says" bash -c \
  "cmp -s '$TMP/d1' '$TMP/d2' && ! cmp -s '$TMP/d1' '$TMP/g1' &&
   '$SS' generate --help | grep -q 'temperature 0.8, top-k 40'"
"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 30 --echo >"$TMP/echo" 2>&1
check "--echo prints the prompt, then the same continuation" cmp -s "$TMP/echo" <(printf 'ROMEO:'; cat "$TMP/g1")
"${G[@]}" --prompt "ROMEO:" --num-samples 3 --max-new-tokens 10 >"$TMP/n3" 2>/dev/null
check "--num-samples 3 prints three samples, each after a separator line" bash -c \
  "[ \"\$(grep -- '^---------- sample' '$TMP/n3')\" = \"\$(printf -- '---------- sample %d/3 ----------\n' 1 2 3)\" ] &&
   [ \$(grep -vc -- '^---------- sample' '$TMP/n3') -ge 3 ]"
printf 'ROMEO:\nJULIET:\n' | "${G[@]}" --interactive --temperature 0 --max-new-tokens 8 >"$TMP/int" 2>"$TMP/int.err"
{ "${G[@]}" -p "ROMEO:" --temperature 0 -n 8 && "${G[@]}" -p "JULIET:" --temperature 0 -n 8; } >"$TMP/int.ref" 2>/dev/null
check "--interactive answers each stdin line; stdout holds only the answers (no prompt marker)" \
  bash -c "cmp -s '$TMP/int' '$TMP/int.ref' && ! grep -q '> ' '$TMP/int' '$TMP/int.err'"
printf 'ROMEO:\n' | script -qec "'$SS' generate --model '$TMP/run' --threads 2 --interactive --temperature 0 -n 8" \
  /dev/null >"$TMP/tty" 2>&1
check "--interactive on a terminal shows a '> ' prompt marker" bash -c \
  "[ \$(grep -o '> ' '$TMP/tty' | wc -l) -ge 2 ] && grep -qF -- \"\$(awk 'NF { print; exit }' '$TMP/int.ref')\" '$TMP/tty'"
"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 200 >"$TMP/long" 2>&1
check "reaching the model's maximum length is said" grep -q "maximum length" "$TMP/long"
"${G[@]}" --prompt "ROMEO:" --temperature 0 --max-new-tokens 100 --sliding >"$TMP/sl" 2>&1
check "--sliding generates past the window" bash -c "[ \$? -eq 0 ] && ! grep -q 'maximum length' '$TMP/sl'"
"$SS" pretrain --objective mlm --data "$TMP/shards" --out "$TMP/enc" --layers 1 --d-model 16 --heads 1 --seq 32 \
  --steps 2 --eval-every 0 >/dev/null 2>&1
"$SS" generate --model "$TMP/enc" --prompt "x" >"$TMP/e1" 2>&1
check "generate on an encoder points to fill-mask" bash -c "[ $? -ne 0 ] && grep -q 'fill-mask' '$TMP/e1'"
"${G[@]}" --prompt "x" --top-p 0 >"$TMP/e2" 2>&1
check "an invalid --top-p is rejected" bash -c "[ $? -ne 0 ] && grep -q 'top-p' '$TMP/e2'"
"${G[@]}" >"$TMP/e3" 2>&1
check "no prompt is a clear error" bash -c "[ $? -ne 0 ] && grep -q 'prompt' '$TMP/e3'"

"$SS" generate -m "$TMP/run" -t 2 -p "ROMEO:" -n 30 --temperature 0 >"$TMP/sh1" 2>&1
"$SS" generate -m="$TMP/run" -t=2 -p="ROMEO:" -n=30 --temperature 0 >"$TMP/sh2" 2>&1
check "short options -m -p -n -t (and -x=VALUE) mean --model --prompt --max-new-tokens --threads" \
  bash -c "cmp -s '$TMP/sh1' '$TMP/g1' && cmp -s '$TMP/sh2' '$TMP/g1'"
"${G[@]}" -p "x" -q >"$TMP/e4" 2>&1
check "an unknown short option is reported like an unknown long one" \
  bash -c "[ $? -eq 2 ] && grep -q 'unknown option -q' '$TMP/e4'"
"${G[@]}" -p "-ROMEO" --seed -1 -n 5 >"$TMP/neg" 2>&1
check "a prompt starting with '-' and a negative --seed are values, not options" \
  bash -c "[ $? -eq 0 ] && ! grep -q 'unknown option' '$TMP/neg'"
"$SS" --version >"$TMP/ver" 2>&1
check "--version prints the version" bash -c "[ $? -eq 0 ] && grep -qE '^selfsup [0-9]+\.[0-9]+\.[0-9]+' '$TMP/ver'"
