# The fine-tuning recipe shared by the experiments (sourced). Chosen on the
# SST-2 dev split only; the held-out SST-2 test split is never used.
FT_RECIPE=(--epochs 3 --batch 32 --lr 2e-4 --layer-decay 1 --warmup-ratio 0.1 --weight-decay 0.01 --dropout 0.1 --max-seq 128)
W=${W:-eval/work/exp}
# --init arguments for a model name: a pretrained run, or the same
# architecture from scratch with the same tokenizer (-nobias: without
# biases in the body, as an mlm run pretrained with pretrain's defaults).
init_args() {
  case $1 in
    mlm|mlm-*|rtd|rtd-*|clm|clm-*|hybrid|hybrid-*) echo "--init $W/pre_$1" ;;  # clm-long: eval/exp_pretrain.sh TAG=-long
    scratch-encoder) echo "--init none --tokenizer $W/shards/tokenizer.json --kind encoder --preset small" ;;
    scratch-decoder) echo "--init none --tokenizer $W/shards/tokenizer.json --kind decoder --preset small" ;;
    scratch-encoder-nobias|scratch-decoder-nobias) echo "$(init_args "${1%-nobias}") --no-bias" ;;
    *) echo "unknown model $1" >&2; return 1 ;;
  esac
}
# Seven templates for prompt-based classification, fixed before any of them
# was read on the model they serve (the fourteenth part's five, chosen on
# clm-2h-bf16, and two more; RESULTS, nineteenth part): zero-shot reads them
# together, FT_TEMPLATES / PROMPT_TEMPLATES fine-tune through the first K.
TEMPLATES7=('{text} It was' '{text} This movie is' '{text} All in all, it was' '{text} Overall, the film was'
  '{text} In short, a' '{text} The movie was' '{text} I thought it was')
# template_args MODEL K: the first K of them as --template arguments in the
# array TA, a decoder's as written, an encoder's with [MASK]. where the
# decoder's word goes.
template_args() {
  local t; TA=()
  for t in "${TEMPLATES7[@]:0:$2}"; do
    case $1 in clm*|scratch-decoder*) TA+=(--template "$t") ;; *) TA+=(--template "$t [MASK].") ;; esac
  done
}
# The from-scratch baseline of a model: the same architecture, random init
# (without biases when the pretrained run has none: its config.json).
scratch_for() {
  local s; case $1 in clm*) s=scratch-decoder ;; *) s=scratch-encoder ;; esac
  if grep -qsE '"bias":[[:space:]]*false' "$W/pre_$1/config.json"; then s+=-nobias; fi
  echo "$s"
}
# A label-efficiency size: N (a seeded random N-sentence subset) or Kpc (K
# sentences of each class: SST-2's two classes make 2K; LM-BFF's 16 per
# class is 16pc). Prints the labelled count and the finetune flag that cuts
# --train, "32 --per-class 16" or "100 --train-size 100".
subset() {
  case $1 in
    *[0-9]pc) echo "$(( 2 * ${1%pc} )) --per-class ${1%pc}" ;;
    *) echo "$1 --train-size $1" ;;
  esac
}
# The schedule for n labels: max(3 epochs, 300 steps) at batch 32, dev
# evaluated six times whatever the epochs (the best evaluation is kept).
# Prints "epochs every".
schedule() {
  local n=$1 per_epoch epochs
  per_epoch=$(( (n + 31) / 32 )); epochs=$(( (300 + per_epoch - 1) / per_epoch )); [ $epochs -lt 3 ] && epochs=3
  echo "$epochs $(( per_epoch * epochs / 6 ))"
}
