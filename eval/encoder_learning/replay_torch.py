"""Replay a selfsup masked-LM run in PyTorch, step by step.

Reads what dump_mlm wrote (initial weights, the exact per-step batches, the
val batches) and trains tests/torch_ref.py's SelfsupModel on them with the
trainer's optimizer settings: torch.optim.AdamW (decay on 2-D non-embedding
weights), clip_grad_norm_, and ss_lr_schedule (linear warmup, cosine to
lr_min). Prints/writes the per-step loss next to the C trainer's
metrics.jsonl (run with --log-every 1) and the val masked loss/accuracy at
the same eval steps.

  /usr/bin/python3 replay_torch.py DUMP C_RUN OUT.tsv --steps 800 --lr 3e-3 --warmup 10 [--eval-every 100]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
import torch_ref  # noqa: E402


def lr_at(step, total, warmup, lr, lr_min):
    """src/train/adamw.c ss_lr_schedule."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return lr
    p = min(1.0, (step - warmup) / (total - warmup))
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * p))


def read_batches(path, B, T, steps):
    n = B * T
    rec = 4 * n + 4 * n + n
    raw = np.fromfile(path, dtype=np.uint8)
    assert raw.size >= rec * steps, f"{path}: {raw.size // rec} steps, need {steps}"
    for s in range(steps):
        r = raw[s * rec:(s + 1) * rec]
        tok = r[:4 * n].view(np.int32).reshape(B, T)
        tgt = r[4 * n:8 * n].view(np.int32).reshape(B, T)
        kv = r[8 * n:].reshape(B, T)
        yield torch.from_numpy(tok.copy()), torch.from_numpy(tgt.copy()), torch.from_numpy(kv.copy())


def read_val(path, B, T):
    n = B * T
    rec = 4 + 9 * n
    raw = np.fromfile(path, dtype=np.uint8)
    out = []
    for o in range(0, raw.size, rec):
        r = raw[o:o + rec]
        rows = int(r[:4].view(np.int32)[0])
        tok = r[4:4 + 4 * n].view(np.int32).reshape(B, T)[:rows]
        tgt = r[4 + 4 * n:4 + 8 * n].view(np.int32).reshape(B, T)[:rows]
        kv = r[4 + 8 * n:].reshape(B, T)[:rows]
        out.append(tuple(torch.from_numpy(a.copy()) for a in (tok, tgt, kv)))
    return out


@torch.no_grad()
def evaluate(model, val):
    model.eval()
    loss = 0.0
    n = correct = 0
    for tok, tgt, kv in val:
        logits, t, _ = torch_ref.mlm_logits(model, tok.long(), tgt, kv)
        loss += float(F.cross_entropy(logits.double(), t, reduction="sum"))
        correct += int((logits.argmax(-1) == t).sum())
        n += t.numel()
    model.train()
    return loss / n, correct / n


def c_metrics(run):
    steps, evals = {}, {}
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            if "loss" in j:
                steps[j["step"]] = j
            if "val_loss" in j:
                evals[j["step"]] = j
    return steps, evals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("c_run")
    ap.add_argument("out")
    ap.add_argument("--B", type=int, default=8)
    ap.add_argument("--T", type=int, default=64)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = torch_ref.SelfsupModel.from_run_dir(os.path.join(args.dump, "init"))
    model.train()
    opt = torch_ref.make_adamw(model, args.lr, (0.9, 0.95), 1e-8, args.wd)
    val = read_val(os.path.join(args.dump, "val_batches.bin"), args.B, args.T)
    cs, ce = c_metrics(args.c_run) if args.c_run != "-" else ({}, {})
    lr_min = args.lr / 10
    rows = []
    for s, (tok, tgt, kv) in enumerate(read_batches(os.path.join(args.dump, "batches.bin"),
                                                    args.B, args.T, args.steps)):
        lr = lr_at(s, args.steps, args.warmup, args.lr, lr_min)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        logits, t, _ = torch_ref.mlm_logits(model, tok.long(), tgt, kv)
        loss = F.cross_entropy(logits, t)
        acc = float((logits.argmax(-1) == t).float().mean())
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(list(model.parameters()), args.clip))
        opt.step()
        step = s + 1
        c = cs.get(step, {})
        row = [step, lr, float(loss), c.get("loss", float("nan")), acc, c.get("mlm_acc", float("nan")),
               gn, c.get("grad_norm", float("nan"))]
        if step % args.eval_every == 0 or step == args.steps:
            vl, va = evaluate(model, val)
            e = ce.get(step, {})
            row += [vl, e.get("val_loss", float("nan")), va, e.get("val_acc", float("nan"))]
            print("step %4d  loss torch %.4f C %.4f | val torch %.4f C %.4f | val acc torch %.4f C %.4f" %
                  (step, row[2], row[3], vl, row[9], va, row[11]), flush=True)
        rows.append(row)
    with open(args.out, "w") as f:
        f.write("step\tlr\tloss_torch\tloss_c\tacc_torch\tacc_c\tgnorm_torch\tgnorm_c"
                "\tval_loss_torch\tval_loss_c\tval_acc_torch\tval_acc_c\n")
        for r in rows:
            f.write("\t".join("%.6g" % x for x in r) + "\n")


if __name__ == "__main__":
    main()
