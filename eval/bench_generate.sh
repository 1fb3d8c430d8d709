#!/usr/bin/env bash
# make bench-generate: batch-1 greedy text generation speed of selfsup
# (`selfsup generate --stats`, with its KV cache and with --no-cache) against
# the PyTorch reference decoder (eval/torch_generate_bench.py: a KV cache
# written on the reference model's weights, and full recompute), on the same
# model: a config-S decoder (L=4 C=256 NH=4 F=1024, V=8192, maxT=512) from a
# short pretrain on tinyshakespeare, so the weights are real selfsup output.
# Same prompt (16-ish tokens of tinyshakespeare), NEW_TOKENS new tokens
# (default 256), temperature 0, same thread count for both implementations,
# each thread count of THREADS_LIST (default "1 2"; per-token work is small, so
# one thread may win), RUNS alternating runs (default 3), medians. selfsup's
# cached run generates twice in one process and the second (warm) is timed;
# PyTorch times its KV cache after one warm-up generation in the process.
# Targets: selfsup cache >= 10x selfsup --no-cache, and >= 2x PyTorch KV cache.
# Beside them llama.cpp on the same model (`selfsup export --format gguf`, f32
# and bf16 files), through the npm package node-llama-cpp (pinned, installed
# into .cache/npm by tests/llama_setup.sh; its per-token JavaScript overhead
# included), same prompt ids, same threads, greedy, KV cache in f32 as
# selfsup's; tokens/s counted as selfsup's --stats does (tests/llama_check.mjs).
# selfsup runs in fp32 (--precision fp32) and in bf16 (--precision bf16: bf16
# weights, fp32 accumulation). Goal: selfsup at least as fast as llama.cpp,
# f32 against f32 and bf16 against bf16.
# Before/after the GEMM layer (issue 13): selfsup also decodes on the OpenBLAS
# path (--gemm openblas-f32: sgemm and sgemv, the code before oneDNN and
# selfsup's own one-row kernels), and `selfsup classify` runs on the 872
# SST-2 dev sentences with a config-S classifier (the decoder, on the
# benchmark's tokenizer, which has no [CLS]; a short fine-tune from random
# weights: speed does not depend on what it learned)
# on the OpenBLAS path, --precision fp32 and --precision bf16; sentences/s
# count the classify call minus the same call on no input (load and probe).
# Also checked: cache and --no-cache print the same text, and PyTorch's greedy
# tokens decode to the same text (informational: a near-tie can flip in fp32).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}; THREADS_LIST=${THREADS_LIST:-"1 2"}; NEW_TOKENS=${NEW_TOKENS:-256}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-20}; B=${B:-build}
W=eval/work/generate
OUT=$W/bench_generate.jsonl
mkdir -p "$W"
: >"$OUT"
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
SS=$B/selfsup
have_generate=1
"$SS" generate --help >/dev/null 2>&1 || have_generate=0

# ---- the model: tokenizer (vocab 8192), shards, 20-step config-S pretrain ----
if [ -z "${SELFSUP_DATA_MIRROR:-}" ] && [ -d ../shared/data/tinyshakespeare ]; then
  export SELFSUP_DATA_MIRROR=../shared/data
fi
DIR=$("$SS" data get tinyshakespeare)
# Documents are separated by <|doc|>, not <|endoftext|>: generate stops at
# <|endoftext|>, which a barely trained model would otherwise predict early
# and often, and every run must produce all NEW_TOKENS tokens.
"$SS" tokenizer train --vocab-size 8192 --special-tokens '<|endoftext|>,<|doc|>' \
  --out "$W/tok.json" "$DIR/input.txt" >/dev/null
"$SS" data prepare --tokenizer "$W/tok.json" --out "$W/shards" --doc-boundary blank \
  --separator '<|doc|>' --val-fraction 0.1 "$DIR/input.txt" >/dev/null
"$SS" pretrain --objective clm --data "$W/shards" --out "$W/run" --overwrite --preset small \
  --seq 128 --batch 16 --steps "$PRETRAIN_STEPS" --threads 2 --eval-every 0 --save-every 0 \
  --log-every "$PRETRAIN_STEPS" >/dev/null
RUN=$W/run
echo "# model: $RUN: $(tr -d '\n\t' <"$RUN/config.json")"

# ---- llama.cpp: the same model as GGUF files ----
source tests/llama_setup.sh
have_llama=0
if [ "$have_generate" = 1 ] && llama_setup; then
  for dt in f32 bf16; do "$SS" export --format gguf "$RUN" "$W/model_$dt.gguf" --dtype "$dt" >/dev/null; done
  have_llama=1
  echo "# llama.cpp: node-llama-cpp $LLAMA_NPM_VERSION ($NODE_LLAMA_CPP_DIR)"
