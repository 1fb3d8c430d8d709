"""PyTorch side of `make bench-train`: training throughput of the reference
model (tests/torch_ref.py, the same architecture as selfsup's C engine) on
random token windows.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
        /usr/bin/python3 eval/torch_train_bench.py --threads 2 [--configs S,M]

    ... --objective clm|mlm|rtd   (default clm)
    ... --bf16     forward and loss under torch.autocast("cpu", dtype=torch.bfloat16)
                   (oneDNN bf16 matmuls, fp32 master weights), PyTorch's mixed precision

Objectives (V = 8192, fp32, dropout 0, AdamW with the spec's decay rule, grad
clip 1.0, all on padding-free random token batches):
    clm  decoder, next-token loss at every position
    mlm  encoder with the MLM head; 15% of positions masked (BERT's 80/10/10
         corruption, [MASK] = V-1), loss at the masked positions only
    rtd  ELECTRA: generator (gen_size 0.25, MLM head on the shared embeddings)
         + encoder discriminator; samples drawn with torch.multinomial under
         no_grad inside the timed step; loss = gen_loss + 50 * disc_loss
Configs (the discriminator's dims for rtd):
    S  L=4 C=256 NH=4 F=1024 T=128 B=16
    M  L=6 C=384 NH=6 F=1536 T=256 B=8
Each run does --warmup untimed steps, then --steps timed steps (one step =
zero_grad, forward, backward, clip, AdamW step, on a fresh random batch), and
prints one JSON line per config:
    {"impl":"torch","objective":"clm","config":"S","threads":2,"tokens_per_s":...,
     "step_ms_median":...,"peak_rss_mb":...,...}
tokens_per_s = B*T / median step time; cpu_ms_per_step is the process CPU
time per step (all threads), a check on how busy the machine was. Lines starting with "#" describe the
thread setup (torch's parallel_info summary and the BLAS library actually
mapped into the process, read from /proc/self/maps), so the output records
what was measured. PyTorch's intra-op threads are set with
torch.set_num_threads(--threads); --interop sets the inter-op pool.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import torch_ref as R  # noqa: E402

CONFIGS = {
    "S": dict(L=4, C=256, NH=4, F=1024, T=128, B=16),
    "M": dict(L=6, C=384, NH=6, F=1536, T=256, B=8),
}
VOCAB = 8192


def loaded_blas():
    """Shared libraries in this process that provide BLAS (deduplicated)."""
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(path)
            if ("blas" in base or "mkl" in base) and path not in libs:
                libs.append(path)
    return libs


def parallel_summary():
    info = torch.__config__.parallel_info()
    keep = [ln.strip() for ln in info.splitlines()
            if ln.strip().startswith(("at::get_num_threads", "at::get_num_interop",
                                      "omp_get_max_threads", "ATen parallel backend",
                                      "OMP_NUM_THREADS", "MKL_NUM_THREADS"))]
    return "; ".join(keep)


OBJECTIVES = ("clm", "mlm", "rtd")
DISC_WEIGHT = 50.0
GEN_SIZE = 0.25


def build(objective, c, seed):
    """The model (SelfsupModel or Electra pair) for an objective, spec init."""
    gen = torch.Generator().manual_seed(seed)
    if objective == "rtd":
        dcfg = R.make_config("encoder", VOCAB, c["L"], c["C"], c["NH"], c["F"], c["T"],
                             head="disc", d_embed=c["C"])
        model = R.Electra(dcfg, R.generator_config(dcfg, GEN_SIZE))
        R.init_weights(model.disc, gen)
        R.init_weights(model.generator, gen)
        return model
    kind, head = ("decoder", None) if objective == "clm" else ("encoder", "mlm")
    cfg = R.make_config(kind, VOCAB, c["L"], c["C"], c["NH"], c["F"], c["T"],
                        head=head, d_embed=c["C"] if head else None)
    model = R.SelfsupModel(cfg)
    R.init_weights(model, gen)
    return model


def make_batch(objective, c, gen):
    """(tokens, targets) long tensors [B,T]: CLM windows, or BERT-masked
    random tokens with targets at the masked positions."""
    if objective == "clm":
        return R.clm_batch(torch.randint(0, VOCAB, (c["B"], c["T"] + 1), generator=gen))
    tokens, targets, _ = R.case_inputs(dict(kind="encoder", B=c["B"], T=c["T"], V=VOCAB,
                                            pad=False), gen)
    return tokens.long(), targets.long()


def loss_of(objective, model, tokens, targets, rng):
    if objective == "rtd":
        return R.rtd_losses(model, tokens, targets, None, DISC_WEIGHT, rng=rng)["loss"]
    return R.lm_loss(model, tokens, targets)


def bench(name, objective, threads, steps, warmup, seed, bf16=False):
    c = CONFIGS[name]
    torch.manual_seed(seed)
    model = build(objective, c, seed)
    model.train()
    if bf16:
        # LayerNorm in fp32, as autocast's policy on CUDA has it (CPU autocast
        # in torch 1.13 leaves it out: a bf16 input, e.g. the MLM head's
        # dense+GELU output, then meets fp32 weights and fails)
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.register_forward_pre_hook(lambda mod, args: tuple(a.float() for a in args))
    opt = R.make_adamw(model, 3e-4, (0.9, 0.95), 1e-8, 0.1)
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(seed + 1)
    rng = torch.Generator().manual_seed(seed + 2)  # RTD sampling
    times, cpu = [], []
    for i in range(warmup + steps):
        tokens, targets = make_batch(objective, c, gen)
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(objective, model, tokens, targets, rng)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
            cpu.append(time.process_time() - c0)
    med = statistics.median(times)
    return {"impl": "torch", "objective": objective, "config": name, "threads": threads,
            "precision": "bf16-autocast" if bf16 else "fp32",
            "tokens_per_s": round(c["B"] * c["T"] / med, 1),
            "step_ms_median": round(med * 1e3, 2),
            "step_ms_min": round(min(times) * 1e3, 2),
            "cpu_ms_per_step": round(statistics.median(cpu) * 1e3, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "steps": steps, "final_loss": round(loss.item(), 4),
            "n_params": sum(p.numel() for p in params),
            "interop_threads": torch.get_num_interop_threads(),
            "blas": [os.path.basename(p) for p in loaded_blas()],
            "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description="PyTorch training throughput benchmark")
    ap.add_argument("--configs", default="S,M", help="comma-separated: S, M")
    ap.add_argument("--objective", default="clm", choices=OBJECTIVES)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--interop", type=int, default=0,
                    help="inter-op threads (0 = leave torch's default)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="torch.autocast to bfloat16 (mixed precision)")
    args = ap.parse_args()
    names = args.configs.split(",")
    for n in names:
        if n not in CONFIGS:
            sys.exit(f"torch_train_bench.py: unknown config {n!r} (have S, M)")
    if args.threads < 1 or args.steps < 1 or args.warmup < 0:
        sys.exit("torch_train_bench.py: --threads and --steps must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    if args.interop:
        torch.set_num_interop_threads(args.interop)
    print(f"# torch {torch.__version__}: {parallel_summary()}", flush=True)
    print(f"# BLAS mapped: {', '.join(loaded_blas()) or 'none found'}; "
          f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')}", flush=True)
    for n in names:
        print(json.dumps(bench(n, args.objective, args.threads, args.steps, args.warmup,
                               args.seed, args.bf16)),
              flush=True)


if __name__ == "__main__":
    main()
