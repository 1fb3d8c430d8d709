#!/usr/bin/env bash
# selfsup's tokenizer.json against Hugging Face's own tokenizer code:
# tokenizers.js (the npm package @huggingface/tokenizers, pinned, installed
# once into the git-ignored .cache/npm-tokenizers/; tests/hf_tokenizers.mjs).
#
# - Five tokenizers trained by selfsup on a slice of each corpus (plain,
#   --lowercase, --normalize nfc, --normalize nfkc --lowercase, and special
#   tokens that occur in the text: WikiText's @-@ and @.@, "movie" (inside
#   words too) and " the film" in IMDB) load in tokenizers.js and give
#   the ids of `selfsup tokenizer encode --lines --allow-special` on 1,000
#   other lines of IMDB (unsup.txt.zst) and 1,000 lines of WikiText-2
#   (tokenizers.js always matches added tokens).
# - The other way round: GPT-2's tokenizer in Hugging Face's layout
#   (openai-community/gpt2's tokenizer.json, built from GPT-2's published
#   encoder.json and vocab.bpe by tests/hf_tokenizers.mjs), and a small one
#   in the newer layout (merges as pairs, Lowercase, an added token outside
#   the vocab: WikiText's @-@), load in selfsup with the ids tokenizers.js gives.
#
# Differences are listed and explained, never ignored. Two are known, both
# where tokenizers.js departs from Unicode: its ByteLevel pattern is a
# JavaScript regex whose \s leaves out U+0085 (NEL) and takes in U+FEFF,
# where Rust's tokenizers, Python's regex and selfsup use Unicode's
# White_Space; and its Lowercase is full case mapping where selfsup's is
# simple case mapping (U+0130, final sigma; include/selfsup/tokenizer.h).
# A differing line passes only when it contains such a character AND
# tokenizers.js with exactly those two definitions replaced by Unicode's
# gives selfsup's ids on it; any other difference fails the case.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 18
tap_needs imdb unsup.txt.zst cli-hf-tokenizers
HF=$(dirname "$0")/hf_tokenizers.mjs
HF_NPM_VERSION=0.2.0
HF_NPM_PREFIX=${HF_NPM_PREFIX:-.cache/npm-tokenizers}

# The other corpora: from the mirror, or fetched like tap_needs does.
corpus_dir() { # NAME FILE...: prints the directory holding the files
  local name=$1; shift
  if [ -n "${SELFSUP_DATA_MIRROR:-}" ] && [ -f "$SELFSUP_DATA_MIRROR/$name/$1" ]; then
    echo "$SELFSUP_DATA_MIRROR/$name"
  else
    "$SS" data get "$name" "$@" --dest corpora/cache 2>/dev/null
  fi
}
WIKI=$(corpus_dir wikitext-2 wiki.test.raw) && [ -f "$WIKI/wiki.test.raw" ] ||
  bail "this test needs WikiText-2 (selfsup data get wikitext-2, or SELFSUP_DATA_MIRROR)"
GPT2=$(corpus_dir gpt2-tokenizer encoder.json vocab.bpe) && [ -f "$GPT2/vocab.bpe" ] ||
  bail "this test needs GPT-2's encoder.json and vocab.bpe (selfsup data get gpt2-tokenizer encoder.json vocab.bpe, or SELFSUP_DATA_MIRROR)"

# tokenizers.js, installed once: on failure the reason and how to fix it in HF_SETUP_ERROR.
hf_setup() {
  local how="install it with: npm i -E --prefix $HF_NPM_PREFIX @huggingface/tokenizers@$HF_NPM_VERSION (needs the npm registry)"
  local pkg=$HF_NPM_PREFIX/node_modules/@huggingface/tokenizers log
  HF_SETUP_ERROR=""
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    HF_SETUP_ERROR="the tokenizers.js checks need Node.js and npm (Debian: apt-get install nodejs npm; make check installs them as root); $how"
    return 1
  fi
  if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 18 ]; then
    HF_SETUP_ERROR="tokenizers.js needs Node.js >= 18, this is $(node --version)"
    return 1
  fi
  if [ "$(node -p "require('./$pkg/package.json').version" 2>/dev/null)" != "$HF_NPM_VERSION" ]; then
    mkdir -p "$HF_NPM_PREFIX"
    if ! log=$(npm i -E --no-audit --no-fund --prefix "$HF_NPM_PREFIX" "@huggingface/tokenizers@$HF_NPM_VERSION" 2>&1); then
      HF_SETUP_ERROR="could not install @huggingface/tokenizers $HF_NPM_VERSION from the npm registry: $(printf '%s' "$log" | grep -m1 -i 'err' || printf '%s' "$log" | tail -1); $how"
      return 1
    fi
  fi
  HF_TOKENIZERS_DIR=$(cd "$pkg" && pwd)
  export HF_TOKENIZERS_DIR
}

