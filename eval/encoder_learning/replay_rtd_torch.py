"""ELECTRA (rtd) in PyTorch on selfsup's own masked batches and initial
weights, to compare learning curves with `selfsup pretrain --objective rtd`.

The generator's samples are drawn by torch (selfsup draws them from its data
RNG, which also makes the batches after the first differ from the dumped
ones), so the runs agree statistically, not step by step. Everything else is
the trainer's: tests/torch_ref.py's Electra pair and rtd_losses (loss =
gen MLM + disc_weight * disc BCE over real tokens), one AdamW over both
models (shared embeddings updated once with the summed gradient), joint
clip_grad_norm_, ss_lr_schedule. Evaluation: the dumped val batches (fixed
masks), generator masked loss/accuracy and the discriminator's accuracy and
AUC over all real tokens.

  /usr/bin/python3 replay_rtd_torch.py DUMP --steps 800 --lr 3e-3 --warmup 10 [--disc-weight 50]

With --exact, DUMP is an rtd_harness output directory instead: the batches
and the generator samples are selfsup's own for every step (rtd_steps.bin),
so the PyTorch run replays the C run step for step, and the per-step total,
generator and discriminator losses are printed beside rtd_loss.tsv's.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
import st_io  # noqa: E402
import torch_ref  # noqa: E402
from replay_torch import lr_at, read_batches, read_val  # noqa: E402


def auc(scores, labels):
    """Mann-Whitney with average ranks for ties."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        ranks[i:j] = (i + j + 1) / 2
        i = j
    lab = labels[order].astype(bool)
    P, N = lab.sum(), len(lab) - lab.sum()
    return (ranks[lab].sum() - P * (P + 1) / 2) / (P * N)


@torch.no_grad()
def evaluate(pair, val, rng):
    pair.eval()
    gl = gn = gc = 0
    scores, labels = [], []
    dl = 0.0
    dn = dc = 0
    for tok, tgt, kv in val:
        out = torch_ref.rtd_losses(pair, tok.long(), tgt, kv, 1.0, rng=rng)
        logits, t, _ = torch_ref.mlm_logits(pair.generator, tok.long(), tgt, kv)
        gl += float(F.cross_entropy(logits.double(), t, reduction="sum"))
        gc += int((logits.argmax(-1) == t).sum())
        gn += t.numel()
        z = pair.disc(out["disc_tokens"].long(), kv)
        valid = kv != 0
        zz, rr = z[valid], out["replaced"][valid].float()
        dl += float(F.binary_cross_entropy_with_logits(zz.double(), rr.double(), reduction="sum"))
        dc += int(((zz > 0).float() == rr).sum())
        dn += rr.numel()
        scores.append(torch.sigmoid(zz).numpy())
        labels.append(rr.numpy())
    pair.train()
    return gl / gn, gc / gn, dl / dn, dc / dn, auc(np.concatenate(scores), np.concatenate(labels))


def read_rtd_steps(path, B, T, steps):
    """rtd_harness's rtd_steps.bin: tokens, targets, samples (int32), key_valid (uint8)."""
    n = B * T
    rec = 12 * n + n
    raw = np.fromfile(path, dtype=np.uint8)
    assert raw.size >= rec * steps, f"{path}: {raw.size // rec} steps, need {steps}"
    for s in range(steps):
        r = raw[s * rec:(s + 1) * rec]
        a = [torch.from_numpy(r[k * 4 * n:(k + 1) * 4 * n].view(np.int32).reshape(B, T).copy()) for k in range(3)]
        yield a[0], a[1], torch.from_numpy(r[12 * n:].reshape(B, T).copy()), a[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--B", type=int, default=8)
    ap.add_argument("--T", type=int, default=64)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--disc-weight", type=float, default=50.0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--out", default=None, help="per-step tsv (with --exact)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    init = os.path.join(a.dump, "init")
    tensors, meta = st_io.read(os.path.join(init, "model.safetensors"))
    with open(os.path.join(init, "config.json")) as f:
        dcfg = json.load(f)
    pair = torch_ref.Electra.from_tensors(dcfg, json.loads(meta["generator_config"]), tensors)
    pair.train()
    opt = torch_ref.make_adamw(pair, a.lr, (0.9, 0.95), 1e-8, 0.1)
    params = [p for _, p in pair.file_parameters()]
    rng = torch.Generator().manual_seed(a.seed)
    if a.exact:
        val = None
        batches = read_rtd_steps(os.path.join(a.dump, "rtd_steps.bin"), a.B, a.T, a.steps)
        with open(os.path.join(a.dump, "rtd_loss.tsv")) as f:
            c_loss = [list(map(float, line.split("\t"))) for line in f.read().split("\n")[1:] if line]
        rows = []
    else:
        val = read_val(os.path.join(a.dump, "val_batches.bin"), a.B, a.T)
        batches = ((*b, None) for b in read_batches(os.path.join(a.dump, "batches.bin"), a.B, a.T, a.steps))
    for s, (tok, tgt, kv, samples) in enumerate(batches):
        lr = lr_at(s, a.steps, a.warmup, a.lr, a.lr / 10)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        out = torch_ref.rtd_losses(pair, tok.long(), tgt, kv, a.disc_weight, samples=samples, rng=rng)
        out["loss"].backward()
        gn = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
        opt.step()
        if a.exact:
            c = c_loss[s]
            rows.append([s + 1, float(out["loss"]), c[1], float(out["gen_loss"]), c[2],
                         float(out["disc_loss"]), c[3], gn, c[4]])
            if (s + 1) % a.eval_every == 0 or s < 3:
                print("step %4d  loss torch %.5f C %.5f | gen %.4f %.4f | disc %.4f %.4f | gnorm %.3f %.3f"
                      % tuple(rows[-1]), flush=True)
            continue
        if (s + 1) % a.eval_every == 0 or s + 1 == a.steps:
            gl, ga, dl, da, au = evaluate(pair, val, torch.Generator().manual_seed(5))
            print(f"step {s + 1:5d} train gen {float(out['gen_loss']):.3f} disc {float(out['disc_loss']):.3f}"
                  f" | val gen loss {gl:.3f} acc {ga:.3f} disc loss {dl:.3f} acc {da:.3f} AUC {au:.3f}", flush=True)
    if a.exact and a.out:
        with open(a.out, "w") as f:
            f.write("step\tloss_torch\tloss_c\tgen_torch\tgen_c\tdisc_torch\tdisc_c\tgnorm_torch\tgnorm_c\n")
            for r in rows:
                f.write("\t".join("%.6g" % x for x in r) + "\n")


if __name__ == "__main__":
    main()
