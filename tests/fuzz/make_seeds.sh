#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/TARGET/: small valid
# inputs, made by selfsup itself where it writes the format (tokenizers,
# shards, model directories of 1-layer models 2 wide) and by hand where it
# only reads one (GPT-2 files, labelled tables, safetensors dtypes selfsup
# never writes, manifests named for the harness). Run from the repository
# after `make`; needs python3 and zstd. Nothing comes from a data set.
#   tests/fuzz/make_seeds.sh [OUT]     (default tests/fuzz/corpus)
set -eu
cd "$(dirname "$0")/../.."
S=$(realpath -m "${SELFSUP:-build/selfsup}")
OUT=$(realpath -m "${1:-tests/fuzz/corpus}")
[ -x "$S" ] || { echo "make_seeds.sh: $S not built (run make)" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-seeds.XXXXXX")
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=1
for t in tokenizer_json gpt2 roundtrip safetensors shard shard_meta labeled config model_dir manifest cli_numbers; do
  rm -rf "${OUT:?}/$t"; mkdir -p "$OUT/$t"
done

# ---- a text, tokenizers, shards and tiny runs, by selfsup --------------------------------
cat >"$W/text.txt" <<'EOF'
The cat sat on the mat. The dog sat on the log.
A bird in the hand is worth two in the bush.
Café crème, naïve façade; 日本語 and ελληνικά too.
EOF
for i in 1 2 3 4 5 6; do cat "$W/text.txt"; done >"$W/more.txt"
q() { "$@" >/dev/null 2>&1 || { echo "make_seeds.sh: failed: $*" >&2; exit 1; }; }
q "$S" tokenizer train --vocab-size 275 --out "$W/tok.json" "$W/text.txt"
q "$S" tokenizer train --vocab-size 270 --normalize nfc --lowercase --special-tokens '<|endoftext|>,[MASK]' \
  --out "$W/toklc.json" "$W/text.txt"
q "$S" tokenizer train --vocab-size 262 --out "$W/tok262.json" "$W/text.txt"
(cd "$W" && q "$S" data prepare --tokenizer tok262.json --out d262 --val-fraction 0.3 more.txt) # meta.json keeps the path
tiny="--layers 1 --d-model 2 --heads 1 --d-ff 2 --seq 4 --batch 1 --steps 1 --threads 1 --max-seq 4"
q "$S" pretrain --objective clm --data "$W/d262" --out "$W/clm" $tiny
q "$S" pretrain --objective mlm --data "$W/d262" --out "$W/mlm" $tiny
q "$S" pretrain --objective rtd --data "$W/d262" --out "$W/rtd" $tiny --gen-size 0.5
printf 'text\tlabel\nthe cat sat\tpos\nthe dog sat\tneg\nA bird in hand\tpos\nworth two\tneg\n' >"$W/lab.tsv"
q "$S" finetune --init none --tokenizer "$W/tok262.json" --layers 1 --d-model 2 --heads 1 --d-ff 2 --max-seq 4 \
  --train "$W/lab.tsv" --dev "$W/lab.tsv" --epochs 1 --batch 2 --threads 1 --out "$W/cls"

cp "$W/tok.json" "$OUT/tokenizer_json/trained.json"
cp "$W/toklc.json" "$OUT/tokenizer_json/nfc_lowercase.json"
cp "$W/d262/train-00000.shard" "$OUT/shard/train.shard"
cp "$W/d262/val-00000.shard" "$OUT/shard/val.shard"
cp "$W/clm/model.safetensors" "$OUT/safetensors/clm_model.safetensors"
for r in clm mlm rtd cls; do cp "$W/$r/config.json" "$OUT/config/$r.json"; done
for r in clm rtd cls; do
  { cat "$W/$r/config.json"; printf '\n--model.safetensors--\n'; cat "$W/$r/model.safetensors"; } >"$OUT/model_dir/$r"
done
{ cat "$W/d262/meta.json"; printf '\n--shard--\n'; cat "$W/d262/train-00000.shard"; } >"$OUT/shard_meta/prepared_with_shard"

# ---- what selfsup reads but does not write, by hand --------------------------------------
W="$W" OUT="$OUT" python3 - <<'EOF'
import json, os, struct, subprocess
W, OUT = os.environ["W"], os.environ["OUT"]
def put(path, data):
    with open(os.path.join(OUT, path), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# tokenizer.json: compact, merges as ["a", "b"] pairs
t = json.load(open(f"{W}/tok.json"))
t2 = dict(t, model=dict(t["model"], merges=[m.split(" ") for m in t["model"]["merges"]]))
put("tokenizer_json/compact_pairs.json", json.dumps(t2, separators=(",", ":"), ensure_ascii=False))

# GPT-2 files: the bytes and merges, <|endoftext|> last (as GPT-2's own); one without it, CRLF
specials = {a["content"] for a in t["added_tokens"]}
toks = [k for k, _ in sorted(t["model"]["vocab"].items(), key=lambda kv: kv[1]) if k not in specials]
enc = {k: i for i, k in enumerate(toks)}
bpe = "#version: 0.2\n" + "".join(m + "\n" for m in t["model"]["merges"])
put("gpt2/no_eot_crlf", json.dumps(enc, ensure_ascii=False) + "\n--vocab.bpe--\n" + bpe.replace("\n", "\r\n"))
enc["<|endoftext|>"] = len(toks)
put("gpt2/trained", json.dumps(enc, ensure_ascii=False) + "\n--vocab.bpe--\n" + bpe)

# texts to round-trip
put("roundtrip/text_utf8", open(f"{W}/text.txt").read())
put("roundtrip/specials", "Specials: <|endoftext|>[MASK] x [CLS]y[SEP] <|endoftext [PAD]")
put("roundtrip/invalid_utf8", b"bad \xff\xfe bytes \xc3( \xe2\x82 \xf0\x9f\x99 end\x00nul \r\n\t  \n\n   ")
put("roundtrip/contractions_spaces", "it's they'll we've I'm you'd 123 4,567.89 ---- !!!  \u00a0\u3000 x")

# safetensors: every dtype, a scalar, an empty tensor, an odd offset, metadata only
def st(path, tensors, meta=None, pad=True):
    h, data = {}, b""
    if meta is not None:
        h["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    hj = json.dumps(h, separators=(",", ":")).encode()
    if pad:
        hj += b" " * (-len(hj) % 8)
    put("safetensors/" + path, struct.pack("<Q", len(hj)) + hj + data)
st("dtypes.safetensors", [
    ("f64", "F64", [2], struct.pack("<2d", 1.5, -2.0)), ("f32", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
    ("i64", "I64", [1], struct.pack("<q", -7)), ("i32", "I32", [], struct.pack("<i", 5)),
    ("f16", "F16", [3], b"\x00\x3c\x00\xc0\x00\x7c"), ("bf16", "BF16", [1, 1], b"\x80\x3f"),
    ("u8", "U8", [3], b"\x01\x02\x03"), ("bool", "BOOL", [2], b"\x00\x01"), ("f8", "F8_E4M3", [1], b"\x38"),
], meta={"format": "pt", "note": "dtypes"})
st("empty_and_odd.safetensors", [("empty", "F32", [0, 4], b""), ("odd", "U8", [3], b"abc"),
                                 ("after_odd", "F32", [1], struct.pack("<f", 0.5))], pad=False)
st("meta_only.safetensors", [], meta={"config": '{"kind":"decoder"}', "step": "1"})

# a shard of 4-byte ids (vocabulary > 65536), as src/data/shard.c writes it
ids = [70000, 5, 0, 65536, 99999, 0]
raw = struct.pack(f"<{len(ids)}I", *ids)
h = 0xcbf29ce484222325
for b in raw:
    h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
payload = subprocess.run(["zstd", "-q", "-c", "--check"], input=raw, capture_output=True, check=True).stdout
hdr = b"SSSHARD1" + struct.pack("<IIIIQQQQQ", 1, 4, 100000, 0, len(ids), 2, 17, h, len(payload))
put("shard/wide_ids.shard", hdr + payload)

# meta.json of the harness's own shards (fuzz_shard_meta.c: vocab 300, separator 0,
# train 3 documents of 6 tokens and 12 text bytes each, val 1)
def split(name, docs):
    return {"shards": [f"{name}-00000.shard"], "docs": docs, "tokens": 6 * docs, "text_bytes": 12 * docs}
meta = {"format": "selfsup-shards", "version": 1, "tokenizer": "tokenizer.json", "vocab_size": 300,
        "separator": "<|endoftext|>", "separator_id": 0, "doc_boundary": "line", "val_fraction": 0.25,
        "seed": 1234, "shard_tokens": 67108864, "inputs": [{"path": "a.txt", "bytes": 48, "text_bytes": 48}],
        "splits": {"train": split("train", 3), "val": split("val", 1)}}
put("shard_meta/harness_shards.json", json.dumps(meta, indent=1))
meta["splits"]["val"] = {"shards": [], "docs": 0, "tokens": 0, "text_bytes": 0}
put("shard_meta/empty_val.json", json.dumps(meta))

# labelled tables: the first byte is the harness's choice (fuzz_labeled.c): bits 0-1 the format
# (tsv, csv, jsonl, tsv), bit 2 skip_bad_rows, bit 3 need_label, bits 4-5 the text column
# (default, text, sentence, review), bits 6-7 both set: format csv whatever the name
put("labeled/tsv", b"\x08" + b"text\tlabel\nthe cat sat\tpos\nthe dog sat\tneg\n\nA bird\t1\r\n")
put("labeled/csv_quoted", b"\x29" + b'id,sentence,label\n1,"a, b ""c""\nsecond line",0\n2,plain,1\n3,\xc3\xa9t\xc3\xa9,2\n')
put("labeled/jsonl", b"\x0a" + b'{"text":"good","label":1}\n{"text":"bad","label":0}\n{"text":"so so","label":2.5}\n'
    b'{"text":"yes","label":true}\n')
put("labeled/jsonl_skip_bad", b"\x06" + b'\xef\xbb\xbf{"text":"ok","label":"a"}\n{"text":""}\nnot json\n{"text":"x","label":null}\n')
put("labeled/tsv_unlabelled_review", b"\x33" + b"review\nno label here\nnor here\n")
tsv = b"text\tlabel\n" + b"".join(b"row %d\t%d\n" % (i, i % 3) for i in range(40))
put("labeled/tsv_zstd", b"\x08" + subprocess.run(["zstd", "-q", "-c"], input=tsv, capture_output=True, check=True).stdout)

# corpus manifests: the project's own, named "fz" (the harness loads corpora/fz.json)
for name in ["tinyshakespeare", "kjv", "sst2", "imdb"]:
    m = json.load(open(f"corpora/{name}.json"))
    m["name"] = "fz"
    put(f"manifest/{name}.json", json.dumps(m, indent=2))

# option values
for i, v in enumerate(["1", "-1", "1e6", "0.5", "2147483648", "4294967312", "nan", "inf", "1e30", "-0",
                       "0x10", " 7", "1.0000000000000002", "9.2e18", "clm", "auto", "mcc"]):
    put(f"cli_numbers/v{i:02d}", v)
EOF
echo "seeds in $OUT:"
for d in "$OUT"/*/; do printf '  %-16s %2d files, %6d bytes\n' "$(basename "$d")" "$(ls "$d" | wc -l)" "$(cat "$d"/* | wc -c)"; done