# ---- the lines: 1,000 of each corpus to compare, a slice of the rest to train on ----
zstd -dc "$MIRROR/imdb/unsup.txt.zst" | head -n 3000 >"$TMP/imdb_all.txt"
head -n 1000 "$TMP/imdb_all.txt" >"$TMP/imdb.txt"
tail -n +1001 "$TMP/imdb_all.txt" >"$TMP/imdb_train.txt"
head -n 1000 "$WIKI/wiki.test.raw" >"$TMP/wiki.txt"
tail -n +1001 "$WIKI/wiki.test.raw" >"$TMP/wiki_train.txt"

# ---- selfsup's tokenizers (vocab 2000, one thread) ----
TOKS="plain lower nfc nfkc_lower special"
train_flags() { # FLAGS=(the train options of tokenizer $1)
  case $1 in
    plain) FLAGS=() ;;
    lower) FLAGS=(--lowercase) ;;
    nfc) FLAGS=(--normalize nfc) ;;
    nfkc_lower) FLAGS=(--normalize nfkc --lowercase) ;;
    special) FLAGS=(--special-tokens '<|endoftext|>,[MASK],@-@,@.@,movie, the film') ;;
  esac
}
trained=1
for c in imdb wiki; do
  for t in $TOKS; do
    mkdir -p "$TMP/$c/$t"
    train_flags $t
    "$SS" tokenizer train --vocab-size 2000 --threads 1 "${FLAGS[@]}" --out "$TMP/$c/$t/tokenizer.json" \
      "$TMP/${c}_train.txt" >"$TMP/train_${c}_$t.log" 2>&1 || trained=0
  done
done
trained_ok() {
  [ $trained = 1 ] || return 1
  for c in imdb wiki; do for t in $TOKS; do [ -f "$TMP/$c/$t/tokenizer_config.json" ] || return 1; done; done
}
check "selfsup trains the ten tokenizers (tokenizer.json and tokenizer_config.json)" trained_ok

# compare NAME TOKENIZER LINES [JS_TOKENIZER]: selfsup's ids against
# tokenizers.js's (on JS_TOKENIZER when given: the control below), line by
# line. Prints "# " lines: the count of equal lines, then each differing line
# with its explanation (or "unexplained"), and the ids from where they part.
# Returns 0 when every difference is one of the documented kind.
compare() {
  local name=$1 tok=$2 lines=$3 jstok=${4:-$2} out=$TMP/cmp_$1
  if ! "$SS" tokenizer encode --tokenizer "$tok" --lines --allow-special "$lines" >"$out.ss" 2>"$out.err"; then
    echo "# $name: selfsup encode failed: $(tail -2 "$out.err")"; return 1
  fi
  if ! node "$HF" encode "$jstok" "$lines" "$out" 2>"$out.err"; then
    echo "# $name: tokenizers.js failed: $(tail -3 "$out.err")"; return 1
  fi
  awk -v name="$name" -v want="$(wc -l <"$lines")" -v js="$out.ids" -v uni="$out.uni" -v why="$out.why" '
    function part(a, b,   x, y, n, m, i, s) { # ids of a and b from the first that differs
      n = split(a, x, " "); m = split(b, y, " ")
      for (i = 1; i <= n && i <= m && x[i] == y[i]; i++);
      s = "from id " i ": selfsup"; for (k = i; k < i + 4 && k <= n; k++) s = s " " x[k]
      s = s " | tokenizers.js"; for (k = i; k < i + 4 && k <= m; k++) s = s " " y[k]
      return s
    }
    { ss = $0; total++
      if ((getline j < js) <= 0) { short = 1; next }
      getline u < uni; getline w < why
      if (j == ss) { equal++; next }
      if (w != "" && w != "invalid-utf8" && u == ss) { explained++; kinds[w]++; shown[++ns] = "line " NR ": " w " (" part(ss, j) ")" }
      else { bad++; shown[++ns] = "line " NR ": unexplained" (w != "" ? " (" w ")" : "") ": " part(ss, j) }
    }
    END {
      if ((getline j < js) > 0) short = 1
      printf "# %s: %d/%d lines equal", name, equal, total
      if (explained) { printf "; %d differ, explained:", explained; for (k in kinds) printf " %s (%d)", k, kinds[k] }
      if (bad) printf "; %d UNEXPLAINED", bad
      if (short || total != want) printf "; line counts differ (%d lines, want %d)", total, want
      printf "\n"
      for (i = 1; i <= ns && i <= 12; i++) print "#   " shown[i]
      exit (bad || short || total != want || total == 0) ? 1 : 0
    }' "$out.ss"
}

hf_setup || bail "tokenizers.js is not available: $HF_SETUP_ERROR"

