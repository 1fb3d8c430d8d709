# Shared by eval/bench_mpi.sh and eval/bench_mpi_net.sh (sourced; B is the
# build directory): the benchmark configs and their data.

# The selfsup flags of config S, M (README's performance table) or T (a tiny
# model: a check that a script works); nonzero status for another name.
mpi_cfg_args() {
  case $1 in
    S) echo "--layers 4 --d-model 256 --heads 4 --seq 128 --batch 16" ;;
    M) echo "--layers 6 --d-model 384 --heads 6 --seq 256 --batch 8" ;;
    T) echo "--layers 2 --d-model 64 --heads 2 --seq 64 --batch 8" ;;
    *) return 1 ;;
  esac
}

# DIR/shards and DIR/tok.json: tinyshakespeare (from SELFSUP_DATA_MIRROR or
# its origin), a tokenizer of 8192 ids, shards; made once.
mpi_bench_data() {
  local dir=$1 src
  mkdir -p "$dir"
  [ -f "$dir/shards/meta.json" ] && return 0
  src=${SELFSUP_DATA_MIRROR:+$SELFSUP_DATA_MIRROR/tinyshakespeare/input.txt}
  if [ -z "$src" ] || [ ! -f "$src" ]; then
    "$B/selfsup" data get tinyshakespeare >/dev/null
    src=corpora/cache/tinyshakespeare/input.txt
  fi
  "$B/selfsup" tokenizer train --vocab-size 8192 --out "$dir/tok.json" "$src" >/dev/null
  "$B/selfsup" data prepare --tokenizer "$dir/tok.json" --out "$dir/shards" --doc-boundary blank "$src" >/dev/null
}
