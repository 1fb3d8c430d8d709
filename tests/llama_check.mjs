// llama.cpp (through the npm package node-llama-cpp, CPU only) on a GGUF file
// that `selfsup export` wrote: the real loader, tokenizer and graph.
//
//   node tests/llama_check.mjs tokenize GGUF LINES_FILE
//       the ids of each line of LINES_FILE (special-token text is plain text),
//       one line of space-separated ids per input line
//   node tests/llama_check.mjs generate GGUF PROMPT_FILE N THREADS [KV_TYPE]
//       the prompt's ids, then the N greedy (temperature 0) continuation ids,
//       as two lines "prompt: ..." and "generated: ..."
//   node tests/llama_check.mjs bench GGUF PROMPT_FILE N THREADS RUNS
//       greedy generation of N tokens RUNS times after a warm-up; one JSON
//       line per run with new tokens/s as `selfsup generate --stats` counts
//       them: N tokens over the time from the first generated token (which
//       comes with the prompt's pass) to the N-th, i.e. N-1 decoding steps
//
// The package directory comes from NODE_LLAMA_CPP_DIR (default
// .cache/npm/node_modules/node-llama-cpp). KV_TYPE is the KV cache element
// type (F32 default: selfsup's cache is float32; llama.cpp's default is F16).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.env.NODE_LLAMA_CPP_DIR || ".cache/npm/node_modules/node-llama-cpp";
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(resolve(dir, "dist/index.js")).href);

const [mode, gguf, file, ...rest] = process.argv.slice(2);
if (!mode || !gguf || !file) {
  console.error("usage: llama_check.mjs tokenize|generate|bench GGUF FILE [N THREADS [KV_TYPE|RUNS]]");
  process.exit(2);
}
// CPU only: no GPU probing (the machine has none), no source builds.
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: resolve(gguf), gpuLayers: 0 });

const text = readFileSync(file, "utf8");
if (mode === "tokenize") {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const out = lines.map((l) => Array.from(model.tokenize(l, false)).join(" "));
  process.stdout.write(out.join("\n") + "\n");
} else {
  const n = Number(rest[0] || 64), threads = Number(rest[1] || 1);
  const kv = mode === "generate" ? rest[2] || "F32" : "F32";
  const runs = mode === "bench" ? Number(rest[2] || 3) : 1;
  const prompt = Array.from(model.tokenize(text, false));
  const context = await model.createContext({
    contextSize: model.trainContextSize, sequences: 1, threads: { ideal: threads, min: threads },
    batchSize: Math.max(prompt.length, 1), experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv,
    flashAttention: false,
  });
  const seq = context.getSequence();
  // Greedy continuation of the prompt; returns the ids and the seconds from
  // the first generated token to the last (generation after the prompt).
  const greedy = async () => {
    await seq.clearHistory();
    const ids = [];
    let t0 = 0;
    for await (const id of seq.evaluate(prompt, { temperature: 0 })) {
      if (ids.length === 0) t0 = performance.now();
      ids.push(id);
      if (ids.length >= n) break;
    }
    return { ids, seconds: (performance.now() - t0) / 1000 };
  };
  if (mode === "generate") {
    const { ids } = await greedy();
    console.log("prompt: " + prompt.join(" "));
    console.log("generated: " + ids.join(" "));
  } else {
    await greedy(); // warm-up
    for (let r = 0; r < runs; r++) {
      const { ids, seconds } = await greedy();
      console.log(JSON.stringify({
        impl: "llama.cpp", threads, prompt_tokens: prompt.length, new_tokens: ids.length,
        generate_s: seconds, new_tokens_per_s: ids.length / seconds,
      }));
    }
  }
  await context.dispose();
}
await model.dispose();
await llama.dispose();