else
  echo "# llama.cpp side skipped: ${LLAMA_SETUP_ERROR:-no selfsup export}"
fi

# ---- the prompt: the first 16 tokens of tinyshakespeare, as text ----
TOK=$RUN/tokenizer.json
ids=$(head -c 400 "$DIR/input.txt" | "$SS" tokenizer encode --tokenizer "$TOK" | cut -d' ' -f1-16)
# shellcheck disable=SC2086
"$SS" tokenizer decode --tokenizer "$TOK" $ids >"$W/prompt.txt"
PROMPT_IDS=$("$SS" tokenizer encode --tokenizer "$TOK" "$W/prompt.txt")
NP=$(wc -w <<<"$PROMPT_IDS")
echo "# prompt: $NP tokens: $(tr '\n' '|' <"$W/prompt.txt")"
echo "# machine: $(nproc) cores; threads ${THREADS_LIST}; $RUNS alternating runs; $NEW_TOKENS new tokens, greedy"
[ "$have_generate" = 1 ] || echo "# $SS has no 'generate' command: PyTorch side only"

# selfsup_run MODE THREADS: one generation (cache: 2 samples, the 2nd timed
# warm), its stats line as a JSON row in $OUT, its text in $W/ss_MODE_THREADS.txt
# Modes: kv_cache and full in fp32 (--precision fp32), kv_cache_bf16 with
# --precision bf16 (bf16 weights and inputs, fp32 accumulation).
selfsup_run() {
  local mode=$1 th=$2 flags=(--num-samples 2 --precision fp32) line
  [ "$mode" = full ] && flags=(--no-cache --precision fp32)
  [ "$mode" = kv_cache_bf16 ] && flags=(--num-samples 2 --precision bf16)
  [ "$mode" = kv_cache_openblas ] && flags=(--num-samples 2 --gemm openblas-f32)
  if ! "$SS" generate --model "$RUN" --prompt-file "$W/prompt.txt" --max-new-tokens "$NEW_TOKENS" \
      --temperature 0 --stats --threads "$th" "${flags[@]}" >"$W/ss_${mode}_$th.txt" 2>"$W/ss_err.txt"; then
    echo "# selfsup generate ($mode, $th threads) failed: $(tail -1 "$W/ss_err.txt")"; return 0
  fi
  line=$(grep -E '^prompt: ' "$W/ss_err.txt" | tail -1 || true)
  if [ -z "$line" ]; then echo "# selfsup generate ($mode, $th threads): no stats line"; return 0; fi
  sed -E 's/^prompt: ([0-9]+) tokens in ([0-9.]+) s \(([0-9.]+) tokens\/s\); generated: ([0-9]+) tokens in ([0-9.]+) s \(([0-9.]+) tokens\/s\).*/{"impl":"selfsup","mode":"'"$mode"'","threads":'"$th"',"prompt_tokens":\1,"prompt_s":\2,"prompt_tokens_per_s":\3,"new_tokens":\4,"generate_s":\5,"new_tokens_per_s":\6}/' \
    <<<"$line" | tee -a "$OUT"
}

for r in $(seq "$RUNS"); do
  for th in $THREADS_LIST; do
    if [ "$have_generate" = 1 ]; then
      selfsup_run kv_cache_openblas "$th"
      selfsup_run kv_cache "$th"
      selfsup_run kv_cache_bf16 "$th"
      selfsup_run full "$th"
    fi
    /usr/bin/python3 eval/torch_generate_bench.py --model "$RUN" --prompt-ids "$PROMPT_IDS" \
      --new-tokens "$NEW_TOKENS" --threads "$th" --modes kv_cache,full --warmup 1 --full-warmup 0 \
      --runs 1 >"$W/torch_$th.out" || { cat "$W/torch_$th.out"; exit 1; }
    grep -E '^\{' "$W/torch_$th.out" | tee -a "$OUT"
    if [ "$r" = 1 ]; then grep -E '^# (torch|BLAS|check)' "$W/torch_$th.out"; fi
    if [ "$have_llama" = 1 ]; then
      for dt in f32 bf16; do
        node tests/llama_check.mjs bench "$W/model_$dt.gguf" "$W/prompt.txt" "$NEW_TOKENS" "$th" 1 2>"$W/llama_err.txt" |
          sed 's/^{"impl":"llama.cpp",/{"impl":"llama.cpp","mode":"'"$dt"'",/' | tee -a "$OUT" ||
          echo "# llama.cpp ($dt, $th threads) failed: $(tail -1 "$W/llama_err.txt")"
      done
    fi
  done
