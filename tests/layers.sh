#!/usr/bin/env bash
# The layering of the sources (README, "Layout"): a module may include the
# public headers of its own layer and of the layers below, never one above.
#   io < corpora < tokenizer < data < nn < model < train, infer < cli
# A folder's files, and each header in include/selfsup/, get the rank of
# their layer below; every #include "selfsup/X" is checked against it.
# A new public header needs a row here (the check fails until it has one).
source "$(dirname "$0")/tap.sh"
cd "$(dirname "$0")/.."

declare -A RANK=([io]=0 [corpora]=1 [tokenizer]=2 [data]=3 [nn]=4 [model]=5 [train]=6 [infer]=6 [cli]=7)
declare -A HDR=(
  [embed.h]=infer
  [error.h]=io [io.h]=io [rng.h]=io [safetensors.h]=io [metrics.h]=io [textstream.h]=io [path.h]=io [version.h]=io
  [corpus.h]=corpora
  [tokenizer.h]=tokenizer
  [shard.h]=data [labeled.h]=data [tokens.h]=data [mlm.h]=data [textnorm.h]=data
  [nn.h]=nn [nn_ref.h]=nn [gemm.h]=nn [gguf.h]=io
  [model.h]=model [export.h]=model
  [train.h]=train [train_opts.def]=train [optim.h]=train [options.h]=train [engine.h]=train [classmetrics.h]=train
  [encoder_eval.h]=train [textseq.h]=train [finetune.h]=train [finetune_opts.def]=train [selftrain.h]=train [dist.h]=train
  [infer.h]=infer [generate.h]=infer [prompt.h]=infer [spread.h]=infer
)

# Print "FILE (L): includes X (L')" for every include by FILE, in layer L,
# of a header of a higher layer, of a header with no layer, and of a file
# of another folder ("../").
violations() {
  local l=$1 f inc il; shift
  for f in "$@"; do
    while IFS= read -r inc; do
      case $inc in
        selfsup/*)
          il=${HDR[${inc#selfsup/}]:-}
          if [ -z "$il" ]; then echo "$f: includes $inc, which has no layer in tests/layers.sh"
          elif [ "${RANK[$il]}" -gt "${RANK[$l]}" ]; then echo "$f ($l): includes $inc ($il)"; fi ;;
        *../*) echo "$f: includes $inc from another folder" ;;
      esac
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
  done
}
# The same for each public header, in its own layer.
header_violations() {
  local h
  for h in "$@"; do violations "${HDR[${h##*/}]}" "$h"; done
}

files_of() { find "$@" -maxdepth 1 \( -name '*.c' -o -name '*.h' -o -name '*.def' \) | sort; }

tap_plan 12

# The check itself sees a back edge (a data module including train.h).
TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-layers.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
printf '#include <stdio.h>\n#include "selfsup/shard.h"\n  # include "selfsup/train.h" /* x */\n' >"$TMP/back.c"
out=$(violations data "$TMP/back.c")
check "a data file including train.h is reported" test "$out" = "$TMP/back.c (data): includes selfsup/train.h (train)"

headers=$(files_of include/selfsup)
out=$(for h in $headers; do [ -n "${HDR[${h##*/}]:-}" ] || echo "${h##*/}"; done)
check "every public header has a layer${out:+ (missing: $(echo $out))}" test -z "$out"
out=$(header_violations $(for h in $headers; do [ -n "${HDR[${h##*/}]:-}" ] && echo "$h"; done))
check "no public header includes one of a higher layer" test -z "$out"
[ -z "$out" ] || printf '# %s\n' "$out"
for d in src/io corpora tokenizer src/data src/nn src/model src/train src/infer src/cli; do
  l=${d#src/}
  out=$(violations "$l" $(files_of "$d"))
  check "$d/ includes no header of a higher layer" test -z "$out"
  [ -z "$out" ] || printf '# %s\n' "$out"
done
