// Hugging Face's own tokenizer code (tokenizers.js, the npm package
// @huggingface/tokenizers that transformers.js uses) on tokenizer.json files.
//
//   node tests/hf_tokenizers.mjs encode TOKENIZER LINES OUT
//       TOKENIZER is a tokenizer.json (its tokenizer_config.json beside it is
//       passed too when there is one). Writes, one line per line of LINES:
//         OUT.ids   the ids tokenizers.js gives (space-separated)
//         OUT.uni   the ids with Unicode's definitions where tokenizers.js
//                   deviates from them (see below)
//         OUT.why   which deviation touches the line ("" for none):
//                   "whitespace U+0085 ..." and/or "lowercase U+0130 ..."
//         OUT.dec   tokenizers.js's decoding of OUT.ids
//       A line that is not valid UTF-8 is reported as "invalid-utf8" in
//       OUT.why (a JavaScript string cannot hold it).
//   node tests/hf_tokenizers.mjs gpt2 ENCODER_JSON VOCAB_BPE OUT
//       GPT-2's tokenizer as Hugging Face publishes it (openai-community/gpt2
//       tokenizer.json: vocab from encoder.json, merges "a b" from vocab.bpe,
//       <|endoftext|> = 50256 the last id, ByteLevel pre-tokenizer,
//       post-processor and decoder), written here, not by selfsup.
//   node tests/hf_tokenizers.mjs gpt2-small ENCODER_JSON VOCAB_BPE N OUT
//       The newer layout (tokenizers >= 0.20): GPT-2's first N merges as
//       ["a", "b"] pairs, vocab the 256 bytes and those merges' results,
//       a Lowercase normalizer, and two added tokens after the vocab:
//       <|endoftext|> (in the vocab) and WikiText's @-@ (special, only in
//       added_tokens).
//
// The deviations: tokenizers.js implements the ByteLevel pre-tokenizer with a
// JavaScript regular expression whose \s is ECMAScript's white space
// (U+FEFF included, U+0085 NEL not), where Hugging Face's Rust tokenizers,
// Python's regex and selfsup use Unicode's White_Space property; and its
// Lowercase normalizer is String.prototype.toLowerCase (full case mapping:
// U+0130 -> "i" + U+0307, a word-final capital sigma -> final sigma), where
// selfsup maps each code point to its simple lowercase (as documented in
// include/selfsup/tokenizer.h). OUT.uni is tokenizers.js with exactly those
// two replaced: \s by \p{White_Space} in the pre-tokenizer pattern, and
// Lowercase by code-point-wise simple case mapping.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { resolve, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const [mode, ...args] = process.argv.slice(2);

// ---- GPT-2's tokenizer in Hugging Face's layout ------------------------------------
function gpt2(encoderPath, bpePath, nMerges) {
  const encoder = JSON.parse(readFileSync(encoderPath, "utf8"));
  const merges = readFileSync(bpePath, "utf8").split("\n").filter((l) => l && !l.startsWith("#version"));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const added = (id, content) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true,
  });
  if (nMerges === undefined) {
    return {
      version: "1.0", truncation: null, padding: null,
      added_tokens: [added(50256, "<|endoftext|>")],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: {
        type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
        fuse_unk: false, byte_fallback: false, vocab: encoder, merges,
      },
    };
  }
  // GPT-2's ids: the 256 bytes, then one per merge in rank order.
  const vocab = {};
  for (const [tok, id] of Object.entries(encoder)) if (id < 256 + nMerges) vocab[tok] = id;
  vocab["<|endoftext|>"] = 256 + nMerges;
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: [
      { ...added(256 + nMerges, "<|endoftext|>"), normalized: false },
      { ...added(257 + nMerges, "@-@"), normalized: false },
    ],
    normalizer: { type: "Lowercase" },
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab,
      merges: merges.slice(0, nMerges).map((m) => m.split(" ")),
    },
  };
}

if (mode === "gpt2" || mode === "gpt2-small") {
  const small = mode === "gpt2-small";
  const [enc, bpe, a3, a4] = args;
  const out = small ? a4 : a3;
  if (!enc || !bpe || !out || (small && !(Number(a3) > 0))) {
    console.error("usage: hf_tokenizers.mjs gpt2 ENCODER_JSON VOCAB_BPE OUT | gpt2-small ENCODER_JSON VOCAB_BPE N OUT");
    process.exit(2);
  }
  writeFileSync(out, JSON.stringify(gpt2(enc, bpe, small ? Number(a3) : undefined), null, 2) + "\n");
  process.exit(0);
}

