#!/usr/bin/env bash
# Self-training through the CLI (finetune --unlabeled), printing TAP, on a
# text where a keyword decides the label, so a tiny model from scratch learns
# it in seconds: the rows a student trains on (the labelled ones, then the
# pseudo-labelled ones, balanced, the most confident first), their accuracy
# against gold labels the pool hides from training, the round kept in DIR,
# running again (finished rounds kept, identical results), Ctrl-C and the
# run continued to the same weights, an ensemble of teachers (--teachers), a
# finished run given more rounds, rounds that stop early,
# balanced few-label sets (--per-class), and the errors a user meets.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 21
SS=${SELFSUP:-build/selfsup}
[ -x "$SS" ] || bail "$SS not built (run make)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-selftrain.XXXXXX")
[ -n "${KEEP_TMP:-}" ] || trap 'rm -rf "$TMP"' EXIT

# Sentences "w1 w2 ... KEY w3": KEY good -> 1, bad -> 0; 'meh' in the pool
# only (its gold label is 0 or 1 at random: a teacher cannot know it).
/usr/bin/python3 - "$TMP" <<'EOF' || bail "could not write the data"
import random, sys
d = sys.argv[1]; r = random.Random(5)
words = "the a film movie plot acting story scene cast music ending was is very quite rather".split()
def sent(key): return " ".join(r.choice(words) for _ in range(r.randint(3, 8))) + " " + key + " " + r.choice(words)
with open(d + "/train.tsv", "w") as f:
    f.write("sentence\tlabel\n")
    for i in range(200): f.write(sent("good" if i % 2 else "bad") + "\t" + str(i % 2) + "\n")
with open(d + "/dev.tsv", "w") as f:
    f.write("sentence\tlabel\n")
    for i in range(100): f.write(sent("good" if i % 2 else "bad") + "\t" + str(i % 2) + "\n")
with open(d + "/pool.tsv", "w") as f:
    f.write("sentence\tlabel\n")
    for i in range(300):
        k = r.choice(["good", "bad", "meh"])
        f.write(sent(k) + "\t" + ("1" if k == "good" else "0" if k == "bad" else str(r.randint(0, 1))) + "\n")
with open(d + "/pool.txt", "w") as f:
    for i in range(50): f.write(sent(r.choice(["good", "bad"])) + "\n\n")
EOF
"$SS" tokenizer train --vocab-size 300 --out "$TMP/tok.json" "$TMP/train.tsv" >/dev/null 2>&1 || bail "no tokenizer"
FT=(--init none --tokenizer "$TMP/tok.json" --kind encoder --layers 1 --d-model 32 --heads 2 --train "$TMP/train.tsv"
    --train-size 40 --dev "$TMP/dev.tsv" --epochs 10 --batch 8 --lr 1e-2 --max-seq 32 --threads 1 --seed 3
    --precision fp32)  # each round picks its GEMM backend: auto could pick another one per run on a busy machine
ST=(--unlabeled "$TMP/pool.tsv" --rounds 2 --threshold 0.7 --max-pseudo 120)

"$SS" finetune "${FT[@]}" "${ST[@]}" --out "$TMP/a" >"$TMP/a.log" 2>&1
check "finetune --unlabeled runs a teacher and 2 rounds and prints the table and dev metrics" \
  bash -c "[ $? -eq 0 ] && grep -q '^  round  pseudo-labels' '$TMP/a.log' && grep -qE '^dev: accuracy [01]\.[0-9]+ .*\(round [0-2]\)' '$TMP/a.log' &&
           test -s '$TMP/a/round-0/eval.json' && test -s '$TMP/a/round-2/eval.json'"
sed -n '/^self-training (/,$p' "$TMP/a.log" | sed 's/^/# /'

check "round 1's rows: the 40 labelled (the --train-size subset the teacher had), then balanced pseudo-labels, \
the most confident of each class, at most --max-pseudo, counted right in selftrain.json" /usr/bin/python3 -c "
import json, csv
rows = [json.loads(l) for l in open('$TMP/a/round-1/train.jsonl')]
train = {r['sentence']: r['label'] for r in csv.DictReader(open('$TMP/train.tsv'), delimiter='\t')}
lab, pseudo = rows[:40], rows[40:]
assert all(train.get(r['text']) == r['label'] for r in lab), 'labelled rows differ from --train'
assert all(r['text'] not in train for r in pseudo)
n0 = sum(r['label'] == '0' for r in pseudo); n1 = len(pseudo) - n0
assert n0 == n1 and 0 < len(pseudo) <= 120, (n0, n1)
s = json.load(open('$TMP/a/selftrain.json'))
assert s['rounds'][1]['pseudo_labels'] == len(pseudo) and s['rounds'][0]['pseudo_labels'] == 0
assert len(s['rounds']) == 3 and s['unlabeled_texts'] == 300"

