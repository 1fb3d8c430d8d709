#!/usr/bin/env bash
# TAP: bad numeric flag values (values past int's range, NaN, infinity, a
# negative thread count, in every command that takes --threads) exit 2 with
# a message naming the flag, before any
# file is read: they used to wrap silently (--seq 4294967312 trained with
# seq 16) or pass NaN through (--weight-decay nan).
set -u
cd "$(dirname "$0")/.."
. tests/tap.sh
SS=${SELFSUP:-build/selfsup}
[ -x "$SS" ] || { tap_plan 1; bail "$SS not built (run make)"; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cases=(
  "--seq|pretrain --data X --out Y --seq 4294967312"
  "--layers|pretrain --data X --out Y --layers 4294967297 --d-model 64 --heads 2"
  "--max-seq|pretrain --data X --out Y --max-seq 4294967328"
  "--max-new-tokens|generate -m X -p hi --max-new-tokens 4294967296"
  "--top-k|generate -m X -p hi --top-k 4294967297"
  "--batch|eval --model X --data Y --batch 4294967297"
  "--max-seq|finetune --init none --train X --dev Y --out Z --max-seq 4294967328"
  "--lr|pretrain --data X --out Y --lr inf"
  "--weight-decay|pretrain --data X --out Y --weight-decay nan"
  "--clip|pretrain --data X --out Y --clip nan"
  "--disc-weight|pretrain --objective rtd --data X --out Y --disc-weight nan"
  "--temperature|generate -m X -p hi --temperature nan"
  "--steps|pretrain --data X --out Y --steps 1e30"
  "--flops|pretrain --data X --out Y --flops inf"
  "--threads|pretrain --data X --out Y --threads -3"
  "--threads|eval --model X --data Y --threads -3"
  "--threads|generate -m X -p hi --threads -3"
  "--threads|classify -m X -t -3"
  "--threads|fill-mask -m X --threads=-3 a"
  "--lr|finetune --init none --train X --dev Y --out Z --lr nan"
  "--precision|pretrain --data X --out Y --precision fp16"
)
tap_plan ${#cases[@]}
for c in "${cases[@]}"; do
  flag=${c%%|*}
  cmd=${c#*|}
  # shellcheck disable=SC2086
  "$SS" $cmd >"$T/out" 2>&1
  rc=$?
  check "selfsup $cmd: exit 2 naming $flag" bash -c "[ $rc -eq 2 ] && grep -q -- '$flag' '$T/out'"
done
