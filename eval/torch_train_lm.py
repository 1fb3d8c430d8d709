"""PyTorch side of the "learning" comparison: train the reference decoder
(tests/torch_ref.py, the same architecture and init as selfsup's C engine) on
token shards made by `selfsup data prepare`, with the C trainer's defaults.

    /usr/bin/python3 eval/torch_train_lm.py --data DIR --time 600 [--preset small]

Data: DIR/meta.json lists the train and val shards. A shard is a 64-byte
little-endian header (include/selfsup/shard.h: magic "SSSHARD1", version, id
width at offset 12, vocab size, separator id, token/doc/text-byte counts,
FNV-1a checksum, payload size) followed by one zstd frame of uint16/uint32
ids, decompressed here with `zstd -dc` (its frame checksum is verified by
zstd; the FNV-1a checksum of the ids is checked too for shards up to
--fnv-max-mb, pure Python being slow at it). The split's ids are
concatenated in meta.json's order.

Training (as `selfsup pretrain --objective clm` does by default): random
windows of seq+1 ids (numpy generator seeded by --seed), batch 16, seq 128,
AdamW lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on 2-D Linear
weights only, grad clip 1.0, linear warmup (--warmup steps, default 100 with
--time) then cosine decay to lr_min = lr/10 following the elapsed share of
the --time budget (or of --steps). Dropout 0 unless --dropout.

At the end the whole val split is evaluated in non-overlapping windows
(window k predicts ids[kT+1 .. kT+T]), and
    val_bpb = sum of val loss (nats) / ln 2 / val bytes,
    val bytes = val text_bytes * evaluated tokens / (val tokens - 1),
the same accounting as the C evaluator. Output: JSON lines
    {"step":..,"loss":..,"lr":..,"tokens_per_s":..,"elapsed":..}   every --log-every
    {"step":..,"loss":..,"val_loss":..,"val_bpb":..,"tokens_per_s":..,...}  final
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import torch_ref as R  # noqa: E402

PRESETS = {  # as src/model/config.c
    "tiny": dict(n_layer=2, d_model=128, n_head=2, d_ff=512, max_seq=256),
    "small": dict(n_layer=4, d_model=256, n_head=4, d_ff=1024, max_seq=512),
    "base": dict(n_layer=6, d_model=384, n_head=6, d_ff=1536, max_seq=512),
}
HEADER = struct.Struct("<8sIIIIQQQQQ")  # 64 bytes, see include/selfsup/shard.h


def fail(msg):
    sys.exit(f"torch_train_lm.py: {msg}")


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_shard(path, vocab, fnv_max_bytes):
    """ids (numpy uint16/uint32) and header fields of one shard, validated."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    if len(raw) < HEADER.size:
        fail(f"{path}: {len(raw)} bytes, shorter than the 64-byte shard header")
    (magic, version, id_bytes, v, sep, n_tok, n_docs, text_bytes, checksum,
     payload) = HEADER.unpack_from(raw)
    if magic != b"SSSHARD1":
        fail(f"{path}: not a selfsup shard (bad magic)")
    if version != 1 or id_bytes not in (2, 4):
        fail(f"{path}: unsupported version {version} or id width {id_bytes}")
    if v != vocab:
        fail(f"{path}: vocab size {v} differs from meta.json's {vocab}")
    if len(raw) != HEADER.size + payload:
        fail(f"{path}: file is {len(raw)} bytes, header says {HEADER.size + payload}")
    r = subprocess.run(["zstd", "-dcq"], input=raw[HEADER.size:], capture_output=True)
    if r.returncode != 0:
        fail(f"{path}: corrupt zstd payload: {r.stderr.decode(errors='replace').strip()}")
    if len(r.stdout) != n_tok * id_bytes:
        fail(f"{path}: payload holds {len(r.stdout)} bytes, header says "
             f"{n_tok} ids of {id_bytes} bytes")
    if len(r.stdout) <= fnv_max_bytes and fnv1a64(r.stdout) != checksum:
        fail(f"{path}: FNV-1a checksum mismatch")
    ids = np.frombuffer(r.stdout, dtype="<u2" if id_bytes == 2 else "<u4")
    if ids.size and int(ids.max()) >= vocab:
        fail(f"{path}: id {int(ids.max())} >= vocab size {vocab}")
    return ids, text_bytes


