// Times a GPT-2 encoder from npm on one text file, single-threaded (node).
// usage: node encode_bench.js gpt-tokenizer|tiktoken FILE RUNS
// Prints one line per run: "<name> <bytes> <tokens> <seconds>".
'use strict';
const fs = require('fs');
const [name, file, runsArg] = process.argv.slice(2);
const text = fs.readFileSync(file, 'utf8');
const bytes = Buffer.byteLength(text, 'utf8');
let encode, cleanup = () => {};
if (name === 'gpt-tokenizer') {
  encode = require('gpt-tokenizer/cjs/encoding/gpt2').encode;
} else if (name === 'tiktoken') {
  const enc = require('tiktoken').get_encoding('gpt2');
  encode = (s) => enc.encode(s);
  cleanup = () => enc.free();
} else {
  throw new Error('unknown encoder ' + name);
}
encode('warm up the caches and the JIT');
for (let r = 0; r < Number(runsArg || 3); r++) {
  const t0 = process.hrtime.bigint();
  const ids = encode(text);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${name} ${bytes} ${ids.length} ${dt.toFixed(4)}`);
}
cleanup();
