#!/usr/bin/env bash
# Hostile input through the CLI, printing TAP (issue 18, items 8 and 9):
#  - classify --json on text with invalid UTF-8 bytes writes valid JSON (each
#    invalid byte becomes U+FFFD), one object per input line;
#  - a binary file given to finetune as TSV, CSV or JSONL is an error whose
#    quoted excerpt is short and printable (control bytes as \xNN), not ~1 KB
#    of raw bytes;
#  - an id near 2^31 in a GPT-2 encoder.json is a clear error at once, under a
#    2 GB address-space limit (the loader used to size a 16 GB table by it,
#    which such a limit turns into "out of memory"), with a small peak RSS.
# Needs no corpus: the tokenizer and the tiny classifier are made here from
# generated text.
set -u
cd "$(dirname "$0")/.."
. tests/tap.sh
SS=${SELFSUP:-build/selfsup}
PY=/usr/bin/python3
tap_plan 6
[ -x "$SS" ] || bail "$SS not built (run make)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-hostile.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# A labelled set: "good"/"bad" words decide the label.
"$PY" -c "
import random
r = random.Random(1)
good, bad = ['good', 'great', 'fine', 'lovely'], ['bad', 'awful', 'dull', 'poor']
fill = ['the', 'film', 'was', 'a', 'plot', 'and', 'story', 'very', 'quite', 'its']
with open('$TMP/text.txt', 'w') as t, open('$TMP/train.tsv', 'w') as f:
    f.write('sentence\tlabel\n')
    for i in range(200):
        y = i % 2
        w = [r.choice(fill) for _ in range(6)] + [r.choice(good if y else bad)]
        r.shuffle(w)
        s = ' '.join(w)
        t.write(s + '\n'); f.write(s + '\t' + str(y) + '\n')
" || bail "could not write the data"
"$SS" tokenizer train --vocab-size 300 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 || bail "tokenizer train failed"
"$SS" finetune --init none --tokenizer "$TMP/tok.json" --layers 1 --d-model 16 --heads 2 --max-seq 16 --epochs 1 \
  --batch 16 --train "$TMP/train.tsv" --dev "$TMP/train.tsv" --threads 1 --out "$TMP/clf" >"$TMP/ft.log" 2>&1 ||
  bail "finetune failed: $(tail -2 "$TMP/ft.log")"

# ---- classify --json and invalid UTF-8 -----------------------------------------------
printf 'a good film \xff\xfe here\nbad \xe2\x82 cut \xed\xa0\x80 surrogate\n\xc0\x80 "quoted" \x01 \\ end\n' >"$TMP/bad-utf8.txt"
"$SS" classify --model "$TMP/clf" --json --threads 1 "$TMP/bad-utf8.txt" >"$TMP/c.json" 2>"$TMP/c.err"
check "classify --json on invalid UTF-8 input writes valid UTF-8 JSON, one object per line, U+FFFD per invalid byte" \
  "$PY" -c "
import json
raw = open('$TMP/c.json', 'rb').read()
rows = [json.loads(l) for l in raw.decode('utf-8').splitlines()]  # strict: raises on invalid UTF-8
want = ['a good film \ufffd\ufffd here', 'bad \ufffd\ufffd cut \ufffd\ufffd\ufffd surrogate',
        '\ufffd\ufffd \"quoted\" \x01 \\\\ end']
assert len(rows) == 3, rows
for r, w in zip(rows, want):
    assert r['text'] == w, (r['text'], w)
    assert r['label'] in ('0', '1') and abs(sum(r['probs'].values()) - 1) < 1e-3
"
check "classify without --json reads the same lines (one output line each)" \
  bash -c "'$SS' classify --model '$TMP/clf' --threads 1 '$TMP/bad-utf8.txt' | [ \$(wc -l) -eq 3 ]"

# ---- a binary file as labelled data --------------------------------------------------
# short_printable FILE LOG: the error names FILE:1, quotes its start with \xNN
# escapes, and has no raw control byte; the message line stays short.
short_printable() {
  "$PY" -c "
import sys
log = open(sys.argv[2], 'rb').read()
msg = [l for l in log.split(b'\n') if sys.argv[1].encode() + b':1:' in l]
assert msg, log[-300:]
m = msg[0]
assert b'\\\\x7FELF' in m, m
assert all(c >= 0x20 and c != 0x7f for c in m), m
assert len(m) < len(sys.argv[1]) + 330, len(m)
assert all(c in b'\t\n' or (c >= 0x20 and c != 0x7f) for c in log), 'a raw control byte in the output'
" "$1" "$2"
}
for ext in tsv csv jsonl; do
  head -c 3000 "$SS" >"$TMP/binary.$ext"
  "$SS" finetune --init none --tokenizer "$TMP/tok.json" --layers 1 --d-model 16 --heads 2 --threads 1 \
    --train "$TMP/binary.$ext" --dev "$TMP/train.tsv" --out "$TMP/bin-$ext" >"$TMP/bin-$ext.log" 2>&1
  rc=$?
  check "a binary file as ${ext^^}: exit 1, a short printable excerpt (\\xNN escapes, cut at 60 bytes)" \
    bash -c "[ $rc -eq 1 ] && $(declare -f short_printable); PY=$PY; short_printable '$TMP/binary.$ext' '$TMP/bin-$ext.log'"
done

# ---- an id near 2^31 in encoder.json --------------------------------------------------
mkdir -p "$TMP/gpt2"
printf '{"a":0,"b":1,"ab":2147483000}' >"$TMP/gpt2/encoder.json"
printf '#version: 0.2\na b\n' >"$TMP/gpt2/vocab.bpe"
check "encoder.json with id 2147483000: a clear error within 5 s, under a 2 GB address-space limit, peak RSS < 100 MB" \
  "$PY" -c "
import resource, subprocess, sys, time
def limit(): resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
t = time.time()
p = subprocess.run(['$SS', 'tokenizer', 'info', '--tokenizer', '$TMP/gpt2'], preexec_fn=limit,
                   capture_output=True, text=True, timeout=60)
dt, rss = time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print('# %.2f s, peak RSS %d kB: %s' % (dt, rss, p.stderr.strip()))
assert p.returncode == 1 and \"encoder.json: vocab: 'ab' has id 2147483000, but there are only 3 tokens\" in p.stderr
assert dt < 5 and rss < 100 * 1024
"
