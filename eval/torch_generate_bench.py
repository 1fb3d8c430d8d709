"""PyTorch side of `make bench-generate`: batch-1 greedy decoding speed of the
reference decoder (tests/torch_ref.py), with a KV cache and with full
recompute, checked against each other.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
        /usr/bin/python3 eval/torch_generate_bench.py --model RUN --threads 1
    ... --random                 config S (L=4 C=256 NH=4 F=1024 V=8192 maxT=512),
                                 seeded spec (GPT-2) init, instead of --model
    ... --prompt-tokens 16 --new-tokens 256 --modes kv_cache,full --threads 1,2

The prompt is --prompt-tokens seeded random ids (speed does not depend on the
ids), or the given --prompt-ids (to compare the greedy tokens with selfsup's).
Both modes run under torch.no_grad() with torch.set_num_threads(T):

  kv_cache  the prompt in one batched causal forward that fills a per-layer
            cache (k and v as [NH, maxT, hs], preallocated; "append" writes
            row t), then one token at a time: embedding at position t, per
            block ln1, qkv, write k/v row t, attention of the single query over
            rows 0..t, proj, residual, ln2, MLP, residual; ln_f; tied logits.
            Every weight is the model's own parameter (its modules are called).
  full      the model's forward over the whole sequence for every new token
            (its LM head only on the last position, which picks the token).

Timing follows selfsup's `generate --stats`: "prompt" = the forward that
produces the logits after the prompt; "generated" = from then until the
--new-tokens-th token is chosen (the first comes from the prompt's logits, the
others each need one forward), so new_tokens_per_s = new tokens / that time.
ms_per_token_median is the median time of one decoding forward + argmax.
Each mode does --warmup (full: --full-warmup) untimed generations first and
then --runs timed ones; "# tokens" lines give each mode's greedy tokens;
one JSON line per (threads, mode, run):
    {"impl":"torch","mode":"kv_cache","threads":1,"prompt_tokens_per_s":...,
     "new_tokens_per_s":...,"ms_per_token_median":...,...}
Lines starting with "#" describe torch's thread setup, the BLAS library mapped
into the process (/proc/self/maps) and the cache-vs-full check: the tokens the
cached decoder picked are fed through one full forward, whose argmax at every
generated position must reproduce them (so full-recompute greedy decoding
gives the same tokens, by induction), and whose logits at a few positions must
match the cached ones to 1e-4 (relative to max(1, max |logit|); a token may
differ only at a near-tie, where the two best full logits are that close);
when the full mode runs, its tokens are compared directly too. A failed check
exits 1.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import torch_ref as R  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train_bench import loaded_blas, parallel_summary  # noqa: E402  (thread setup lines)

CONFIG_S = dict(V=8192, L=4, C=256, NH=4, F=1024, maxT=512)
TOL = 1e-4


class KVDecoder:
    """Incremental greedy decoding of a SelfsupModel decoder with a KV cache."""

    def __init__(self, model):
        cfg = model.cfg
        self.m = model
        self.NH, self.C, self.maxT = cfg["n_head"], cfg["d_model"], cfg["max_seq"]
        self.hs = self.C // self.NH
        self.scale = 1.0 / math.sqrt(self.hs)
        self.tok, self.pos = model.tables()
        shape = (self.NH, self.maxT, self.hs)
        self.k = [torch.empty(shape) for _ in model.blocks]
        self.v = [torch.empty(shape) for _ in model.blocks]
        self.t = 0  # tokens in the cache

    def logits(self, x):
        return F.linear(self.m.ln_f(x), self.tok.weight)

    def prefill(self, ids):
        """ids [T] long: causal forward over the prompt, filling the cache;
        returns the logits [V] after the last prompt token."""
        T, NH, hs, C = ids.shape[0], self.NH, self.hs, self.C
        x = self.tok.weight[ids] + self.pos.weight[:T]  # [T, C]
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        for blk, kc, vc in zip(self.m.blocks, self.k, self.v):
            q, k, v = blk.attn.qkv(blk.ln1(x)).view(T, 3, NH, hs).permute(1, 2, 0, 3)
            kc[:, :T] = k
            vc[:, :T] = v
            s = (q @ k.transpose(1, 2)).mul_(self.scale).masked_fill_(mask, float("-inf"))
            y = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, C)
            x = x + blk.attn.proj(y)
            x = x + blk.mlp(blk.ln2(x))
        self.t = T
        return self.logits(x[T - 1:])[0]

    def step(self, token):
        """Append one token (a python int) at position self.t; its logits [V]."""
        t, NH, hs = self.t, self.NH, self.hs
        if t >= self.maxT:
            raise ValueError(f"sequence longer than max_seq {self.maxT}")
        x = self.tok.weight[token] + self.pos.weight[t]  # [C]
        for blk, kc, vc in zip(self.m.blocks, self.k, self.v):
            q, k, v = blk.attn.qkv(blk.ln1(x)).view(3, NH, hs)
            kc[:, t] = k
            vc[:, t] = v
            # one query per head over keys 0..t: [NH, t+1, hs] @ [NH, hs, 1]
            s = (kc[:, :t + 1] @ q.unsqueeze(2)).squeeze(2).mul_(self.scale)
            y = (torch.softmax(s, dim=-1).unsqueeze(1) @ vc[:, :t + 1]).reshape(self.C)
            x = x + blk.attn.proj(y)
            x = x + blk.mlp(blk.ln2(x))
        self.t = t + 1
        return self.logits(x)


def last_logits(model, tokens):
    """Full recompute: the model's body over all of tokens [1,T], the tied LM
    head on the last position only (the one that picks the next token)."""
    return model.head_out(model.hidden(tokens)[0, -1])


def generate(model, mode, prompt, n_new, keep_at=()):
    """Greedy decoding of n_new tokens. Returns (tokens list, prompt seconds,
    generation seconds, per-step seconds list, {step: logits} for steps in
    keep_at, where step i's logits choose new token i)."""
    kept = {}
    steps = []
    if mode == "kv_cache":
        dec = KVDecoder(model)
        t0 = time.perf_counter()
        logits = dec.prefill(prompt)
    else:
        buf = torch.empty(prompt.shape[0] + n_new, dtype=torch.long)
        buf[:prompt.shape[0]] = prompt
        t0 = time.perf_counter()
        logits = last_logits(model, buf[None, :prompt.shape[0]])
    t1 = time.perf_counter()
    out = []
    for i in range(n_new):
        ts = time.perf_counter()
        if i in keep_at:
            kept[i] = logits.clone()
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        if i + 1 == n_new:
            break
        if mode == "kv_cache":
            logits = dec.step(nxt)
        else:
            n = prompt.shape[0] + i + 1
            buf[n - 1] = nxt
            logits = last_logits(model, buf[None, :n])
        steps.append(time.perf_counter() - ts)
    t2 = time.perf_counter()
    return out, t1 - t0, t2 - t1, steps, kept


def check(model, prompt, tokens, kept):
    """Feed prompt + the cached decoder's tokens through one full forward:
    its argmax must reproduce every token, its logits the kept ones."""
    seq = torch.cat([prompt, torch.tensor(tokens, dtype=torch.long)])
    full = model(seq[None, :-1])[0, prompt.shape[0] - 1:]  # row i chooses token i
    pick = full.argmax(dim=-1).tolist()
    bad = [i for i, (a, b) in enumerate(zip(pick, tokens)) if a != b]
    # a mismatch is only acceptable at a near-tie: the cached pick's full
    # logit within the tolerance of the full maximum
    gaps = [float(full[i].max() - full[i, tokens[i]]) for i in bad]
    ties = [g <= TOL * max(1.0, float(full[i].abs().max())) for g, i in zip(gaps, bad)]
    ok = all(ties)
    print(f"# check: full-recompute argmax reproduces {len(tokens) - len(bad)}/{len(tokens)} "
          f"cached greedy tokens" + (f" (mismatches at new tokens {bad}, logit gaps "
                                     f"{['%.1e' % g for g in gaps]}: "
                                     f"{'near-ties' if ok else 'FAIL'})" if bad else ""))
    for i, lg in sorted(kept.items()):
        ref = full[i]
        diff = float((lg - ref).abs().max())
        bound = TOL * max(1.0, float(ref.abs().max()))
        ok &= diff <= bound
        print(f"# check: logits for new token {i}: max |kv_cache - full| = {diff:.2e} "
              f"(bound {bound:.1e}, max |logit| {float(ref.abs().max()):.2f}) "
              f"{'ok' if diff <= bound else 'FAIL'}")
    return ok, bool(bad)


def load_model(args):
    if args.random:
        c = CONFIG_S
        cfg = R.make_config("decoder", c["V"], c["L"], c["C"], c["NH"], c["F"], c["maxT"])
        model = R.SelfsupModel(cfg)
        R.init_weights(model, torch.Generator().manual_seed(args.seed))
        return model, "random config S (spec init, seed %d)" % args.seed
    model = R.SelfsupModel.from_run_dir(args.model)
    if model.cfg["kind"] != "decoder" or R.head_of(model.cfg) != "lm":
        sys.exit(f"torch_generate_bench.py: {args.model} is not a decoder with an LM head")
    return model, args.model


def record(mode, threads, n_prompt, n_new, tp, tg, steps, run, cfg):
    return {"impl": "torch", "mode": mode, "threads": threads,
            "prompt_tokens": n_prompt, "new_tokens": n_new,
            "prompt_tokens_per_s": round(n_prompt / tp, 1),
            "new_tokens_per_s": round(n_new / tg, 1),
            "ms_per_token_median": round(statistics.median(steps) * 1e3, 4) if steps else None,
            "prompt_s": round(tp, 5), "generate_s": round(tg, 5), "run": run,
            "config": {k: cfg[k] for k in ("n_layer", "d_model", "n_head", "d_ff",
                                           "vocab_size", "max_seq")},
            "blas": [os.path.basename(p) for p in loaded_blas()], "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description="PyTorch greedy generation benchmark")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="selfsup decoder run directory")
    src.add_argument("--random", action="store_true", help="config S with seeded random weights")
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--prompt-ids", help="the prompt as space-separated token ids "
                    "(e.g. from `selfsup tokenizer encode`) instead of random ones")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    ap.add_argument("--modes", default="kv_cache,full")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--full-warmup", type=int, default=None,
                    help="untimed generations for mode full (default: --warmup)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        sys.exit("torch_generate_bench.py: --threads takes comma-separated integers")
    modes = args.modes.split(",")
    if any(m not in ("kv_cache", "full") for m in modes):
        sys.exit("torch_generate_bench.py: --modes takes kv_cache and/or full")
    if (min(threads) < 1 or args.prompt_tokens < 1 or args.new_tokens < 1 or args.runs < 1
            or args.warmup < 0):
        sys.exit("torch_generate_bench.py: --threads, --prompt-tokens, --new-tokens and --runs "
                 "must be >= 1, --warmup >= 0")
    model, what = load_model(args)
    model.eval()
    cfg = model.cfg
    if args.prompt_tokens + args.new_tokens > cfg["max_seq"]:
        sys.exit(f"torch_generate_bench.py: {args.prompt_tokens} + {args.new_tokens} tokens "
                 f"exceed max_seq {cfg['max_seq']}")
    if args.prompt_ids:
        try:
            prompt = torch.tensor([int(t) for t in args.prompt_ids.split()], dtype=torch.long)
        except ValueError:
            sys.exit("torch_generate_bench.py: --prompt-ids takes space-separated integers")
        if not len(prompt) or int(prompt.min()) < 0 or int(prompt.max()) >= cfg["vocab_size"]:
            sys.exit("torch_generate_bench.py: --prompt-ids must be ids in [0, vocab_size)")
        args.prompt_tokens = len(prompt)
    else:
        gen = torch.Generator().manual_seed(args.seed + 1)
        prompt = torch.randint(0, cfg["vocab_size"], (args.prompt_tokens,), generator=gen)
    torch.set_num_interop_threads(1)
    print(f"# model: {what}: L={cfg['n_layer']} C={cfg['d_model']} NH={cfg['n_head']} "
          f"F={cfg['d_ff']} V={cfg['vocab_size']} maxT={cfg['max_seq']}; prompt "
          f"{args.prompt_tokens} {'given' if args.prompt_ids else 'random'} tokens, "
          f"{args.new_tokens} new tokens, greedy, batch 1",
          flush=True)
    n = args.new_tokens
    keep = sorted({0, 1, n // 2, n - 1})
    ok, tied = True, False
    with torch.no_grad():
        for th in threads:
            torch.set_num_threads(th)
            print(f"# torch {torch.__version__}: {parallel_summary()}", flush=True)
            print(f"# BLAS mapped: {', '.join(loaded_blas()) or 'none found'}; "
                  f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')}", flush=True)
            tokens = {}
            for mode in modes:
                warm = args.warmup if mode == "kv_cache" or args.full_warmup is None \
                    else args.full_warmup
                for r in range(warm + args.runs):
                    out, tp, tg, steps, kept = generate(model, mode, prompt, n,
                                                        keep if r == 0 else ())
                    if r == 0:
                        tokens[mode] = out
                        print(f"# tokens ({mode}, {th} threads): {' '.join(map(str, out))}",
                              flush=True)
                        if mode == "kv_cache":
                            good, tied = check(model, prompt, out, kept)
                            ok &= good
                    if r >= warm:
                        print(json.dumps(record(mode, th, args.prompt_tokens, n, tp, tg, steps,
                                                r - warm, cfg)), flush=True)
            if len(tokens) == 2:
                same = tokens["kv_cache"] == tokens["full"]
                ok &= same or tied  # after a near-tie the two may part ways
                print(f"# check: kv_cache and full greedy tokens identical ({n} tokens, "
                      f"{th} threads): {'yes' if same else 'no'}", flush=True)
    if not ok:
        sys.exit("torch_generate_bench.py: the KV-cache decoder disagrees with full recompute")


if __name__ == "__main__":
    main()