done

# ---- classify: sentences/s of a config-S classifier ----
if [ "$have_generate" = 1 ]; then
  SST=$("$SS" data get sst2)
  "$SS" finetune --init none --tokenizer "$W/tok.json" --kind decoder --preset small --train "$SST/train.tsv" \
    --dev "$SST/dev.tsv" --train-size 256 --epochs 1 --max-seq 128 --threads 2 --out "$W/cls" >"$W/cls.log" 2>&1 ||
    { tail -3 "$W/cls.log"; exit 1; }
  tail -n +2 "$SST/dev.tsv" | cut -f1 >"$W/cls_sentences.txt"
  NS=$(wc -l <"$W/cls_sentences.txt")
  echo "# classify: $NS SST-2 dev sentences, batch 64, config-S decoder classifier $W/cls"
  # classify_run NAME THREADS FLAGS...: the wall time of the call on all
  # sentences minus the same call on an empty input
  classify_run() {
    local name=$1 th=$2 t0 t1 t2; shift 2
    t0=$(date +%s.%N)
    "$SS" classify --model "$W/cls" --threads "$th" "$@" </dev/null >/dev/null
    t1=$(date +%s.%N)
    "$SS" classify --model "$W/cls" --threads "$th" "$@" "$W/cls_sentences.txt" >"$W/cls_$name.out"
    t2=$(date +%s.%N)
    /usr/bin/python3 -c "import sys; t0,t1,t2,n=map(float,sys.argv[1:5]); w=(t2-t1)-(t1-t0); \
print('{\"impl\":\"selfsup\",\"mode\":\"classify_%s\",\"threads\":%d,\"sentences\":%d,\"seconds\":%.3f,\"startup_s\":%.3f,\"sentences_per_s\":%.1f}' % (sys.argv[5], int(sys.argv[6]), n, w, t1-t0, n/w))" \
      "$t0" "$t1" "$t2" "$NS" "$name" "$th" | tee -a "$OUT"
  }
  for r in $(seq "$RUNS"); do
    for th in $THREADS_LIST; do
      classify_run openblas "$th" --gemm openblas-f32
      classify_run fp32 "$th" --precision fp32
      classify_run bf16 "$th" --precision bf16
    done
  done
  agree=$(paste "$W/cls_openblas.out" "$W/cls_bf16.out" | awk -F'\t' '$1 == $4 {n++} END {print n + 0}')
  echo "# classify: bf16 and OpenBLAS fp32 predict the same label on $agree of $NS sentences"
fi

# ---- texts: cache vs --no-cache, selfsup vs PyTorch ----
EOT=$("$SS" tokenizer encode --tokenizer "$TOK" --allow-special --text '<|endoftext|>' 2>/dev/null || true)
for th in $THREADS_LIST; do
  torch_ids=$(sed -n "s/^# tokens (kv_cache, $th threads): //p" "$W/torch_$th.out")
  # selfsup stops at <|endoftext|>: compare up to there
  torch_ids=$(awk -v eot="$EOT" '{for (i = 1; i <= NF && $i != eot; i++) printf "%s ", $i}' <<<"$torch_ids")
  # shellcheck disable=SC2086
  { "$SS" tokenizer decode --tokenizer "$TOK" $torch_ids; echo; } >"$W/torch_text_$th.txt"
  [ "$have_generate" = 1 ] && [ -f "$W/ss_full_$th.txt" ] && [ -f "$W/ss_kv_cache_$th.txt" ] || continue
  # the cached run printed 2 samples, each under a "---------- sample i/2 ----------" line
  if [ "$(grep -v -E '^-{10} sample [0-9]+/[0-9]+ -{10}$' "$W/ss_kv_cache_$th.txt")" = \
       "$(cat "$W/ss_full_$th.txt" "$W/ss_full_$th.txt")" ]; then
    echo "# selfsup cache and --no-cache texts identical ($th threads): yes"
  else
    echo "# selfsup cache and --no-cache texts identical ($th threads): NO"
  fi
  if cmp -s "$W/ss_full_$th.txt" "$W/torch_text_$th.txt"; then
    echo "# selfsup and PyTorch greedy texts identical ($th threads): yes"
  else
    echo "# selfsup and PyTorch greedy texts identical ($th threads): no (see $W/ss_full_$th.txt, $W/torch_text_$th.txt)"
  fi