if (mode !== "encode" || args.length !== 3) {
  console.error("usage: hf_tokenizers.mjs encode TOKENIZER LINES OUT | gpt2 ... | gpt2-small ...");
  process.exit(2);
}

// ---- encode ----------------------------------------------------------------------------
const dir = process.env.HF_TOKENIZERS_DIR || ".cache/npm-tokenizers/node_modules/@huggingface/tokenizers";
const { Tokenizer } = await import(pathToFileURL(resolve(dir, "dist/tokenizers.mjs")).href);

const [tokPath, linesPath, out] = args;
const json = JSON.parse(readFileSync(tokPath, "utf8"));
const cfgPath = join(dirname(tokPath), "tokenizer_config.json");
const config = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
const stock = new Tokenizer(json, config);
const uni = new Tokenizer(json, config);

// The Unicode variant: White_Space in the pre-tokenizer pattern...
const wsPattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;
let patchedPre = 0;
const patchPre = (p) => {
  if (!p) return;
  if (p.pattern instanceof RegExp && p.pattern.source.startsWith("'s|'t|'re")) { p.pattern = wsPattern; patchedPre++; }
  for (const q of p.pretokenizers ?? p.pre_tokenizers ?? []) patchPre(q);
};
patchPre(uni.pre_tokenizer);
if (json.pre_tokenizer && !patchedPre) {
  console.error("hf_tokenizers.mjs: found no ByteLevel pattern to patch in tokenizers.js's pre-tokenizer (a new version?)");
  process.exit(1);
}
// ... and simple case mapping: each code point to one (U+0130 -> "i"; capital
// sigma always to U+03C3), as utf8proc_tolower does.
const simpleLower = (s) => Array.from(s, (c) => Array.from(c.toLowerCase())[0]).join("");
let lowercases = false;
const patchNorm = (n) => {
  if (!n) return;
  if (n.config?.type === "Lowercase") { n.normalize = simpleLower; lowercases = true; }
  for (const m of n.normalizers ?? []) patchNorm(m);
};
patchNorm(uni.normalizer);

// Characters whose white-space-ness differs between ECMAScript's \s and Unicode.
const jsWs = /\s/u, uniWs = /\p{White_Space}/u;
const hex = (c) => "U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
function why(line) {
  const tags = [];
  const ws = [...new Set(Array.from(line).filter((c) => jsWs.test(c) !== uniWs.test(c)))];
  if (ws.length) tags.push("whitespace " + ws.map(hex).join(","));
  if (lowercases) {
    // NFC/NFKC may come first: compare full and simple lowercase of every
    // normal form the tokenizer could hand to Lowercase.
    const forms = [line, line.normalize("NFC"), line.normalize("NFKC")];
    const lc = [...new Set(forms.flatMap((f) => Array.from(f).filter((c) => c.toLowerCase() !== simpleLower(c) ||
      (c === "\u03A3"))))];
    if (lc.length) tags.push("lowercase " + lc.map(hex).join(","));
  }
  return tags.join("; ");
}

const bytes = readFileSync(linesPath);
const decoder = new TextDecoder("utf-8", { fatal: true });
const res = { ids: [], uni: [], why: [], dec: [] };
let start = 0;
while (start < bytes.length) {
  let end = bytes.indexOf(0x0a, start);
  if (end < 0) end = bytes.length;
  let line = null;
  try { line = decoder.decode(bytes.subarray(start, end)); } catch { line = null; }
  if (line === null) {
    res.ids.push(""); res.uni.push(""); res.why.push("invalid-utf8"); res.dec.push("");
  } else {
    const ids = stock.encode(line, { add_special_tokens: false }).ids;
    res.ids.push(ids.join(" "));
    res.uni.push(uni.encode(line, { add_special_tokens: false }).ids.join(" "));
    res.why.push(why(line));
    res.dec.push(stock.decode(ids, { skip_special_tokens: false }));
  }
  start = end + 1;
}
for (const k of Object.keys(res)) writeFileSync(`${out}.${k}`, res[k].map((l) => l + "\n").join(""));
