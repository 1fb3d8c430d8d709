# The fine-tuning recipe shared by the experiments (sourced). Chosen on the
# SST-2 dev split only; the held-out SST-2 test split is never used.
FT_RECIPE=(--epochs 3 --batch 32 --lr 2e-4 --layer-decay 1 --warmup-ratio 0.1 --weight-decay 0.01 --dropout 0.1 --max-seq 128)
W=${W:-eval/work/exp}
# --init arguments for a model name: a pretrained run, or the same
# architecture from scratch with the same tokenizer.
init_args() {
  case $1 in
    mlm|mlm-*|rtd|rtd-*|clm|clm-*|hybrid|hybrid-*) echo "--init $W/pre_$1" ;;  # clm-long: eval/exp_pretrain.sh TAG=-long
    scratch-encoder) echo "--init none --tokenizer $W/shards/tokenizer.json --kind encoder --preset small" ;;
    scratch-decoder) echo "--init none --tokenizer $W/shards/tokenizer.json --kind decoder --preset small" ;;
    *) echo "unknown model $1" >&2; return 1 ;;
  esac
}
# The from-scratch baseline of a model: the same architecture, random init.
scratch_for() { case $1 in clm*) echo scratch-decoder ;; *) echo scratch-encoder ;; esac; }