check "pseudo-label accuracy in selftrain.json is that of the rows against the pool's hidden gold labels" /usr/bin/python3 -c "
import json, csv
gold = {r['sentence']: r['label'] for r in csv.DictReader(open('$TMP/pool.tsv'), delimiter='\t')}
s = json.load(open('$TMP/a/selftrain.json'))
for k in (1, 2):
    pseudo = [json.loads(l) for l in open('$TMP/a/round-%d/train.jsonl' % k)][40:]
    ok = sum(gold[r['text']] == r['label'] for r in pseudo)
    rd = s['rounds'][k]
    assert rd['pseudo_with_gold'] == len(pseudo) and abs(rd['pseudo_accuracy'] - ok / len(pseudo)) < 1e-12, (rd, ok)
    assert rd['pseudo_accuracy'] > 0.75, rd  # far above chance: the keyword decides most"

check "DIR holds the round with the best dev accuracy (its weights byte for byte) and classifies" bash -c "
best=\$(/usr/bin/python3 -c \"import json; s = json.load(open('$TMP/a/selftrain.json')); \
  b = s['best_round']; assert all(r['dev_accuracy'] <= s['rounds'][b]['dev_accuracy'] for r in s['rounds']); print(b)\") &&
cmp -s '$TMP/a/model.safetensors' \"$TMP/a/round-\$best/model.safetensors\" &&
printf 'the film was good\nthe plot is bad\n' | '$SS' classify --model '$TMP/a' | cut -f1 | tr '\n' ' ' | grep -qx '1 0 '"

cp "$TMP/a/selftrain.json" "$TMP/a.summary"
"$SS" finetune "${FT[@]}" "${ST[@]}" --out "$TMP/a" >"$TMP/a2.log" 2>&1
check "the same command again keeps the finished rounds and gives the same summary" bash -c "
[ \$(grep -c 'finished before' '$TMP/a2.log') -eq 3 ] && cmp -s '$TMP/a/selftrain.json' '$TMP/a.summary'"

# Ctrl-C during round 2's training, then the same command: the same weights
# as the run never stopped (each round's fine-tuning resumes exactly).
"$SS" finetune "${FT[@]}" "${ST[@]}" --out "$TMP/b" --save-every 1 >"$TMP/b.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ "$(grep -c '^data:' "$TMP/b.log" 2>/dev/null)" -ge 3 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
"$SS" finetune "${FT[@]}" "${ST[@]}" --out "$TMP/b" --save-every 1 >"$TMP/b2.log" 2>&1
check "Ctrl-C in round 2 exits 130 (or the run had ended: $rc), and the same command again ends with round 2's \
weights equal to those of the run never stopped" bash -c "
{ [ $rc -eq 130 ] || [ $rc -eq 0 ]; } && cmp -s '$TMP/a/round-2/model.safetensors' '$TMP/b/round-2/model.safetensors' &&
cmp -s '$TMP/a/model.safetensors' '$TMP/b/model.safetensors'"

"$SS" finetune "${FT[@]}" --unlabeled "$TMP/pool.txt" --rounds 1 --threshold 0.6 --student-epochs 2 --gold-repeat 3 \
  --out "$TMP/c" >"$TMP/c.log" 2>&1
check "a plain text file (one text per line, blank lines skipped) is an unlabelled pool too; --student-epochs 2: \
the student evaluates dev twice, once per epoch" bash -c "
[ $? -eq 0 ] && /usr/bin/python3 -c \"import json; s = json.load(open('$TMP/c/selftrain.json')); \
assert s['unlabeled_texts'] == 50 and 'pseudo_accuracy' not in s['rounds'][-1], s\" &&
[ \$(grep -c dev_accuracy '$TMP/c/round-1/metrics.jsonl') -eq 2 ]"
check "--gold-repeat 3: the student's rows hold the 40 labelled rows three times (in --train-size order), then the \
pseudo-labels, as many as selftrain.json counts" /usr/bin/python3 -c "
import json
rows = [json.loads(l) for l in open('$TMP/c/round-1/train.jsonl')]
gold = [json.loads(l) for l in open('$TMP/a/round-1/train.jsonl')][:40]
s = json.load(open('$TMP/c/selftrain.json'))
assert rows[:40] == gold and rows[40:80] == gold and rows[80:120] == gold, 'labelled rows not repeated 3 times'
assert len(rows) - 120 == s['rounds'][1]['pseudo_labels'] > 0, (len(rows), s['rounds'][1])"

"$SS" finetune "${FT[@]}" --unlabeled "$TMP/pool.tsv" --rounds 1 --threshold 0.7 --max-pseudo 120 --teachers 3 \
  --out "$TMP/e" >"$TMP/e.log" 2>&1
rc=$?
tail -n +2 "$TMP/pool.tsv" | cut -f1 >"$TMP/pool.sentences"
tail -n +2 "$TMP/dev.tsv" | cut -f1 >"$TMP/dev.sentences"
for t in round-0 teacher-2 teacher-3; do
  "$SS" classify --model "$TMP/e/$t" --threads 1 "$TMP/pool.sentences" >"$TMP/e.$t.pool" 2>/dev/null
  "$SS" classify --model "$TMP/e/$t" --threads 1 "$TMP/dev.sentences" >"$TMP/e.$t.dev" 2>/dev/null
done
check "--teachers 3: round 0 is the one teacher of a plain run (the same bits), two more train on the same 40 \
labelled rows with seeds +1000 and +2000, and selftrain.json has each one's dev accuracy" bash -c "
[ $rc -eq 0 ] && cmp -s '$TMP/a/round-0/model.safetensors' '$TMP/e/round-0/model.safetensors' &&
! cmp -s '$TMP/e/round-0/model.safetensors' '$TMP/e/teacher-2/model.safetensors' &&
grep -q \"teachers' dev accuracy:\" '$TMP/e.log' && /usr/bin/python3 -c \"
import json
lab = [json.loads(l) for l in open('$TMP/e/labelled.jsonl')]
assert lab == [json.loads(l) for l in open('$TMP/a/round-1/train.jsonl')][:40], 'not the 40 labelled rows'
s = json.load(open('$TMP/e/selftrain.json'))
assert [t['dir'] for t in s['teachers']] == ['round-0', 'teacher-2', 'teacher-3'], s['teachers']
assert [t['seed'] for t in s['teachers']] == [3, 1003, 2003], s['teachers']
for t in s['teachers']:
    e = json.load(open('$TMP/e/%s/eval.json' % t['dir']))
    assert abs(e['dev']['accuracy'] - t['dev_accuracy']) < 1e-12, (t, e['dev'])
\""
check "--teachers 3: round 1's pseudo-labels are the argmax of the three teachers' mean probability (at least \
--threshold; the count reaching it is the mean's), and the ensemble's dev accuracy in selftrain.json is that mean's on dev" /usr/bin/python3 -c "
import json
def probs(path):
    out = []
    for line in open(path):
        cols = line.rstrip('\n').split('\t')
        out.append({kv.split('=')[0]: float(kv.split('=')[1]) for kv in cols[2].split()})
    return out
def mean(kind):
    ps = [probs('$TMP/e.%s.%s' % (t, kind)) for t in ('round-0', 'teacher-2', 'teacher-3')]
    return [{k: sum(p[i][k] for p in ps) / 3 for k in ps[0][i]} for i in range(len(ps[0]))]
pool = [l.rstrip('\n') for l in open('$TMP/pool.sentences')]
m = dict(zip(pool, mean('pool')))
pseudo = [json.loads(l) for l in open('$TMP/e/round-1/train.jsonl')][40:]
assert pseudo
s = json.load(open('$TMP/e/selftrain.json'))
reach = sum(max(p.values()) >= 0.7 for p in m.values())  # one teacher's count differs (295 against 183 here)
near = sum(abs(max(p.values()) - 0.7) < 1e-3 for p in m.values())
assert abs(s['rounds'][1]['candidates'] - reach) <= near, (s['rounds'][1], reach, near)
for r in pseudo:
    p = m[r['text']]
    assert p[r['label']] == max(p.values()) and p[r['label']] >= 0.7 - 1e-3, (r, p)
gold = [l.split('\t')[1].strip() for l in open('$TMP/dev.tsv')][1:]
md = mean('dev')
right = sum(max(p, key=p.get) == g for p, g in zip(md, gold))
near = sum(abs(max(p.values()) - 0.5) < 1e-3 for p in md)  # printed to 4 digits: a near-tie may round either way
ens = s['rounds'][1]['ensemble_dev_accuracy']
assert abs(ens * len(gold) - right) <= near + 1e-9, (ens, right, near)"

cp "$TMP/e/selftrain.json" "$TMP/e.summary"
"$SS" finetune "${FT[@]}" --unlabeled "$TMP/pool.tsv" --rounds 1 --threshold 0.7 --max-pseudo 120 --teachers 3 \
  --out "$TMP/e" >"$TMP/e2.log" 2>&1
check "--teachers 3 again: the three teachers and round 1 finished before, the same summary" bash -c "
[ $? -eq 0 ] && [ \$(grep -c 'finished before' '$TMP/e2.log') -eq 4 ] && cmp -s '$TMP/e/selftrain.json' '$TMP/e.summary'"

# the finished one-round run given --rounds 2: a later round goes on from it
"$SS" finetune "${FT[@]}" --unlabeled "$TMP/pool.tsv" --rounds 2 --threshold 0.7 --max-pseudo 120 --teachers 3 \
  --out "$TMP/e" >"$TMP/e3.log" 2>&1
rc=$?
"$SS" classify --model "$TMP/e/round-1" --threads 1 "$TMP/pool.sentences" >"$TMP/e.round-1.pool" 2>/dev/null
check "--rounds 2 on a finished one-round run: the teachers and round 1 are kept as they were, round 2's \
pseudo-labels are round 1's student's confident predictions, selftrain.json gains round 2" bash -c "
[ $rc -eq 0 ] && [ \$(grep -c 'finished before' '$TMP/e3.log') -eq 4 ] && /usr/bin/python3 -c \"
import json
old, new = json.load(open('$TMP/e.summary')), json.load(open('$TMP/e/selftrain.json'))
assert new['rounds'][:2] == old['rounds'] and new['teachers'] == old['teachers'], (old, new)
assert len(new['rounds']) == 3 and new['rounds'][2]['round'] == 2, new['rounds']
pool = [l.rstrip('\\n') for l in open('$TMP/pool.sentences')]
pred = {}
for text, line in zip(pool, open('$TMP/e.round-1.pool')):
    cols = line.rstrip('\\n').split('\\t')
    pred[text] = (cols[0], max(float(kv.split('=')[1]) for kv in cols[2].split()))
pseudo = [json.loads(l) for l in open('$TMP/e/round-2/train.jsonl')][40:]
assert len(pseudo) == new['rounds'][2]['pseudo_labels'] > 0, (len(pseudo), new['rounds'][2])
for r in pseudo:
    assert pred[r['text']][0] == r['label'] and pred[r['text']][1] >= 0.7 - 1e-3, (r, pred[r['text']])
\""

# a pool of one class only: round 1 finds no confident text of the other, so the rounds stop there
tail -n +2 "$TMP/pool.tsv" | cut -f1 | grep ' good ' >"$TMP/pool.good.txt"
"$SS" finetune "${FT[@]}" --unlabeled "$TMP/pool.good.txt" --rounds 2 --threshold 0.7 --out "$TMP/stop" >"$TMP/stop.log" 2>&1
check "a round without a confident text of some class stops the rounds, says so, and selftrain.json records it \
(rounds_asked 2, stopped_at_round 1, round 0 kept)" bash -c "
[ $? -eq 0 ] && grep -q 'self-training round 1: some class has no unlabelled text .*stopping after round 0' '$TMP/stop.log' &&
/usr/bin/python3 -c \"
import json
s = json.load(open('$TMP/stop/selftrain.json'))
assert s['rounds_asked'] == 2 and s['stopped_at_round'] == 1 and len(s['rounds']) == 1 and s['best_round'] == 0, s
a = json.load(open('$TMP/a/selftrain.json'))
assert a['rounds_asked'] == 2 and 'stopped_at_round' not in a, a
\" && cmp -s '$TMP/stop/model.safetensors' '$TMP/stop/round-0/model.safetensors'"

"$SS" finetune "${FT[@]}" --teachers 2 --out "$TMP/f" >"$TMP/f.log" 2>&1
check "a self-training option without --unlabeled is an error naming it" \
  bash -c "[ $? -ne 0 ] && grep -q -- '--teachers is a self-training option: it needs --unlabeled FILE' '$TMP/f.log' &&
           [ ! -e '$TMP/f' ]"

# --per-class 20: 20 rows of each class; the second teacher and the student
# get the same 40 rows the first teacher drew (seed 5: both teachers learn
# the keyword, so round 1 has pseudo-labels)
FT_PC=("${FT[@]}")
for i in "${!FT_PC[@]}"; do
  [ "${FT_PC[$i]}" = --train-size ] && FT_PC[$((i + 1))]=0
  [ "${FT_PC[$i]}" = --seed ] && FT_PC[$((i + 1))]=5
done
"$SS" finetune "${FT_PC[@]}" --per-class 20 --unlabeled "$TMP/pool.tsv" --rounds 1 --threshold 0.7 --max-pseudo 120 \
  --teachers 2 --out "$TMP/g" >"$TMP/g.log" 2>&1
check "--per-class 20 with --teachers 2: both teachers and the student train on the same 20 rows of each class" \
  bash -c "[ $? -eq 0 ] && [ \$(grep -c '^data: train 40 rows' '$TMP/g.log') -eq 2 ] && /usr/bin/python3 -c \"
import json, csv
train = {r['sentence']: r['label'] for r in csv.DictReader(open('$TMP/train.tsv'), delimiter='\\t')}
lab = [json.loads(l) for l in open('$TMP/g/labelled.jsonl')]
assert len(lab) == 40 and sum(r['label'] == '1' for r in lab) == 20, lab
assert all(train.get(r['text']) == r['label'] for r in lab)
rows = [json.loads(l) for l in open('$TMP/g/round-1/train.jsonl')]
assert rows[:40] == lab and len(rows) > 40
\""
"$SS" finetune "${FT[@]}" --per-class 20 --out "$TMP/h" >"$TMP/h.log" 2>&1
check "--per-class with --train-size is an error" \
  bash -c "[ $? -ne 0 ] && grep -q -- '--train-size and --per-class are two ways' '$TMP/h.log' && [ ! -e '$TMP/h' ]"
"$SS" finetune "${FT_PC[@]}" --per-class 101 --out "$TMP/h" >"$TMP/h.log" 2>&1
check "--per-class larger than a class is an error naming the class, its count and the file" \
  bash -c "[ $? -ne 0 ] && grep -q -- \"--per-class: 101 rows of each class asked for, but class '0' has 100 in $TMP/train.tsv\" '$TMP/h.log'"

: >"$TMP/empty.txt"
"$SS" finetune "${FT[@]}" --unlabeled "$TMP/empty.txt" --out "$TMP/d" >"$TMP/d.log" 2>&1
check "an empty unlabelled file is an error naming it" bash -c "[ $? -ne 0 ] && grep -q 'empty.txt: no texts' '$TMP/d.log'"
"$SS" finetune "${FT[@]}" --unlabeled "$TMP/nonexistent.txt" --out "$TMP/d" >"$TMP/d.log" 2>&1
check "a missing unlabelled file is an error naming it" bash -c "[ $? -ne 0 ] && grep -q 'nonexistent.txt' '$TMP/d.log'"
printf 'fine text\n\xff\xfe broken\n' >"$TMP/bad.txt"
"$SS" finetune "${FT[@]}" --unlabeled "$TMP/bad.txt" --out "$TMP/d" >"$TMP/d.log" 2>&1
check "invalid UTF-8 in an unlabelled line is an error naming FILE:LINE" \
  bash -c "[ $? -ne 0 ] && grep -q 'bad.txt:2: the line is not valid UTF-8' '$TMP/d.log'"
"$SS" finetune --resume --out "$TMP/a" "${ST[@]}" >"$TMP/d.log" 2>&1
check "--resume with --unlabeled says to run the same command again instead" \
  bash -c "[ $? -ne 0 ] && grep -q 'run the same command again' '$TMP/d.log'"