def load_split(data_dir, split, fnv_max_bytes):
    """(ids int64 array, text_bytes, vocab_size) of a split of a prepared dir."""
    meta_path = os.path.join(data_dir, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        vocab = int(meta["vocab_size"])
        info = meta["splits"][split]
        shards = list(info["shards"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"{meta_path}: cannot read split {split!r}: {e}")
    parts, text = [], 0
    for name in shards:
        ids, tb = read_shard(os.path.join(data_dir, name), vocab, fnv_max_bytes)
        parts.append(ids)
        text += tb
    ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    if ids.size != info.get("tokens", ids.size) or text != info.get("text_bytes", text):
        fail(f"{meta_path}: split {split!r} says {info.get('tokens')} tokens / "
             f"{info.get('text_bytes')} text bytes, shards hold {ids.size} / {text}")
    return ids, text, vocab


def lr_at(step, frac, a):
    """Linear warmup over a.warmup steps, then cosine from lr to lr_min over
    frac in [0, 1] (share of the step or time budget), as the C trainer."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    frac = min(max(frac, 0.0), 1.0)
    return a.lr_min + 0.5 * (a.lr - a.lr_min) * (1.0 + math.cos(math.pi * frac))


@torch.no_grad()
def evaluate(model, ids, text_bytes, B, T):
    """Whole-split loss in non-overlapping windows; (mean loss, bpb, tokens)."""
    n_windows = (ids.size - 1) // T
    if n_windows < 1:
        fail(f"the val split has {ids.size} tokens, fewer than one window of {T} + 1")
    model.eval()
    total, count = 0.0, 0
    for w0 in range(0, n_windows, B):
        nb = min(B, n_windows - w0)
        seg = torch.from_numpy(ids[w0 * T: (w0 + nb) * T + 1])
        tok = seg[:-1].view(nb, T)
        tgt = seg[1:].view(nb, T)
        logits = model(tok)
        total += float(torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).double(), tgt.reshape(-1), reduction="sum"))
        count += nb * T
    model.train()
    nbytes = text_bytes * count / max(ids.size - 1, 1)
    return total / count, (total / math.log(2) / nbytes if nbytes > 0 else float("nan")), count


def parse_args():
    ap = argparse.ArgumentParser(description="Train the PyTorch reference decoder on selfsup shards")
    ap.add_argument("--data", required=True, help="directory made by `selfsup data prepare`")
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    for k in ("n-layer", "d-model", "n-head", "d-ff", "max-seq"):
        ap.add_argument("--" + k, type=int, help="override the preset's " + k)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--time", type=float, default=0, help="training wall-clock seconds")
    ap.add_argument("--steps", type=int, default=0, help="or a fixed number of steps")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-min", type=float, default=-1, help="default lr/10")
    ap.add_argument("--warmup", type=int, default=-1,
                    help="default 5%% of --steps (max 1000), or 100 with --time")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--fnv-max-mb", type=float, default=4.0,
                    help="verify the FNV-1a id checksum of shards up to this size")
    a = ap.parse_args()
    if (a.time > 0) == (a.steps > 0):
        ap.error("give exactly one of --time SECONDS or --steps N")
    if a.lr_min < 0:
        a.lr_min = a.lr / 10
    if a.warmup < 0:
        a.warmup = min(a.steps // 20, 1000) if a.steps > 0 else 100
    return a


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    fnv_max = int(a.fnv_max_mb * 2 ** 20)
    train, _, vocab = load_split(a.data, "train", fnv_max)
    val, val_text, _ = load_split(a.data, "val", fnv_max)
    T, B = a.seq, a.batch
    if train.size < T + 1:
        fail(f"the train split has {train.size} tokens, fewer than one window of {T} + 1")
    arch = dict(PRESETS[a.preset])
    for k in arch:
        if getattr(a, k) is not None:
            arch[k] = getattr(a, k)
    if T > arch["max_seq"]:
        fail(f"--seq {T} exceeds max_seq {arch['max_seq']}")
    cfg = R.make_config("decoder", vocab, arch["n_layer"], arch["d_model"], arch["n_head"],
                        arch["d_ff"], arch["max_seq"], a.dropout)
    torch.manual_seed(a.seed)  # dropout masks
    model = R.SelfsupModel(cfg)
    R.init_weights(model, torch.Generator().manual_seed(a.seed))
    model.train()
    opt = R.make_adamw(model, a.lr, (a.beta1, a.beta2), a.eps, a.weight_decay)
    params = list(model.parameters())
    rng = np.random.default_rng(a.seed)
    offs = np.arange(T + 1)
    print(json.dumps({"impl": "torch", "config": cfg, "train_tokens": int(train.size),
                      "val_tokens": int(val.size), "threads": a.threads,
                      "n_params": sum(p.numel() for p in params)}), flush=True)
    step, elapsed, loss_v = 0, 0.0, float("nan")
    while (a.steps and step < a.steps) or (a.time and elapsed < a.time):
        t0 = time.perf_counter()
        frac = (step - a.warmup) / max(a.steps - a.warmup, 1) if a.steps else elapsed / a.time
        lr = lr_at(step, frac, a)
        for g in opt.param_groups:
            g["lr"] = lr
        win = torch.from_numpy(train[rng.integers(0, train.size - T, size=B)[:, None] + offs])
        tokens, targets = R.clm_batch(win)
        opt.zero_grad(set_to_none=True)
        loss = R.lm_loss(model, tokens, targets)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(params, a.clip))
        opt.step()
        loss_v = loss.item()
        elapsed += time.perf_counter() - t0
        step += 1
        if step % a.log_every == 0:
            print(json.dumps({"step": step, "loss": round(loss_v, 5), "lr": lr,
                              "grad_norm": round(gnorm, 4), "elapsed": round(elapsed, 2),
                              "tokens_per_s": round(step * B * T / elapsed, 1)}), flush=True)
    t0 = time.perf_counter()
    val_loss, val_bpb, val_n = evaluate(model, val, val_text, B, T)
    print(json.dumps({"step": step, "loss": round(loss_v, 5), "val_loss": round(val_loss, 5),
                      "val_bpb": round(val_bpb, 5), "val_tokens_evaluated": val_n,
                      "tokens_per_s": round(step * B * T / max(elapsed, 1e-9), 1),
                      "train_seconds": round(elapsed, 2),
                      "eval_seconds": round(time.perf_counter() - t0, 2)}), flush=True)


if __name__ == "__main__":
    main()