done

/usr/bin/python3 - "$OUT" "$THREADS_LIST" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
threads = [int(t) for t in sys.argv[2].split()]
def med(impl, mode, th, key):
    v = [r[key] for r in rows if r["impl"] == impl and r["mode"] == mode and r["threads"] == th
         and r.get(key) is not None]
    return statistics.median(v) if v else float("nan")
def f(x, fmt=",.0f"):
    return "-" if x != x else format(x, fmt)
def ratio(a, b, fmt):
    return f(a / b, fmt) + "x" if b == b and b > 0 and a == a else "-"
print()
print("new tokens/s (generation after the prompt, batch 1, greedy; medians):")
print("| threads | selfsup cache | selfsup --no-cache | cache speedup (>= 10x) | PyTorch KV cache "
      "| selfsup / PyTorch KV (>= 2x) | PyTorch full | prompt tokens/s selfsup / PyTorch |")
print("|---|---|---|---|---|---|---|---|")
for th in threads:
    sc, sf = med("selfsup", "kv_cache", th, "new_tokens_per_s"), med("selfsup", "full", th, "new_tokens_per_s")
    tc, tf = med("torch", "kv_cache", th, "new_tokens_per_s"), med("torch", "full", th, "new_tokens_per_s")
    sp, tp = med("selfsup", "kv_cache", th, "prompt_tokens_per_s"), med("torch", "kv_cache", th, "prompt_tokens_per_s")
    print(f"| {th} | {f(sc)} | {f(sf)} | {ratio(sc, sf, '.1f')} | {f(tc)} | {ratio(sc, tc, '.2f')} | {f(tf)} "
          f"| {f(sp)} / {f(tp)} |")
if any(r["impl"] == "llama.cpp" for r in rows):
    print()
    print("selfsup against llama.cpp (node-llama-cpp), same model, new tokens/s (medians; goal: selfsup >= llama.cpp):")
    print("| threads | selfsup f32 | llama.cpp f32 | selfsup / llama.cpp f32 | selfsup bf16 | llama.cpp bf16 "
          "| selfsup / llama.cpp bf16 |")
    print("|---|---|---|---|---|---|---|")
    for th in threads:
        sc, sb = med("selfsup", "kv_cache", th, "new_tokens_per_s"), med("selfsup", "kv_cache_bf16", th, "new_tokens_per_s")
        lf, lb = med("llama.cpp", "f32", th, "new_tokens_per_s"), med("llama.cpp", "bf16", th, "new_tokens_per_s")
        print(f"| {th} | {f(sc)} | {f(lf)} | {ratio(sc, lf, '.2f')} | {f(sb)} | {f(lb)} | {ratio(sb, lb, '.2f')} |")
for impl, mode in (("selfsup", "kv_cache"), ("selfsup", "kv_cache_bf16"), ("torch", "kv_cache"), ("llama.cpp", "f32"),
                   ("llama.cpp", "bf16")):
    got = [(med(impl, mode, th, "new_tokens_per_s"), th) for th in threads]
    got = [g for g in got if g[0] == g[0]]
    if got:
        best = max(got)
        print(f"fastest {impl} {mode} decoding: {best[1]} thread(s), {best[0]:,.0f} new tokens/s")
print()
print("before/after the GEMM layer (selfsup, medians): decoding new tokens/s with the KV cache; classify sentences/s")
print("| threads | decode OpenBLAS fp32 (before) | decode fp32 | decode bf16 | bf16 / before "
      "| classify OpenBLAS fp32 (before) | classify fp32 | classify bf16 | bf16 / before |")
print("|---|---|---|---|---|---|---|---|---|")
for th in threads:
    do, df, db = (med("selfsup", m, th, "new_tokens_per_s") for m in ("kv_cache_openblas", "kv_cache", "kv_cache_bf16"))
    co, cf, cb = (med("selfsup", "classify_" + m, th, "sentences_per_s") for m in ("openblas", "fp32", "bf16"))
    print(f"| {th} | {f(do)} | {f(df)} | {f(db)} | {ratio(db, do, '.2f')} | {f(co)} | {f(cf)} | {f(cb)} "
          f"| {ratio(cb, co, '.2f')} |")
rows = [r for r in rows if "new_tokens" in r]
want = max(r["new_tokens"] for r in rows)
short = sorted({r["new_tokens"] for r in rows if r["new_tokens"] < want})
if short:
    print(f"WARNING: selfsup stopped early (<|endoftext|>) after {short} of {want} new tokens: "
          "its tokens/s are not comparable")
PY