# ---- selfsup's tokenizers in tokenizers.js ----
for t in $TOKS; do
  for c in imdb wiki; do
    compare "$t-$c" "$TMP/$c/$t/tokenizer.json" "$TMP/$c.txt" >"$TMP/report" 2>&1
    r=$?
    cat "$TMP/report"
    train_flags $t
    what="$t tokenizer (${FLAGS[*]:-no options}), $c: tokenizers.js gives selfsup's ids (differences explained)"
    if [ $t = special ]; then # the special tokens (ids 2-5) must occur in the text
      n=$(awk '{ for (i = 1; i <= NF; i++) n += ($i >= 2 && $i <= 5) } END { print n + 0 }' "$TMP/cmp_$t-$c.ss")
      echo "# $t-$c: $n special tokens matched"
      [ "$n" -gt 0 ] || r=1
    fi
    if [ $r = 0 ]; then ok "$what"; else notok "$what"; fi
  done
done

# tokenizers.js decodes selfsup's ids back to the text with the plain
# tokenizer and its tokenizer_config.json (clean_up_tokenization_spaces false)
check "tokenizers.js decodes the plain tokenizers' ids back to the 2,000 lines byte for byte" \
  bash -c "cmp -s '$TMP/cmp_plain-imdb.dec' '$TMP/imdb.txt' && cmp -s '$TMP/cmp_plain-wiki.dec' '$TMP/wiki.txt'"

# ---- the other way round: Hugging Face's layouts, written by tokenizers.js's side ----
mkdir -p "$TMP/gpt2" "$TMP/gpt2s"
node "$HF" gpt2 "$GPT2/encoder.json" "$GPT2/vocab.bpe" "$TMP/gpt2/tokenizer.json" &&
  node "$HF" gpt2-small "$GPT2/encoder.json" "$GPT2/vocab.bpe" 3000 "$TMP/gpt2s/tokenizer.json" ||
  echo "# could not write the GPT-2 tokenizer.json files"
for t in gpt2 gpt2s; do
  for c in imdb wiki; do
    compare "$t-$c" "$TMP/$t/tokenizer.json" "$TMP/$c.txt" >"$TMP/report" 2>&1
    r=$?
    cat "$TMP/report"
    what=$([ $t = gpt2 ] && echo "GPT-2's tokenizer.json as Hugging Face lays it out" ||
      echo "a tokenizer.json in the newer layout (pair merges, Lowercase, an added @-@)")
    what="$what loads in selfsup; $c: the ids of tokenizers.js (differences explained)"
    if [ $t-$c = gpt2s-wiki ]; then # the added @-@ (id 256 + 3000 merges + 1) must occur
      n=$(awk '{ for (i = 1; i <= NF; i++) n += ($i == 3257) } END { print n + 0 }' "$TMP/cmp_$t-$c.ss")
      echo "# $t-$c: @-@ matched $n times"
      [ "$n" -gt 0 ] || r=1
    fi
    if [ $r = 0 ]; then ok "$what"; else notok "$what"; fi
  done
done

# ---- the comparison itself: the documented differences are found and
# explained, and any other difference fails ----
printf '%b\n' 'a review \u0085with a NEL after a space' 'x \ufeffword after a BOM' 'plain text' \
  'İSTANBUL and ΟΔΟΣ ΣΟΦΙΑΣ' >"$TMP/deviations.txt"
compare gpt2-deviations "$TMP/gpt2/tokenizer.json" "$TMP/deviations.txt" >"$TMP/r1" 2>&1; r1=$?
compare gpt2s-deviations "$TMP/gpt2s/tokenizer.json" "$TMP/deviations.txt" >"$TMP/r2" 2>&1; r2=$?
cat "$TMP/r1" "$TMP/r2"
check "lines with U+0085, U+FEFF (whitespace) and U+0130, final sigma (lowercase) differ and are explained" \
  bash -c "[ $r1 = 0 ] && [ $r2 = 0 ] && grep -q 'line 1: whitespace U+0085' '$TMP/r1' &&
    grep -q 'line 2: whitespace U+FEFF' '$TMP/r1' && grep -q 'line 4: lowercase' '$TMP/r2'"
# tokenizers.js on a copy without the first merge: differences of another kind
mkdir -p "$TMP/broken"
node -e 'const fs = require("fs"); const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  j.model.merges.shift(); fs.writeFileSync(process.argv[2], JSON.stringify(j));' \
  "$TMP/imdb/plain/tokenizer.json" "$TMP/broken/tokenizer.json"
compare broken-merge "$TMP/imdb/plain/tokenizer.json" "$TMP/imdb.txt" "$TMP/broken/tokenizer.json" >"$TMP/r3" 2>&1
r3=$?
head -3 "$TMP/r3"
check "another difference (tokenizers.js reads a copy without the first merge) fails the comparison" \
  bash -c "[ $r3 = 1 ] && grep -q UNEXPLAINED '$TMP/r3' && ! grep -q 'differ, explained' '$TMP/r3'"
